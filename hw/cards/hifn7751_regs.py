"""The Hifn 7751's register block: BAR0 (processing unit) and BAR1 (DMA unit).

Decodes the PCI target's register port against the descriptions in
:mod:`hw.cards.hifn7751reg` and keeps the registers' state: PUCTRL.dmaena,
PUISR (set by the card, write 1 to clear), PUCNFG, PUIER, DMA_CSR status
(set by the card, write 1 to clear) and ring enables (the 2-bit control
codes), DMA_IER, DMA_CNFG, the enable level (SECRET2 unlock). The ring
address registers live in the ring engine; writes are passed to it.

Every read is answered one clock after the request (``rsp_valid``). A card
reset (PUCTRL.chip_reset written 1, or DMA_CNFG.mstreset / .dmareset 0)
clears PUCTRL.dmaena, PUISR, DMA_CSR and the ring enables; DMA_IER, PUIER,
PUCNFG and DMA_CNFG keep their values (the reset bits are in DMA_CNFG).
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..pci.target import TargetPort, merge_bytes
from . import hifn7751reg as H

__all__ = ["HifnRegisters"]


def _index(reg):
    """The register's index in the decode: BAR bit, then dword offset in the 4 KiB BAR."""
    return (reg.bar << 6) | (reg.offset >> 2)


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
        puisr = Signal(16)
        puier = Signal(16)
        pucnfg = Signal(16)
        csr = Signal(32)                 # DMA_CSR status bits (not ctrl, not engine)
        ier = Signal(32)
        cnfg = Signal(H.DMA_CNFG.layout)
        dmaena = Signal()
        ring_en = Signal(4)
        level = Signal(2)
        pu_reset = Signal()
        csr_clr = Signal(32)
        puisr_clr = Signal(16)
        m.d.sync += [csr.eq((csr & ~csr_clr) | self.csr_set),
                     puisr.eq((puisr & ~puisr_clr) | self.puisr_set)]
        m.d.comb += [self.dmaena.eq(dmaena), self.ring_en.eq(ring_en), self.level.eq(level),
                     self.card_reset.eq(~cnfg.mstreset | ~cnfg.dmareset | pu_reset)]

        # DMA_CSR.engine: any enabled PUISR bit; the interrupt
        engine_irq = Signal()
        m.d.comb += engine_irq.eq((puisr & puier) != 0)
        csr_read = Signal(H.DMA_CSR.layout)
        m.d.comb += csr_read.eq(csr)
        for r in range(4):
            with m.If(ring_en[r]):
                m.d.comb += csr_read[H.csr_field(r, "ctrl").name].eq(H.RingCtrl.ENA.value)
        m.d.comb += csr_read.engine.eq(engine_irq)
        ier_v = H.DMA_IER.layout(ier)
        m.d.comb += self.irq.eq(((csr & ier & H.DMACSR_STATUS) != 0) |
                                (ier_v.engine & engine_irq))
        # poll period: max(1, pollfreq) * 256 << pollinval clocks (hifn7751reg.h
        # HIFN_DMACNFG_POLLFREQ / _POLLINVAL; the model's scale)
        freq = cnfg.pollfreq
        m.d.comb += self.poll_period.eq(Cat(Const(0, 8), Mux(freq == 0, 1, freq))
                                        << cnfg.pollinval)

        port = self.port
        m.d.comb += [port.cmd_ready.eq(1), port.retry.eq(0), port.abort.eq(0)]
        reg = Signal(7)
        m.d.comb += reg.eq(Cat(port.cmd.addr[2:8], port.cmd.bar[0]))

        # ---- reads -------------------------------------------------------
        rdata = Signal(32)
        chipena = Signal(8)
        with m.Switch(level):
            for k, v in H.ENA_LEVEL.items():
                with m.Case(k):
                    m.d.comb += chipena.eq(v)
        puctrl_r = Signal(H.PUCTRL.layout)
        pucnfg_r = Signal(H.PUCNFG.layout)
        pustat_r = Signal(H.PUSTAT.layout)
        m.d.comb += [puctrl_r.dmaena.eq(dmaena),
                     pucnfg_r.cfg.eq(pucnfg), pucnfg_r.dram.eq((self.sessions // 16).bit_length() - 1),
                     pustat_r.rev.eq(H.REVISION), pustat_r.chipena.eq(chipena)]
        with m.Switch(reg):
            with m.Case(_index(H.PUCTRL)):   m.d.comb += rdata.eq(puctrl_r)
            with m.Case(_index(H.PUISR)):    m.d.comb += rdata.eq(puisr)
            with m.Case(_index(H.PUCNFG)):   m.d.comb += rdata.eq(pucnfg_r)
            with m.Case(_index(H.PUIER)):    m.d.comb += rdata.eq(puier)
            with m.Case(_index(H.PUSTAT)):   m.d.comb += rdata.eq(pustat_r)
            for r, rar in enumerate(H.RING_ADDR):
                with m.Case(_index(rar)):    m.d.comb += rdata.eq(self.ring_base[r])
            with m.Case(_index(H.DMA_CSR)):  m.d.comb += rdata.eq(csr_read)
            with m.Case(_index(H.DMA_IER)):  m.d.comb += rdata.eq(ier)
            with m.Case(_index(H.DMA_CNFG)): m.d.comb += rdata.eq(cnfg)
            with m.Case(_index(H.REVID)):    m.d.comb += rdata.eq(H.REVISION)
        rsp = Signal()
        rsp_data = Signal(32)
        m.d.sync += [rsp.eq(port.cmd_valid & ~port.cmd.write), rsp_data.eq(rdata)]
        m.d.comb += [port.rsp_valid.eq(rsp), port.rsp_data.eq(rsp_data)]

        # ---- writes ------------------------------------------------------
        with m.If(port.cmd_valid & port.cmd.write):
            be = port.cmd.be
            wd = Signal(32)
            m.d.comb += wd.eq(port.cmd.data & Cat(*(be[k].replicate(8) for k in range(4))))
            w_puctrl = H.PUCTRL.layout(wd)
            w_csr = H.DMA_CSR.layout(wd)
            with m.Switch(reg):
                with m.Case(_index(H.PUCTRL)):
                    m.d.comb += pu_reset.eq(w_puctrl.chip_reset)
                    with m.If(be[0]):
                        m.d.sync += dmaena.eq(w_puctrl.dmaena)
                with m.Case(_index(H.PUISR)):
                    m.d.comb += puisr_clr.eq(wd[0:16])
                with m.Case(_index(H.PUCNFG)):
                    m.d.sync += pucnfg.eq(merge_bytes(pucnfg, wd[0:16], be[0:2]))
                with m.Case(_index(H.PUIER)):
                    m.d.sync += puier.eq(merge_bytes(puier, wd[0:16], be[0:2]))
                for r, rar in enumerate(H.RING_ADDR):
                    with m.Case(_index(rar)):
                        m.d.comb += [self.base_we.eq(1 << r),
                                     self.base_wdata.eq(merge_bytes(self.ring_base[r], wd, be))]
                with m.Case(_index(H.DMA_CSR)):
                    m.d.comb += csr_clr.eq(wd & H.DMACSR_STATUS)
                    for r in range(4):
                        ctl = w_csr[H.csr_field(r, "ctrl").name]
                        with m.If(ctl == H.RingCtrl.ENA.value):
                            m.d.sync += ring_en[r].eq(1)
                        with m.Elif(ctl == H.RingCtrl.DIS.value):
                            m.d.sync += ring_en[r].eq(0)
                with m.Case(_index(H.DMA_IER)):
                    m.d.sync += ier.eq(merge_bytes(ier, wd, be))
                with m.Case(_index(H.DMA_CNFG)):
                    m.d.sync += cnfg.eq(merge_bytes(cnfg.as_value(), wd, be))
                with m.Case(_index(H.SECRET2)):
                    with m.If(cnfg.unlock & (wd == H.UNLOCK_KEY)):
                        m.d.sync += level.eq(self.grade)

        with m.If(self.card_reset):
            m.d.sync += [csr.eq(0), ring_en.eq(0), puisr.eq(0), dmaena.eq(0)]
        return m
