"""Shared PCI lines, per-agent drivers, and the resolver that joins them.

Conventions (PCI Local Bus Specification 2.2/2.3, chapter 2–3):

- Control lines are modelled **active-high**: ``frame`` = 1 means FRAME# is
  asserted. A line no agent drives reads deasserted (the pull-ups).
- ``ad`` and ``cbe_n`` carry the wire values. ``cbe_n`` holds the bus command
  in the address phase (codes below, as on the C/BE#[3:0] pins) and the
  active-low byte enables BE#[3:0] in data phases (0 = byte enabled).
- Every agent drives each line through its own ``o``/``oe`` pair; nothing
  else drives the bus. The resolver ORs the enabled drivers and flags any
  line that two agents enable in the same cycle (contention).

Parity (PAR/PERR#/SERR#) is not modelled.
"""

from amaranth.hdl import Elaboratable, Module, Signal, Cat
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Lines", "AgentSignature", "MasterSignature", "Resolver", "Cmd",
           "LINE_NAMES"]


class Lines(data.Struct):
    """The shared PCI lines (32-bit; parity and 64-bit extension omitted)."""
    ad:     32
    cbe_n:  4
    frame:  1
    irdy:   1
    trdy:   1
    stop:   1
    devsel: 1


#: line groups, in layout order, for contention reporting
LINE_NAMES = ("ad", "cbe_n", "frame", "irdy", "trdy", "stop", "devsel")


class Cmd:
    """Bus commands (C/BE#[3:0] in the address phase; PCI 2.3 §3.1.1 table
    3-1; 0100, 0101, 1000, 1001 are reserved). Also re-exported by
    :mod:`hw.pci.pcireg`."""
    INT_ACK         = 0b0000
    SPECIAL_CYCLE   = 0b0001
    IO_READ         = 0b0010
    IO_WRITE        = 0b0011
    MEM_READ        = 0b0110
    MEM_WRITE       = 0b0111
    CFG_READ        = 0b1010
    CFG_WRITE       = 0b1011
    MEM_READ_MULT   = 0b1100
    DUAL_ADDRESS    = 0b1101
    MEM_READ_LINE   = 0b1110
    MEM_WRITE_INV   = 0b1111

    READS = (MEM_READ, MEM_READ_MULT, MEM_READ_LINE, CFG_READ)


#: An agent's connection to the shared lines: what it drives, what it sees.
AgentSignature = wiring.Signature({
    "o":   Out(Lines),
    "oe":  Out(Lines),
    "bus": In(Lines),
})

#: A bus master's private arbitration pair.
MasterSignature = wiring.Signature({
    "req": Out(1),
    "gnt": In(1),
})


class Resolver(Elaboratable):
    """Forms the bus value from N agents and flags contention per line group.

    ``bus`` is combinational from the agents' (registered) outputs, so every
    agent samples the resolved value at the rising edge, as on a real bus.
    """

    def __init__(self, n_agents: int):
        self.n = n_agents
        self.agents = [AgentSignature.flip().create(path=("agent", str(i)))
                       for i in range(n_agents)]
        self.bus = Signal(Lines)
        #: per line group (LINE_NAMES order): more than one enabled driver
        self.contention = Signal(len(LINE_NAMES))
        #: the same lines as plain signals, for waveforms (``frame``, ``ad``, ...)
        self.lines = {name: Signal(len(getattr(self.bus, name)), name=name)
                      for name in LINE_NAMES}
        #: index+1 of the agent driving FRAME# or IRDY# (0: nobody) — the master
        self.frame_owner = Signal(range(n_agents + 1))
        #: index+1 of the agent driving DEVSEL (0: nobody) — the current target
        self.devsel_owner = Signal(range(n_agents + 1))

    def elaborate(self, platform):
        m = Module()
        value = 0
        for a in self.agents:
            value = value | (a.o.as_value() & a.oe.as_value())
        m.d.comb += self.bus.eq(value)
        for a in self.agents:
            m.d.comb += a.bus.eq(self.bus)
        for name, sig in self.lines.items():
            m.d.comb += sig.eq(getattr(self.bus, name))

        # Contention: for each line group, two agents both enabling it.
        groups = []
        for name in LINE_NAMES:
            enables = [getattr(a.oe, name).any() for a in self.agents]
            seen = 0
            clash = 0
            for en in enables:
                clash = clash | (seen & en)
                seen = seen | en
            groups.append(clash)
        m.d.comb += self.contention.eq(Cat(*groups))

        for i, a in enumerate(self.agents):
            with m.If(a.oe.frame | a.oe.irdy):
                m.d.comb += self.frame_owner.eq(i + 1)
            with m.If(a.oe.devsel & a.o.devsel):
                m.d.comb += self.devsel_owner.eq(i + 1)
        return m
