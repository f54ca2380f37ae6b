"""hw.cards.regfile.RegisterFile on Amaranth's simulator, through its target port.

Expected values follow from the access kinds' definitions (hw.regs.Access,
the RegisterFile docstring) and the PCI byte-enable rule (a disabled byte
is not written, PCI 2.3 §3.2.2), applied by hand to the literals here.
"""

import pytest
from amaranth.sim import Simulator

from hw.cards.regfile import RegisterFile
from hw.regs import Access, Field, Register, RegisterBlock

RW, RO, W1C, WO, SC = Access.RW, Access.RO, Access.W1C, Access.WO, Access.SC

REGS = RegisterBlock("T", (
    Register("CFG", 0x00, (Field("lo", 0, 12, RW, reset=0x123), Field("hi", 16, 16, RW))),
    Register("ID", 0x04, (Field("id", 0, 32, RO, reset=0xC0FF_EE01),)),
    Register("EV", 0x08, (Field("a", 0, 1, W1C), Field("code", 4, 2, RO),
                          Field("b", 9, 2, W1C))),
    Register("GO", 0x0C, (Field("push", 0, 32, WO),)),
    Register("CMD", 0x10, (Field("start", 0, 1, SC), Field("soft_reset", 31, 1, SC))),
    Register("CNT", 0x14, (Field("n", 4, 16, RW),)),
    Register("B1", 0x00, (Field("x", 0, 32, RW),), bar=1),
), size=256)


def run(body, **kw):
    rf = RegisterFile(REGS, external=("CNT.n",), **kw)
    sim = Simulator(rf)
    sim.add_clock(1e-6)

    async def tb(ctx):
        await body(ctx, rf, Bus(ctx, rf))
    sim.add_testbench(tb)
    sim.run()


class Bus:
    """Drives the target-port side the way PciTarget does: one command a clock."""

    def __init__(self, ctx, rf):
        self.ctx, self.rf = ctx, rf

    def _cmd(self, addr, write, data=0, be=0xF, bar=0):
        p = self.rf.port
        c = self.ctx
        c.set(p.cmd_valid, 1)
        c.set(p.cmd.addr, addr)
        c.set(p.cmd.bar, bar)
        c.set(p.cmd.write, write)
        c.set(p.cmd.data, data)
        c.set(p.cmd.be, be)

    async def write(self, addr, data, be=0xF, bar=0, during=None):
        """A write; ``during(ctx)`` runs in the clock it is presented (comb strobes)."""
        self._cmd(addr, 1, data, be, bar)
        out = during(self.ctx) if during else None
        assert self.ctx.get(self.rf.port.cmd_ready) == 1
        await self.ctx.tick()
        self.ctx.set(self.rf.port.cmd_valid, 0)
        return out

    async def read(self, addr, bar=0):
        """A read; checks the one-clock response and returns the data."""
        p = self.rf.port
        self._cmd(addr, 0, bar=bar)
        assert self.ctx.get(p.rsp_valid) == 0
        await self.ctx.tick()
        self.ctx.set(p.cmd_valid, 0)
        assert self.ctx.get(p.rsp_valid) == 1          # exactly one clock later
        value = self.ctx.get(p.rsp_data)
        await self.ctx.tick()
        assert self.ctx.get(p.rsp_valid) == 0           # and only once
        return value


def test_reset_values_constants_and_one_clock_reads():
    async def body(ctx, rf, bus):
        assert await bus.read(0x00) == 0x123              # CFG.lo reset
        assert await bus.read(0x04) == 0xC0FF_EE01        # RO left undriven: Field.reset
        ctx.set(rf.ID.id.data, 0x1234_5678)
        assert await bus.read(0x04) == 0x1234_5678
        # two back-to-back reads: responses in order, one clock behind each
        bus._cmd(0x00, 0)
        await ctx.tick()
        assert ctx.get(rf.port.rsp_valid) == 1 and ctx.get(rf.port.rsp_data) == 0x123
        bus._cmd(0x04, 0)
        await ctx.tick()
        ctx.set(rf.port.cmd_valid, 0)
        assert ctx.get(rf.port.rsp_valid) == 1 and ctx.get(rf.port.rsp_data) == 0x1234_5678
        await ctx.tick()
        assert ctx.get(rf.port.rsp_valid) == 0
    run(body)


def test_rw_byte_enables_merge():
    async def body(ctx, rf, bus):
        await bus.write(0x00, 0xAAAA_BBBB, be=0b0001)   # byte 0 only
        assert ctx.get(rf.CFG.lo.data) == 0x1BB           # bits 11:8 keep 0x1
        assert ctx.get(rf.CFG.hi.data) == 0
        await bus.write(0x00, 0xAAAA_CCCC, be=0b1100)   # upper half only
        assert await bus.read(0x00) == 0xAAAA_01BB        # bits 15:12 not stored
        await bus.write(0x00, 0x5555_F777, be=0b0010)
        assert await bus.read(0x00) == 0xAAAA_07BB        # byte 1 of lo: 0x7 (4 bits)
        await bus.write(0x00, 0xFFFF_FFFF, be=0)          # no bytes: no change
        assert await bus.read(0x00) == 0xAAAA_07BB
    run(body)


def test_rw_lock_and_clear():
    async def body(ctx, rf, bus):
        ctx.set(rf.CFG.hi.lock, 1)
        await bus.write(0x00, 0x4444_0456)
        assert await bus.read(0x00) == 0x0000_0456        # hi locked, lo written
        ctx.set(rf.CFG.hi.lock, 0)
        ctx.set(rf.CFG.lo.clr, 1)
        await bus.write(0x00, 0x4444_0789)                # clear wins over the write
        ctx.set(rf.CFG.lo.clr, 0)
        assert await bus.read(0x00) == 0x4444_0123        # back to Field.reset
    run(body)


def test_w1c_set_clear_priorities():
    async def body(ctx, rf, bus):
        ctx.set(rf.EV.code.data, 0b10)
        ctx.set(rf.EV.a.set, 1)
        ctx.set(rf.EV.b.set, 0b11)
        await ctx.tick()
        ctx.set(rf.EV.a.set, 0)
        ctx.set(rf.EV.b.set, 0)
        assert await bus.read(0x08) == 0b110_0010_0001        # b=3 at 10:9, code, a
        await bus.write(0x08, 0xFFFF_FFFF, be=0b0001)         # clears a only (byte 0)
        assert await bus.read(0x08) == 0b110_0010_0000
        await bus.write(0x08, 1 << 10, be=0b0010)             # clears b's bit 1
        assert ctx.get(rf.EV.b.data) == 0b01
        # the card's set wins over software's write of 1 in the same clock
        ctx.set(rf.EV.a.set, 1)
        await bus.write(0x08, 1)
        ctx.set(rf.EV.a.set, 0)
        assert ctx.get(rf.EV.a.data) == 1
        # the card's clear wins over its own set
        ctx.set(rf.EV.a.set, 1)
        ctx.set(rf.EV.a.clr, 1)
        await ctx.tick()
        ctx.set(rf.EV.a.set, 0)
        ctx.set(rf.EV.a.clr, 0)
        assert ctx.get(rf.EV.a.data) == 0
        await bus.write(0x08, 0x20)                           # RO code: write ignored
        assert ctx.get(rf.EV.b.data) == 0b01
    run(body)


def test_wo_strobe_and_register_strobe():
    async def body(ctx, rf, bus):
        def seen(c):
            return (c.get(rf.GO.push.w_stb), c.get(rf.GO.push.w_data),
                    c.get(rf.GO.w_stb), c.get(rf.GO.w_be), c.get(rf.CFG.w_stb))
        got = await bus.write(0x0C, 0x1234_5678, be=0b0110, during=seen)
        assert got == (1, 0x0034_5600, 1, 0b0110, 0)
        assert ctx.get(rf.GO.push.w_stb) == 0                 # one clock only
        got = await bus.write(0x0C, 0xDEAD_BEEF, be=0, during=seen)
        assert got == (1, 0, 1, 0, 0)                         # any write strobes
        assert await bus.read(0x0C) == 0                      # WO reads 0
        # a read is not a write
        bus._cmd(0x0C, 0)
        assert ctx.get(rf.GO.w_stb) == 0
        await ctx.tick()
        ctx.set(rf.port.cmd_valid, 0)
    run(body)


def test_sc_strobe_on_one_and_busy_readback():
    async def body(ctx, rf, bus):
        def stb(c):
            return c.get(rf.CMD.start.w_stb), c.get(rf.CMD.soft_reset.w_stb)
        assert await bus.write(0x10, 0, during=stb) == (0, 0)
        assert await bus.write(0x10, 1, during=stb) == (1, 0)
        assert await bus.write(0x10, 0x8000_0000, during=stb) == (0, 1)
        assert await bus.write(0x10, 0x8000_0001, be=0b0111, during=stb) == (1, 0)
        ctx.set(rf.CMD.soft_reset.busy, 1)
        assert await bus.read(0x10) == 0x8000_0000
    run(body)


def test_external_field_merges_over_the_cards_value():
    async def body(ctx, rf, bus):
        ctx.set(rf.CNT.n.data, 0xABCD)
        assert await bus.read(0x14) == 0xABCD << 4

        def seen(c):
            return c.get(rf.CNT.n.w_stb), c.get(rf.CNT.n.w_data)
        # n is bits 19:4: byte 0 holds n[3:0], byte 1 n[11:4], byte 2 n[15:12]
        assert await bus.write(0x14, 0x0009_8760, be=0b0001, during=seen) == (1, 0xABC6)
        assert await bus.write(0x14, 0x0009_8760, be=0b0110, during=seen) == (1, 0x987D)
    run(body)


def test_unknown_offsets_and_other_bar():
    async def body(ctx, rf, bus):
        await bus.write(0x00, 0x1111_1111, bar=1)
        assert await bus.read(0x00, bar=1) == 0x1111_1111
        assert await bus.read(0x00) == 0x123                  # BAR0 CFG untouched
        assert ctx.get(rf.CFG.hi.data) == 0
        for addr, bar in ((0x18, 0), (0xFC, 0), (0x100, 0), (0x104, 0), (0x04, 1),
                          (0x00, 2)):
            def strobes(c):
                return [c.get(getattr(rf, r.name).w_stb) for r in REGS]
            assert await bus.write(addr, 0xFFFF_FFFF, bar=bar, during=strobes) == [0] * 7
            assert await bus.read(addr, bar=bar) == 0          # no alias of a register
        assert await bus.read(0x00) == 0x123 and await bus.read(0x00, bar=1) == 0x1111_1111
    run(body)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_retry_abort_pass_through_and_bad_descriptions():
    async def body(ctx, rf, bus):
        ctx.set(rf.abort, 1)
        assert ctx.get(rf.port.abort) == 1 and ctx.get(rf.port.retry) == 0
        ctx.set(rf.retry, 1)
        assert ctx.get(rf.port.retry) == 1
    run(body)
    with pytest.raises(ValueError, match="external"):
        RegisterFile(REGS, external=("CNT.nope",))
    with pytest.raises(ValueError, match="reserved"):
        RegisterFile([Register("R", 0, (Field("w_stb", 0),))])


# ---------------------------------------------------------------------------
# hw.cards.slot helpers (PCI 2.3 §6.2.2 Interrupt Disable = bit 10, §6.2.3
# Received Target Abort = bit 12, Received Master Abort = bit 13)

def test_slot_report_aborts_and_drive_inta():
    from types import SimpleNamespace
    from amaranth.hdl import Module, Signal
    from hw.cards.slot import drive_inta, report_aborts
    from hw.pci.initiator import Status

    ini = SimpleNamespace(done=Signal(), done_status=Signal(2))
    tgt = SimpleNamespace(set_status=Signal(16), command=Signal(16), int_status=Signal())
    card = SimpleNamespace(inta=Signal())
    pending = Signal()
    m = Module()
    report_aborts(m, ini, tgt)
    drive_inta(m, card, tgt, pending)
    sim = Simulator(m)

    async def tb(ctx):
        for status, bits in ((Status.OK, 0), (Status.MASTER_ABORT, 0x2000),
                             (Status.TARGET_ABORT, 0x1000), (Status.GIVE_UP, 0)):
            ctx.set(ini.done_status, status)
            ctx.set(ini.done, 1)
            assert ctx.get(tgt.set_status) == bits
            ctx.set(ini.done, 0)
            assert ctx.get(tgt.set_status) == 0          # only with done
        ctx.set(pending, 1)
        assert ctx.get(card.inta) == 1 and ctx.get(tgt.int_status) == 1
        ctx.set(tgt.command, 1 << 10)
        assert ctx.get(card.inta) == 0 and ctx.get(tgt.int_status) == 1
        ctx.set(tgt.command, 0xFFFF & ~(1 << 10))
        assert ctx.get(card.inta) == 1
    sim.add_testbench(tb)
    sim.run()
