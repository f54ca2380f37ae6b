"""The whole PCI machine as one component: bridge, DRAM, arbiter, cards.

A machine is described by a JSON-able dict (:class:`MachineSpec`), so the
same description can be elaborated here for pysim and in a separate process
for Verilator. Agents on the bus, in resolver order:

    0  bridge.cpu    host bridge initiator (the CPU's MMIO/config cycles)
    1  bridge.dram   host DRAM target
    then per card, by slot: slotN.target, slotN.master

Masters, in arbiter order: the bridge, then each card by slot. Card in slot
N has IDSEL = AD[16+N] and its INTA# on system line (N-1) % 4 (INTA#..INTD#).

A card may be a PCI-PCI bridge (``BRIDGE_KINDS``: ``ppb`` with its cards in
``params["cards"]``, ``quad7751``) with a bus segment behind it: each segment
(:class:`Segment`, ``MachineSpec.segments()``) has its resolver, monitor and
checker, its ports prefixed with the bridge card's path (``slot2_mon_total``,
``slot2_chk_error``); ``chk_error`` ORs every segment's rule by rule. A
bridge card's INTA#..INTD# go onto lines (N-1+pin) % 4. Every segment runs on
the one clock; M66EN (hw/cards/slot.py ``M66_CAPABLE``) drops a 66 MHz bus
holding a 33 MHz device to 33 MHz (docs/pci.md, "Bus segments in the machine").

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

from amaranth.hdl import (Module, Signal, Cat, Const, Mux, Elaboratable, ClockDomain,
                          ClockSignal, ResetSignal)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pci.arbiter import Arbiter
from .pci.bus import Resolver
from .pci.host_bridge import HostBridge
from .pci.monitor import Monitor, Checker, CLASSES, rules
from .cards.slot import M66_CAPABLE, quiet_of
from .net.wire_port import WirePort, wire_port_names
import functools
import importlib
import inspect
import json

__all__ = ["Machine", "MachineSpec", "CardSpec", "CARD_KINDS", "BRIDGE_KINDS", "Segment",
           "card_class", "wire_slots", "secondary_cards"]

#: card kind → "module:Class" of its component, constructed as ``Class(**params)``;
#: the component has ``hw.cards.slot.CardSignature``.
CARD_KINDS = {
    "dmatest": "hw.cards.dmatest:DmaTestCard",
    "bcm5820": "hw.cards.bcm5820:Bcm5820",
    "hifn7751": "hw.cards.hifn7751:Hifn7751",
    "em82544": "hw.cards.em8254x:Em8254x",
    # PCI-to-PCI bridges: a card whose devices sit on a bus segment of their own
    "ppb": "hw.pci.bridge:PciBridge",
    "quad7751": "hw.cards.quad7751:Quad7751",
}

#: card kinds that are a PCI-to-PCI bridge with cards behind it: ``ppb``
#: (``params["cards"]``: the cards on its secondary bus, each ``slot`` a
#: device number 0..15; ``params["m66"]``: a 66 MHz capable bridge) and
#: ``quad7751`` (four Hifn 7751 behind an on-card bridge, hw/cards/quad7751.py)
BRIDGE_KINDS = ("ppb", "quad7751")
#: device numbers on a secondary bus: IDSEL = AD[16 + d] (PPB 1.1 §3.2.5.3)
SECONDARY_DEVICES = range(0, 16)


def _slot_params(card: CardSpec, width: int, clock_mhz: int) -> dict:
    """A card's constructor arguments: its spec's, plus what the slot tells
    it — ``bus_width=64`` for a 64-bit master on a 64-bit bus, and the bus
    clock to a card whose timers or rates count bus clocks (``bus_mhz``,
    ``clock_mhz``: the clock its segment runs at, whatever the spec said,
    since M66EN may have dropped it to 33 MHz). A bridge gets its secondary
    masters and device numbers."""
    if card.kind in BRIDGE_KINDS:
        devices = tuple(c.slot for c in secondary_cards(card))
        return {"masters": len(devices), "devices": devices, "m66": m66_capable(card)}
    params = dict(card.params)
    if width == 64:
        params["bus_width"] = 64
    names = inspect.signature(card_class(card.kind)).parameters
    for name in ("bus_mhz", "clock_mhz"):
        if name in names:
            params[name] = clock_mhz
    return params


def secondary_cards(card: "CardSpec") -> list["CardSpec"]:
    """The cards behind a bridge card (``BRIDGE_KINDS``), by device number;
    [] for any other card."""
    if card.kind == "ppb":
        cards = card.params.get("cards", [])
    elif card.kind in BRIDGE_KINDS:
        cards = card_class(card.kind).secondary_cards(card.params)
    else:
        return []
    return sorted((c if isinstance(c, CardSpec) else CardSpec(**c) for c in cards),
                  key=lambda c: c.slot)


def m66_capable(card: "CardSpec") -> bool:
    """Whether the card drives M66EN high: 66 MHz capable (PCI 2.3 §7.5.1;
    the table in hw/cards/slot.py, a ``ppb``'s ``m66`` parameter)."""
    if card.kind == "ppb":
        return bool(card.params.get("m66", False))
    return M66_CAPABLE[card.kind]


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
    """Slots of bus 0 holding a card with a ``phy`` port: each gets a wire port."""
    return [c.slot for c, w in zip(spec.cards, spec.card_widths())
            if c.kind not in BRIDGE_KINDS
            and _has_phy(c.kind, json.dumps(_slot_params(c, w, spec.clock_mhz),
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
class Segment:
    """One bus segment: bus 0 (the host bridge's) or the secondary bus of a
    bridge card. ``index`` is the bus number enumeration gives it (depth
    first, in slot order: drivers/pci.py); ``name`` is "" for bus 0, else the
    path of its bridge card (``slot3``, ``slot3_1`` for a bridge at device 1
    behind it), and prefixes its flat ports (``slot3_mon_total``).

    Agents in resolver order: bus 0 ``bridge.cpu``, ``bridge.dram``; a
    secondary ``<name>.up`` (the bridge's secondary target, which takes
    upstream cycles) and ``<name>.down`` (its secondary initiator); then per
    card ``<path>.target`` and ``<path>.master``. Masters in arbiter order:
    the bridge, then the cards by slot/device number."""
    index: int
    name: str
    cards: list
    width: int
    parent: int | None = None
    bridge: CardSpec | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.name else ""

    def path(self, card: CardSpec) -> str:
        return f"slot{card.slot}" if not self.name else f"{self.name}_{card.slot}"

    def agent_names(self) -> list[str]:
        names = ["bridge.cpu", "bridge.dram"] if not self.name else \
            [f"{self.name}.up", f"{self.name}.down"]
        for c in self.cards:
            names += [f"{self.path(c)}.target", f"{self.path(c)}.master"]
        return names

    def master_agents(self) -> list[int]:
        """Agent index of each master, in arbiter order."""
        return [0 if not self.name else 1] + [3 + 2 * k for k in range(len(self.cards))]

    def target_agents(self) -> list[int]:
        return [1 if not self.name else 0] + [2 + 2 * k for k in range(len(self.cards))]

    def master_names(self) -> list[str]:
        return ["bridge" if not self.name else f"{self.name}.bridge"] + \
            [self.path(c) for c in self.cards]

    def card_widths(self) -> list[int]:
        """Width of each card's master: 64 for a 64-bit capable card (its
        class's ``PCI_WIDTH``) on a 64-bit bus, else 32 (a bridge's agents
        are 32-bit: hw/pci/bridge.py)."""
        return [32 if c.kind in BRIDGE_KINDS else
                min(self.width, getattr(card_class(c.kind), "PCI_WIDTH", 32))
                for c in self.cards]

    def agent_widths(self) -> list[int]:
        """Width of each agent, in resolver order. A card's register target
        is a 32-bit agent everywhere (registers take single dwords)."""
        widths = [self.width, self.width] if not self.name else [32, 32]
        for w in self.card_widths():
            widths += [32, w]
        return widths

    def m66(self) -> bool:
        """Every device on the segment 66 MHz capable (M66EN high, PCI 2.3
        §7.5.1); bus 0's host bridge is, when the board offers 66 MHz."""
        return all(m66_capable(c) for c in self.cards) and \
            (self.bridge is None or m66_capable(self.bridge))


@dataclass
class MachineSpec:
    #: the clock bus 0 runs at: 33, or 66 when every device on it is 66 MHz
    #: capable (M66EN, PCI 2.3 §7.5.1): a 66 MHz spec with a 33 MHz card on
    #: bus 0 runs at 33 MHz. Every segment runs on this one clock (a 66 MHz
    #: bus with a 33 MHz-only segment behind a 66 MHz bridge is refused)
    clock_mhz: int = 33
    dram_bytes: int = 4 << 20
    cards: list[CardSpec] = field(default_factory=list)
    blackbox_dram: bool = False
    #: AD lines of bus 0: 32, or 64 with the PCI 2.3 §3.8 extension (the
    #: host bridge is then a 64-bit agent, and so is each 64-bit card's
    #: master); a secondary bus is 32-bit
    bus_width: int = 32

    def __post_init__(self):
        self.cards = [c if isinstance(c, CardSpec) else CardSpec(**c) for c in self.cards]
        if self.clock_mhz not in PERIOD_PS:
            raise ValueError(f"bus clock must be 33 or 66 MHz, not {self.clock_mhz}")
        if self.bus_width not in (32, 64):
            raise ValueError(f"bus width must be 32 or 64 bits, not {self.bus_width}")
        _check_cards(self.cards, range(1, 16), "slot")     # IDSEL = AD[16+slot]
        self.cards.sort(key=lambda c: c.slot)
        #: what was asked for; ``clock_mhz`` is what M66EN lets bus 0 run at
        self.offered_mhz = self.clock_mhz
        segs = self.segments()
        if self.clock_mhz == 66 and not segs[0].m66():
            self.clock_mhz = 33
        for seg in segs[1:]:
            if self.clock_mhz == 66 and not seg.m66():
                raise ValueError(
                    f"bus {seg.index} behind {seg.name} holds a 33 MHz device behind a "
                    f"66 MHz bridge on a 66 MHz bus: this model runs every segment on "
                    f"one clock")

    @property
    def period_ps(self) -> int:
        return PERIOD_PS[self.clock_mhz]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MachineSpec":
        return cls(**d)

    def segments(self) -> list[Segment]:
        """Bus 0 and every secondary bus, in bus-number order (depth first)."""
        segs = [Segment(0, "", list(self.cards), self.bus_width)]

        def walk(k):
            for c in segs[k].cards:
                if c.kind in BRIDGE_KINDS:
                    segs.append(Segment(len(segs), segs[k].path(c), secondary_cards(c), 32,
                                        parent=k, bridge=c))
                    walk(len(segs) - 1)
        walk(0)
        return segs

    def segment_clocks(self) -> list[int]:
        """The clock of each segment in MHz, in bus-number order."""
        return [self.clock_mhz] * len(self.segments())

    # bus 0's agents (segment 0): the host contract's unprefixed ports
    def agent_names(self) -> list[str]:
        return self.segments()[0].agent_names()

    def master_agents(self) -> list[int]:
        """Agent index of each master, in arbiter order."""
        return self.segments()[0].master_agents()

    def target_agents(self) -> list[int]:
        return self.segments()[0].target_agents()

    def master_names(self) -> list[str]:
        return self.segments()[0].master_names()

    def card_widths(self) -> list[int]:
        """Width of each bus-0 card's master on this bus: 64 for a 64-bit
        capable card (its class's ``PCI_WIDTH``) on a 64-bit bus, else 32."""
        return self.segments()[0].card_widths()

    def agent_widths(self) -> list[int]:
        """Width of each bus-0 agent, in resolver order."""
        return self.segments()[0].agent_widths()

    def ports(self) -> list[tuple[str, str, int]]:
        """Flat ports of :class:`Machine` as (name, "in"/"out", width)."""
        return _port_list(self)


def _check_cards(cards, slots, what) -> None:
    numbers = [c.slot for c in cards]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"two cards in one {what}: {numbers}")
    for c in cards:
        if c.slot not in slots:
            raise ValueError(f"{what} {c.slot} outside {slots.start}..{slots.stop - 1}")
        if c.kind not in CARD_KINDS:
            raise ValueError(f"unknown card kind {c.kind!r}")
        if c.kind in BRIDGE_KINDS:
            behind = secondary_cards(c)
            _check_cards(behind, SECONDARY_DEVICES, "device behind a bridge")
            for b in behind:
                if b.kind not in BRIDGE_KINDS and "phy" in _phy_probe(b):
                    raise ValueError(f"a {b.kind} (a NIC) behind a bridge is not modelled")


def _phy_probe(card: CardSpec) -> set:
    return {"phy"} if _has_phy(card.kind, json.dumps(_slot_params(card, 32, 33),
                                                      sort_keys=True)) else set()


def _port_list(spec: MachineSpec):
    ports = [
        ("cpu_seq", "in", 1), ("cpu_op", "in", 2), ("cpu_addr", "in", 32),
        ("cpu_wdata", "in", 32), ("cpu_be", "in", 4),
        ("cpu_ack", "out", 1), ("cpu_rdata", "out", 32), ("cpu_status", "out", 2),
        ("dram_latency", "in", 4), ("dram_wait_every", "in", 8),
        ("dram_wait_len", "in", 5), ("dram_retry_every", "in", 8),
        ("dram_abort_every", "in", 8), ("dram_delayed", "in", 8),
        ("irq", "out", 4), ("attn", "out", 16), ("cycle", "out", 64),
        ("chk_error", "out", len(rules(spec.bus_width))), ("chk_first_cycle", "out", 64),
        ("mon_total", "out", Monitor.WIDTH),
        # exact idle skipping (docs/simulation.md): the machine is quiet (the
        # next clock edge would change nothing but free-running counters and
        # timers) for ``quiet_for`` more edges; a backend may then make one edge
        # with ``skip`` = k - 1 (k <= quiet_for) that counts as k clocks
        ("skip", "in", 32), ("quiet", "out", 1), ("quiet_for", "out", 32),
    ]
    segs = spec.segments()
    ports += _segment_ports(segs[0])
    if len(segs) > 1:        # bus 0's own checker bits (``chk_error`` ORs every segment's)
        ports.append(("chk_error_bus0", "out", len(rules(spec.bus_width))))
    for seg in segs[1:]:
        p = seg.prefix
        ports += [(f"{p}mon_total", "out", Monitor.WIDTH),
                  (f"{p}chk_error", "out", len(rules(seg.width)))]
        ports += _segment_ports(seg)
    slots = wire_slots(spec)
    for slot in slots:
        ports += [(name, d, w) for name, (d, w) in wire_port_names(slot).items()]
    if slots:
        ports.append(("wire_events", "out", 16))
    return ports


def _segment_ports(seg: Segment):
    """A segment's arbiter and monitor ports (bus 0's unprefixed)."""
    p = seg.prefix
    ports = [(f"{p}arb_wait_max{i}", "out", 16) for i in range(len(seg.master_names()))]
    ports += [(f"{p}mon_{c}", "out", Monitor.WIDTH) for c in CLASSES]
    for a in seg.master_agents():
        ports += [(f"{p}mon_a{a}_{c}", "out", Monitor.WIDTH) for c in CLASSES[1:]]
    for a in seg.target_agents():
        ports.append((f"{p}mon_t{a}_data", "out", Monitor.WIDTH))
    if seg.width == 64:        # data bytes moved, per master and per target
        ports += [(f"{p}mon_a{a}_bytes", "out", Monitor.WIDTH) for a in seg.master_agents()]
        ports += [(f"{p}mon_t{a}_bytes", "out", Monitor.WIDTH) for a in seg.target_agents()]
    return ports


class Machine(wiring.Component):
    """The machine. ``reset_cycles`` > 0 (the Verilog export,
    :func:`sim.experiment.export_verilog`): the machine makes its own reset,
    high for its first ``reset_cycles`` rising edges (:meth:`_power_on`),
    and has no ``rst`` input; 0 (pysim): the ``sync`` domain is the
    simulator's, never reset (every register starts at its reset value)."""

    def __init__(self, spec: MachineSpec | dict, reset_cycles: int = 0):
        if isinstance(spec, dict):
            spec = MachineSpec.from_dict(spec)
        self.spec = spec
        self.reset_cycles = reset_cycles
        ports = {name: (In if d == "in" else Out)(w) for name, d, w in _port_list(spec)}
        if reset_cycles:
            ports["clk"] = In(1)          # the clock of the sync domain defined here
        super().__init__(ports)
        self.bridge = HostBridge(spec.dram_bytes, blackbox_dram=spec.blackbox_dram,
                                 width=spec.bus_width)
        #: bus 0, then each bridge's secondary (bus-number order)
        self.segments = spec.segments()
        #: per segment, the component of each card on it (a bridge card's is
        #: its :class:`hw.pci.bridge.PciBridge`)
        self.seg_cards = [[card_class(c.kind)(**_slot_params(c, w, spec.clock_mhz))
                           for c, w in zip(seg.cards, seg.card_widths())]
                          for seg in self.segments]
        self.cards = self.seg_cards[0]
        #: segment index → the bridge component whose secondary it is
        self.seg_bridge = {}
        for k, seg in enumerate(self.segments):
            for c, card in zip(seg.cards, self.seg_cards[k]):
                if c.kind in BRIDGE_KINDS:
                    sub = next(s for s in self.segments if s.parent == k and s.bridge is c)
                    self.seg_bridge[sub.index] = card
        #: slot → the wire port of the NIC there
        self.wire_ports = {slot: WirePort(slot, spec.period_ps, blackbox=spec.blackbox_dram)
                           for slot in wire_slots(spec)}
        self.resolvers = [Resolver(len(seg.agent_names()), seg.width, seg.agent_widths())
                          for seg in self.segments]
        self.resolver = self.resolvers[0]
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
        for k, seg in enumerate(self.segments):
            if k:
                sec = self.resolvers[k].lines
                br = self.seg_bridge[k]
                groups[f"bus {k} ({seg.name})"] = {
                    "lines": [sec[n] for n in ("frame", "irdy", "trdy", "stop", "devsel",
                                               "ad", "cbe_n")],
                    "bridge": [br.down.delayed, br.down.issue, br.up.delayed, br.up.issue,
                               br.arbiter.gnt, br.int_out]}
            for spec_c, card in zip(seg.cards, self.seg_cards[k]):
                if spec_c.kind in BRIDGE_KINDS:
                    continue
                name = f"{seg.path(spec_c)} {spec_c.kind}"
                own = card.vcd_traces() if hasattr(card, "vcd_traces") else {}
                groups[name] = {"target": [card.target.state] if hasattr(card, "target") else [],
                                "initiator": [card.initiator.state]
                                if hasattr(card, "initiator") else [],
                                **own}
        return groups

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        if self.reset_cycles:
            self._power_on(m, self.clk, self.reset_cycles)
        m.submodules.bridge = bridge = self.bridge
        m.submodules.arbiter = arb = self.arbiter
        skipped = Signal(Monitor.WIDTH)
        with m.If(self.skip != 0):
            m.d.sync += skipped.eq(skipped + self.skip)
        blocks, errors, firsts = [bridge, arb], [], []
        for k, seg in enumerate(self.segments):
            mon, chk, err, first = self._segment(m, k, seg, skipped)
            blocks += [mon, chk]
            errors.append(err)
            firsts.append(first)
        if len(self.segments) > 1:
            # every segment's checker: rule by rule (RULES_64 extends RULES),
            # the first cycle of the earliest
            m.d.comb += self.chk_error.eq(_or_all(errors))
            first = Const(0, 64)
            for err, cyc in reversed(list(zip(errors, firsts))):
                first = Mux((err != 0) & ((first == 0) | (cyc < first)), cyc, first)
            m.d.comb += self.chk_first_cycle.eq(first)

        masters = [bridge]
        for spec_c, card in zip(spec.cards, self.cards):
            masters.append(card)
        for i, master in enumerate(masters):
            req, gnt = _req_gnt(master)
            m.d.comb += [arb.req[i].eq(req), gnt.eq(arb.gnt[i])]
        m.d.comb += arb.bus.eq(self.resolver.bus)
        for i in range(len(masters)):
            m.d.comb += getattr(self, f"arb_wait_max{i}").eq(arb.wait_max[i])
        m.d.comb += self.irq.eq(self._interrupts(m))

        # CPU side and test knobs
        for name in ("cpu_seq", "cpu_op", "cpu_addr", "cpu_wdata", "cpu_be",
                     "dram_latency", "dram_wait_every", "dram_wait_len", "dram_retry_every",
                     "dram_abort_every", "dram_delayed"):
            m.d.comb += getattr(bridge, name).eq(getattr(self, name))
        m.d.comb += [self.cpu_ack.eq(bridge.cpu_ack), self.cpu_rdata.eq(bridge.cpu_rdata),
                     self.cpu_status.eq(bridge.cpu_status)]

        # cycle counter and attention counter
        m.d.sync += self.cycle.eq(self.cycle + 1 + self.skip)
        prev_ack, prev_irq, prev_err = Signal(), Signal(4), Signal(len(self.chk_error))
        m.d.sync += [prev_ack.eq(self.cpu_ack), prev_irq.eq(self.irq),
                     prev_err.eq(self.chk_error)]
        wire_event = self._wires(m)
        attn_due = ((prev_ack != self.cpu_ack) | (prev_irq != self.irq)
                    | (prev_err != self.chk_error) | wire_event)
        with m.If(attn_due):
            m.d.sync += self.attn.eq(self.attn + 1)
        self._quiet(m, blocks, attn_due)
        return m

    @staticmethod
    def _power_on(m, clk, cycles: int) -> None:
        """The ``sync`` domain with its reset made here: high for the first
        ``cycles`` rising edges, then low for good. A down-counter in a
        reset-less domain on the same clock drives it, so the reset is a
        register, not an input: Verilator evaluates logic that reads a
        top-level input on every ``eval()`` (both clock edges), and every
        register's next state reads the reset; from a register it is
        evaluated once per rising edge. Held for the same edges as a
        harness's ``rst`` was (``sim.verilator.runner.RESET_CYCLES``), so a
        run is cycle for cycle what it was."""
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
        left = Signal(range(cycles + 1), init=cycles)
        with m.If(left != 0):
            m.d.por += left.eq(left - 1)
        m.d.comb += ResetSignal("sync").eq(left != 0)

    def _segment(self, m, k, seg, skipped):
        """One segment's resolver, agents, monitor and checker; its secondary
        arbiter's GNT# (a bridge's). Returns (monitor, checker, its error
        bits, its first-violation cycle)."""
        res, p = self.resolvers[k], seg.prefix
        n_agents = len(seg.agent_names())
        m.submodules[f"{p}resolver"] = res
        mon = Monitor(n_agents, seg.master_agents(), seg.target_agents(), seg.width)
        # skipped clocks are idle clocks: the monitor's total and idle counts
        # are its own counts plus the clocks skipped (one adder each, here)
        own = {"mon_total": Signal(Monitor.WIDTH, name=f"{p}mon_own_total"),
               "mon_idle": Signal(Monitor.WIDTH, name=f"{p}mon_own_idle")}
        mon.bind_outputs(lambda name: own[name] if name in own else getattr(self, p + name))
        m.d.comb += [getattr(self, f"{p}mon_total").eq(own["mon_total"] + skipped),
                     getattr(self, f"{p}mon_idle").eq(own["mon_idle"] + skipped)]
        chk = Checker(n_agents, len(seg.master_names()), seg.width)
        if len(self.segments) == 1:
            err, first = self.chk_error, self.chk_first_cycle
        else:
            err = getattr(self, f"{p}chk_error" if k else "chk_error_bus0")
            first = Signal(64, name=f"{p}chk_first")
        chk.bind_outputs(err, first, self.cycle)
        m.submodules[f"{p}monitor"] = mon
        m.submodules[f"{p}checker"] = chk

        cards = self.seg_cards[k]
        if k == 0:
            agents, gnt = [self.bridge.pci_m, self.bridge.pci_t], self.arbiter.gnt
        else:
            br = self.seg_bridge[k]
            agents, gnt = [br.sec_t, br.sec_m], br.sec_arb_gnt
        for i, (spec_c, card) in enumerate(zip(seg.cards, cards)):
            m.submodules[seg.path(spec_c)] = card
            if spec_c.kind in BRIDGE_KINDS:
                agents += [card.pri_t, card.pri_m]
            else:
                agents += [card.pci_t, card.pci_m]
            m.d.comb += card.idsel.eq(res.bus.ad[16 + spec_c.slot])
            if spec_c.kind not in BRIDGE_KINDS and hasattr(card, "target"):
                # M66EN: the status register's 66MHz Capable bit, per card kind
                m.d.comb += card.target.m66.eq(int(m66_capable(spec_c)))
            if k:
                req, card_gnt = _req_gnt(card)
                m.d.comb += [br.sec_req[i].eq(req), card_gnt.eq(br.sec_gnt[i])]
        for agent, port in zip(agents, res.agents):
            self._join(m, agent, port)
        if k:
            for i in range(len(seg.master_names())):
                m.d.comb += getattr(self, f"{p}arb_wait_max{i}").eq(br.arbiter.wait_max[i])

        gnt_of_agent = [0] * (n_agents + 1)
        for i, a in enumerate(seg.master_agents()):
            gnt_of_agent[a + 1] = gnt[i]
        m.d.comb += [
            mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
            mon.target_of.eq(res.devsel_owner),
            chk.bus.eq(res.bus), chk.contention.eq(res.contention), chk.gnt.eq(gnt),
            chk.gnt_of_agent.eq(Cat(*gnt_of_agent)), chk.master_of.eq(res.frame_owner),
        ]
        return mon, chk, err, first

    def _interrupts(self, m):
        """Bus 0: slot N's INTA# (a bridge card's INTA#..INTD#: its swizzled
        outputs, PPB 1.1 §9.1) onto system line (N-1+pin) % 4; behind a
        bridge, each device's pins into the bridge's swizzle."""
        for k, seg in enumerate(self.segments[1:], start=1):
            br = self.seg_bridge[k]
            for i, (spec_c, card) in enumerate(zip(seg.cards, self.seg_cards[k])):
                pins = card.int_out if spec_c.kind in BRIDGE_KINDS else Cat(card.inta, 0, 0, 0)
                m.d.comb += br.dev_int[i].eq(pins)
        irq = [0, 0, 0, 0]
        for spec_c, card in zip(self.spec.cards, self.cards):
            pins = card.int_out if spec_c.kind in BRIDGE_KINDS else [card.inta]
            for pin in range(len(pins)):
                line = (spec_c.slot - 1 + pin) % 4
                irq[line] = irq[line] | pins[pin]
        return Cat(*irq)

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

    def _quiet(self, m, blocks, attn_due) -> None:
        """``quiet``: every block at rest (host bridge, arbiter, each
        segment's monitor and checker, every card and bridge card on every
        segment), no attention due;
        ``quiet_for``: the least of the cards' (a card with no timer running
        gives all ones). A block without a ``quiet`` output is never quiet,
        so a machine with one is never skipped."""
        parts = [quiet_of(b) for b in blocks] + [~attn_due]
        timed = []
        for seg, cards in zip(self.segments, self.seg_cards):
            for spec_c, card in zip(seg.cards, cards):
                parts.append(quiet_of(card))
                if spec_c.kind not in BRIDGE_KINDS:
                    timed.append(card)
        parts += [port.quiet for port in self.wire_ports.values()]
        m.d.comb += self.quiet.eq(Cat(*parts).all())
        bound = Const(2**32 - 1, 32)
        for card in timed:
            nxt = Signal(32)
            m.d.comb += [card.skip.eq(self.skip),
                         nxt.eq(Mux(card.quiet_for < bound, card.quiet_for, bound))]
            bound = nxt
        m.d.comb += self.quiet_for.eq(bound)

    @staticmethod
    def _join(m, agent, port):
        """Connect a card's ``Out(AgentSignature)`` to a resolver slot."""
        m.d.comb += [port.o.eq(agent.o), port.oe.eq(agent.oe), agent.bus.eq(port.bus)]


def _req_gnt(master):
    """A master's REQ#/GNT# pair (a bridge card's primary pair)."""
    if hasattr(master, "pri_req"):
        return master.pri_req, master.pri_gnt
    return master.req, master.gnt


def _or_all(values):
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out
