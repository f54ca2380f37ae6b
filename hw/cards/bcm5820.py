"""BCM5820-like crypto card: PCI target + initiator + command-record engine.

IDs 14e4:5820 (OpenBSD pcidevs), class 0x0b4000 (processor, co-processor; PCI
Code and ID Assignment spec), one 4 KiB non-prefetchable memory BAR (size: a
model choice, the registers decode in the low 32 bytes), INTA#.

Registers (byte offsets, OpenBSD sys/dev/pci/ubsecreg.h):

====  =====  ================================================================
0x00  MCR1   write: queue the bus address of a command record (dropped while
             STAT.MCR1_FULL); reads 0
0x04  CTRL   RESET 80000000 (self-clearing; reads 1 until done), MCR2INT
             40000000, MCR1INT 20000000, OFM 10000000, BE32 08000000, BE64
             04000000, DMAERR 02000000 (interrupt enables). BE32/BE64/OFM are
             stored only: the card is always little-endian.
0x08  STAT   MCR1_BUSY 80000000, MCR1_FULL 40000000, MCR1_DONE 20000000 (W1C),
             DMAERR 10000000 (W1C), MCR2_FULL 08000000, MCR2_DONE 04000000
             (W1C). MCR2_FULL is always set: this card has no key engine.
0x0c  ERR    failing bus address (fffffffc) of the last DMA error, READ 2
0x10  MCR2   key/RNG records: not implemented (writes ignored, reads 0)
0x14  IMOD   extension, 0 = off (default): interrupt moderation. Bits 7:0 N,
             bits 31:8 T. With N ≥ 1, MCR1_DONE is raised once N records have
             completed since it was last raised, or T bus clocks (T ≥ 1) after
             the first of them completed, whichever comes first; with T = 0,
             when the record engine goes idle (queue empty), so completed
             records never wait for ones that are not coming.
====  =====  ================================================================

INTA# = (MCR1_DONE & MCR1INT) | (DMAERR & DMAERR-enable), unless the PCI
command register disables interrupts. A DMA error (master or target abort,
a DMA refused because Bus Master Enable is clear — PCI 2.3 §6.2.2 — or a
particle chain the engine refuses to walk, record code ``ERR_CHAIN``, see
:mod:`hw.dma.mcr`) sets DMAERR and ERR and halts the record engine until
CTRL RESET; the record it was on is not DONE. RESET waits
until the bus master is between transactions, then clears the record engine
(queue, transform engine, FIFOs), CTRL, IMOD and the STAT event bits; ERR
keeps the last failing address.

Record, context and particle formats: :mod:`hw.dma.mcr`.
"""

from amaranth.hdl import Module, Signal, Const, ResetInserter
from amaranth.lib import wiring

from ..crypto.params import card_engine_params
from ..dma.mcr import McrEngine
from .slot import CardSignature, connect_slot
from .ubsecreg import (VENDOR_ID, DEVICE_ID, CLASS_CODE, REVISION, BAR_SIZE, MAX_PARTICLES,
                       MCR1, CTRL, STAT, ERR, IMOD, UBSEC_REGS)
from ..pci.initiator import PciInitiator, Status
from ..pci.target import PciTarget, BarSpec, merge_bytes, CMD_INT_DISABLE, \
    STATUS_RX_MASTER_ABORT, STATUS_RX_TARGET_ABORT

# MAX_PARTICLES: drivers/ubsec.py imports it from here (the header is hw.cards.ubsecreg)
__all__ = ["Bcm5820", "MAX_PARTICLES"]


class Bcm5820(wiring.Component):
    """The card. ``chunk``: dwords per data burst (model choice: 32 phases make
    a burst ~90-97% efficient, docs/sources.md); the initiator FIFOs hold two
    bursts so packing and bus transfers overlap; ``mcr1_depth``: records the
    MCR1 queue accepts while one is being processed (estimate: a small queue,
    as the driver's MCR1_FULL check implies)."""

    def __init__(self, chunk: int = 32, mcr1_depth: int = 2):
        super().__init__(CardSignature)
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=REVISION, int_pin=1,
                                bars=[BarSpec(BAR_SIZE)])
        self.initiator = PciInitiator(depth=2 * chunk)
        self.mcr = McrEngine(card_engine_params("bcm5820"), chunk=chunk,
                             data_depth=2 * chunk, mcr1_depth=mcr1_depth)
        self.ctrl = Signal(CTRL.layout)
        self.stat_done = Signal()
        self.stat_dmaerr = Signal()
        self.reset_pending = Signal()

    def vcd_traces(self) -> dict:
        """GTKWave groups: the registers, the record engine's FSMs, the transform engine."""
        eng = self.mcr.engine
        return {
            "registers": [self.ctrl.as_value(), self.stat_done, self.stat_dmaerr,
                          self.reset_pending],
            "record engine": [self.mcr.main_state, self.mcr.in_state, self.mcr.out_state],
            "transform engine": [eng.state, eng.cmd.valid, eng.cmd.ready, eng.i.valid,
                                 eng.i.ready, eng.o.valid, eng.o.ready, eng.result.valid],
        }

    def elaborate(self, platform):
        m = Module()
        srst = Signal()                 # soft reset of the datapath (one clock)
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = ResetInserter(srst)(self.initiator)
        m.submodules.mcr = ResetInserter(srst)(self.mcr)
        ini, mcr = self.initiator, self.mcr
        connect_slot(m, self, tgt, ini)
        wiring.connect(m, mcr.ini_cmd, ini.cmd)
        wiring.connect(m, mcr.ini_wdata, ini.wdata)
        wiring.connect(m, ini.rdata, mcr.ini_rdata)
        m.d.comb += [mcr.ini_done.eq(ini.done), mcr.ini_done_status.eq(ini.done_status),
                     mcr.ini_done_count.eq(ini.done_count), ini.flush.eq(mcr.ini_flush)]

        ctrl = self.ctrl
        stat_done, stat_dmaerr = self.stat_done, self.stat_dmaerr
        err = Signal(ERR.layout)
        imod = Signal(IMOD.layout)
        pend = Signal(8)                # records completed, MCR1_DONE not yet raised
        timer = Signal(24)

        irq = Signal()
        m.d.comb += [
            irq.eq((stat_done & ctrl.mcr1int) | (stat_dmaerr & ctrl.dmaerr)),
            self.inta.eq(irq & ~(tgt.command & CMD_INT_DISABLE).any()),
            tgt.int_status.eq(irq),
        ]

        # ---- registers -------------------------------------------------
        port = tgt.port
        m.d.comb += [port.cmd_ready.eq(1), port.retry.eq(0), port.abort.eq(0)]
        dword = port.cmd.addr[2:]       # dword index in the BAR
        stat = Signal(STAT.layout)
        m.d.comb += [stat.mcr1_busy.eq(mcr.busy), stat.mcr1_full.eq(mcr.mcr1_full),
                     stat.mcr1_done.eq(stat_done), stat.dmaerr.eq(stat_dmaerr),
                     stat.mcr2_full.eq(STAT.mcr2_full.reset)]
        ctrl_rd = Signal(CTRL.layout)
        m.d.comb += [ctrl_rd.eq(ctrl), ctrl_rd.board_reset.eq(self.reset_pending)]
        readable = {CTRL: ctrl_rd, STAT: stat, ERR: err, IMOD: imod}   # others read 0
        rdata = Signal(32)
        with m.Switch(dword):
            for r, v in readable.items():
                with m.Case(r.offset // 4):
                    m.d.comb += rdata.eq(v)
        rsp = Signal()
        rsp_data = Signal(32)
        m.d.sync += [rsp.eq(port.cmd_valid & ~port.cmd.write), rsp_data.eq(rdata)]
        m.d.comb += [port.rsp_valid.eq(rsp), port.rsp_data.eq(rsp_data)]

        with m.If(port.cmd_valid & port.cmd.write):
            be = port.cmd.be
            wd = port.cmd.data
            with m.Switch(dword):
                with m.Case(MCR1.offset // 4):
                    m.d.comb += [mcr.mcr1_push.eq(~mcr.mcr1_full & ~self.reset_pending),
                                 mcr.mcr1_addr.eq(merge_bytes(Const(0, 32), wd, be))]
                with m.Case(CTRL.offset // 4):
                    new = Signal(CTRL.layout)
                    m.d.comb += new.eq(merge_bytes(ctrl.as_value(), wd, be))
                    m.d.sync += ctrl.eq(new.as_value() & CTRL.mask() & ~CTRL.board_reset.mask)
                    with m.If(new.board_reset):
                        m.d.sync += self.reset_pending.eq(1)
                with m.Case(STAT.offset // 4):
                    w1c = Signal(STAT.layout)
                    m.d.comb += w1c.eq(merge_bytes(Const(0, 32), wd, be))
                    with m.If(w1c.mcr1_done):
                        m.d.sync += stat_done.eq(0)
                    with m.If(w1c.dmaerr):
                        m.d.sync += stat_dmaerr.eq(0)
                with m.Case(IMOD.offset // 4):
                    m.d.sync += imod.eq(merge_bytes(imod.as_value(), wd, be))

        # ---- interrupt moderation (extension; IMOD = 0: every record) ----
        raise_done = Signal()
        with m.If(mcr.record_done):
            with m.If((imod.n <= 1) | (pend + 1 >= imod.n)):
                m.d.comb += raise_done.eq(1)
            with m.Else():
                m.d.sync += pend.eq(pend + 1)
        with m.Elif((pend != 0) & (imod.t == 0) & ~mcr.busy):
            # no timer: the last records' interrupt when nothing more is queued
            m.d.comb += raise_done.eq(1)
        with m.Elif((pend != 0) & (imod.t != 0)):
            with m.If(timer + 1 >= imod.t):
                m.d.comb += raise_done.eq(1)
            with m.Else():
                m.d.sync += timer.eq(timer + 1)
        with m.If(raise_done):
            m.d.sync += [stat_done.eq(1), pend.eq(0), timer.eq(0)]

        # ---- DMA errors ----------------------------------------------------
        with m.If(mcr.dma_error):
            m.d.sync += [stat_dmaerr.eq(1), err.read.eq(mcr.err_read),
                         err.addr.eq(mcr.err_addr[2:])]
        with m.If(ini.done & (ini.done_status == Status.MASTER_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_MASTER_ABORT)
        with m.If(ini.done & (ini.done_status == Status.TARGET_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_TARGET_ABORT)

        # ---- soft reset: once the master is off the bus ---------------------
        with m.If(self.reset_pending & (ini.state == 0)):
            m.d.comb += srst.eq(1)
            m.d.sync += [self.reset_pending.eq(0), ctrl.eq(0), imod.eq(0),
                         stat_done.eq(0), stat_dmaerr.eq(0), pend.eq(0), timer.eq(0)]
        return m
