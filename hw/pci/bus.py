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

Parity (PAR/PERR#/SERR#) is not modelled, except PAR64 on a 64-bit bus.

64-bit extension (PCI 2.3 §3.8), with ``width=64``: ``ad`` is AD[63:0],
``cbe_n`` C/BE[7:0]#, and three more lines: ``req64`` (REQ64#, the master's,
with FRAME#'s timing), ``ack64`` (ACK64#, the target's, with DEVSEL#'s) and
``par64`` (even parity over AD[63:32] and C/BE[7:4]#, one clock after them,
from the agent that drove AD[63:32]). A 32-bit agent on a 64-bit bus sees
and drives only the lower lines: REQ64# and ACK64# read deasserted to it and
from it, as on a board whose 32-bit slot has them pulled up.
"""

from amaranth.hdl import Elaboratable, Module, Signal, Cat
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Lines", "Lines64", "lines", "AgentSignature", "agent_signature",
           "MasterSignature", "Resolver", "Cmd", "LINE_NAMES", "line_names", "WIDTHS",
           "MEMORY_COMMANDS"]

#: bus widths modelled (PCI 2.3 §3.8: the 64-bit extension)
WIDTHS = (32, 64)


class Lines(data.Struct):
    """The shared PCI lines (32-bit; parity and 64-bit extension omitted)."""
    ad:     32
    cbe_n:  4
    frame:  1
    irdy:   1
    trdy:   1
    stop:   1
    devsel: 1


class Lines64(data.Struct):
    """The shared lines of a 64-bit bus (PCI 2.3 §3.8)."""
    ad:     64
    cbe_n:  8
    frame:  1
    irdy:   1
    trdy:   1
    stop:   1
    devsel: 1
    req64:  1
    ack64:  1
    par64:  1


#: line groups, in layout order, for contention reporting
LINE_NAMES = ("ad", "cbe_n", "frame", "irdy", "trdy", "stop", "devsel")
LINE_NAMES_64 = LINE_NAMES + ("req64", "ack64", "par64")


def _check_width(width: int) -> int:
    if width not in WIDTHS:
        raise ValueError(f"PCI bus width {width!r} is not 32 or 64")
    return width


def lines(width: int = 32):
    """The line layout of a ``width``-bit bus."""
    return Lines if _check_width(width) == 32 else Lines64


def line_names(width: int = 32) -> tuple:
    return LINE_NAMES if _check_width(width) == 32 else LINE_NAMES_64


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


#: the commands that may use 64-bit data phases (PCI 2.3 §3.8: memory only)
MEMORY_COMMANDS = (Cmd.MEM_READ, Cmd.MEM_WRITE, Cmd.MEM_READ_MULT, Cmd.MEM_READ_LINE,
                   Cmd.MEM_WRITE_INV)


def agent_signature(width: int = 32) -> wiring.Signature:
    """An agent's connection to the shared lines: what it drives, what it sees."""
    layout = lines(width)
    return wiring.Signature({"o": Out(layout), "oe": Out(layout), "bus": In(layout)})


AgentSignature = agent_signature(32)

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

    def __init__(self, n_agents: int, width: int = 32, agent_widths=None):
        """``width``: the bus; ``agent_widths``: each agent's (default: the
        bus's), 32 for a 32-bit agent on a 64-bit bus."""
        self.n = n_agents
        self.width = _check_width(width)
        self.agent_widths = [width] * n_agents if agent_widths is None else \
            [_check_width(w) for w in agent_widths]
        if len(self.agent_widths) != n_agents or max(self.agent_widths) > width:
            raise ValueError("one agent width per agent, none wider than the bus")
        self.names = line_names(width)
        self.agents = [agent_signature(w).flip().create(path=("agent", str(i)))
                       for i, w in enumerate(self.agent_widths)]
        self.bus = Signal(lines(width))
        #: per line group (line_names order): more than one enabled driver
        self.contention = Signal(len(self.names))
        #: the same lines as plain signals, for waveforms (``frame``, ``ad``, ...)
        self.lines = {name: Signal(len(getattr(self.bus, name)), name=name)
                      for name in self.names}
        if width == 64:
            #: AD[63:32] / PAR64 driven by some agent this clock (the checker's
            #: PAR64 rule: a line's value alone cannot tell driven from pulled up)
            self.ad_hi_driven = Signal()
            self.par64_driven = Signal()
        #: index+1 of the agent driving FRAME# or IRDY# (0: nobody) — the master
        self.frame_owner = Signal(range(n_agents + 1))
        #: index+1 of the agent driving DEVSEL (0: nobody) — the current target
        self.devsel_owner = Signal(range(n_agents + 1))

    def elaborate(self, platform):
        m = Module()
        if all(w == self.width for w in self.agent_widths):
            value = 0
            for a in self.agents:
                value = value | (a.o.as_value() & a.oe.as_value())
            m.d.comb += self.bus.eq(value)
            for a in self.agents:
                m.d.comb += a.bus.eq(self.bus)
        else:
            self._mixed(m)
        for name, sig in self.lines.items():
            m.d.comb += sig.eq(getattr(self.bus, name))
        if self.width == 64:
            m.d.comb += [
                self.ad_hi_driven.eq(Cat(*(a.oe.ad[32:].any() for a in self.agents
                                           if len(a.oe.ad) == 64)).any()),
                self.par64_driven.eq(self.driven("par64")),
            ]

        # Contention: for each line group, two agents both enabling it.
        groups = []
        for name in self.names:
            enables = [getattr(a.oe, name).any() for a in self.agents
                       if hasattr(a.oe, name)]
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

    def _mixed(self, m):
        """32-bit agents on a 64-bit bus: each line is the OR of the agents
        that have it; a 32-bit agent sees the lower lines."""
        for name in self.names:
            value = 0
            for a in self.agents:
                if hasattr(a.o, name):
                    value = value | (getattr(a.o, name) & getattr(a.oe, name))
            m.d.comb += getattr(self.bus, name).eq(value)
        for a in self.agents:
            for name in LINE_NAMES:
                field = getattr(a.bus, name)
                m.d.comb += field.eq(getattr(self.bus, name)[:len(field)])
            for name in ("req64", "ack64", "par64"):
                if hasattr(a.bus, name):
                    m.d.comb += getattr(a.bus, name).eq(getattr(self.bus, name))

    def driven(self, name):
        """1 when some agent enables line group ``name`` this clock."""
        return Cat(*(getattr(a.oe, name).any() for a in self.agents
                     if hasattr(a.oe, name))).any()
