"""The Hifn-style ring engine alone (hw/dma/hifn_rings.py), on pysim.

A little host-memory model answers the engine's DMA port the way the PCI
initiator does (command accepted, read words streamed, one ``done`` report
per command). Descriptors are built from the hifn7751reg.h bit values
(HIFN_D_VALID 0x80000000, HIFN_D_JUMP 0x40000000, HIFN_D_LAST 0x20000000,
HIFN_D_MASKDONEIRQ 0x02000000), not from the engine's own layout."""

import struct

from amaranth.sim import Simulator

from hw.dma.hifn_rings import RingEngine, RingState
from hw.pci.bus import Cmd
from hw.pci.initiator import Status

VALID, JUMP, LAST, MASKDONEIRQ = 0x8000_0000, 0x4000_0000, 0x2000_0000, 0x0200_0000
CMD, SRC, RES, DST = range(4)
BASE = 0x1000


class Memory:
    """Dword-addressed host memory, with the DMA commands seen and the bus
    status to answer the next one with."""

    def __init__(self):
        self.words = {}
        self.log = []                    # (cycle, "R"/"W", addr, count)
        self.fail_next = None            # Status for the next command

    def desc(self, addr, l, p):
        self.words[addr], self.words[addr + 4] = l, p

    def l_word(self, addr):
        return self.words.get(addr, 0)


def run(body, setup=None):
    """Simulate ``body(ctx, dut, mem, op)`` against the engine and memory."""
    dut = RingEngine()
    mem = Memory()
    cycle = [0]

    async def memory(ctx):
        ctx.set(dut.dma_cmd.ready, 1)
        ctx.set(dut.dma_wdata.ready, 1)
        rd_queue, wlatch, report = [], [], None
        while True:
            if rd_queue:
                ctx.set(dut.dma_rdata.valid, 1)
                ctx.set(dut.dma_rdata.payload, rd_queue[0])
            else:
                ctx.set(dut.dma_rdata.valid, 0)
            if report is not None and not rd_queue:
                ctx.set(dut.dma_done, 1)
                ctx.set(dut.dma_status, report)
                report = None
            else:
                ctx.set(dut.dma_done, 0)
            taken = bool(rd_queue) and ctx.get(dut.dma_rdata.ready)
            cmd_v = ctx.get(dut.dma_cmd.valid)
            cmd = ctx.get(dut.dma_cmd.payload)
            w_v = ctx.get(dut.dma_wdata.valid)
            w = ctx.get(dut.dma_wdata.payload)
            await ctx.tick()
            cycle[0] += 1
            if taken:
                rd_queue.pop(0)
            if w_v:
                wlatch.append(w)
            if cmd_v:
                status, mem.fail_next = mem.fail_next or Status.OK, None
                if cmd.code == Cmd.MEM_WRITE:
                    mem.log.append((cycle[0], "W", cmd.addr, cmd.count))
                    for k in range(cmd.count):
                        word = wlatch.pop(0)
                        if status == Status.OK:
                            mem.words[cmd.addr + 4 * k] = word
                else:
                    mem.log.append((cycle[0], "R", cmd.addr, cmd.count))
                    if status == Status.OK:
                        rd_queue = [mem.words.get(cmd.addr + 4 * k, 0)
                                    for k in range(cmd.count)]
                report = status

    async def tb(ctx):
        for r in range(4):
            ctx.set(dut.base_we, 1 << r)
            ctx.set(dut.base_wdata, BASE + 0x100 * r)
            await ctx.tick()
        ctx.set(dut.base_we, 0)
        ctx.set(dut.enable, 0b1111)
        ctx.set(dut.poll_period, 32)

        async def op(ring, release=False, l=0, limit=2000):
            """One request; returns (descriptor l, p, error, clocks, pulses)."""
            ctx.set(dut.req_valid, 1)
            ctx.set(dut.req_ring, ring)
            ctx.set(dut.req_release, release)
            ctx.set(dut.req_l, l)
            pulses = {"wait": 0, "done": 0, "last": 0}
            for n in range(limit):
                ready = ctx.get(dut.req_ready)
                await ctx.tick()
                if ready:
                    ctx.set(dut.req_valid, 0)
                for name in pulses:
                    pulses[name] += (ctx.get(getattr(dut, name)) >> ring) & 1
                if ctx.get(dut.rsp_valid):
                    rsp = ctx.get(dut.rsp)
                    error = ctx.get(dut.rsp_error)
                    await ctx.tick()
                    return rsp.l.as_value().value, rsp.p, error, n, pulses
            raise AssertionError("no answer")
        await body(ctx, dut, mem, op)

    if setup:
        setup(mem)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(memory, background=True)
    sim.add_testbench(tb)
    sim.run()
    return mem


def test_fetch_of_a_valid_descriptor():
    def setup(mem):
        mem.desc(BASE + 0x100 * SRC, VALID | LAST | 100, 0x2000)

    async def body(ctx, dut, mem, op):
        l, p, err, _, pulses = await op(SRC)
        assert (l, p, err) == (VALID | LAST | 100, 0x2000, 0)
        assert pulses["wait"] == 0
        assert [e[1:] for e in mem.log] == [("R", BASE + 0x100 * SRC, 2)]
        assert ctx.get(dut.state) == RingState.IDLE
    run(body, setup)


def test_an_invalid_descriptor_is_polled_at_the_poll_period():
    addr = BASE + 0x100 * CMD
    intervals = {}

    def polls(period):
        async def body(ctx, dut, mem, op):
            ctx.set(dut.poll_period, period)
            ctx.set(dut.req_valid, 1)
            ctx.set(dut.req_ring, CMD)
            waits = 0
            for _ in range(6 * period + 100):
                await ctx.tick()
                if ctx.get(dut.req_ready) == 0:
                    ctx.set(dut.req_valid, 0)
                waits += ctx.get(dut.wait) & 1
                assert not ctx.get(dut.rsp_valid)
            reads = [c for c, kind, a, n in mem.log if kind == "R" and a == addr]
            assert waits == len(reads) >= 4              # one WAIT per invalid read
            gaps = {b - a for a, b in zip(reads, reads[1:])}
            assert len(gaps) == 1                         # a fixed period
            intervals[period] = gaps.pop()
            # the host hands the descriptor over: the next poll takes it
            mem.desc(addr, VALID | 8, 0x3000)
            for _ in range(period + 20):
                await ctx.tick()
                if ctx.get(dut.rsp_valid):
                    assert ctx.get(dut.rsp).p == 0x3000 and not ctx.get(dut.rsp_error)
                    return
            raise AssertionError("VALID descriptor not taken")
        run(body)

    polls(40)
    polls(100)
    # the read itself takes the same clocks at both periods: the gap grows by the period
    assert intervals[100] - intervals[40] == 60


def test_a_disabled_ring_is_not_polled():
    async def body(ctx, dut, mem, op):
        ctx.set(dut.enable, 0b1110)               # command ring disabled
        ctx.set(dut.req_valid, 1)
        ctx.set(dut.req_ring, CMD)
        for _ in range(200):
            await ctx.tick()
            if not ctx.get(dut.req_ready):
                ctx.set(dut.req_valid, 0)
        assert mem.log == [] and ctx.get(dut.state) == RingState.CHECK
        ctx.set(dut.enable, 0b1111)
        for _ in range(20):
            await ctx.tick()
        assert [e[1] for e in mem.log] == ["R"]
    run(body)


def test_release_writes_the_control_word_back_without_valid():
    base = BASE + 0x100 * DST

    def setup(mem):
        mem.desc(base, VALID | 64, 0x4000)
        mem.desc(base + 8, VALID | LAST | MASKDONEIRQ | 32, 0x5000)
        mem.desc(base + 16, VALID | 16, 0x6000)

    async def body(ctx, dut, mem, op):
        l, *_ = await op(DST)
        *_, pulses = await op(DST, release=True, l=l)
        assert mem.l_word(base) == 64                        # VALID cleared, length kept
        assert (pulses["done"], pulses["last"]) == (1, 0)
        l, p, *_ = await op(DST)                            # the position moved by 8
        assert p == 0x5000
        *_, pulses = await op(DST, release=True, l=l)
        assert mem.l_word(base + 8) == LAST | MASKDONEIRQ | 32
        assert (pulses["done"], pulses["last"]) == (0, 1)    # MASKDONEIRQ: no DONE
        assert mem.words[base + 4] == 0x4000                 # p is not written
        writes = [e for e in mem.log if e[1] == "W"]
        assert [(a, n) for _, _, a, n in writes] == [(base, 1), (base + 8, 1)]
        assert (await op(DST))[1] == 0x6000
    run(body, setup)


def test_jump_wraps_to_the_ring_start():
    base = BASE + 0x100 * RES

    def setup(mem):
        mem.desc(base, VALID | 8, 0x7000)
        mem.desc(base + 8, VALID | 8, 0x7100)
        mem.desc(base + 16, VALID | JUMP, base)

    async def body(ctx, dut, mem, op):
        for _ in range(2):
            l, *_ = await op(RES)
            await op(RES, release=True, l=l)
        mem.desc(base, VALID | 8, 0x7200)                   # re-armed by the host
        l, p, err, *_ = await op(RES)
        assert (p, err) == (0x7200, 0)
        reads = [a for _, kind, a, _ in mem.log if kind == "R"]
        assert reads == [base, base + 8, base + 16, base]
        assert mem.l_word(base + 16) == VALID | JUMP         # the JUMP is not written back
        await op(RES, release=True, l=l)
        assert mem.log[-1][1:3] == ("W", base)               # released at the start
    run(body, setup)


def test_a_jump_right_after_a_jump_aborts_the_fetch():
    base = BASE + 0x100 * SRC

    def setup(mem):
        mem.desc(base, VALID | JUMP, base)                  # a JUMP to itself

    async def body(ctx, dut, mem, op):
        l, p, err, *_ = await op(SRC)
        assert err == 1
        assert [a for _, _, a, _ in mem.log] == [base, base]  # read twice, then given up
        assert ctx.get(dut.state) == RingState.IDLE
    run(body, setup)


def test_a_bus_error_on_release_is_an_error_and_keeps_the_position():
    base = BASE + 0x100 * SRC

    def setup(mem):
        mem.desc(base, VALID | 8, 0x100)

    async def body(ctx, dut, mem, op):
        l, *_ = await op(SRC)
        mem.fail_next = Status.MASTER_ABORT
        *_, err, _, pulses = await op(SRC, release=True, l=l)
        assert err == 1 and pulses["done"] == 0
        assert mem.l_word(base) == VALID | 8                 # not written
        assert (await op(SRC))[1] == 0x100                   # still at the descriptor
    run(body, setup)


def test_a_read_that_ends_in_a_bus_error_waits_for_the_cards_reset():
    """The card halts on the initiator's error report and resets the engine
    (hw/cards/hifn7751.py); until then the fetch does not answer."""
    async def body(ctx, dut, mem, op):
        mem.fail_next = Status.MASTER_ABORT
        ctx.set(dut.req_valid, 1)
        ctx.set(dut.req_ring, SRC)
        for _ in range(50):
            await ctx.tick()
            ctx.set(dut.req_valid, 0)
            assert not ctx.get(dut.rsp_valid)
        assert ctx.get(dut.busy)
        ctx.set(dut.reset, 1)
        await ctx.tick()
        ctx.set(dut.reset, 0)
        assert ctx.get(dut.state) == RingState.IDLE and not ctx.get(dut.busy)
    run(body)


def test_reset_and_a_base_write_return_to_the_ring_start():
    base = BASE + 0x100 * CMD

    def setup(mem):
        mem.desc(base, VALID | 8, 0x100)
        mem.desc(base + 8, VALID | 8, 0x108)

    async def body(ctx, dut, mem, op):
        l, *_ = await op(CMD)
        await op(CMD, release=True, l=l)
        ctx.set(dut.reset, 1)
        await ctx.tick()
        ctx.set(dut.reset, 0)
        mem.desc(base, VALID | 8, 0x100)                    # re-armed by the host
        assert (await op(CMD))[1] == 0x100                  # position back to the base
        await op(CMD, release=True, l=l)
        assert (await op(CMD))[1] == 0x108
        ctx.set(dut.base_we, 1 << CMD)                      # CRAR written
        ctx.set(dut.base_wdata, base)
        await ctx.tick()
        ctx.set(dut.base_we, 0)
        mem.desc(base, VALID | 8, 0x100)
        assert (await op(CMD))[1] == 0x100
        assert ctx.get(dut.base[CMD]) == base
    run(body, setup)
