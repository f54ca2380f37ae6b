"""The quad-7751 card: four Hifn 7751s behind a PCI-PCI bridge on one card.

The OCF paper (Keromytis, Wright, de Raadt, *The Design of the OpenBSD
Cryptographic Framework*, USENIX 2003, §5.4) measured "a custom-made card
... four Hifn 7751 chips ... through a PCI bridge resident on the card".
Here that is a :class:`hw.pci.bridge.PciBridge` (the card's only device on
the slot's bus) with a 32-bit/33 MHz secondary bus holding four
:class:`hw.cards.hifn7751.Hifn7751` at secondary device numbers 0..3
(IDSEL = AD[16..19]). Each chip's INTA# goes through the bridge's swizzle
(PPB 1.1 §9.1: device d's INTA# onto the card's pin d mod 4), so the four
chips come out on the slot's INTA#..INTD#.

The bridge and the 7751 are 33 MHz parts (hw/cards/slot.py ``M66_CAPABLE``):
the card holds the bus it sits on at 33 MHz (M66EN).

hw/machine.py builds the card from ``CardSpec("quad7751", slot)``: the
bridge from this class, the chips from :meth:`Quad7751.secondary_cards`.
"""

from ..pci.bridge import PciBridge

__all__ = ["Quad7751", "DEVICES", "CHIP_KIND"]

#: the chips' device numbers on the card's secondary bus
DEVICES = (0, 1, 2, 3)
#: the card kind of each chip (hw/machine.py CARD_KINDS)
CHIP_KIND = "hifn7751"


class Quad7751(PciBridge):
    """The card's bridge, with one secondary master per chip."""

    def __init__(self, masters: int = len(DEVICES), devices=DEVICES, m66: bool = False):
        if masters != len(DEVICES) or tuple(devices) != DEVICES or m66:
            raise ValueError(f"a quad7751 has {len(DEVICES)} chips at devices {DEVICES}, "
                             f"behind a 33 MHz bridge")
        super().__init__(masters=masters, devices=devices)

    @staticmethod
    def secondary_cards(params: dict) -> list[dict]:
        """The chips behind the bridge, as card specs (hw.machine.CardSpec
        fields). The card takes no parameters."""
        if params:
            raise ValueError(f"a quad7751 takes no parameters, not {sorted(params)}")
        return [{"kind": CHIP_KIND, "slot": d, "params": {}} for d in DEVICES]
