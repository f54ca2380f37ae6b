"""DMA test card: copies host memory to host memory through its own initiator.

The pattern the crypto cards follow: a PCI target for registers, an
initiator for DMA, interrupt on completion. Fictional IDs (vendor 0x0CF5 is
not a PCI-SIG assignment we know of), class 0x080100 (system peripheral, DMA
controller; PCI Code and ID Assignment spec).

BAR0, 4 KiB, non-prefetchable registers (byte offsets):

====  =========  ==========================================================
0x00  SRC        source bus address (dword aligned)
0x04  DST        destination bus address (dword aligned)
0x08  LEN        bytes to copy (any length; the last dword is masked)
0x0C  CTRL       bit 0 START (write 1; self-clearing)
0x10  STATUS     bit 0 BUSY (RO), bit 1 DONE (W1C), bit 2 ERROR (W1C),
                 bits 5:4 initiator status of the failing command (RO)
0x14  INTEN      bit 0: raise INTA# while DONE or ERROR is set
0x18  BURST      dwords per burst, 1..DEPTH (0 or more = DEPTH)
0x1C  ID         0x0CF5D0A1
0x20  MOVED      bytes written so far
====  =========  ==========================================================

Unaligned SRC/DST end in ERROR with status 3 without touching the bus.
Other offsets of the BAR read 0 and ignore writes.

The registers are described once (:func:`registers`, ``hw.regs``) and built
by :class:`hw.cards.regfile.RegisterFile`; the card keeps BURST itself (a
write saturates) and MOVED, the error code and BUSY.
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import enum, wiring

from .regfile import RegisterFile
from .slot import CardSignature, connect_slot, drive_inta, drive_quiet, report_aborts
from ..pci.bus import Cmd
from ..pci.initiator import PciInitiator, Status
from ..pci.target import PciTarget, BarSpec
from ..regs import Access, Field, Register, RegisterBlock

__all__ = ["DmaTestCard", "REG", "VENDOR_ID", "DEVICE_ID", "registers", "CopyState"]

VENDOR_ID = 0x0CF5
DEVICE_ID = 0xD0A1
CLASS_CODE = 0x080100
ID_MAGIC = 0x0CF5D0A1
BAR_SIZE = 4096

RW, RO, W1C, SC = Access.RW, Access.RO, Access.W1C, Access.SC


def registers(depth: int = 256) -> RegisterBlock:
    """The card's BAR0 registers (the table above); ``depth``: BURST's reset."""
    return RegisterBlock("dmatest", (
        Register("SRC", 0x00, (Field("addr", 0, 32, RW, doc="ignored while busy"),)),
        Register("DST", 0x04, (Field("addr", 0, 32, RW, doc="ignored while busy"),)),
        Register("LEN", 0x08, (Field("bytes", 0, 32, RW, doc="ignored while busy"),)),
        Register("CTRL", 0x0C, (Field("start", 0, 1, SC, doc="start a copy; reads 0"),)),
        Register("STATUS", 0x10, (
            Field("busy", 0, 1, RO), Field("done", 1, 1, W1C), Field("error", 2, 1, W1C),
            Field("code", 4, 2, RO, doc="initiator status of the failing command"))),
        Register("INTEN", 0x14, (Field("enable", 0, 1, RW),)),
        Register("BURST", 0x18, (Field("dwords", 0, 16, RW, reset=depth,
                                       doc="0 or more than DEPTH: DEPTH"),)),
        Register("ID", 0x1C, (Field("magic", 0, 32, RO, reset=ID_MAGIC),)),
        Register("MOVED", 0x20, (Field("bytes", 0, 32, RO),)),
    ), size=BAR_SIZE)


REGS = registers()
#: byte offsets by name (the workload's view)
REG = {r.name: r.offset for r in REGS}
ST_BUSY, ST_DONE, ST_ERROR = (REGS.STATUS.mask(n) for n in ("busy", "done", "error"))


class CopyState(enum.IntEnum, shape=3):
    """The copy engine's FSM (VCDs show the names)."""
    IDLE = 0
    NEXT = 1        # size the next burst
    RD_ISSUE = 2
    RD_WAIT = 3
    WR_ISSUE = 4
    WR_WAIT = 5


S_IDLE, S_NEXT, S_RD_ISSUE, S_RD_WAIT, S_WR_ISSUE, S_WR_WAIT = CopyState


class DmaTestCard(wiring.Component):
    def __init__(self, depth: int = 256):
        self.depth = depth
        super().__init__(CardSignature)
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=1, int_pin=1,
                                bars=[BarSpec(BAR_SIZE)])
        self.initiator = PciInitiator(depth=depth)
        # BURST's storage is the card's: a write saturates
        self.regs = RegisterFile(registers(depth), external=("BURST.dwords",))
        self.state = Signal(CopyState)

    def vcd_traces(self) -> dict:
        return {"copy engine": [self.state]}

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = self.initiator
        m.submodules.regs = rf = self.regs
        connect_slot(m, self, tgt, ini)
        wiring.connect(m, tgt.port, rf.port)
        report_aborts(m, ini, tgt)
        # read data flows straight back out as write data
        wiring.connect(m, ini.rdata, ini.wdata)

        src, dst, length = rf.SRC.addr.data, rf.DST.addr.data, rf.LEN.bytes.data
        inten = rf.INTEN.enable.data
        done_f, error_f = rf.STATUS.done, rf.STATUS.error
        done, error = done_f.data, error_f.data
        err_code = Signal(2)
        moved = Signal(32)
        burst_reg = Signal(16, init=self.depth)
        state = self.state
        busy = state != S_IDLE

        drive_inta(m, self, tgt, (done | error) & inten, status=done | error)

        # ---- registers -------------------------------------------------
        start = Signal()
        m.d.comb += [
            rf.SRC.addr.lock.eq(busy), rf.DST.addr.lock.eq(busy), rf.LEN.bytes.lock.eq(busy),
            start.eq(rf.CTRL.start.w_stb & ~busy),
            rf.STATUS.busy.data.eq(busy), rf.STATUS.code.data.eq(err_code),
            rf.BURST.dwords.data.eq(burst_reg), rf.MOVED.bytes.data.eq(moved),
            # a new copy clears DONE and ERROR unless it ends at once
            done_f.clr.eq(start & ~done_f.set), error_f.clr.eq(start & ~error_f.set),
        ]
        with m.If(rf.BURST.dwords.w_stb):
            nb = rf.BURST.dwords.w_data
            m.d.sync += burst_reg.eq(Mux((nb == 0) | (nb > self.depth), self.depth, nb))

        # ---- copy engine -----------------------------------------------
        rd_addr, wr_addr = Signal(32), Signal(32)
        dwords_left = Signal(32)
        chunk = Signal(16)
        last_be = Signal(4)
        final = Signal()
        m.d.comb += final.eq(dwords_left == chunk)
        ini_cmd = ini.cmd.payload

        def fail(code):
            m.d.sync += [state.eq(S_IDLE), err_code.eq(code)]
            m.d.comb += error_f.set.eq(1)

        with m.Switch(state):
            with m.Case(S_IDLE):
                with m.If(start):
                    m.d.sync += [moved.eq(0), rd_addr.eq(src), wr_addr.eq(dst),
                                 dwords_left.eq((length + 3) >> 2),
                                 last_be.eq(Mux(length[0:2] == 0, 0xF,
                                                (1 << length[0:2]) - 1))]
                    with m.If((src[0:2] != 0) | (dst[0:2] != 0)):
                        fail(Status.GIVE_UP)
                    with m.Elif(length == 0):
                        m.d.comb += done_f.set.eq(1)
                    with m.Else():
                        m.d.sync += state.eq(S_NEXT)
            with m.Case(S_NEXT):
                m.d.sync += [chunk.eq(Mux(dwords_left > burst_reg, burst_reg, dwords_left)),
                             state.eq(S_RD_ISSUE)]
            with m.Case(S_RD_ISSUE):
                m.d.comb += [ini.cmd.valid.eq(1), ini_cmd.addr.eq(rd_addr),
                             ini_cmd.count.eq(chunk), ini_cmd.code.eq(Cmd.MEM_READ_MULT),
                             ini_cmd.first_be.eq(0xF), ini_cmd.last_be.eq(0xF)]
                with m.If(ini.cmd.ready):
                    m.d.sync += state.eq(S_RD_WAIT)
            with m.Case(S_RD_WAIT):
                with m.If(ini.done):
                    with m.If(ini.done_status != Status.OK):
                        fail(ini.done_status)
                        m.d.comb += ini.flush.eq(1)
                    with m.Else():
                        m.d.sync += [rd_addr.eq(rd_addr + (chunk << 2)),
                                     state.eq(S_WR_ISSUE)]
            with m.Case(S_WR_ISSUE):
                m.d.comb += [ini.cmd.valid.eq(1), ini_cmd.addr.eq(wr_addr),
                             ini_cmd.count.eq(chunk), ini_cmd.code.eq(Cmd.MEM_WRITE),
                             ini_cmd.first_be.eq(0xF),
                             ini_cmd.last_be.eq(Mux(final, last_be, 0xF))]
                with m.If(ini.cmd.ready):
                    m.d.sync += state.eq(S_WR_WAIT)
            with m.Case(S_WR_WAIT):
                with m.If(ini.done):
                    with m.If(ini.done_status != Status.OK):
                        fail(ini.done_status)
                        m.d.comb += ini.flush.eq(1)
                    with m.Else():
                        m.d.sync += [wr_addr.eq(wr_addr + (chunk << 2)),
                                     dwords_left.eq(dwords_left - chunk),
                                     moved.eq(Mux(final, length, moved + (chunk << 2)))]
                        with m.If(final):
                            m.d.sync += state.eq(S_IDLE)
                            m.d.comb += done_f.set.eq(1)
                        with m.Else():
                            m.d.sync += state.eq(S_NEXT)
        drive_quiet(m, self, tgt, ini, ~busy)     # no timers
        return m
