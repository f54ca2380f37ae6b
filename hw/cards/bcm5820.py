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

Registers, record, context and particle formats: :mod:`hw.cards.ubsecreg`;
the register logic is a :class:`hw.cards.regfile.RegisterFile` built from
it. The record engine: :mod:`hw.dma.mcr`.
"""

from amaranth.hdl import Module, Mux, Signal, ResetInserter
from amaranth.lib import wiring

from ..crypto.params import card_engine_params
from ..dma.mcr import McrEngine
from .regfile import RegisterFile
from .slot import card_signature, connect_slot, drive_inta, drive_quiet, report_aborts
from .ubsecreg import (VENDOR_ID, DEVICE_ID, CLASS_CODE, REVISION, BAR_SIZE, MAX_PARTICLES,
                       CTRL, ERR, IMOD, STAT, UBSEC_REGS)
from ..regs import Access
from ..pci.initiator import InitiatorState, PciInitiator
from ..pci.target import PciTarget, BarSpec

# MAX_PARTICLES: drivers/ubsec.py imports it from here (the header is hw.cards.ubsecreg)
__all__ = ["Bcm5820", "MAX_PARTICLES"]


class Bcm5820(wiring.Component):
    """The card. ``chunk``: dwords per data burst (model choice: 32 phases make
    a burst ~90-97% efficient, docs/sources.md); the initiator FIFOs hold two
    bursts so packing and bus transfers overlap; ``mcr1_depth``: records the
    MCR1 queue accepts while one is being processed (estimate: a small queue,
    as the driver's MCR1_FULL check implies)."""

    #: a 64-bit PCI part: the OCF paper (§5.4) and the socket-crypto paper
    #: (§IV-C) run it on the testbed's 64-bit/66 MHz bus
    PCI_WIDTH = 64

    def __init__(self, chunk: int = 32, mcr1_depth: int = 2, bus_width: int = 32):
        super().__init__(card_signature(bus_width))
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=REVISION, int_pin=1,
                                bars=[BarSpec(BAR_SIZE)])
        self.initiator = PciInitiator(depth=2 * chunk, width=bus_width)
        self.mcr = McrEngine(card_engine_params("bcm5820"), chunk=chunk,
                             data_depth=2 * chunk, mcr1_depth=mcr1_depth)
        self.regs = RegisterFile(UBSEC_REGS)
        self.reset_pending = Signal()

    def vcd_traces(self) -> dict:
        """GTKWave groups: the registers, the record engine's FSMs, the transform engine."""
        eng, rf = self.mcr.engine, self.regs
        return {
            "registers": [rf.CTRL.mcr1int.data, rf.CTRL.dmaerr.data, rf.STAT.mcr1_done.data,
                          rf.STAT.dmaerr.data, self.reset_pending],
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
        m.submodules.regs = rf = self.regs
        ini, mcr = self.initiator, self.mcr
        connect_slot(m, self, tgt, ini)
        wiring.connect(m, tgt.port, rf.port)
        report_aborts(m, ini, tgt)
        wiring.connect(m, mcr.ini_cmd, ini.cmd)
        wiring.connect(m, mcr.ini_wdata, ini.wdata)
        wiring.connect(m, ini.rdata, mcr.ini_rdata)
        m.d.comb += [mcr.ini_done.eq(ini.done), mcr.ini_done_status.eq(ini.done_status),
                     mcr.ini_done_count.eq(ini.done_count), ini.flush.eq(mcr.ini_flush)]

        ctrl, stat, imod = rf.CTRL, rf.STAT, rf.IMOD
        err = Signal(ERR.layout)        # kept across the soft reset
        pend = Signal(8)                # records completed, MCR1_DONE not yet raised
        timer = Signal(24)
        drive_inta(m, self, tgt, (stat.mcr1_done.data & ctrl.mcr1int.data)
                   | (stat.dmaerr.data & ctrl.dmaerr.data))

        # ---- registers the card drives or acts on ---------------------
        m.d.comb += [
            stat.mcr1_busy.data.eq(mcr.busy), stat.mcr1_full.data.eq(mcr.mcr1_full),
            ctrl.board_reset.busy.eq(self.reset_pending),
            rf.ERR.read.data.eq(err.read), rf.ERR.addr.data.eq(err.addr),
            mcr.mcr1_push.eq(rf.MCR1.addr.w_stb & ~mcr.mcr1_full & ~self.reset_pending),
            mcr.mcr1_addr.eq(rf.MCR1.addr.w_data),
        ]
        with m.If(ctrl.board_reset.w_stb):
            m.d.sync += self.reset_pending.eq(1)

        # ---- interrupt moderation (extension; IMOD = 0: every record) ----
        raise_done = Signal()
        imod_n, imod_t = imod.n.data, imod.t.data
        with m.If(mcr.record_done):
            with m.If((imod_n <= 1) | (pend + 1 >= imod_n)):
                m.d.comb += raise_done.eq(1)
            with m.Else():
                m.d.sync += pend.eq(pend + 1)
        with m.Elif((pend != 0) & (imod_t == 0) & ~mcr.busy):
            # no timer: the last records' interrupt when nothing more is queued
            m.d.comb += raise_done.eq(1)
        with m.Elif((pend != 0) & (imod_t != 0)):
            with m.If(timer + 1 >= imod_t):
                m.d.comb += raise_done.eq(1)
            with m.Else():
                m.d.sync += timer.eq(timer + 1 + self.skip)
        m.d.comb += stat.mcr1_done.set.eq(raise_done)
        with m.If(raise_done):
            m.d.sync += [pend.eq(0), timer.eq(0)]

        # ---- at rest: no record, no request; the moderation timer may run
        # (``imod_t - 1 - timer`` more edges before it raises MCR1_DONE)
        timing = (pend != 0) & (imod_t != 0)
        drive_quiet(m, self, tgt, ini, mcr, ~self.reset_pending,
                    (pend == 0) | (timing & (timer + 1 < imod_t)),
                    quiet_for=Mux(timing, imod_t - 1 - timer, 2**32 - 1))

        # ---- DMA errors ----------------------------------------------------
        m.d.comb += stat.dmaerr.set.eq(mcr.dma_error)
        with m.If(mcr.dma_error):
            m.d.sync += [err.read.eq(mcr.err_read), err.addr.eq(mcr.err_addr[ERR.addr.lsb:])]

        # ---- soft reset: once the master is off the bus ---------------------
        with m.If(self.reset_pending & (ini.state == InitiatorState.IDLE)):
            m.d.comb += srst.eq(1)
            m.d.sync += [self.reset_pending.eq(0), pend.eq(0), timer.eq(0)]
            # CTRL, IMOD and the STAT event bits back to reset; ERR is kept
            for reg in (CTRL, IMOD, STAT):
                for f in reg.fields:
                    port = getattr(rf.reg(reg.name), f.name)
                    if f.access is Access.RW:
                        m.d.comb += port.clr.eq(1)
                    elif f.access is Access.W1C:
                        m.d.comb += port.clr.eq(f.mask >> f.lsb)
        return m
