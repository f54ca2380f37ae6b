"""Bus monitor (cycle classification and counters) and protocol checker.

Every bus clock falls in exactly one class (priority in this order):

``data``        IRDY# and TRDY# both asserted: a dword moved.
``abort``       STOP# without TRDY# (retry, disconnect without data, target
                abort), or a clock of a transaction nobody claimed (master
                abort, after the DEVSEL# window).
``address``     the address phase (FRAME# newly asserted).
``turnaround``  the clock after a read's address phase (AD changes hands),
                and the clock after a transaction ends.
``wait``        any other clock inside a transaction (IRDY# or TRDY# held).
``idle``        everything else.

Counters: per class; per master agent (the agent driving FRAME#/IRDY#) for
each class; per target agent, data clocks. Only agents that can master get
master counters and only targets get target counters. PCI utilisation is data clocks
over total clocks, computed from these counters.

The checker asserts, every clock, the rules listed in :data:`RULES` (PCI 2.3
chapter 3) and keeps a sticky bit per rule plus the cycle of the first
violation.
"""

from amaranth.hdl import Elaboratable, Module, Signal, Mux, Cat
from amaranth.lib import enum

from .bus import Cmd, MEMORY_COMMANDS, lines, line_names

__all__ = ["Monitor", "Checker", "CLASSES", "CycleClass", "RULES", "RULES_64", "rules"]

CLASSES = ("idle", "address", "data", "wait", "turnaround", "abort")


class CycleClass(enum.IntEnum, shape=3):
    """The class of a bus clock (``Monitor.cls``; value = index in CLASSES)."""
    IDLE = 0
    ADDRESS = 1
    DATA = 2
    WAIT = 3
    TURNAROUND = 4
    ABORT = 5


assert tuple(c.name.lower() for c in CycleClass) == CLASSES
C_IDLE, C_ADDR, C_DATA, C_WAIT, C_TURN, C_ABORT = CycleClass

#: checker rules, bit index = position (PCI 2.3 section in the comment)
RULES = (
    "contention",           # two agents drive one line (§3.3.1 turnaround)
    "frame_without_irdy",   # FRAME# deasserted while IRDY# not asserted (§3.2.1 rule 4)
    "frame_reasserted",     # FRAME# asserted in/after the final data phase w/o idle (§3.2.1)
    "irdy_dropped",         # IRDY# deasserted before its data phase completed (§3.2.1 rule 5)
    "trdy_without_devsel",  # TRDY# asserted without DEVSEL# (§3.2.1)
    "stop_dropped",         # STOP# deasserted while FRAME# still asserted (§3.3.3.2)
    "irdy_latency",         # IRDY# later than 8 clocks after FRAME# (§3.5.2)
    "initial_latency",      # first data phase later than 16 clocks (§3.5.1.1)
    "subsequent_latency",   # later data phase waits more than 8 clocks (§3.5.1.2)
    "multiple_gnt",         # more than one GNT# asserted (§3.4.1)
    "start_without_gnt",    # address phase by an agent that had no GNT# (§3.4.1)
    "data_outside_txn",     # IRDY#&TRDY# with no transaction open
)

#: the rules of a 64-bit bus (PCI 2.3 §3.8), after RULES
RULES_64 = RULES + (
    "req64_timing",         # REQ64# not with FRAME#'s timing (§3.8)
    "ack64_timing",         # ACK64# without DEVSEL# or REQ64#, or changed under DEVSEL# (§3.8)
    "req64_not_memory",     # REQ64# in an I/O, configuration or other non-memory cycle (§3.8)
    "par64",                # PAR64 not driven or not even parity the clock after
                            # AD[63:32] (§3.8, §3.7.1)
)


def rules(width: int = 32) -> tuple:
    """The checker's rules on a ``width``-bit bus (bit index = position)."""
    return RULES if width == 32 else RULES_64

#: PCI 2.3 §3.6.1: master abort when no DEVSEL# four clocks after the address
DEVSEL_WINDOW = 4


class _BusTracker:
    """Shared per-clock bookkeeping: transaction open, phase counters."""

    def __init__(self, m, bus, n_agents, width=32):
        self.prev_frame = Signal()
        self.prev_irdy = Signal()
        self.prev_trdy = Signal()
        self.prev_stop = Signal()
        self.in_txn = Signal()
        self.is_read = Signal()
        self.since_addr = Signal(8)
        self.since_data = Signal(8)
        self.devsel_seen = Signal()
        self.any_data = Signal()
        self.irdy_seen = Signal()
        self.prev_ended = Signal()

        self.addr_phase = bus.frame & ~self.prev_frame & ~self.prev_irdy & ~self.in_txn
        self.ended = bus.irdy & ~bus.frame & (bus.trdy | bus.stop)
        # master abort ends with IRDY# dropped and no DEVSEL# ever seen
        self.mabort = self.in_txn & ~self.devsel_seen & ~bus.devsel \
            & (self.since_addr >= DEVSEL_WINDOW)
        self.mabort_end = self.mabort & ~bus.frame & self.prev_irdy & ~bus.irdy

        #: the bus idle and this bookkeeping settled: the next edge changes none
        #: of these registers
        self.steady = ~bus.frame & ~bus.irdy & ~bus.trdy & ~bus.stop & ~self.in_txn \
            & ~self.prev_frame & ~self.prev_irdy & ~self.prev_trdy & ~self.prev_stop \
            & ~self.prev_ended

        m.d.sync += [self.prev_frame.eq(bus.frame), self.prev_irdy.eq(bus.irdy),
                     self.prev_trdy.eq(bus.trdy), self.prev_stop.eq(bus.stop),
                     self.prev_ended.eq(0)]
        with m.If(self.addr_phase):
            m.d.sync += [self.in_txn.eq(1), self.since_addr.eq(1), self.since_data.eq(0),
                         self.devsel_seen.eq(0), self.any_data.eq(0), self.irdy_seen.eq(0),
                         self.is_read.eq((bus.cbe_n == Cmd.MEM_READ)
                                         | (bus.cbe_n == Cmd.MEM_READ_LINE)
                                         | (bus.cbe_n == Cmd.MEM_READ_MULT)
                                         | (bus.cbe_n == Cmd.CFG_READ))]
        with m.Elif(self.in_txn):
            m.d.sync += [
                self.since_addr.eq(Mux(self.since_addr == 255, 255, self.since_addr + 1)),
                self.since_data.eq(Mux(bus.irdy & bus.trdy, 0,
                                       Mux(self.since_data == 255, 255, self.since_data + 1))),
                self.devsel_seen.eq(self.devsel_seen | bus.devsel),
                self.irdy_seen.eq(self.irdy_seen | bus.irdy),
                self.any_data.eq(self.any_data | (bus.irdy & bus.trdy)),
            ]
            with m.If(self.ended | self.mabort_end | (~bus.frame & ~bus.irdy & self.prev_irdy)):
                m.d.sync += [self.in_txn.eq(0), self.prev_ended.eq(1)]
        if width == 64:
            # the 64-bit extension: REQ64# at the address phase, ACK64# with DEVSEL#
            self.req64 = Signal()             # this transaction asked for 64 bits
            self.prev_devsel = Signal()
            self.prev_ack64 = Signal()
            m.d.sync += [self.prev_devsel.eq(bus.devsel), self.prev_ack64.eq(bus.ack64)]
            with m.If(self.addr_phase):
                m.d.sync += self.req64.eq(bus.req64)
            with m.Elif(~self.in_txn & self.req64):
                m.d.sync += self.req64.eq(0)
            #: a 64-bit data phase: both halves move
            self.wide = self.in_txn & self.req64 & bus.ack64
            self.steady = self.steady & ~bus.req64 & ~bus.ack64 & ~self.req64 \
                & ~self.prev_devsel & ~self.prev_ack64


class Monitor(Elaboratable):
    """Classifies every clock and counts, overall, per master and per target."""

    WIDTH = 40   # counter width: 2^40 clocks is 9 hours at 33 MHz

    def __init__(self, n_agents: int, masters=None, targets=None, width: int = 32):
        """``masters``/``targets``: agent indices that can master / be targets
        (default: all); only those get per-master / per-target counters.
        On a 64-bit bus (``width``) data BYTES are counted too, per master
        (``master_bytes``) and per target (``target_bytes``): the enabled
        byte lanes of each data phase (up to 8 on a 64-bit phase, 4 on a
        32-bit one)."""
        self.n = n_agents
        self.width = width
        self.masters = list(range(n_agents)) if masters is None else list(masters)
        self.targets = list(range(n_agents)) if targets is None else list(targets)
        self.bus = Signal(lines(width))
        self.master_of = Signal(range(n_agents + 1))   # resolver.frame_owner
        self.target_of = Signal(range(n_agents + 1))   # resolver.devsel_owner
        self.cls = Signal(CycleClass)                  # class of this clock
        self.total = Signal(self.WIDTH)
        self.by_class = [Signal(self.WIDTH, name=f"mon_{c}") for c in CLASSES]
        # per agent as master: every class but idle
        self.by_master = {a: [Signal(self.WIDTH, name=f"mon_a{a}_{c}") for c in CLASSES[1:]]
                          for a in self.masters}
        self.target_data = {a: Signal(self.WIDTH, name=f"mon_t{a}_data")
                            for a in self.targets}
        #: exact idle skipping: the next edge advances ``total`` and the idle
        #: counter (``by_class[0]``) by one and changes nothing else
        self.quiet = Signal()
        if width == 64:
            self.master_bytes = {a: Signal(self.WIDTH, name=f"mon_a{a}_bytes")
                                 for a in self.masters}
            self.target_bytes = {a: Signal(self.WIDTH, name=f"mon_t{a}_bytes")
                                 for a in self.targets}

    def bind_outputs(self, lookup) -> None:
        """Count straight into the owner's signals: ``lookup(name)`` returns the
        signal called ``mon_total``, ``mon_<class>``, ``mon_a<i>_<class>``, ...
        (saves a comb copy per counter per clock in simulation)."""
        self.total = lookup("mon_total")
        self.by_class = [lookup(f"mon_{c}") for c in CLASSES]
        self.by_master = {a: [lookup(f"mon_a{a}_{c}") for c in CLASSES[1:]]
                          for a in self.masters}
        self.target_data = {a: lookup(f"mon_t{a}_data") for a in self.targets}
        if self.width == 64:
            self.master_bytes = {a: lookup(f"mon_a{a}_bytes") for a in self.masters}
            self.target_bytes = {a: lookup(f"mon_t{a}_bytes") for a in self.targets}

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        t = _BusTracker(m, bus, self.n, self.width)
        self.tracker = t
        with m.If(bus.irdy & bus.trdy):
            m.d.comb += self.cls.eq(C_DATA)
        with m.Elif((bus.stop & ~bus.trdy) | t.mabort):
            m.d.comb += self.cls.eq(C_ABORT)
        with m.Elif(t.addr_phase):
            m.d.comb += self.cls.eq(C_ADDR)
        with m.Elif((t.in_txn & t.is_read & (t.since_addr == 1)) | t.prev_ended):
            m.d.comb += self.cls.eq(C_TURN)
        with m.Elif(t.in_txn | bus.frame | bus.irdy):
            m.d.comb += self.cls.eq(C_WAIT)
        with m.Else():
            m.d.comb += self.cls.eq(C_IDLE)

        m.d.comb += self.quiet.eq(t.steady & (self.cls == C_IDLE))
        m.d.sync += self.total.eq(self.total + 1)
        for k, ctr in enumerate(self.by_class):
            with m.If(self.cls == k):
                m.d.sync += ctr.eq(ctr + 1)
        for a, ctrs in self.by_master.items():
            with m.If(self.master_of == a + 1):
                for k, ctr in enumerate(ctrs, start=1):
                    with m.If(self.cls == k):
                        m.d.sync += ctr.eq(ctr + 1)
        for a, ctr in self.target_data.items():
            with m.If((self.target_of == a + 1) & (self.cls == C_DATA)):
                m.d.sync += ctr.eq(ctr + 1)
        if self.width == 64:
            # the bytes this data phase moves: its enabled byte lanes, eight on
            # a 64-bit phase, four on a 32-bit one
            enabled = ~bus.cbe_n
            nbytes = Mux(t.wide, sum(enabled[k] for k in range(8)),
                         sum(enabled[k] for k in range(4)))
            for who, ctrs in ((self.master_of, self.master_bytes),
                              (self.target_of, self.target_bytes)):
                for a, ctr in ctrs.items():
                    with m.If((who == a + 1) & (self.cls == C_DATA)):
                        m.d.sync += ctr.eq(ctr + nbytes)
        return m


class Checker(Elaboratable):
    """Asserts the PCI rules in :data:`RULES` every clock (sticky error bits)."""

    def __init__(self, n_agents: int, n_gnt: int, width: int = 32):
        self.width = width
        self.rules = rules(width)
        self.bus = Signal(lines(width))
        self.contention = Signal(len(line_names(width)))
        if width == 64:
            self.ad_hi_driven = Signal()                # resolver.ad_hi_driven
            self.par64_driven = Signal()                # resolver.par64_driven
        self.gnt = Signal(n_gnt)                        # arbiter outputs
        self.gnt_of_agent = Signal(n_agents + 1)        # bit a+1: agent a had GNT#
        self.master_of = Signal(range(n_agents + 1))
        self.error = Signal(len(self.rules))            # sticky, bit per rule
        self.first_cycle = Signal(64)                   # clock of first violation
        self.cycle = Signal(64)                         # from the machine
        self.violation = Signal(len(self.rules))        # this clock
        #: exact idle skipping: the next edge changes none of the checker's
        #: registers (``cycle`` is the machine's)
        self.quiet = Signal()

    def bind_outputs(self, error, first_cycle, cycle) -> None:
        """Drive the owner's signals directly (no comb copy in simulation)."""
        self.error, self.first_cycle, self.cycle = error, first_cycle, cycle

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        t = _BusTracker(m, bus, 0, self.width)
        v = [Signal(name=f"rule_{r}") for r in self.rules]
        gnt_prev_agent = Signal.like(self.gnt_of_agent)
        m.d.sync += gnt_prev_agent.eq(self.gnt_of_agent)
        data_phase_open = t.in_txn & t.irdy_seen & t.prev_irdy & ~t.prev_trdy & ~t.prev_stop

        m.d.comb += [
            v[0].eq(self.contention.any()),
            v[1].eq(t.prev_frame & ~bus.frame & ~bus.irdy),
            v[2].eq(bus.frame & ~t.prev_frame & t.prev_irdy),
            v[3].eq(data_phase_open & ~bus.irdy & t.devsel_seen),
            v[4].eq(bus.trdy & ~bus.devsel),
            v[5].eq(t.prev_stop & ~bus.stop & t.prev_frame),
            v[6].eq(t.in_txn & ~t.irdy_seen & ~bus.irdy & (t.since_addr > 8)),
            v[7].eq(t.in_txn & t.devsel_seen & ~t.any_data & ~bus.trdy & ~bus.stop
                    & (t.since_addr > 16)),
            v[8].eq(t.in_txn & t.any_data & ~bus.trdy & ~bus.stop & (t.since_data > 8)),
            v[9].eq((self.gnt & (self.gnt - 1)).any()),
            v[10].eq(t.addr_phase & ~(gnt_prev_agent.bit_select(self.master_of, 1))),
            v[11].eq(bus.irdy & bus.trdy & ~t.in_txn),
        ]
        steady = t.steady
        if self.width == 64:
            steady = steady & self._rules_64(m, t, v)
        m.d.comb += self.violation.eq(Cat(*v))
        m.d.comb += self.quiet.eq(steady & (gnt_prev_agent == self.gnt_of_agent)
                                  & ~self.violation.any())
        with m.If(self.violation.any() & ~self.error.any()):
            m.d.sync += self.first_cycle.eq(self.cycle)
        m.d.sync += self.error.eq(self.error | self.violation)
        return m

    def _rules_64(self, m, t, v):
        """The 64-bit extension's rules (PCI 2.3 §3.8); returns the extra
        'nothing will change' term for ``quiet``."""
        bus = self.bus
        prev_hi = Signal()             # AD[63:32] were driven last clock
        expect = Signal()              # even parity over last clock's AD[63:32], C/BE[7:4]#
        m.d.sync += [prev_hi.eq(self.ad_hi_driven),
                     expect.eq(bus.ad[32:].xor() ^ bus.cbe_n[4:].xor())]
        is_mem = Cat(*(bus.cbe_n[:4] == c for c in MEMORY_COMMANDS)).any()
        base = len(RULES)
        m.d.comb += [
            v[base + 0].eq((bus.req64 & ~bus.frame)
                           | (t.in_txn & t.req64 & bus.frame & ~bus.req64)
                           | (bus.req64 & bus.frame & ~t.addr_phase & ~t.req64)),
            v[base + 1].eq((bus.ack64 & ~bus.devsel) | (bus.ack64 & ~t.req64 & ~t.addr_phase)
                           | (t.prev_devsel & bus.devsel & (bus.ack64 != t.prev_ack64))),
            v[base + 2].eq(t.addr_phase & bus.req64 & ~is_mem),
            v[base + 3].eq(prev_hi & (~self.par64_driven | (bus.par64 != expect))),
        ]
        return ~prev_hi & ~self.ad_hi_driven & ~expect
