"""Standard machines by name: what ``ocfsim`` builds for each command."""

from hw.machine import CardSpec, MachineSpec
from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC

__all__ = ["dma_machine", "crypto_machine", "machine", "crypto_kinds", "card_kinds",
           "MAX_CARDS", "CRYPTO_KINDS", "CARD_KINDS", "CARD_ALGORITHMS"]

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
#: every card kind a machine can hold
CARD_KINDS = ("dmatest",) + CRYPTO_KINDS
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
