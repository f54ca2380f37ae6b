"""Standard machines by name: what ``ocfsim`` builds for each command."""

from hw.machine import CardSpec, MachineSpec

__all__ = ["dma_machine", "crypto_machine", "crypto_kinds", "MAX_CARDS", "CRYPTO_KINDS"]

#: cards per machine: slots 1..15 exist (IDSEL = AD[16+slot]); eight keeps the
#: arbiter and the Verilator build small
MAX_CARDS = 8
#: host DRAM of the standard machines (4 MiB, the host bridge's default; docs/model.md)
DRAM_BYTES = 4 << 20


def dma_machine(cards: int = 1, clock_mhz: int = 33, depth: int = 256) -> MachineSpec:
    """``cards`` DMA test cards in slots 1..cards."""
    return MachineSpec(clock_mhz=clock_mhz, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("dmatest", s, {"depth": depth})
                              for s in range(1, cards + 1)])


#: crypto card kinds ``ocfsim run --card`` accepts, plus the pseudo-kinds
CRYPTO_KINDS = ("bcm5820", "hifn7751")


def crypto_kinds(cards: list[str], count: int) -> list[str]:
    """Expand ``--card`` choices into one kind per slot.

    One ``--card K`` with ``--cards N``: N cards of kind K; ``mixed``: N
    cards alternating 5820 and 7751; several ``--card`` options: one card
    of each, in order; ``soft``: no card (the software driver serves).
    """
    if cards == ["soft"]:
        return []
    if len(cards) == 1:
        if cards[0] == "mixed":
            return [CRYPTO_KINDS[i % 2] for i in range(max(count, 2))]
        return [cards[0]] * count
    if "soft" in cards or "mixed" in cards:
        raise ValueError("'soft' and 'mixed' cannot be combined with other --card values")
    return list(cards)


def crypto_machine(kinds: list[str], clock_mhz: int | None = None) -> MachineSpec:
    """Crypto cards in slots 1..n. The bus runs at 66 MHz when a 5820 is present
    (the papers put the 5820s on the 64/66 bus: OCF paper §5.1, §5.4), else at 33 MHz
    (the 7751 is a 32-bit/33 MHz part)."""
    if clock_mhz is None:
        clock_mhz = 66 if "bcm5820" in kinds else 33
    return MachineSpec(clock_mhz=clock_mhz, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec(k, s, {"clock_mhz": clock_mhz} if k == "hifn7751" else {})
                              for s, k in enumerate(kinds, start=1)])
