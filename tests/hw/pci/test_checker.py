"""Protocol checker and monitor, driven directly at the line level.

Negative tests: violations are injected by a testbench acting as two
misbehaving agents; each must set its own rule bit and only that one.
"""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.pci.bus import Resolver, Cmd
from hw.pci.monitor import Checker, Monitor, RULES, CLASSES




def make():
    m = Module()
    m.submodules.res = res = Resolver(2)
    chk = Checker(2, 2)
    mon = Monitor(2)
    m.submodules.chk = chk
    m.submodules.mon = mon
    cycle = Signal(64)
    m.d.sync += cycle.eq(cycle + 1)
    m.d.comb += [chk.bus.eq(res.bus), chk.contention.eq(res.contention),
                 chk.master_of.eq(res.frame_owner), chk.cycle.eq(cycle),
                 mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
                 mon.target_of.eq(res.devsel_owner)]
    return m, res, chk, mon


def simulate(script):
    m, res, chk, mon = make()
    a0, a1 = res.agents
    result = {}

    async def bench(ctx):
        ctx.set(chk.gnt, 0b01)
        ctx.set(chk.gnt_of_agent, 0b010)          # agent 0 holds GNT#
        await ctx.tick()                           # ... from the previous clock on
        await script(ctx, a0, a1)
        await ctx.tick()
        result["error"] = ctx.get(chk.error)
        result["classes"] = [ctx.get(c) for c in mon.by_class]
        result["total"] = ctx.get(mon.total)

    sim = Simulator(m)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.run()
    return result


def drive(ctx, agent, **lines):
    for name, value in lines.items():
        ctx.set(getattr(agent.o, name), value)
        ctx.set(getattr(agent.oe, name), (1 << len(getattr(agent.oe, name))) - 1)


def release(ctx, agent, *names):
    for name in names:
        ctx.set(getattr(agent.oe, name), 0)


async def single_write(ctx, master, target, *, devsel=True, trdy_early=False):
    """A one-dword memory write; options inject faults."""
    drive(ctx, master, frame=1, ad=0x1000, cbe_n=Cmd.MEM_WRITE, irdy=0)
    await ctx.tick()
    drive(ctx, master, frame=0, irdy=1, ad=0x55, cbe_n=0)
    if trdy_early:
        drive(ctx, target, trdy=1, devsel=0, stop=0)
    await ctx.tick()
    drive(ctx, target, devsel=int(devsel), trdy=1, stop=0)
    await ctx.tick()
    drive(ctx, master, irdy=0)
    release(ctx, master, "frame", "ad", "cbe_n")
    drive(ctx, target, devsel=0, trdy=0, stop=0)
    await ctx.tick()
    release(ctx, master, "irdy")
    release(ctx, target, "devsel", "trdy", "stop")
    await ctx.tick()


def rules_set(bits):
    return {r for i, r in enumerate(RULES) if bits >> i & 1}


def test_clean_transaction_passes():
    async def script(ctx, a0, a1):
        await single_write(ctx, a0, a1)
    r = simulate(script)
    assert rules_set(r["error"]) == set()
    assert sum(r["classes"]) == r["total"]
    assert r["classes"][CLASSES.index("data")] == 1
    assert r["classes"][CLASSES.index("address")] == 1


def test_contention_is_caught():
    async def script(ctx, a0, a1):
        drive(ctx, a0, ad=0x1)
        drive(ctx, a1, ad=0x2)                 # both drive AD in one clock
        await ctx.tick()
        release(ctx, a0, "ad")
        release(ctx, a1, "ad")
    assert rules_set(simulate(script)["error"]) == {"contention"}


def test_trdy_without_devsel_is_caught():
    async def script(ctx, a0, a1):
        await single_write(ctx, a0, a1, devsel=False)
    assert "trdy_without_devsel" in rules_set(simulate(script)["error"])


def test_frame_dropped_without_irdy_is_caught():
    async def script(ctx, a0, a1):
        drive(ctx, a0, frame=1, ad=0x1000, cbe_n=Cmd.MEM_WRITE, irdy=0)
        await ctx.tick()
        drive(ctx, a0, frame=0, irdy=0)       # FRAME# gone, IRDY# never came
        await ctx.tick()
        release(ctx, a0, "frame", "irdy", "ad", "cbe_n")
    assert "frame_without_irdy" in rules_set(simulate(script)["error"])


def test_start_without_gnt_is_caught():
    async def script(ctx, a0, a1):
        await single_write(ctx, a1, a0)        # agent 1 never had GNT#
    assert rules_set(simulate(script)["error"]) == {"start_without_gnt"}


def test_stop_dropped_early_is_caught():
    async def script(ctx, a0, a1):
        drive(ctx, a0, frame=1, ad=0x1000, cbe_n=Cmd.MEM_WRITE, irdy=0)
        await ctx.tick()
        drive(ctx, a0, frame=1, irdy=1, ad=0x55, cbe_n=0)
        await ctx.tick()
        drive(ctx, a1, devsel=1, trdy=0, stop=1)      # retry...
        await ctx.tick()
        drive(ctx, a1, stop=0)                        # ...withdrawn while FRAME# on
        await ctx.tick()
        drive(ctx, a0, frame=0)
        await ctx.tick()
        release(ctx, a0, "frame", "irdy", "ad", "cbe_n")
        release(ctx, a1, "devsel", "trdy", "stop")
    assert "stop_dropped" in rules_set(simulate(script)["error"])


def test_initial_latency_limit_is_caught():
    async def script(ctx, a0, a1):
        drive(ctx, a0, frame=1, ad=0x1000, cbe_n=Cmd.MEM_READ, irdy=0)
        await ctx.tick()
        drive(ctx, a0, frame=0, irdy=1)
        release(ctx, a0, "ad")
        await ctx.tick()
        drive(ctx, a1, devsel=1, trdy=0, stop=0)
        for _ in range(20):                           # > 16 clocks, no TRDY#
            await ctx.tick()
    assert "initial_latency" in rules_set(simulate(script)["error"])
