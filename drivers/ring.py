"""A descriptor ring in DMA memory, as the Hifn 7751 polls them.

``hifn7751.c`` keeps four such rings (command, source, result, destination)
with the same bookkeeping each: the next slot to fill, how many slots the chip
still owns, whether the chip is polling the ring, and the wrap — the slot
after the last holds a JUMP descriptor back to the ring's start, armed
(VALID) each time the driver wraps. :class:`DescriptorRing` is that
bookkeeping once, over the header's :class:`hw.cards.hifn7751reg.Descriptor`
layout.

The BCM5820's queue is a different shape (records handed over one at a time
through the MCR1 register, no ring in memory): :mod:`drivers.ubsec` keeps a
plain queue of records.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from amaranth.lib import data

from hw.cards.hifn7751reg import Descriptor, DescriptorControl
from hw.structs import pack, size, unpack

__all__ = ["DescriptorRing"]

#: bytes of one descriptor (struct hifn_desc)
DESC_BYTES = size(Descriptor)
#: byte offset of the buffer address in a descriptor
_P = data.Layout.cast(Descriptor)["p"].offset // 8
#: the JUMP descriptor's control word: VALID, JUMP, no DONE status
_JUMP = pack(DescriptorControl, valid=1, jump=1, maskdoneirq=1)


class DescriptorRing:
    """``size`` descriptors at ``base`` plus the JUMP slot (``bytes_for(size)``
    bytes). ``handover(kind, addr, nbytes)`` is told of each descriptor
    written, before the chip is."""

    def __init__(self, memory: Any, base: int, nslots: int, kind: str,
                 handover: Optional[Callable[[str, int, int], None]] = None):
        self.memory = memory
        self.base = base
        self.size = nslots
        self.kind = kind
        self.handover = handover
        self.index = 0          # next slot the driver fills
        self.used = 0           # slots handed to the chip and not reclaimed
        self.busy = False       # the chip polls this ring (enabled in DMA_CSR)

    @staticmethod
    def bytes_for(nslots: int) -> int:
        return DESC_BYTES * (nslots + 1)

    def slot(self, i: int) -> int:
        """Bus address of descriptor ``i``."""
        return self.base + DESC_BYTES * i

    def reset(self) -> None:
        """Every slot zero (owned by the host), the JUMP slot pointing back at
        the start, nothing in use."""
        self.memory.write(self.base, bytes(self.bytes_for(self.size)))
        # the JUMP slot's address now, its control word (VALID) at each wrap
        self.memory.write(self.slot(self.size) + _P, pack(Descriptor, p=self.base)[_P:])
        self.index = self.used = 0
        self.busy = False

    def room(self, n: int = 1) -> bool:
        return self.used + n <= self.size

    def post(self, addr: int, length: int, *, last: bool, maskdoneirq: bool = True) -> int:
        """Write a VALID descriptor at the next slot, advance (wrapping through
        the JUMP slot) and count the slot as the chip's. Returns its index."""
        i = self.index
        raw = pack(Descriptor, l=dict(length=length, valid=1, last=last,
                                      maskdoneirq=maskdoneirq), p=addr)
        a = self.slot(i)
        # the buffer address before the control word that makes it VALID
        self.memory.write(a + _P, raw[_P:])
        self.memory.write(a, raw[:_P])
        if self.handover is not None:
            self.handover(self.kind, a, DESC_BYTES)
        self.index = i + 1
        if self.index == self.size:
            self.memory.write(self.slot(self.index), _JUMP)
            self.index = 0
        self.used += 1
        return i

    def reclaim(self, n: int = 1) -> None:
        self.used -= n

    def control(self, i: int) -> dict:
        """Descriptor ``i``'s control word (``valid``: still the chip's)."""
        return unpack(DescriptorControl, self.memory.read(self.slot(i), _P))
