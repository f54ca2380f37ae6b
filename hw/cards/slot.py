"""What a card presents to its PCI slot, and the wiring every card shares.

A card component has the signature :data:`CardSignature`: its target and
initiator agents (``pci_t``, ``pci_m``, each a set of o/oe drivers plus the
resolved bus), its REQ#/GNT# pair, its IDSEL and its INTA#. ``hw.machine``
plugs any such component into a slot.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..pci.bus import AgentSignature
from ..pci.target import CMD_BUS_MASTER

__all__ = ["CardSignature", "connect_slot"]

CardSignature = wiring.Signature({
    "pci_t": Out(AgentSignature),
    "pci_m": Out(AgentSignature),
    "req":   Out(1),
    "gnt":   In(1),
    "idsel": In(1),
    "inta":  Out(1),
})


def connect_slot(m, card, target, initiator) -> None:
    """Join a card's target and initiator cores to its slot: both agents,
    REQ#/GNT#, IDSEL, and the configuration bits the initiator obeys (the
    latency timer and Bus Master Enable, PCI 2.3 §6.2.2–6.2.4)."""
    wiring.connect(m, wiring.flipped(card.pci_t), target.pci)
    wiring.connect(m, wiring.flipped(card.pci_m), initiator.pci)
    m.d.comb += [
        target.idsel.eq(card.idsel),
        card.req.eq(initiator.req), initiator.gnt.eq(card.gnt),
        initiator.latency_timer.eq(target.latency_timer),
        initiator.master_enable.eq((target.command & CMD_BUS_MASTER).any()),
    ]
