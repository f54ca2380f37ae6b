"""Standard machines by name: what ``ocfsim`` builds for each command."""

from hw.machine import CardSpec, MachineSpec
from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC

__all__ = ["dma_machine", "crypto_machine", "machine", "crypto_kinds", "card_kinds",
           "MAX_CARDS", "CRYPTO_KINDS", "CARD_KINDS", "CARD_ALGORITHMS",
           "ocf_four_5820", "s2567_four_5820", "s2567_two_5820", "quad7751_machine",
           "four_7751_primary", "shared_line_slots", "STANDARD", "leaf_kinds",
           "s2567_5820_em", "has_nic"]

#: cards per machine: slots 1..15 exist (IDSEL = AD[16+slot]); eight keeps the
#: arbiter and the Verilator build small
MAX_CARDS = 8
#: host DRAM of the standard machines (a choice of the model: room for the
#: largest /dev/crypto buffers of several processes, well under the 128 MB
#: or more of a 2003 PC)
DRAM_BYTES = 4 << 20
#: DMA test-card burst FIFO depth in dwords (one maximal 256-dword burst)
DMATEST_DEPTH = 256

#: crypto card kinds ``ocfsim run --card`` accepts, plus the pseudo-kinds
CRYPTO_KINDS = ("bcm5820", "hifn7751")
#: every card kind ``ocfsim lspci --card`` accepts: the DMA test card, the
#: crypto cards, and the quad-7751 card (four 7751s behind an on-card
#: PCI-PCI bridge, hw/cards/quad7751.py)
CARD_KINDS = ("dmatest",) + CRYPTO_KINDS + ("quad7751",)
#: OCF algorithms each card's driver registers: the DES, 3DES and HMAC-SHA1
#: part of what OpenBSD's ubsec.c and hifn7751.c pass to ``crypto_register``
#: (the model's cards have no MD5 or ARC4); tests/cli checks this table
#: against what the booted drivers register
CARD_ALGORITHMS = {
    "bcm5820": frozenset({CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC}),
    "hifn7751": frozenset({CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC}),
}


def dma_machine(cards: int = 1, clock_mhz: int = 33, depth: int = DMATEST_DEPTH) -> MachineSpec:
    """``cards`` DMA test cards in slots 1..cards."""
    return MachineSpec(clock_mhz=clock_mhz, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("dmatest", s, {"depth": depth})
                              for s in range(1, cards + 1)])


def card_kinds(cards: list[str], count: int) -> list[str]:
    """Expand ``--card`` choices into one kind per slot.

    One ``--card K`` with ``--cards N``: N cards of kind K; ``mixed``: N
    (at least 2) cards alternating 5820 and 7751; several ``--card``
    options: one card of each, in order.
    """
    if len(cards) == 1:
        if cards[0] == "mixed":
            return [CRYPTO_KINDS[i % 2] for i in range(max(count, 2))]
        return [cards[0]] * count
    if "mixed" in cards:
        raise ValueError("'mixed' cannot be combined with other --card values")
    return list(cards)


def crypto_kinds(cards: list[str], count: int) -> list[str]:
    """``card_kinds`` plus ``soft``: no card (the software driver serves)."""
    if cards == ["soft"]:
        return []
    if "soft" in cards:
        raise ValueError("'soft' cannot be combined with other --card values")
    return card_kinds(cards, count)


def machine(kinds: list[str], clock_mhz: int | None = None) -> MachineSpec:
    """Cards of any kinds in slots 1..n. The bus runs at 66 MHz when a 5820 is
    present (the OCF paper's testbed put the 5820s on its 64-bit/66 MHz bus),
    else at 33 MHz (the Hifn 7751 is a 32-bit/33 MHz part, Hifn 7751 datasheet)."""
    if clock_mhz is None:
        clock_mhz = 66 if "bcm5820" in kinds else 33
    return MachineSpec(clock_mhz=clock_mhz, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec(k, s, _card_params(k, clock_mhz))
                              for s, k in enumerate(kinds, start=1)])


def _card_params(kind: str, clock_mhz: int) -> dict:
    if kind == "hifn7751":
        return {"clock_mhz": clock_mhz}
    if kind == "dmatest":
        return {"depth": DMATEST_DEPTH}
    return {}


#: the crypto machines of ``ocfsim run`` and the benchmarks
crypto_machine = machine


# -- the papers' testbed ------------------------------------------------------------
# The OCF paper (Keromytis, Wright, de Raadt, USENIX 2003, §5.1 and §5.4) ran
# its Table 2 on four BCM5820s "on the 64bit/66MHz bus" of a Tyan Thunder
# HEsl-T (S2567), all four on IRQ 11. The S2567 has two 3.3 V 64-bit/66 MHz
# slots and four 5 V 64-bit/33 MHz slots, one shared with ISA (board summary,
# http://retropc.net/yasuma/V2/PC/AT/s2567.html; 66 MHz PCI is 3.3 V only
# since PCI 2.1), so four cards cannot all run at 66 MHz on that board: the
# machines below say which claim each one follows (docs/tables.md).

def shared_line_slots(n: int, lines: int = 4) -> list[int]:
    """``n`` slots whose INTA# all reach one system line: the host's routing
    table sends slot N's INTA# to line (N-1) % 4 (``sim.host.Host.interrupt_route``),
    so slots 1, 5, 9, 13 share line 0, as the paper's four 5820s shared IRQ 11."""
    slots = [1 + lines * i for i in range(n)]
    if slots[-1] > 15:                      # IDSEL = AD[16+slot]: slots 1..15
        raise ValueError(f"{n} cards cannot share one interrupt line (slots 1..15)")
    return slots


def ocf_four_5820() -> MachineSpec:
    """The OCF paper's stated Table 2 configuration: four BCM5820s on one
    64-bit/66 MHz bus (§5.4), sharing one interrupt line (§5.4: IRQ 11)."""
    return MachineSpec(clock_mhz=66, bus_width=64, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("bcm5820", s) for s in shared_line_slots(4)])


def s2567_four_5820() -> MachineSpec:
    """Four 5820s where the S2567 has room for four 64-bit cards: its 5 V
    64-bit/33 MHz segment (a 66 MHz part in a 33 MHz slot runs at 33 MHz).
    One interrupt line, as in the paper."""
    return MachineSpec(clock_mhz=33, bus_width=64, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("bcm5820", s) for s in shared_line_slots(4)])


def s2567_two_5820() -> MachineSpec:
    """The S2567's 3.3 V 64-bit/66 MHz segment fully used by crypto cards:
    its two slots, two 5820s (the socket-crypto paper's testbed put a NIC
    in one of them)."""
    return MachineSpec(clock_mhz=66, bus_width=64, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("bcm5820", s) for s in shared_line_slots(2)])


def quad7751_machine() -> MachineSpec:
    """The OCF paper's Table 1 card: one ``quad7751`` (four Hifn 7751s behind
    an on-card PCI-PCI bridge, §5.4) in a slot of the 64-bit/66 MHz bus. The
    card's bridge and chips are 33 MHz parts, so M66EN holds that bus at
    33 MHz (PCI 2.3 §7.5.1; hw/machine.py): the machine runs at 33 MHz on
    both segments."""
    return MachineSpec(clock_mhz=66, bus_width=64, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("quad7751", 1)])


def four_7751_primary() -> MachineSpec:
    """A comparison, not the paper's card: four plain Hifn 7751s in slots
    1..4 of one 32-bit/33 MHz bus (the 7751 is a 32-bit/33 MHz part, Hifn
    7751 datasheet; a 33 MHz device holds its bus at 33 MHz), no bridge."""
    return machine(["hifn7751"] * 4, clock_mhz=33)


def s2567_5820_em() -> MachineSpec:
    """The socket-crypto paper's machine (Burnside and Keromytis §IV-C: "a
    Gbit Ethernet card and a Broadcom 5820 ... on the 64/66 bus"): the
    5820 and the em NIC in the S2567's two 3.3 V 64-bit/66 MHz slots, the
    only two that run at 66 MHz. ``ocfsim net --machine``'s machine, the
    one ``ocfsim net --card bcm5820`` builds."""
    from .workloads.net import net_machine
    return net_machine("bcm5820")


def has_nic(spec: MachineSpec) -> bool:
    """Whether the machine holds the em NIC that ``ocfsim net`` drives."""
    return "em82544" in leaf_kinds(spec)


def leaf_kinds(spec: MachineSpec) -> list[str]:
    """The kinds of the machine's devices that are not bridges, in the order
    enumeration finds them (depth first, by slot and device number:
    drivers/pci.py) and so the order the drivers attach."""
    from hw.machine import BRIDGE_KINDS, secondary_cards
    kinds: list[str] = []

    def walk(cards):
        for c in sorted(cards, key=lambda c: c.slot):
            if c.kind in BRIDGE_KINDS:
                walk(secondary_cards(c))
            else:
                kinds.append(c.kind)
    walk(spec.cards)
    return kinds


#: the standard machines by name (``ocfsim run|lspci|net --machine``,
#: ``bench.tables``, docs/tables.md and docs/network.md); ``net`` takes the
#: ones with the NIC (:func:`has_nic`)
STANDARD = {
    "ocf-4x5820": ocf_four_5820,
    "s2567-4x5820-64-33": s2567_four_5820,
    "s2567-2x5820-64-66": s2567_two_5820,
    "quad7751": quad7751_machine,
    "4x7751-primary": four_7751_primary,
    "s2567-5820-em-64-66": s2567_5820_em,
}
