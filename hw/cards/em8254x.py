"""Intel 82544GC-class gigabit Ethernet card: PCI target + initiator, two
descriptor ring engines, the MAC, interrupts and statistics.

IDs 8086:100c (82544GC copper, if_em_hw.h), class 020000 (Ethernet), BAR0
128 KiB of registers (:mod:`hw.cards.em8254xreg`, the one header), INTA#.
The card runs as a 32-bit PCI agent (STATUS.BUS64 = 0); STATUS.PCI66 is
``bus_mhz == 66``.

Blocks (one job each):

- :class:`hw.cards.regfile.RegisterFile` — the registers; the card keeps
  ICR/IMS (:class:`~hw.cards.em8254x_intr.EmInterrupts`), the ring heads
  (the ring engines), RAL0/RAH0's address (reset from the EEPROM) and the
  statistics (:class:`~hw.cards.em8254x_stats.EmStats`, read-to-clear: a
  read is seen on the target's register port in the clock it is answered);
- :class:`hw.dma.em_rings.EmTxRing` / ``EmRxRing`` sharing the initiator
  through :class:`hw.dma.em_rings.DmaShare`;
- :class:`hw.net.mac.MacTx` / :class:`hw.net.mac.MacRx` and the ``phy``
  port: ``phy.tx`` shows every frame the MAC sends (at wire speed),
  ``phy.rx`` feeds the receive MAC, unless RCTL.LBM = MAC loopback, which
  feeds it from the transmit side instead (SDM §13.4.22);
- EERD: a write with START reads word ``addr`` of a 64-word EEPROM image
  (:func:`hw.cards.em8254xreg.eeprom_image` of the ``mac`` parameter) in one
  clock (a real EEPROM read takes microseconds; the model's choice).

CTRL.SLU sets link up (STATUS.LU; LSC on every change; there is no PHY).
CTRL.RST resets every block and register once the initiator is between
transactions (SDM §13.4.1: the reset is self-clearing).

Parameters (JSON-able, :class:`hw.machine.CardSpec` ``params``): ``mac``
(12 hex digits, the EEPROM's station address), ``bus_mhz`` (33 or 66: the
timers and the wire pacer count in these bus cycles; the machine's clock is
not passed to cards), FIFO sizes in dwords.
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const, ResetInserter
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..dma.em_rings import DmaShare, EmRxRing, EmTxRing
from ..net.mac import MacRx, MacTx, RxState
from ..pci.initiator import InitiatorState, PciInitiator
from ..pci.target import BarSpec, PciTarget
from .em8254x_intr import CAUSE_BITS, EmInterrupts
from .em8254x_stats import EmStats
from .em8254xreg import (BAR_SIZE, CLASS_CODE, DEVICE_ID, EM_REGS, ICR, LBM_MAC, REVISION,
                         STATISTICS, VENDOR_ID, ICR_LSC, ICR_RXDMT0, ICR_RXO, ICR_TXQE,
                         PhyBeat, eeprom_image, rx_buffer_size)
from .regfile import RegisterFile
from .slot import CardSignature, connect_slot, drive_inta, drive_quiet, report_aborts

__all__ = ["Em8254x", "PhySignature", "EmCardSignature", "DEFAULT_MAC", "PERIOD_PS"]

#: the station address the EEPROM holds unless given (model's choice: an
#: Intel OUI, 00:02:b3, with a made-up device part)
DEFAULT_MAC = "0002b3000001"
#: bus clock periods (PCI 2.3: 33 MHz → 30 ns, 66 MHz → 15 ns)
PERIOD_PS = {33: 30_000, 66: 15_000}

#: the wire side: beats out of the transmit MAC, beats into the receive MAC
PhySignature = wiring.Signature({
    "tx": Out(stream.Signature(PhyBeat, always_ready=True)),
    "rx": In(stream.Signature(PhyBeat, always_ready=True)),
})
EmCardSignature = wiring.Signature({**dict(CardSignature.members), "phy": Out(PhySignature)})

_EXTERNAL = ([f"ICR.{f.name}" for f in ICR.fields] + [f"IMS.{f.name}" for f in ICR.fields]
             + ["TDH.head", "RDH.head", "RAL0.addr", "RAH0.addr"])


class Em8254x(wiring.Component):
    def __init__(self, mac: str = DEFAULT_MAC, bus_mhz: int = 66, tx_fifo_words: int = 512,
                 rx_fifo_words: int = 1024):
        mac_b = bytes.fromhex(mac) if isinstance(mac, str) else bytes(mac)
        if len(mac_b) != 6:
            raise ValueError(f"mac {mac!r} is not 6 bytes")
        if bus_mhz not in PERIOD_PS:
            raise ValueError(f"bus_mhz must be 33 or 66, not {bus_mhz!r}")
        super().__init__(EmCardSignature)
        self.mac = mac_b
        self.bus_mhz = bus_mhz
        period = PERIOD_PS[bus_mhz]
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=REVISION, int_pin=1,
                                bars=[BarSpec(BAR_SIZE)])
        self.initiator = PciInitiator(depth=32)
        self.regs = RegisterFile(EM_REGS, external=_EXTERNAL)
        self.share = DmaShare()
        self.txring = EmTxRing()
        self.rxring = EmRxRing()
        self.mactx = MacTx(period, tx_fifo_words)
        self.macrx = MacRx(rx_fifo_words)
        self.intr = EmInterrupts(period)
        self.stats = EmStats()
        self.reset_pending = Signal()

    def vcd_traces(self) -> dict:
        return {"rings": [self.txring.state, self.txring.head, self.rxring.state,
                          self.rxring.head],
                "mac": [self.mactx.state, self.mactx.phy.valid, self.macrx.state],
                "interrupts": [self.intr.icr, self.intr.ims, self.intr.irq]}

    def elaborate(self, platform):
        m = Module()
        srst = Signal()
        tgt, ini, rf = self.target, self.initiator, self.regs
        m.submodules.target = tgt
        for name in ("initiator", "regs", "share", "txring", "rxring", "mactx", "macrx",
                     "intr", "stats"):
            m.submodules[name] = ResetInserter(srst)(getattr(self, name))
        connect_slot(m, self, tgt, ini)
        wiring.connect(m, tgt.port, rf.port)
        report_aborts(m, ini, tgt)
        self._dma(m)
        self._rings_and_mac(m)
        read = self._reads(m)
        self._interrupts(m, read)
        self._stats(m, read)
        self._misc(m, srst)
        drive_inta(m, self, tgt, self.intr.irq)
        drive_quiet(m, self, tgt, ini, ~self.reset_pending, ~self.txring.busy,
                    ~self.rxring.busy, ~self.mactx.busy, self.macrx.state == RxState.IDLE,
                    ~self.macrx.phy.valid, self.intr, quiet_for=self.intr.quiet_for)
        m.d.comb += self.intr.skip.eq(self.skip)
        return m

    def _dma(self, m):
        sh, ini = self.share, self.initiator
        wiring.connect(m, self.txring.dma, sh.c0)
        wiring.connect(m, self.rxring.dma, sh.c1)
        wiring.connect(m, sh.ini_cmd, ini.cmd)
        wiring.connect(m, sh.ini_wdata, ini.wdata)
        wiring.connect(m, ini.rdata, sh.ini_rdata)
        m.d.comb += [sh.ini_done.eq(ini.done), sh.ini_status.eq(ini.done_status)]

    def _rings_and_mac(self, m):
        rf, tx, rx, mt, mr = self.regs, self.txring, self.rxring, self.mactx, self.macrx
        rctl = rf.RCTL
        bsize = Signal(15)
        with m.Switch(Cat(rctl.bsize.data, rctl.bsex.data)):
            for b in range(4):
                for x in range(2):
                    if x and not b:
                        continue
                    with m.Case(b | x << 2):
                        m.d.comb += bsize.eq(rx_buffer_size(b, x))
            with m.Default():
                m.d.comb += bsize.eq(2048)
        m.d.comb += [
            tx.enable.eq(rf.TCTL.en.data), tx.base.eq(Cat(Const(0, 4), rf.TDBAL.addr.data)),
            tx.len_bytes.eq(Cat(Const(0, 7), rf.TDLEN.len.data)), tx.tail.eq(rf.TDT.tail.data),
            rf.TDH.head.data.eq(tx.head), tx.head_we.eq(rf.TDH.head.w_stb),
            tx.head_wdata.eq(rf.TDH.head.w_data),
            rx.enable.eq(rctl.en.data), rx.base.eq(Cat(Const(0, 4), rf.RDBAL.addr.data)),
            rx.len_bytes.eq(Cat(Const(0, 7), rf.RDLEN.len.data)), rx.tail.eq(rf.RDT.tail.data),
            rf.RDH.head.data.eq(rx.head), rx.head_we.eq(rf.RDH.head.w_stb),
            rx.head_wdata.eq(rf.RDH.head.w_data),
            rx.buf_size.eq(bsize), rx.rdmts.eq(rctl.rdmts.data),
            mt.psp.eq(rf.TCTL.psp.data),
            mr.enable.eq(rctl.en.data), mr.upe.eq(rctl.upe.data), mr.mpe.eq(rctl.mpe.data),
            mr.bam.eq(rctl.bam.data),
        ]
        wiring.connect(m, tx.words, mt.words)
        wiring.connect(m, mr.words, rx.words)
        wiring.connect(m, mr.info, rx.info)
        m.d.comb += [self.phy.tx.valid.eq(mt.phy.valid), self.phy.tx.payload.eq(mt.phy.payload)]
        loop = rctl.lbm.data == LBM_MAC
        m.d.comb += [mr.phy.valid.eq(Mux(loop, mt.phy.valid, self.phy.rx.valid)),
                     mr.phy.payload.eq(Mux(loop, mt.phy.payload.as_value(),
                                           self.phy.rx.payload.as_value()))]

    def _reads(self, m):
        """register name → 'a read of it is answered this clock'."""
        port = self.target.port
        out = {}
        for reg in (ICR, *STATISTICS):
            hit = Signal(name=f"rd_{reg.name}")
            m.d.comb += hit.eq(port.cmd_valid & port.cmd_ready & ~port.cmd.write
                               & (port.cmd.bar == reg.bar) & (port.cmd.addr == reg.offset))
            out[reg.name] = hit
        return out

    def _interrupts(self, m, read):
        rf, it = self.regs, self.intr
        W = CAUSE_BITS
        for f in ICR.fields:
            m.d.comb += [getattr(rf.ICR, f.name).data.eq(it.icr[f.lsb:f.lsb + f.width]),
                         getattr(rf.IMS, f.name).data.eq(it.ims[f.lsb:f.lsb + f.width])]
        lu, lu_prev = rf.CTRL.slu.data, Signal()
        m.d.sync += lu_prev.eq(lu)
        m.d.comb += [
            it.icr_read.eq(read["ICR"]),
            it.icr_we.eq(rf.ICR.w_stb), it.icr_data.eq(rf.ICR.w_data[:W]),
            it.ics_we.eq(rf.ICS.w_stb), it.ics_data.eq(rf.ICS.w_data[:W]),
            it.ims_we.eq(rf.IMS.w_stb), it.ims_data.eq(rf.IMS.w_data[:W]),
            it.imc_we.eq(rf.IMC.w_stb), it.imc_data.eq(rf.IMC.w_data[:W]),
            it.itr.eq(rf.ITR.interval.data), it.tidv.eq(rf.TIDV.delay.data),
            it.tadv.eq(rf.TADV.delay.data), it.rdtr.eq(rf.RDTR.delay.data),
            it.radv.eq(rf.RADV.delay.data), it.fpd.eq(rf.RDTR.fpd.w_stb & rf.RDTR.fpd.w_data),
            it.tx_wb.eq(self.txring.written_back), it.tx_ide.eq(self.txring.wb_ide),
            it.rx_frame.eq(self.rxring.frame_done),
            it.set.eq(Mux(self.txring.queue_empty, ICR_TXQE, 0)
                      | Mux(lu != lu_prev, ICR_LSC, 0)
                      | Mux(self.rxring.min_threshold, ICR_RXDMT0, 0)
                      | Mux(self.macrx.missed, ICR_RXO, 0)),
            rf.STATUS.lu.data.eq(lu), rf.STATUS.pci66.data.eq(int(self.bus_mhz == 66)),
        ]

    def _stats(self, m, read):
        st, mt, mr, rf = self.stats, self.mactx, self.macrx, self.regs
        m.d.comb += [
            st.inc_crcerrs.eq(mr.crc_error), st.inc_mpc.eq(mr.missed), st.inc_gprc.eq(mr.good),
            st.inc_gorc.eq(Mux(mr.good, mr.good_bytes, 0)), st.inc_roc.eq(mr.oversize),
            st.inc_tpr.eq(mr.frame_seen), st.inc_rnbc.eq(self.rxring.no_desc),
            st.inc_gptc.eq(mt.sent), st.inc_tpt.eq(mt.sent),
            st.inc_gotc.eq(Mux(mt.sent, mt.sent_bytes, 0)),
        ]
        for reg in STATISTICS:
            m.d.comb += [getattr(st, f"rd_{reg.name}").eq(read[reg.name]),
                         getattr(rf, reg.name).count.data.eq(getattr(st, reg.name))]

    def _misc(self, m, srst):
        """EERD, the station address, CTRL.RST."""
        rf = self.regs
        rom = eeprom_image(self.mac)
        done, word = Signal(), Signal(16)
        m.d.comb += [rf.EERD.done.data.eq(done), rf.EERD.data.data.eq(word)]
        with m.If(rf.EERD.start.w_stb):
            m.d.sync += done.eq(1)
            with m.Switch(rf.EERD.w_data[8:16]):
                for a, v in enumerate(rom):
                    with m.Case(a):
                        m.d.sync += word.eq(v)
                with m.Default():
                    m.d.sync += word.eq(0xFFFF)          # no word there: erased cells
        ral0 = int.from_bytes(self.mac[0:4], "little")
        rah0 = int.from_bytes(self.mac[4:6], "little")
        ral, rah = Signal(32, init=ral0), Signal(16, init=rah0)
        m.d.comb += [rf.RAL0.addr.data.eq(ral), rf.RAH0.addr.data.eq(rah),
                     self.macrx.station.eq(Cat(ral, rah)),
                     self.macrx.station_valid.eq(rf.RAH0.av.data)]
        with m.If(rf.RAL0.addr.w_stb):
            m.d.sync += ral.eq(rf.RAL0.addr.w_data)
        with m.If(rf.RAH0.addr.w_stb):
            m.d.sync += rah.eq(rf.RAH0.addr.w_data)
        m.d.comb += rf.CTRL.rst.busy.eq(self.reset_pending)
        with m.If(rf.CTRL.rst.w_stb):
            m.d.sync += self.reset_pending.eq(1)
        with m.If(self.reset_pending & (self.initiator.state == InitiatorState.IDLE)):
            m.d.comb += srst.eq(1)
            m.d.sync += [self.reset_pending.eq(0), done.eq(0), word.eq(0),
                         ral.eq(ral0), rah.eq(rah0)]
