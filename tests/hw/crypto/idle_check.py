"""The ``idle`` contract of a component (hw/crypto/engine.py, hw/dma/mcr.py):
while ``idle`` is 1 the next clock edge changes none of its state. The
state is every signal any of its modules assigns in the sync domain,
collected from the elaborated design the simulator runs."""

from amaranth.hdl._ir import Fragment


def sync_signals(frag):
    """Every signal assigned in a sync domain of ``frag`` and its subfragments."""
    found = {}
    todo = [frag]
    while todo:
        f = todo.pop()
        for domain, stmts in getattr(f, "statements", {}).items():
            if domain == "comb":
                continue
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    found[id(sig)] = sig
        todo += [sub for sub, _name, _loc in f.subfragments]
    return list(found.values())


def elaborated(component):
    """The component's fragment (simulate this, so the collected signals are
    the simulated ones) and its sync signals."""
    frag = Fragment.get(component, None)
    return frag, sync_signals(frag)


def idle_watch(idle, signals, stats):
    """A background testbench: at every clock edge where ``idle`` was 1,
    every signal of ``signals`` must keep its value across the edge.
    ``stats["idle"]`` counts those edges, ``stats["edges"]`` all of them."""
    async def watch(ctx):
        stats.setdefault("idle", 0)
        stats.setdefault("edges", 0)
        async for _clk, _rst, was_idle, *before in ctx.tick().sample(idle, *signals):
            stats["edges"] += 1
            if not was_idle:
                continue
            stats["idle"] += 1
            changed = [s.name for s, b in zip(signals, before) if ctx.get(s) != b]
            assert not changed, f"state changed while idle: {changed[:8]}"
    return watch
