"""The whole PCI machine as one component: bridge, DRAM, arbiter, cards.

A machine is described by a JSON-able dict (:class:`MachineSpec`), so the
same description can be elaborated here for pysim and in a separate process
for Verilator. Agents on the bus, in resolver order:

    0  bridge.cpu    host bridge initiator (the CPU's MMIO/config cycles)
    1  bridge.dram   host DRAM target
    then per card, by slot: slotN.target, slotN.master

Masters, in arbiter order: the bridge, then each card by slot. Card in slot
N has IDSEL = AD[16+N] and its INTA# on system line (N-1) % 4 (INTA#..INTD#).

Flat ports (the host contract in ``sim/backend.py``): ``cpu_*``, ``dram_*``,
``irq``, ``attn``, ``cycle``, ``chk_error``, ``chk_first_cycle`` and the
monitor counters ``mon_total``, ``mon_<class>``, ``mon_a<agent>_<class>``,
``mon_t<agent>_data``.

The wire (docs/em8254x.md, "The wire"): a card with a ``phy`` port (a NIC)
gets a :class:`hw.net.wire_port.WirePort`, whose buffers the host reaches by
backdoor, and these flat ports, for the card in slot N:
``wireN_tx_frames`` (out) frames the card sent, each kept in the port's
transmit buffer; ``wireN_tx_dropped`` (out) frames not kept (queue full);
``wireN_tx_taken`` (in) frames the host has taken; ``wireN_rx_posted`` (in)
frames the host has put in the receive buffer; ``wireN_rx_frames`` (out)
frames the port has sent into the card. A frame kept or sent raises
attention and counts in ``wire_events`` (out, a machine with a NIC only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, asdict

from amaranth.hdl import Module, Signal, Cat, Const, Mux, Elaboratable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pci.arbiter import Arbiter
from .pci.bus import Resolver
from .pci.host_bridge import HostBridge
from .pci.monitor import Monitor, Checker, CLASSES, rules
from .cards.slot import quiet_of
from .net.wire_port import WirePort, wire_port_names
import functools
import importlib
import inspect
import json

__all__ = ["Machine", "MachineSpec", "CardSpec", "CARD_KINDS", "card_class", "wire_slots"]

#: card kind → "module:Class" of its component, constructed as ``Class(**params)``;
#: the component has ``hw.cards.slot.CardSignature``.
CARD_KINDS = {
    "dmatest": "hw.cards.dmatest:DmaTestCard",
    "bcm5820": "hw.cards.bcm5820:Bcm5820",
    "hifn7751": "hw.cards.hifn7751:Hifn7751",
    "em82544": "hw.cards.em8254x:Em8254x",
}


def _slot_params(card: CardSpec, width: int, clock_mhz: int) -> dict:
    """A card's constructor arguments: its spec's, plus what the slot tells
    it — ``bus_width=64`` for a 64-bit master on a 64-bit bus, and the bus
    clock to a card whose timers count bus clocks (``bus_mhz``)."""
    params = dict(card.params)
    if width == 64:
        params["bus_width"] = 64
    if "bus_mhz" in inspect.signature(card_class(card.kind)).parameters:
        params.setdefault("bus_mhz", clock_mhz)
    return params


@functools.lru_cache(maxsize=None)
def _has_phy(kind: str, params: str) -> bool:
    """Whether a card of ``kind`` made with ``params`` (JSON) has a ``phy`` port."""
    card = card_class(kind)(**json.loads(params))
    _silence(card)
    return "phy" in card.signature.members


def _silence(obj, seen=None) -> None:
    """Mark a card made only to look at its signature, and every block it
    made, as used: Amaranth warns about elaboratables never elaborated."""
    seen = set() if seen is None else seen
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    if isinstance(obj, Elaboratable):
        obj._MustUse__silence = True
    for value in vars(obj).values():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, Elaboratable):
                _silence(v, seen)


def wire_slots(spec: "MachineSpec") -> list[int]:
    """Slots holding a card with a ``phy`` port: each gets a wire port."""
    return [c.slot for c, w in zip(spec.cards, spec.card_widths())
            if _has_phy(c.kind, json.dumps(_slot_params(c, w, spec.clock_mhz),
                                           sort_keys=True))]


def card_class(kind: str):
    module, _, name = CARD_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)

#: bus clock periods in ps (PCI 2.3: 33 MHz → 30 ns, 66 MHz → 15 ns)
PERIOD_PS = {33: 30_000, 66: 15_000}


@dataclass
class CardSpec:
    kind: str
    slot: int
    params: dict = field(default_factory=dict)


@dataclass
class MachineSpec:
    clock_mhz: int = 33
    dram_bytes: int = 4 << 20
    cards: list[CardSpec] = field(default_factory=list)
    blackbox_dram: bool = False
    #: AD lines of the bus: 32, or 64 with the PCI 2.3 §3.8 extension (the
    #: host bridge is then a 64-bit agent, and so is each 64-bit card's master)
    bus_width: int = 32

    def __post_init__(self):
        self.cards = [c if isinstance(c, CardSpec) else CardSpec(**c) for c in self.cards]
        if self.clock_mhz not in PERIOD_PS:
            raise ValueError(f"bus clock must be 33 or 66 MHz, not {self.clock_mhz}")
        if self.bus_width not in (32, 64):
            raise ValueError(f"bus width must be 32 or 64 bits, not {self.bus_width}")
        slots = [c.slot for c in self.cards]
        if len(set(slots)) != len(slots):
            raise ValueError(f"two cards in one slot: {slots}")
        for c in self.cards:
            if not 1 <= c.slot <= 15:   # IDSEL = AD[16+slot] must exist
                raise ValueError(f"slot {c.slot} outside 1..15")
            if c.kind not in CARD_KINDS:
                raise ValueError(f"unknown card kind {c.kind!r}")
        self.cards.sort(key=lambda c: c.slot)

    @property
    def period_ps(self) -> int:
        return PERIOD_PS[self.clock_mhz]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MachineSpec":
        return cls(**d)

    def agent_names(self) -> list[str]:
        names = ["bridge.cpu", "bridge.dram"]
        for c in self.cards:
            names += [f"slot{c.slot}.target", f"slot{c.slot}.master"]
        return names

    def master_agents(self) -> list[int]:
        """Agent index of each master, in arbiter order."""
        return [0] + [3 + 2 * k for k in range(len(self.cards))]

    def target_agents(self) -> list[int]:
        return [1] + [2 + 2 * k for k in range(len(self.cards))]

    def master_names(self) -> list[str]:
        return ["bridge"] + [f"slot{c.slot}" for c in self.cards]

    def card_widths(self) -> list[int]:
        """Width of each card's master on this bus: 64 for a 64-bit capable
        card (its class's ``PCI_WIDTH``) on a 64-bit bus, else 32."""
        return [min(self.bus_width, getattr(card_class(c.kind), "PCI_WIDTH", 32))
                for c in self.cards]

    def agent_widths(self) -> list[int]:
        """Width of each agent, in resolver order. A card's register target
        is a 32-bit agent everywhere (registers take single dwords)."""
        widths = [self.bus_width, self.bus_width]
        for w in self.card_widths():
            widths += [32, w]
        return widths

    def ports(self) -> list[tuple[str, str, int]]:
        """Flat ports of :class:`Machine` as (name, "in"/"out", width)."""
        return _port_list(self)


def _port_list(spec: MachineSpec):
    ports = [
        ("cpu_seq", "in", 1), ("cpu_op", "in", 2), ("cpu_addr", "in", 32),
        ("cpu_wdata", "in", 32), ("cpu_be", "in", 4),
        ("cpu_ack", "out", 1), ("cpu_rdata", "out", 32), ("cpu_status", "out", 2),
        ("dram_latency", "in", 4), ("dram_wait_every", "in", 8),
        ("dram_wait_len", "in", 5), ("dram_retry_every", "in", 8),
        ("dram_abort_every", "in", 8),
        ("irq", "out", 4), ("attn", "out", 16), ("cycle", "out", 64),
        ("chk_error", "out", len(rules(spec.bus_width))), ("chk_first_cycle", "out", 64),
        ("mon_total", "out", Monitor.WIDTH),
        # exact idle skipping (docs/simulation.md): the machine is quiet (the
        # next clock edge would change nothing but free-running counters and
        # timers) for ``quiet_for`` more edges; a backend may then make one edge
        # with ``skip`` = k - 1 (k <= quiet_for) that counts as k clocks
        ("skip", "in", 32), ("quiet", "out", 1), ("quiet_for", "out", 32),
    ]
    ports += [(f"arb_wait_max{i}", "out", 16) for i in range(len(spec.master_names()))]
    ports += [(f"mon_{c}", "out", Monitor.WIDTH) for c in CLASSES]
    for a in spec.master_agents():
        ports += [(f"mon_a{a}_{c}", "out", Monitor.WIDTH) for c in CLASSES[1:]]
    for a in spec.target_agents():
        ports.append((f"mon_t{a}_data", "out", Monitor.WIDTH))
    if spec.bus_width == 64:        # data bytes moved, per master and per target
        ports += [(f"mon_a{a}_bytes", "out", Monitor.WIDTH) for a in spec.master_agents()]
        ports += [(f"mon_t{a}_bytes", "out", Monitor.WIDTH) for a in spec.target_agents()]
    slots = wire_slots(spec)
    for slot in slots:
        ports += [(name, d, w) for name, (d, w) in wire_port_names(slot).items()]
    if slots:
        ports.append(("wire_events", "out", 16))
    return ports


class Machine(wiring.Component):
    def __init__(self, spec: MachineSpec | dict):
        if isinstance(spec, dict):
            spec = MachineSpec.from_dict(spec)
        self.spec = spec
        super().__init__({name: (In if d == "in" else Out)(w)
                          for name, d, w in _port_list(spec)})
        self.bridge = HostBridge(spec.dram_bytes, blackbox_dram=spec.blackbox_dram,
                                 width=spec.bus_width)
        self.cards = [card_class(c.kind)(**_slot_params(c, w, spec.clock_mhz))
                      for c, w in zip(spec.cards, spec.card_widths())]
        #: slot → the wire port of the NIC there
        self.wire_ports = {slot: WirePort(slot, spec.period_ps, blackbox=spec.blackbox_dram)
                           for slot in wire_slots(spec)}
        self.resolver = Resolver(len(spec.agent_names()), spec.bus_width, spec.agent_widths())
        self.arbiter = Arbiter(len(spec.master_names()))

    def vcd_traces(self) -> dict:
        """Signals for a GTKWave save file, grouped: bus, arbitration, bridge, cards.

        A card may offer its own groups (registers, engine state) through a
        ``vcd_traces()`` method of the same shape.
        """
        lines = self.resolver.lines
        groups = {
            "PCI bus": [lines[n] for n in ("frame", "irdy", "trdy", "stop", "devsel",
                                           "ad", "cbe_n")] + [self.irq],
            "arbiter": [self.arbiter.req, self.arbiter.gnt],
            "host bridge": [self.bridge.initiator.state, self.bridge.target.state,
                            self.cpu_ack, self.cpu_rdata, self.cpu_status],
        }
        for spec_c, card in zip(self.spec.cards, self.cards):
            name = f"slot{spec_c.slot} {spec_c.kind}"
            own = card.vcd_traces() if hasattr(card, "vcd_traces") else {}
            groups[name] = {"target": [card.target.state] if hasattr(card, "target") else [],
                            "initiator": [card.initiator.state] if hasattr(card, "initiator") else [],
                            **own}
        return groups

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        n_agents = len(spec.agent_names())
        n_masters = len(spec.master_names())

        m.submodules.bridge = bridge = self.bridge
        m.submodules.resolver = res = self.resolver
        m.submodules.arbiter = arb = self.arbiter
        mon = Monitor(n_agents, spec.master_agents(), spec.target_agents(), spec.bus_width)
        # skipped clocks are idle clocks: the monitor's total and idle counts
        # are its own counts plus the clocks skipped (one adder each, here)
        own = {"mon_total": Signal(Monitor.WIDTH, name="mon_own_total"),
               "mon_idle": Signal(Monitor.WIDTH, name="mon_own_idle")}
        mon.bind_outputs(lambda name: own[name] if name in own else getattr(self, name))
        skipped = Signal(Monitor.WIDTH)
        with m.If(self.skip != 0):
            m.d.sync += skipped.eq(skipped + self.skip)
        m.d.comb += [self.mon_total.eq(own["mon_total"] + skipped),
                     self.mon_idle.eq(own["mon_idle"] + skipped)]
        chk = Checker(n_agents, n_masters, spec.bus_width)
        chk.bind_outputs(self.chk_error, self.chk_first_cycle, self.cycle)
        m.submodules.monitor = mon
        m.submodules.checker = chk

        agents = [bridge.pci_m, bridge.pci_t]
        masters = [bridge]
        for spec_c, card in zip(spec.cards, self.cards):
            m.submodules[f"slot{spec_c.slot}"] = card
            agents += [card.pci_t, card.pci_m]
            masters.append(card)
            m.d.comb += card.idsel.eq(res.bus.ad[16 + spec_c.slot])
        for agent, port in zip(agents, res.agents):
            self._join(m, agent, port)
        for i, master in enumerate(masters):
            m.d.comb += [arb.req[i].eq(master.req), master.gnt.eq(arb.gnt[i])]
        m.d.comb += arb.bus.eq(res.bus)
        for i in range(n_masters):
            m.d.comb += getattr(self, f"arb_wait_max{i}").eq(arb.wait_max[i])

        # interrupt routing: slot N INTA# → system line (N-1) % 4
        irq = [0, 0, 0, 0]
        for spec_c, card in zip(spec.cards, self.cards):
            line = (spec_c.slot - 1) % 4
            irq[line] = irq[line] | card.inta
        m.d.comb += self.irq.eq(Cat(*irq))

        # CPU side and test knobs
        for name in ("cpu_seq", "cpu_op", "cpu_addr", "cpu_wdata", "cpu_be",
                     "dram_latency", "dram_wait_every", "dram_wait_len", "dram_retry_every",
                     "dram_abort_every"):
            m.d.comb += getattr(bridge, name).eq(getattr(self, name))
        m.d.comb += [self.cpu_ack.eq(bridge.cpu_ack), self.cpu_rdata.eq(bridge.cpu_rdata),
                     self.cpu_status.eq(bridge.cpu_status)]

        # monitor and checker
        master_agent = spec.master_agents()
        gnt_of_agent = [0] * (n_agents + 1)
        for i, a in enumerate(master_agent):
            gnt_of_agent[a + 1] = arb.gnt[i]
        m.d.comb += [
            mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
            mon.target_of.eq(res.devsel_owner),
            chk.bus.eq(res.bus), chk.contention.eq(res.contention), chk.gnt.eq(arb.gnt),
            chk.gnt_of_agent.eq(Cat(*gnt_of_agent)), chk.master_of.eq(res.frame_owner),
        ]

        # cycle counter and attention counter
        m.d.sync += self.cycle.eq(self.cycle + 1 + self.skip)
        prev_ack, prev_irq, prev_err = Signal(), Signal(4), Signal(len(chk.rules))
        m.d.sync += [prev_ack.eq(self.cpu_ack), prev_irq.eq(self.irq),
                     prev_err.eq(chk.error)]
        wire_event = self._wires(m)
        attn_due = ((prev_ack != self.cpu_ack) | (prev_irq != self.irq)
                    | (prev_err != chk.error) | wire_event)
        with m.If(attn_due):
            m.d.sync += self.attn.eq(self.attn + 1)
        self._quiet(m, bridge, arb, mon, chk, attn_due)
        return m

    def _wires(self, m):
        """Each NIC's ``phy`` to its wire port; returns 'a wire event this clock'."""
        events = []
        for spec_c, card in zip(self.spec.cards, self.cards):
            port = self.wire_ports.get(spec_c.slot)
            if port is None:
                continue
            m.submodules[f"wire{spec_c.slot}"] = port
            s = spec_c.slot
            m.d.comb += [port.tx.valid.eq(card.phy.tx.valid),
                         port.tx.payload.eq(card.phy.tx.payload),
                         card.phy.rx.valid.eq(port.rx.valid),
                         card.phy.rx.payload.eq(port.rx.payload),
                         port.cycle.eq(self.cycle),
                         port.tx_taken.eq(getattr(self, f"wire{s}_tx_taken")),
                         port.rx_posted.eq(getattr(self, f"wire{s}_rx_posted")),
                         getattr(self, f"wire{s}_tx_frames").eq(port.tx_frames),
                         getattr(self, f"wire{s}_tx_dropped").eq(port.tx_dropped),
                         getattr(self, f"wire{s}_rx_frames").eq(port.rx_frames)]
            events.append(port.event)
        if not events:
            return Const(0, 1)
        event = Cat(*events).any()
        with m.If(event):
            m.d.sync += self.wire_events.eq(self.wire_events + 1)
        # attention one clock after the counters moved, as for cpu_ack, irq
        # and chk_error: a host woken by one source then sees no change of
        # another that its own attention has not announced yet
        prev = Signal(16)
        m.d.sync += prev.eq(self.wire_events)
        return prev != self.wire_events

    def _quiet(self, m, bridge, arb, mon, chk, attn_due) -> None:
        """``quiet``: every block at rest (bridge, arbiter, monitor, checker,
        cards), no attention due;
        ``quiet_for``: the least of the cards' (a card with no timer running
        gives all ones). A block without a ``quiet`` output is never quiet,
        so a machine with one is never skipped."""
        cards = self.cards
        parts = [quiet_of(b) for b in (bridge, arb, mon, chk)] + [~attn_due]
        parts += [quiet_of(card) for card in cards]
        parts += [port.quiet for port in self.wire_ports.values()]
        m.d.comb += self.quiet.eq(Cat(*parts).all())
        bound = Const(2**32 - 1, 32)
        for card in cards:
            nxt = Signal(32)
            m.d.comb += [card.skip.eq(self.skip),
                         nxt.eq(Mux(card.quiet_for < bound, card.quiet_for, bound))]
            bound = nxt
        m.d.comb += self.quiet_for.eq(bound)

    @staticmethod
    def _join(m, agent, port):
        """Connect a card's ``Out(AgentSignature)`` to a resolver slot."""
        m.d.comb += [port.o.eq(agent.o), port.oe.eq(agent.oe), agent.bus.eq(port.bus)]
