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
"""

from amaranth.hdl import Module, Signal, Mux, Cat
from amaranth.lib import wiring

from .slot import CardSignature, connect_slot
from ..pci.bus import Cmd
from ..pci.initiator import PciInitiator, Status
from ..pci.target import PciTarget, BarSpec, merge_bytes, \
    STATUS_RX_MASTER_ABORT, STATUS_RX_TARGET_ABORT

__all__ = ["DmaTestCard", "REG", "VENDOR_ID", "DEVICE_ID"]

VENDOR_ID = 0x0CF5
DEVICE_ID = 0xD0A1
CLASS_CODE = 0x080100
ID_MAGIC = 0x0CF5D0A1

REG = dict(SRC=0x00, DST=0x04, LEN=0x08, CTRL=0x0C, STATUS=0x10, INTEN=0x14,
           BURST=0x18, ID=0x1C, MOVED=0x20)
ST_BUSY, ST_DONE, ST_ERROR = 1, 2, 4

S_IDLE, S_NEXT, S_RD_ISSUE, S_RD_WAIT, S_WR_ISSUE, S_WR_WAIT = range(6)


class DmaTestCard(wiring.Component):
    def __init__(self, depth: int = 256):
        self.depth = depth
        super().__init__(CardSignature)
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=1, int_pin=1,
                                bars=[BarSpec(4096)])
        self.initiator = PciInitiator(depth=depth)
        self.state = Signal(3)

    def vcd_traces(self) -> dict:
        return {"copy engine": [self.state]}

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = self.initiator
        connect_slot(m, self, tgt, ini)
        # read data flows straight back out as write data
        wiring.connect(m, ini.rdata, ini.wdata)

        src, dst, length = Signal(32), Signal(32), Signal(32)
        inten = Signal()
        burst_reg = Signal(16, init=self.depth)
        done, error, err_code = Signal(), Signal(), Signal(2)
        moved = Signal(32)
        state = self.state
        busy = state != S_IDLE

        m.d.comb += [self.inta.eq((done | error) & inten & ~tgt.command[10]),
                     tgt.int_status.eq(done | error)]

        # ---- registers -------------------------------------------------
        port = tgt.port
        m.d.comb += [port.cmd_ready.eq(1), port.retry.eq(0), port.abort.eq(0)]
        start = Signal()
        reg = port.cmd.addr[2:8]
        rdata = Signal(32)
        with m.Switch(reg):
            with m.Case(REG["SRC"] >> 2):    m.d.comb += rdata.eq(src)
            with m.Case(REG["DST"] >> 2):    m.d.comb += rdata.eq(dst)
            with m.Case(REG["LEN"] >> 2):    m.d.comb += rdata.eq(length)
            with m.Case(REG["STATUS"] >> 2):
                m.d.comb += rdata.eq(Cat(busy, done, error, Signal(1), err_code))
            with m.Case(REG["INTEN"] >> 2):  m.d.comb += rdata.eq(inten)
            with m.Case(REG["BURST"] >> 2):  m.d.comb += rdata.eq(burst_reg)
            with m.Case(REG["ID"] >> 2):     m.d.comb += rdata.eq(ID_MAGIC)
            with m.Case(REG["MOVED"] >> 2):  m.d.comb += rdata.eq(moved)
        rsp = Signal()
        rsp_data = Signal(32)
        m.d.sync += [rsp.eq(port.cmd_valid & ~port.cmd.write), rsp_data.eq(rdata)]
        m.d.comb += [port.rsp_valid.eq(rsp), port.rsp_data.eq(rsp_data)]
        with m.If(port.cmd_valid & port.cmd.write):
            be = port.cmd.be
            wd = port.cmd.data & Cat(*(be[k].replicate(8) for k in range(4)))
            with m.Switch(reg):
                with m.Case(REG["SRC"] >> 2):
                    with m.If(~busy): m.d.sync += src.eq(merge_bytes(src, wd, be))
                with m.Case(REG["DST"] >> 2):
                    with m.If(~busy): m.d.sync += dst.eq(merge_bytes(dst, wd, be))
                with m.Case(REG["LEN"] >> 2):
                    with m.If(~busy): m.d.sync += length.eq(merge_bytes(length, wd, be))
                with m.Case(REG["CTRL"] >> 2):
                    m.d.comb += start.eq(wd[0] & ~busy)
                with m.Case(REG["STATUS"] >> 2):
                    m.d.sync += [done.eq(done & ~wd[1]), error.eq(error & ~wd[2])]
                with m.Case(REG["INTEN"] >> 2):
                    with m.If(be[0]): m.d.sync += inten.eq(wd[0])
                with m.Case(REG["BURST"] >> 2):
                    nb = merge_bytes(burst_reg, wd[0:16], be[0:2])
                    m.d.sync += burst_reg.eq(Mux((nb == 0) | (nb > self.depth),
                                                 self.depth, nb))

        # ---- copy engine -----------------------------------------------
        rd_addr, wr_addr = Signal(32), Signal(32)
        dwords_left = Signal(32)
        chunk = Signal(16)
        last_be = Signal(4)
        final = Signal()
        m.d.comb += final.eq(dwords_left == chunk)
        ini_cmd = ini.cmd.payload

        def fail(code):
            m.d.sync += [state.eq(S_IDLE), error.eq(1), err_code.eq(code)]

        with m.Switch(state):
            with m.Case(S_IDLE):
                with m.If(start):
                    m.d.sync += [done.eq(0), error.eq(0), moved.eq(0),
                                 rd_addr.eq(src), wr_addr.eq(dst),
                                 dwords_left.eq((length + 3) >> 2),
                                 last_be.eq(Mux(length[0:2] == 0, 0xF,
                                                (1 << length[0:2]) - 1))]
                    with m.If((src[0:2] != 0) | (dst[0:2] != 0)):
                        fail(Status.GIVE_UP)
                    with m.Elif(length == 0):
                        m.d.sync += done.eq(1)
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
                            m.d.sync += [state.eq(S_IDLE), done.eq(1)]
                        with m.Else():
                            m.d.sync += state.eq(S_NEXT)

        with m.If(ini.done & (ini.done_status == Status.MASTER_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_MASTER_ABORT)
        with m.If(ini.done & (ini.done_status == Status.TARGET_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_TARGET_ABORT)
        return m
