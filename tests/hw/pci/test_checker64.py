"""The checker's 64-bit rules (PCI 2.3 §3.8), driven at the line level by a
testbench acting as a master (agent 0) and a target (agent 1) on a 64-bit
bus. A clean 64-bit write passes; each injected fault sets its own rule."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.pci.bus import Resolver, Cmd
from hw.pci.monitor import Checker, Monitor, RULES_64


def simulate(script):
    m = Module()
    m.submodules.res = res = Resolver(2, width=64)
    m.submodules.chk = chk = Checker(2, 2, width=64)
    m.submodules.mon = mon = Monitor(2, width=64)
    cycle = Signal(64)
    m.d.sync += cycle.eq(cycle + 1)
    m.d.comb += [chk.bus.eq(res.bus), chk.contention.eq(res.contention),
                 chk.master_of.eq(res.frame_owner), chk.cycle.eq(cycle),
                 chk.ad_hi_driven.eq(res.ad_hi_driven), chk.par64_driven.eq(res.par64_driven),
                 mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
                 mon.target_of.eq(res.devsel_owner)]
    out = {}

    async def bench(ctx):
        ctx.set(chk.gnt, 0b01)
        ctx.set(chk.gnt_of_agent, 0b010)
        await ctx.tick()
        await script(ctx, *res.agents)
        await ctx.tick()
        out["error"] = {r for i, r in enumerate(RULES_64) if ctx.get(chk.error) >> i & 1}
        out["bytes"] = ctx.get(mon.master_bytes[0]), ctx.get(mon.target_bytes[1])

    sim = Simulator(m)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.run()
    return out


def drive(ctx, agent, **lines):
    for name, value in lines.items():
        ctx.set(getattr(agent.o, name), value)
        ctx.set(getattr(agent.oe, name), (1 << len(getattr(agent.oe, name))) - 1)


def release(ctx, agent, *names):
    for name in names:
        ctx.set(getattr(agent.oe, name), 0)


def parity(ad, cbe_n):
    return (bin(ad >> 32).count("1") + bin(cbe_n >> 4).count("1")) & 1


async def write64(ctx, master, target, *, cmd=Cmd.MEM_WRITE, req64_early_off=False,
                  ack64_without_req=False, bad_par64=False, no_devsel_ack=False):
    """A one-phase 64-bit write (REQ64# with FRAME#, ACK64# with DEVSEL#)."""
    req = 0 if ack64_without_req else 1
    drive(ctx, master, frame=1, req64=req, ad=0x1000, cbe_n=cmd, irdy=0)
    await ctx.tick()
    data, be = 0x1122_3344_5566_7788, 0x00
    drive(ctx, master, frame=1, req64=0 if req64_early_off else req, irdy=1, ad=data,
          cbe_n=be, par64=parity(0x1000, cmd))      # PAR64 of the address phase
    await ctx.tick()
    drive(ctx, master, par64=parity(data, be) ^ int(bad_par64))
    drive(ctx, target, devsel=1, ack64=1, trdy=0, stop=0)
    if no_devsel_ack:
        drive(ctx, target, devsel=0, ack64=1)
    await ctx.tick()
    drive(ctx, master, frame=0, req64=0)
    drive(ctx, target, devsel=1, ack64=1, trdy=1)
    await ctx.tick()
    drive(ctx, master, irdy=0, par64=parity(data, be))
    release(ctx, master, "frame", "req64", "ad", "cbe_n")
    drive(ctx, target, devsel=0, ack64=0, trdy=0, stop=0)
    await ctx.tick()
    release(ctx, master, "irdy", "par64")
    release(ctx, target, "devsel", "ack64", "trdy", "stop")
    await ctx.tick()


def test_clean_64_bit_write_passes_and_counts_eight_bytes():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1)
    r = simulate(script)
    assert r["error"] == set()
    assert r["bytes"] == (8, 8)


def test_req64_not_with_frame_is_caught():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1, req64_early_off=True)
    assert "req64_timing" in simulate(script)["error"]


def test_ack64_without_req64_is_caught():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1, ack64_without_req=True)
    assert "ack64_timing" in simulate(script)["error"]


def test_ack64_without_devsel_is_caught():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1, no_devsel_ack=True)
    assert "ack64_timing" in simulate(script)["error"]


def test_req64_on_a_configuration_cycle_is_caught():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1, cmd=Cmd.CFG_WRITE)
    assert "req64_not_memory" in simulate(script)["error"]


def test_bad_par64_is_caught():
    async def script(ctx, a0, a1):
        await write64(ctx, a0, a1, bad_par64=True)
    assert simulate(script)["error"] == {"par64"}
