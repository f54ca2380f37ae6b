"""What a card presents to its PCI slot, and the wiring every card shares.

A card component has the signature :data:`CardSignature`: its target and
initiator agents (``pci_t``, ``pci_m``, each a set of o/oe drivers plus the
resolved bus), its REQ#/GNT# pair, its IDSEL and its INTA#. ``hw.machine``
plugs any such component into a slot.

Shared wiring a card's ``elaborate`` calls:

- :func:`connect_slot` — agents, REQ#/GNT#, IDSEL, latency timer, Bus Master
  Enable;
- :func:`report_aborts` — the initiator's master/target aborts into the
  target's configuration status (Received Master Abort / Received Target
  Abort, PCI 2.3 §6.2.3);
- :func:`drive_quiet` — the card's ``quiet``/``quiet_for`` from its blocks'
  (exact idle skipping);
- :func:`drive_inta` — INTA# gated by the command register's Interrupt
  Disable, and the status register's Interrupt Status (§6.2.2, §6.2.3).

The register read pipeline (one clock from request to ``rsp_valid``) is
:class:`hw.cards.regfile.RegisterFile`'s.
"""

from amaranth.hdl import Cat, Const, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..pci.bus import AgentSignature, agent_signature
from ..pci.initiator import Status
from ..pci.pcireg import COMMAND, STATUS

__all__ = ["CardSignature", "card_signature", "connect_slot", "report_aborts", "drive_inta",
           "quiet_of", "drive_quiet", "M66_CAPABLE"]


def card_signature(width: int = 32) -> wiring.Signature:
    """A card's signature on a bus whose master agent is ``width`` bits wide
    (64: a 64-bit capable card on a 64-bit bus, PCI 2.3 §3.8; its register
    target stays a 32-bit agent)."""
    return wiring.Signature({
        "pci_t": Out(AgentSignature),
        "pci_m": Out(agent_signature(width)),
        **_COMMON})


_COMMON = {
    "req":   Out(1),
    "gnt":   In(1),
    "idsel": In(1),
    "inta":  Out(1),
    # exact idle skipping (hw.machine, docs/simulation.md)
    "quiet":     Out(1),    # the next edge changes nothing but the card's timers
    "quiet_for": Out(32),   # ... for this many edges (all ones: no timer running)
    "skip":      In(32),    # this edge counts as skip + 1 clocks for those timers
}

#: the signature of a card on a 32-bit bus (every card's, unless 64-bit)
CardSignature = card_signature(32)


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
        initiator.master_enable.eq(target.command[COMMAND.bus_master.lsb]),
    ]


def report_aborts(m, initiator, target) -> None:
    """When a command of ``initiator`` ends in master abort or target abort,
    pulse Received Master Abort / Received Target Abort into ``target``'s
    status register (``set_status``; PCI 2.3 §6.2.3). Drives all of
    ``target.set_status``: a card calling this sets no other status bits."""
    done = initiator.done
    with m.If(done & (initiator.done_status == Status.MASTER_ABORT)):
        m.d.comb += target.set_status.eq(STATUS.received_master_abort.mask)
    with m.If(done & (initiator.done_status == Status.TARGET_ABORT)):
        m.d.comb += target.set_status.eq(STATUS.received_target_abort.mask)


def drive_inta(m, card, target, pending, *, status=None) -> None:
    """INTA# = ``pending`` unless the command register's Interrupt Disable is
    set (PCI 2.3 §6.2.2); the status register's Interrupt Status shows
    ``status`` (default ``pending``), whatever Interrupt Disable says (§6.2.3)."""
    m.d.comb += [card.inta.eq(pending & ~target.command[COMMAND.intx_disable.lsb]),
                 target.int_status.eq(pending if status is None else status)]


def quiet_of(block):
    """``block.quiet`` (or its ``idle``), or a constant 0 — never at rest —
    for a block that does not say: a machine holding one is never skipped."""
    for name in ("quiet", "idle"):
        q = getattr(block, name, None)
        if q is not None:
            return q
    return Const(0, 1)


def drive_quiet(m, card, *parts, quiet_for=None) -> None:
    """``card.quiet`` = every one of ``parts`` (blocks or 1-bit values) at
    rest; ``card.quiet_for`` = ``quiet_for`` (edges until the card's next
    timer event), all ones when no timer runs."""
    bits = [p if isinstance(p, Value) else quiet_of(p) for p in parts]
    m.d.comb += card.quiet.eq(Cat(*bits).all())
    m.d.comb += card.quiet_for.eq(2**32 - 1 if quiet_for is None else quiet_for)


#: 66 MHz capability (the M66EN pin and the status register's 66MHz Capable
#: bit, PCI 2.3 §7.5.1 and §6.2.3) per card kind. A segment runs at 66 MHz
#: only if every device on it is capable (hw/machine.py). Sources: the
#: BCM5820 (Broadcom BCM5820 product brief: 64-bit/66 MHz PCI) and the 82544
#: (Intel 82544EI datasheet: 64-bit/66 MHz PCI) are; the Hifn 7751 is a
#: 32-bit/33 MHz part (Hifn 7751 datasheet); a PCI-PCI bridge in the manner
#: of the 21152 is a 33 MHz part (Intel 21152 datasheet; a ``ppb`` card may
#: say ``m66``, as a 21154 would); the DMA test card is the model's own and
#: runs at either clock.
M66_CAPABLE = {
    "dmatest": True,
    "bcm5820": True,
    "em82544": True,
    "hifn7751": False,
    "ppb": False,
    "quad7751": False,
}
