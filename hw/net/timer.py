"""A delay timer counted in bus cycles: the 8254x's ITR, TIDV, TADV, RDTR and
RADV (units: ITR 256 ns, the others 1.024 us; Intel 8254x SDM §13.4.18,
§13.4.29-30, §13.4.41-43).

``start`` loads the down-counter with ``value`` units converted to bus
cycles: value × ⌈unit × 2^16 / period⌉ >> 16 (a constant multiplication;
under one cycle of error for any 16-bit value), at least one. The counter
then loses one per clock and ``fire`` pulses in the clock it reaches zero.
``cancel`` stops it. A timer that is not running does not change (``left``
is 0 and ``running`` low). For exact idle skipping (docs/simulation.md) an
edge counts as ``skip`` + 1 clocks: the machine skips only edges on which
the timer does not fire (``left`` − 1 of them at most).
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DelayTimer"]

_FRAC = 16


class DelayTimer(wiring.Component):
    start: In(1)
    value: In(16)
    cancel: In(1)
    fire: Out(1)
    running: Out(1)
    left: Out(32)          # bus cycles until ``fire`` (0 when not running)
    skip: In(32)           # this edge counts as skip + 1 clocks

    def __init__(self, unit_ps: int, period_ps: int):
        self.unit_ps, self.period_ps = int(unit_ps), int(period_ps)
        #: cycles per unit in 16.16 fixed point, rounded up
        self.k = -(-(self.unit_ps << _FRAC) // self.period_ps)
        super().__init__()

    def cycles(self, value: int) -> int:
        """Bus cycles from ``start`` to ``fire`` for ``value`` units."""
        return max(1, (value * self.k) >> _FRAC)

    def elaborate(self, platform):
        m = Module()
        count = Signal(32)
        m.d.comb += [self.running.eq(count != 0), self.left.eq(count),
                     self.fire.eq(count == 1)]
        load = (self.value * self.k) >> _FRAC
        with m.If(self.cancel):
            m.d.sync += count.eq(0)
        with m.Elif(self.start & (self.value != 0)):
            m.d.sync += count.eq(Mux(load == 0, 1, load))
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1 - self.skip)
        return m
