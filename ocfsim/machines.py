"""Standard machines by name: what ``ocfsim`` builds for each command."""

from hw.machine import CardSpec, MachineSpec

__all__ = ["dma_machine", "MAX_CARDS"]

#: cards per machine: slots 1..15 exist (IDSEL = AD[16+slot]); eight keeps the
#: arbiter and the Verilator build small
MAX_CARDS = 8
#: host DRAM of the standard machines (issue 2: default ≥ 4 MB)
DRAM_BYTES = 4 << 20


def dma_machine(cards: int = 1, clock_mhz: int = 33, depth: int = 256) -> MachineSpec:
    """``cards`` DMA test cards in slots 1..cards."""
    return MachineSpec(clock_mhz=clock_mhz, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec("dmatest", s, {"depth": depth})
                              for s in range(1, cards + 1)])
