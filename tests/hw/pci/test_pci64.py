"""64-bit PCI (PCI 2.3 §3.8) on the same cores: a 64-bit card initiator
talking to the 64-bit host bridge's DRAM target and to a 32-bit target (no
ACK64#: 32-bit phases), and a 32-bit initiator on the 64-bit bus (plain
32-bit). Every run is watched by the checker with the 64-bit rules.

Expected values come from the data written (DRAM compared byte for byte,
guards around the buffer untouched) and from the rules: with ACK64# a
phase moves two dwords, so N dwords take ceil(N/2) data phases; without it
N phases; the monitor counts the enabled byte lanes of every data phase.
"""

import pytest
from amaranth.sim import Simulator

from hw.pci.bus import Cmd
from hw.pci.initiator import Status
from hw.pci.monitor import RULES_64
from hw.pci.pcireg import COMMAND

from .harness import Bench, Segment

CARD_BAR = 0x8000_0000
GUARD = 0x5A5A_5A5A
CARD_AGENT, DRAM_AGENT, CARD_TARGET = 2, 1, 3


def words(n, seed):
    return [(0x9E37_79B9 * (i + 1) * (seed + 1)) & 0xFFFF_FFFF for i in range(n)]


def run(script, **seg_kw):
    seg = Segment(width=64, **seg_kw)
    out = {"ack64": 0, "req64": 0}

    async def bench(ctx):
        b = Bench(seg, ctx)
        await b.cfg_write(0x10, CARD_BAR)
        await b.cfg_write(0x04, COMMAND.mask("memory_space", "bus_master"))
        await script(b, ctx, seg, out)
        for _ in range(8):
            await ctx.tick()
        out["error"] = ctx.get(seg.checker.error)

    async def watch(ctx):
        async for _, _, ack64, req64 in ctx.tick().sample(seg.resolver.bus.ack64,
                                                          seg.resolver.bus.req64):
            out["ack64"] += ack64
            out["req64"] += req64

    sim = Simulator(seg)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    return out


def broken_rules(error):
    return [r for i, r in enumerate(RULES_64) if error >> i & 1]


def dram_words(ctx, seg, first, n):
    mem = seg.bridge.dram.mem
    return [ctx.get(mem.data[first + i]) for i in range(n)]


def card_counters(ctx, seg):
    mon = seg.monitor
    return (ctx.get(mon.by_master[CARD_AGENT][1]),       # data clocks (classes from 1)
            ctx.get(mon.master_bytes[CARD_AGENT]))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_64_bit_initiator_to_64_bit_dram_byte_exact(n):
    base = 0x400                                   # quadword aligned
    data = words(n, n)

    async def script(b, ctx, seg, out):
        mem = seg.bridge.dram.mem
        for i in range(n + 4):                     # guards before and after
            ctx.set(mem.data[base // 4 - 2 + i], GUARD)
        d0, b0 = card_counters(ctx, seg)
        out["write"] = await b.dma(base, n, Cmd.MEM_WRITE, data)
        d1, b1 = card_counters(ctx, seg)
        out["read"] = await b.dma(base, n, Cmd.MEM_READ_MULT)
        d2, b2 = card_counters(ctx, seg)
        out["phases"] = (d1 - d0, d2 - d1)
        out["bytes"] = (b1 - b0, b2 - b1)
        out["dram"] = dram_words(ctx, seg, base // 4 - 2, n + 4)

    r = run(script)
    assert r["write"][:2] == (Status.OK, n) and r["read"] == (Status.OK, n, data)
    assert r["dram"] == [GUARD, GUARD] + data + [GUARD, GUARD]
    phases = (n + 1) // 2 if n >= 2 else 1         # REQ64# from two dwords on
    assert r["phases"] == (phases, phases)
    assert r["bytes"] == (4 * n, 4 * n)
    assert (r["ack64"] > 0) == (n >= 2)
    assert broken_rules(r["error"]) == []


@pytest.mark.parametrize("n", [2, 5, 9])
def test_64_bit_initiator_falls_back_on_a_32_bit_target(n):
    data = words(n, 100 + n)

    async def script(b, ctx, seg, out):
        d0, b0 = card_counters(ctx, seg)
        out["write"] = await b.dma(CARD_BAR + 0x100, n, Cmd.MEM_WRITE, data)
        out["read"] = await b.dma(CARD_BAR + 0x100, n, Cmd.MEM_READ)
        d1, b1 = card_counters(ctx, seg)
        out["phases"], out["bytes"] = d1 - d0, b1 - b0
        mem = seg.card_mem.mem
        out["card"] = [ctx.get(mem.data[0x40 + i]) for i in range(n)]

    r = run(script, target_width=32)
    assert r["write"][:2] == (Status.OK, n) and r["read"] == (Status.OK, n, data)
    assert r["card"] == data
    assert r["req64"] > 0 and r["ack64"] == 0      # asked, never acknowledged
    assert r["phases"] == 2 * n                    # 32-bit phases both ways
    assert r["bytes"] == 8 * n
    assert broken_rules(r["error"]) == []


def test_32_bit_initiator_on_a_64_bit_bus_is_plain_32_bit():
    n = 6
    data = words(n, 7)

    async def script(b, ctx, seg, out):
        d0, _ = card_counters(ctx, seg)
        out["write"] = await b.dma(0x800, n, Cmd.MEM_WRITE, data)
        out["read"] = await b.dma(0x800, n, Cmd.MEM_READ_MULT)
        d1, _ = card_counters(ctx, seg)
        out["phases"] = d1 - d0
        out["dram"] = dram_words(ctx, seg, 0x800 // 4, n)

    r = run(script, initiator_width=32)
    assert r["read"] == (Status.OK, n, data) and r["dram"] == data
    assert r["req64"] == 0 and r["ack64"] == 0
    assert r["phases"] == 2 * n
    assert broken_rules(r["error"]) == []


def test_odd_start_configuration_and_mmio_stay_32_bit():
    """No REQ64# from an odd dword address (the core's choice), nor on
    configuration or single-dword MMIO cycles (§3.8: memory only)."""
    n = 5
    data = words(n, 3)

    async def script(b, ctx, seg, out):
        out["write"] = await b.dma(0x904, n, Cmd.MEM_WRITE, data)
        out["read"] = await b.dma(0x904, n, Cmd.MEM_READ_MULT)
        out["cfg"] = await b.cfg_read(0x00)
        await b.mem_write(CARD_BAR + 0x10, 0x1234_5678)
        out["mmio"] = await b.mem_read(CARD_BAR + 0x10)
        out["dram"] = dram_words(ctx, seg, 0x904 // 4, n)

    r = run(script)
    assert r["read"] == (Status.OK, n, data) and r["dram"] == data
    assert r["cfg"] == 0x7E57_0CF5 and r["mmio"] == (0x1234_5678, Status.OK)
    assert r["req64"] == 0 and r["ack64"] == 0
    assert broken_rules(r["error"]) == []


@pytest.mark.parametrize("knobs", [
    {"wait_every": 3, "wait_len": 12},                      # disconnects without data
    {"retry_every": 2, "latency": 5},                       # retries, slow first read
    {"wait_every": 1, "wait_len": 6, "retry_every": 3},
])
def test_64_bit_bursts_resume_exactly_after_disconnect_and_retry(knobs):
    n = 24
    base = 0x1000
    data = words(n, 55)

    async def script(b, ctx, seg, out):
        for k, v in knobs.items():
            ctx.set(getattr(seg.bridge, f"dram_{k}"), v)
        mem = seg.bridge.dram.mem
        for i in range(n + 4):
            ctx.set(mem.data[base // 4 - 2 + i], GUARD)
        out["write"] = await b.dma(base, n, Cmd.MEM_WRITE, data, limit=6000)
        out["read"] = await b.dma(base, n, Cmd.MEM_READ_MULT, limit=6000)
        for k in knobs:
            ctx.set(getattr(seg.bridge, f"dram_{k}"), 0)
        out["aborts"] = ctx.get(seg.monitor.by_class[5])
        out["dram"] = dram_words(ctx, seg, base // 4 - 2, n + 4)

    r = run(script)
    assert r["write"][:2] == (Status.OK, n) and r["read"] == (Status.OK, n, data)
    assert r["dram"] == [GUARD, GUARD] + data + [GUARD, GUARD]
    assert r["ack64"] > 0 and r["aborts"] > 0
    assert broken_rules(r["error"]) == []
