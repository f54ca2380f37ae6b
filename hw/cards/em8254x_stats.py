"""The 8254x's statistics counters (SDM §13.7), read-to-clear.

Each modelled register of :data:`hw.cards.em8254xreg.STATISTICS` is a
counter here, fed by one-clock event pulses from the MACs and the receive
ring. Reading a counter clears it (an event in the same clock counts in the
new value). The octet counters are 64 bits split in low/high registers;
reading the high register clears both (SDM §13.7: "cleared when the high
register is read"). Counters saturate at all ones instead of wrapping
(SDM: the counters "stick" at their maximum).
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .em8254xreg import STATISTICS

__all__ = ["EmStats", "COUNTERS"]

#: counter name → (low register, high register or None)
COUNTERS = {"crcerrs": ("CRCERRS", None), "mpc": ("MPC", None), "gprc": ("GPRC", None),
            "gptc": ("GPTC", None), "gorc": ("GORCL", "GORCH"), "gotc": ("GOTCL", "GOTCH"),
            "rnbc": ("RNBC", None), "roc": ("ROC", None), "tpr": ("TPR", None),
            "tpt": ("TPT", None)}


class EmStats(wiring.Component):
    def __init__(self):
        sig = {}
        for name, (lo, hi) in COUNTERS.items():
            sig[f"inc_{name}"] = In(16)             # amount to add this clock
        for reg in STATISTICS:
            sig[f"rd_{reg.name}"] = In(1)            # a read of the register
            sig[reg.name] = Out(32)                  # its value
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for name, (lo, hi) in COUNTERS.items():
            width = 64 if hi else 32
            c = Signal(width, name=name)
            inc = getattr(self, f"inc_{name}")
            clear = getattr(self, f"rd_{hi or lo}")
            base = Mux(clear, 0, c)
            total = Signal(width + 1, name=f"{name}_next")
            m.d.comb += total.eq(base + inc)
            with m.If(clear | (inc != 0)):
                m.d.sync += c.eq(Mux(total[width], (1 << width) - 1, total[:width]))
            m.d.comb += getattr(self, lo).eq(c[0:32])
            if hi:
                m.d.comb += getattr(self, hi).eq(c[32:64])
        return m
