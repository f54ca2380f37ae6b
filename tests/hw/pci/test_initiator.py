"""The initiator core alone, at its command/report interface."""

import pytest
from amaranth.sim import Simulator

from hw.pci.bus import Cmd
from hw.pci.initiator import PciInitiator, Status


def report(count, master_enable, clocks=8):
    """Queue one read command; returns (clock of its report, status, dwords)
    or None if it was not reported within ``clocks``; and whether REQ# rose."""
    dut = PciInitiator(depth=4)
    out = {"done": None, "req": False}

    async def bench(ctx):
        ctx.set(dut.master_enable, master_enable)
        ctx.set(dut.cmd.payload, {"addr": 0x1000, "count": count, "code": Cmd.MEM_READ,
                                  "first_be": 0xF, "last_be": 0xF})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        for clk in range(clocks):
            out["req"] |= bool(ctx.get(dut.req))
            if ctx.get(dut.done):
                out["done"] = (clk, ctx.get(dut.done_status), ctx.get(dut.done_count))
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_bus_master_disabled_reports_give_up_at_once():
    """PCI 2.3 §6.2.2: with command bit 2 clear no REQ#, and the command is
    reported GIVE_UP (it was reported OK with no data, so its owner waited
    for data for ever)."""
    r = report(4, master_enable=0)
    assert not r["req"]
    assert r["done"] == (0, Status.GIVE_UP, 0)


@pytest.mark.parametrize("count", [0])
def test_a_command_of_no_dwords_is_reported_ok(count):
    """An empty command moves nothing and is reported at once (it was never
    reported, leaving the core busy for ever)."""
    r = report(count, master_enable=1)
    assert not r["req"]
    assert r["done"] == (0, Status.OK, 0)


def first_req(stream_writes, count=8):
    """Queue a write of ``count`` dwords, feeding one dword a clock from the
    clock after the command; returns how many dwords were in when REQ# rose."""
    dut = PciInitiator(depth=16, stream_writes=stream_writes)
    out = {}

    async def bench(ctx):
        ctx.set(dut.master_enable, 1)
        ctx.set(dut.latency_timer, 32)
        ctx.set(dut.cmd.payload, {"addr": 0x1000, "count": count, "code": Cmd.MEM_WRITE,
                                  "first_be": 0xF, "last_be": 0xF})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        fed = 0
        for _ in range(4 * count):
            if ctx.get(dut.req) and "fed" not in out:
                out["fed"] = fed
            ctx.set(dut.wdata.valid, fed < count)
            ctx.set(dut.wdata.payload, fed)
            took = fed < count and ctx.get(dut.wdata.ready)
            await ctx.tick()
            fed += bool(took)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out.get("fed")


def test_streamed_write_requests_on_its_first_dword():
    """A write asks for the bus once its whole burst is in; with
    ``stream_writes`` (an owner that feeds one dword a clock, a bridge
    replaying a posted run) once its first dword is in."""
    assert first_req(False) == 8
    assert first_req(True) == 1


def test_stream_writes_needs_a_32_bit_core():
    """64-bit data phases move two dwords a clock and could overtake a feed
    of one a clock."""
    with pytest.raises(ValueError, match="32-bit"):
        PciInitiator(width=64, stream_writes=True)
