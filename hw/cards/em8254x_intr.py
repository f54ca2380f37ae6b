"""The 8254x's interrupt causes, mask, moderation timers and throttle.

ICR (SDM §13.4.17) collects causes: the card's events, ICS writes, and
TXDW / RXT0 through the delay timers; a read of ICR returns and clears
every cause, a write of 1 clears that cause. IMS / IMC set and clear the
mask; INTA# is asserted while ``ICR & IMS`` is not empty.

Moderation (SDM §3.2.7, §3.4.1; each timer a :class:`hw.net.timer.DelayTimer`):

- transmit: a descriptor written back with RS and IDE (re)starts TIDV and,
  if not running, starts TADV (82540+); when either fires, TXDW. Without
  IDE, or with TIDV = 0, TXDW at once. Either way both timers stop.
- receive: a frame written to host memory (re)starts RDTR and, if not
  running, RADV; when either fires, RXT0. RDTR = 0 means RXT0 at once. A
  write of RDTR with FPD fires a running timer now.
- ITR (82540+): after INTA# is asserted, it is not asserted again until
  ITR × 256 ns have passed (SDM §13.4.18); a cause in that window waits.

``quiet``: the next edge changes nothing here but the running timers' counts
(no timer fires, the line does not move); ``quiet_for``: edges until a
timer fires (all ones when none runs); ``skip``: this edge counts as
``skip`` + 1 clocks for the timers (exact idle skipping, docs/simulation.md).
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..net.timer import DelayTimer
from .em8254xreg import DELAY_UNIT_PS, ITR_UNIT_PS, ICR_RXT0, ICR_TXDW

__all__ = ["EmInterrupts", "CAUSE_BITS"]

#: bits of ICR the card keeps (causes 0..16, E1000_ICR_*)
CAUSE_BITS = 17


class EmInterrupts(wiring.Component):
    def __init__(self, period_ps: int):
        W = CAUSE_BITS
        super().__init__({
            "set": In(W),                           # event pulses
            "ics_we": In(1), "ics_data": In(W),
            "icr_we": In(1), "icr_data": In(W),     # write 1 clears
            "icr_read": In(1),                      # a read of ICR: clear all
            "ims_we": In(1), "ims_data": In(W),
            "imc_we": In(1), "imc_data": In(W),
            "itr": In(16), "tidv": In(16), "tadv": In(16), "rdtr": In(16), "radv": In(16),
            "fpd": In(1),
            "tx_wb": In(1), "tx_ide": In(1), "rx_frame": In(1),
            "icr": Out(W), "ims": Out(W), "irq": Out(1),
            "quiet": Out(1), "quiet_for": Out(32), "skip": In(32),
        })
        self.t_itr = DelayTimer(ITR_UNIT_PS, period_ps)
        self.t_tidv = DelayTimer(DELAY_UNIT_PS, period_ps)
        self.t_tadv = DelayTimer(DELAY_UNIT_PS, period_ps)
        self.t_rdtr = DelayTimer(DELAY_UNIT_PS, period_ps)
        self.t_radv = DelayTimer(DELAY_UNIT_PS, period_ps)

    def elaborate(self, platform):
        m = Module()
        ti, tt, ta, tr, trv = self.t_itr, self.t_tidv, self.t_tadv, self.t_rdtr, self.t_radv
        for name, t in (("itr", ti), ("tidv", tt), ("tadv", ta), ("rdtr", tr), ("radv", trv)):
            m.submodules[name] = t
        txdw, rxt0 = self._moderation(m)

        icr, ims = self.icr, self.ims
        raised = self.set | Mux(self.ics_we, self.ics_data, 0) \
            | Mux(txdw, ICR_TXDW, 0) | Mux(rxt0, ICR_RXT0, 0)
        kept = Mux(self.icr_read, 0, icr & ~Mux(self.icr_we, self.icr_data, 0))
        m.d.sync += icr.eq(raised | kept)
        with m.If(self.ims_we):
            m.d.sync += ims.eq(ims | self.ims_data)
        with m.If(self.imc_we):
            m.d.sync += ims.eq(ims & ~self.imc_data)

        # INTA#, throttled by ITR
        pending = (icr & ims) != 0
        line = self.irq
        with m.If(~line & pending & ~ti.running):
            m.d.sync += line.eq(1)
            m.d.comb += [ti.start.eq(1), ti.value.eq(self.itr)]
        with m.Elif(line & ~pending):
            m.d.sync += line.eq(0)

        timers = (ti, tt, ta, tr, trv)
        for t in timers:
            m.d.comb += t.skip.eq(self.skip)
        firing = 0
        v = 0xFFFF_FFFF
        for t in timers:
            firing = firing | t.fire
            v = Mux(t.running & (t.left - 1 < v), t.left - 1, v)
        line_moves = (~line & pending & ~ti.running) | (line & ~pending)
        m.d.comb += [self.quiet.eq(~firing & ~line_moves), self.quiet_for.eq(v)]
        return m

    def _moderation(self, m):
        """TIDV/TADV → TXDW, RDTR/RADV → RXT0; returns the two raise pulses."""
        tt, ta, tr, trv = self.t_tidv, self.t_tadv, self.t_rdtr, self.t_radv
        txdw, rxt0 = Signal(), Signal()
        m.d.comb += [tt.value.eq(self.tidv), ta.value.eq(self.tadv),
                     tr.value.eq(self.rdtr), trv.value.eq(self.radv)]
        delayed = self.tx_ide & (self.tidv != 0)
        with m.If(self.tx_wb & delayed):
            m.d.comb += [tt.start.eq(1), ta.start.eq(~ta.running)]
        with m.If((self.tx_wb & ~delayed) | tt.fire | ta.fire):
            m.d.comb += [txdw.eq(1), tt.cancel.eq(1), ta.cancel.eq(1)]
        rx_delayed = self.rdtr != 0
        with m.If(self.rx_frame & rx_delayed):
            m.d.comb += [tr.start.eq(1), trv.start.eq(~trv.running)]
        with m.If((self.rx_frame & ~rx_delayed) | tr.fire | trv.fire
                  | (self.fpd & (tr.running | trv.running))):
            m.d.comb += [rxt0.eq(1), tr.cancel.eq(1), trv.cancel.eq(1)]
        return txdw, rxt0
