"""The Hifn 7751's register block: BAR0 (processing unit) and BAR1 (DMA unit).

A :class:`~hw.cards.regfile.RegisterFile` built from the descriptions in
:mod:`hw.cards.hifn7751reg` decodes the PCI target's register port and keeps
the registers' storage (PUCTRL.dmaena, PUISR, PUCNFG, PUIER, DMA_CSR status,
DMA_IER, DMA_CNFG). This component adds what is the Hifn's own: the status
bits the card sets, the ring enables (DMA_CSR's 2-bit control codes), the
enable level (the SECRET2 unlock), the card reset, the poll period and the
interrupt. The ring address registers live in the ring engine; writes are
passed to it.

Every read is answered one clock after the request (``rsp_valid``); only
described registers answer (other offsets read 0, writes to them are ignored). A card
reset (PUCTRL.chip_reset written 1, or DMA_CNFG.mstreset / .dmareset 0)
clears PUCTRL.dmaena, PUISR, DMA_CSR and the ring enables; DMA_IER, PUIER,
PUCNFG and DMA_CNFG keep their values (the reset bits are in DMA_CNFG).
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..pci.target import TargetPort
from ..regs import Access
from . import hifn7751reg as H
from .regfile import RegisterFile

__all__ = ["HifnRegisters"]

#: the ring address registers live in the ring engine (hw/dma/hifn_rings.py)
_EXTERNAL = tuple(f"{r.name}.addr" for r in H.RING_ADDR)
#: DMA_CSR's write-1-to-clear status fields (DMA_IER has an enable of the same name)
_CSR_STATUS = tuple(f for f in H.DMA_CSR.fields if f.access is Access.W1C)


class HifnRegisters(wiring.Component):
    """Register block. ``grade`` is the enable level an unlock raises the card
    to; ``sessions`` is reported in PUCNFG.dram."""

    def __init__(self, sessions: int, grade: int):
        self.sessions = sessions
        self.grade = grade
        super().__init__({
            "port": In(TargetPort),
            # set by the card (one-clock pulses; a set wins over a clear)
            "csr_set": In(32),
            "puisr_set": In(16),
            # the ring engine's ring addresses, and writes to them
            "ring_base": In(32).array(4),
            "base_we": Out(4),
            "base_wdata": Out(32),
            # to the card
            "dmaena": Out(1),           # PUCTRL.dmaena
            "ring_en": Out(4),          # rings enabled (DMA_CSR x_ctrl)
            "level": Out(2),            # enable level: 0 locked, 1 DES, 2 3DES/SHA1
            "card_reset": Out(1),
            "poll_period": Out(24),     # clocks between polls of an invalid descriptor
            "irq": Out(1),              # any enabled DMA_CSR status, or the engine's
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regfile = rf = RegisterFile(list(H.BAR0) + list(H.BAR1), size=4096,
                                                 external=_EXTERNAL)
        wiring.connect(m, wiring.flipped(self.port), rf.port)
        ring_en = Signal(4)
        level = Signal(2)
        card_reset = self.card_reset
        cnfg = rf.DMA_CNFG
        m.d.comb += [self.dmaena.eq(rf.PUCTRL.dmaena.data), self.ring_en.eq(ring_en),
                     self.level.eq(level),
                     card_reset.eq(~cnfg.mstreset.data | ~cnfg.dmareset.data |
                                   rf.PUCTRL.chip_reset.w_stb),
                     rf.PUCTRL.dmaena.clr.eq(card_reset)]

        # PUISR: set by the card; DMA_CSR.engine: any enabled PUISR bit
        engine_irq = Signal()
        pending = Const(0, 1)
        for f in H.PUISR.fields:
            fi = rf.field("PUISR", f.name)
            m.d.comb += [fi.set.eq(self.puisr_set[f.lsb]), fi.clr.eq(card_reset)]
            pending = pending | (fi.data & rf.field("PUIER", f.name).data)
        m.d.comb += engine_irq.eq(pending)

        # DMA_CSR: status set by the rings / sequencer, ring control codes
        irq = Const(0, 1)
        for f in _CSR_STATUS:
            fi = rf.field("DMA_CSR", f.name)
            m.d.comb += [fi.set.eq(self.csr_set[f.lsb]), fi.clr.eq(card_reset)]
            irq = irq | (fi.data & rf.field("DMA_IER", f.name).data)
        m.d.comb += [rf.DMA_CSR.engine.data.eq(engine_irq),
                     self.irq.eq(irq | (rf.DMA_IER.engine.data & engine_irq))]
        w_csr = H.DMA_CSR.layout(rf.DMA_CSR.w_data)
        for r in range(4):
            ctrl = H.csr_field(r, "ctrl").name
            m.d.comb += rf.field("DMA_CSR", ctrl).data.eq(
                Mux(ring_en[r], H.RingCtrl.ENA.value, H.RingCtrl.NOP.value))
            with m.If(rf.DMA_CSR.w_stb):
                with m.If(w_csr[ctrl] == H.RingCtrl.ENA.value):
                    m.d.sync += ring_en[r].eq(1)
                with m.Elif(w_csr[ctrl] == H.RingCtrl.DIS.value):
                    m.d.sync += ring_en[r].eq(0)

        # ring addresses: kept by the ring engine
        for r, rar in enumerate(H.RING_ADDR):
            fi = rf.field(rar.name, "addr")
            m.d.comb += fi.data.eq(self.ring_base[r])
            with m.If(fi.w_stb):
                m.d.comb += [self.base_we.eq(1 << r), self.base_wdata.eq(fi.w_data)]

        # read-only values
        chipena = Signal(8)
        with m.Switch(level):
            for k, v in H.ENA_LEVEL.items():
                with m.Case(k):
                    m.d.comb += chipena.eq(v)
        m.d.comb += [rf.PUCNFG.dram.data.eq((self.sessions // 16).bit_length() - 1),
                     rf.PUSTAT.rev.data.eq(H.REVISION), rf.PUSTAT.chipena.data.eq(chipena),
                     rf.REVID.rev.data.eq(H.REVISION)]

        # poll period: max(1, pollfreq) * 256 << pollinval clocks (hifn7751reg.h
        # HIFN_DMACNFG_POLLFREQ / _POLLINVAL; the model's scale)
        freq = cnfg.pollfreq.data
        m.d.comb += self.poll_period.eq(Cat(Const(0, 8), Mux(freq == 0, 1, freq))
                                        << cnfg.pollinval.data)

        # the simplified unlock (SECRET2 with DMA_CNFG.unlock)
        with m.If(rf.SECRET2.key.w_stb & cnfg.unlock.data &
                  (rf.SECRET2.key.w_data == H.UNLOCK_KEY)):
            m.d.sync += level.eq(self.grade)

        with m.If(card_reset):
            m.d.sync += ring_en.eq(0)
        return m
