"""The host bridge's DRAM target as a delayed-transaction target
(``dram_delayed``, hw/pci/host_bridge.py; PCI 2.3 §3.3.3.3): a master's read
of host memory is retried until its completion is ready, then served to the
master's repeat of the same request; other reads wait; a completion whose
master never returns is discarded after 2^15 clocks (the spec's
recommended discard time).

Expected values come from the data written into DRAM, the clocks asked for,
the bus (FRAME# assertions by the card: one transaction without delay,
retries with it) and the checker's PCI rules.
"""

import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from hw.pci.bus import Cmd
from hw.pci.host_bridge import DISCARD_CLOCKS
from hw.pci.initiator import Status
from hw.pci.pcireg import COMMAND

from .harness import Bench, Segment

CARD_BAR = 0x8000_0000
CARD_AGENT = 2                      # resolver order (harness docstring)


class KillableSegment(Segment):
    """The harness segment with a reset on the card's initiator: a card
    reset while its read is being retried (a driver's recovery)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.kill = Signal()

    def elaborate(self, platform):
        raw = self.initiator
        self.initiator = ResetInserter(self.kill)(raw)     # its ports are raw's
        try:
            return super().elaborate(platform)
        finally:
            self.initiator = raw


def words(n, seed):
    return [(0x9E37_79B9 * (i + 1) * (seed + 1)) & 0xFFFF_FFFF for i in range(n)]


def run(script, seg=None):
    seg = seg or Segment()
    out = {"frames": 0}

    async def bench(ctx):
        b = Bench(seg, ctx)
        await b.cfg_write(0x10, CARD_BAR)
        await b.cfg_write(0x04, COMMAND.mask("memory_space", "bus_master"))
        await script(b, ctx, seg, out)
        for _ in range(8):
            await ctx.tick()
        out["error"] = ctx.get(seg.checker.error)

    async def watch(ctx):
        prev = 1
        async for _, _, frame, owner in ctx.tick().sample(seg.resolver.bus.frame,
                                                          seg.resolver.frame_owner):
            if frame and not prev and owner == CARD_AGENT + 1:
                out["frames"] += 1
            prev = frame

    sim = Simulator(seg)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    return out


def fill(ctx, seg, first, data):
    mem = seg.bridge.dram.mem
    for i, w in enumerate(data):
        ctx.set(mem.data[first + i], w)


async def timed_read(b, ctx, seg, addr, n):
    t0 = ctx.get(seg.cycle)
    st, cnt, got = await b.dma(addr, n, Cmd.MEM_READ_MULT, limit=DISCARD_CLOCKS + 4000)
    return st, cnt, got, ctx.get(seg.cycle) - t0


@pytest.mark.parametrize("delayed", [0, 1, 20, 200])
def test_a_read_waits_for_its_delayed_completion(delayed):
    data = words(16, delayed)

    async def script(b, ctx, seg, out):
        fill(ctx, seg, 0x100, data)
        ctx.set(seg.bridge.dram_delayed, delayed)
        out["first"] = await timed_read(b, ctx, seg, 0x400, 16)
        out["frames_first"] = out["frames"]
        fill(ctx, seg, 0x100, [w ^ 0xFFFF_FFFF for w in data])   # written after
        out["again"] = await timed_read(b, ctx, seg, 0x400, 16)

    r = run(script)
    for key, want in (("first", data), ("again", [w ^ 0xFFFF_FFFF for w in data])):
        st, cnt, got, clocks = r[key]
        assert (st, cnt, got) == (Status.OK, 16, want), key    # DRAM as it is when served
        assert clocks >= delayed, key
    if delayed:
        assert r["frames_first"] >= 2           # retried at least once, then served
    else:
        assert r["frames_first"] == 1
    assert r["error"] == 0


def test_the_delay_costs_the_clocks_asked_for():
    """Each read's time grows with ``delayed`` by about that many clocks
    (plus at most one retry round: REQ# held off two clocks, re-arbitration,
    the address phase and the target's decode)."""
    base = {}

    def clocks(delayed):
        async def script(b, ctx, seg, out):
            ctx.set(seg.bridge.dram_delayed, delayed)
            out["t"] = (await timed_read(b, ctx, seg, 0x400, 8))[3]
        return run(script)["t"]

    base = clocks(0)
    for d in (30, 90):
        extra = clocks(d) - base
        assert d <= extra <= d + 12, (d, extra)


@pytest.mark.slow
def test_other_reads_wait_and_a_lost_completion_is_discarded():
    """The card is reset while its read at A is retried: A's completion is
    held for nobody. The card's next read (at B) is retried while it is held
    and is served once it is discarded, 2^15 clocks after it became ready:
    no master is locked out for good."""
    seg = KillableSegment()
    delayed = 16
    data = words(4, 7)

    async def script(b, ctx, seg, out):
        fill(ctx, seg, 0x200, data)  # byte 0x800
        ctx.set(seg.bridge.dram_delayed, delayed)
        ini = seg.initiator
        ctx.set(ini.cmd.payload, {"addr": 0x400, "count": 4, "code": Cmd.MEM_READ,
                                  "first_be": 0xF, "last_be": 0xF})
        ctx.set(ini.cmd.valid, 1)
        await ctx.tick()
        ctx.set(ini.cmd.valid, 0)
        while out["frames"] == 0:               # its first attempt: retried, latched
            await ctx.tick()
        await ctx.tick().repeat(4)
        ctx.set(seg.kill, 1)
        await ctx.tick()
        ctx.set(seg.kill, 0)
        t0 = ctx.get(seg.cycle)
        got = []
        while not got or got[-1][0] != Status.OK:     # a master may give up meanwhile
            st, cnt, words_ = (await timed_read(b, ctx, seg, 0x800, 4))[:3]
            got.append((st, cnt, words_))
        out["waited"] = ctx.get(seg.cycle) - t0
        out["got"] = got[-1]

    r = run(script, seg)
    assert r["got"] == (Status.OK, 4, data)
    assert DISCARD_CLOCKS - 2 * delayed <= r["waited"] <= DISCARD_CLOCKS + 2000
    assert r["error"] == 0
