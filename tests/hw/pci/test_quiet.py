"""``quiet`` of the PCI components: while it is 1 on an idle bus, no register
of the component changes (exact idle skipping depends on it).

A small segment (tests/hw/pci/harness.py) runs real traffic — configuration
cycles, MMIO, card DMA to DRAM under wait states and retries, a card reading
its own target — and after each step waits for every component to say
quiet; then, over idle clocks, every register of each component (every
signal its ``sync`` statements assign, the FIFOs' storage) is compared with
the snapshot taken when it went quiet. The monitor's ``total`` and idle
counters are the exception by design: they must advance by exactly one per
clock, which is what a host adds back for skipped clocks.
"""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hw.pci.bus import Cmd
from hw.pci.host_bridge import CpuOp
from hw.pci.initiator import Status
from hw.pci.pcireg import COMMAND

from .harness import Bench, Segment, find_fragment, sync_state, CARD_DEVICE

IDLE_CLOCKS = 24
SETTLE_LIMIT = 80          # clocks after a step within which all must be quiet
CARD_BAR = 0x8000_0000


def components(seg):
    return {"bridge": seg.bridge, "arbiter": seg.arbiter, "initiator": seg.initiator,
            "target": seg.target, "monitor": seg.monitor, "checker": seg.checker}


def free_running(seg):
    """The monitor counters that advance on an idle clock by design."""
    return {id(seg.monitor.total), id(seg.monitor.by_class[0])}


def simulate(steps, width=32):
    seg = Segment(width=width)
    frag = Fragment.get(seg, None)
    comps = components(seg)
    state = {name: sync_state(find_fragment(frag, c)) for name, c in comps.items()}
    free = free_running(seg)
    log = []

    def snapshot(ctx, name):
        regs, mems = state[name]
        values = {id(s): ctx.get(s) for s in regs if id(s) not in free}
        for mem in mems:
            values[id(mem)] = tuple(ctx.get(mem[i]) for i in range(mem.depth))
        return values

    async def settle_and_hold(ctx, label):
        for clk in range(SETTLE_LIMIT):
            if all(ctx.get(c.quiet) for c in comps.values()):
                break
            await ctx.tick()
        else:
            not_quiet = [n for n, c in comps.items() if not ctx.get(c.quiet)]
            raise AssertionError(f"{label}: not quiet after {SETTLE_LIMIT} clocks: {not_quiet}")
        before = {n: snapshot(ctx, n) for n in comps}
        total0 = ctx.get(seg.monitor.total)
        idle0 = ctx.get(seg.monitor.by_class[0])
        for _ in range(IDLE_CLOCKS):
            await ctx.tick()
            for n, c in comps.items():
                assert ctx.get(c.quiet), f"{label}: {n} left quiet with nothing to do"
                now = snapshot(ctx, n)
                changed = [k for k in now if now[k] != before[n][k]]
                assert not changed, f"{label}: {n}: {len(changed)} registers changed while quiet"
        assert ctx.get(seg.monitor.total) - total0 == IDLE_CLOCKS
        assert ctx.get(seg.monitor.by_class[0]) - idle0 == IDLE_CLOCKS
        log.append((label, clk))

    async def bench(ctx):
        b = Bench(seg, ctx)
        await settle_and_hold(ctx, "reset")
        for label, step in steps:
            await step(b, ctx, seg)
            await settle_and_hold(ctx, label)
        log.append(("checker", ctx.get(seg.checker.error)))

    async def every_clock(ctx):
        """On every clock of the run, not only in the idle windows: a
        component quiet before an edge has the same registers after it."""
        names = list(comps)
        regs = {n: [s for s in state[n][0] if id(s) not in free] for n in names}
        flat = [comps[n].quiet for n in names] + [s for n in names for s in regs[n]]
        prev = None
        async for _, _, *values in ctx.tick().sample(*flat):
            quiet = dict(zip(names, values[:len(names)]))
            rest = iter(values[len(names):])
            now = {n: [next(rest) for _ in regs[n]] for n in names}
            if prev is not None:
                for n in names:
                    if prev[0][n] and now[n] != prev[1][n]:
                        log.append(("changed while quiet", n))
            prev = (quiet, now)
            log_quiet_clocks[0] += all(quiet.values())

    log_quiet_clocks = [0]
    sim = Simulator(frag)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.add_process(every_clock)
    sim.run()
    log.append(("quiet clocks", log_quiet_clocks[0]))
    return log


async def configure(b, ctx, seg):
    await b.cfg_write(0x10, CARD_BAR)
    await b.cfg_write(0x04, COMMAND.mask("memory_space", "bus_master"))
    assert await b.cfg_read(0x10) & ~0xF == CARD_BAR


async def mmio(b, ctx, seg):
    await b.cpu(CpuOp.MEM_WRITE, CARD_BAR + 0x40, 0x1234_5678)
    assert (await b.cpu(CpuOp.MEM_READ, CARD_BAR + 0x40))[0] == 0x1234_5678
    value, status = await b.cpu(CpuOp.MEM_READ, 0xF000_0000)       # nobody: master abort
    assert (value, status) == (0xFFFF_FFFF, Status.MASTER_ABORT)


def dram_timing(ctx, seg, **knobs):
    for k in ("latency", "wait_every", "wait_len", "retry_every", "abort_every"):
        ctx.set(getattr(seg.bridge, f"dram_{k}"), knobs.get(k, 0))


WORDS = [0x0101_0101 * (i + 1) ^ 0xA5A5_0000 for i in range(12)]


async def dma_to_dram(b, ctx, seg):
    dram_timing(ctx, seg, wait_every=3, wait_len=12, retry_every=4, latency=3)
    st, n, _ = await b.dma(0x100, len(WORDS), Cmd.MEM_WRITE, WORDS)
    assert (st, n) == (Status.OK, len(WORDS))


async def dma_from_dram(b, ctx, seg):
    st, n, got = await b.dma(0x100, len(WORDS), Cmd.MEM_READ_MULT)
    assert (st, n, got) == (Status.OK, len(WORDS), WORDS)
    # a CPU read behind the posted writes: waits for them, then DRAM has them
    dram_timing(ctx, seg)


async def dma_to_own_target(b, ctx, seg):
    st, n, _ = await b.dma(CARD_BAR + 0x80, 5, Cmd.MEM_WRITE, WORDS[:5])
    assert (st, n) == (Status.OK, 5)
    st, n, got = await b.dma(CARD_BAR + 0x80, 5, Cmd.MEM_READ)
    assert got == WORDS[:5]


@pytest.mark.parametrize("width", [32, 64])
def test_every_component_is_quiet_exactly_when_idle_and_nothing_ticks(width):
    log = simulate([("configure", configure), ("mmio", mmio),
                    ("dma write", dma_to_dram), ("dma read", dma_from_dram),
                    ("peer", dma_to_own_target)], width=width)
    assert [entry for entry in log if entry[0] == "changed while quiet"] == []
    assert [entry[0] for entry in log] == ["reset", "configure", "mmio", "dma write",
                                           "dma read", "peer", "checker", "quiet clocks"]
    assert log[-2][1] == 0, "checker flagged a rule"
    assert log[-1][1] >= 6 * IDLE_CLOCKS


def test_quiet_drops_while_a_counter_runs():
    """The DRAM stall counter runs on after the last access of a write burst:
    the bridge is not quiet until it has run out (and then nothing moves)."""
    seen = {}

    async def burst(b, ctx, seg):
        dram_timing(ctx, seg, wait_every=1, wait_len=20)
        st, n, _ = await b.dma(0x200, 2, Cmd.MEM_WRITE, WORDS[:2])
        assert st == Status.OK
        seen["bridge_busy_after_done"] = not ctx.get(seg.bridge.quiet)
        dram_timing(ctx, seg)

    simulate([("configure", configure), ("stall", burst)])
    assert seen["bridge_busy_after_done"]
