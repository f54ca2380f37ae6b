"""Host DRAM as the CPU sees it: allocation and byte-level access.

The CPU reaches its own DRAM without PCI cycles (a cache/memory path), so
host software reads and writes it directly. Two stores share one interface:

- :class:`ByteMemory` keeps the bytes in Python (software-only machines);
- the hardware-backed store in :mod:`sim.host` forwards to the RTL memory of
  the host bridge through the backend's backdoor, so a card's DMA sees what
  the CPU wrote and vice versa.

Addresses are PCI bus addresses (the host bridge maps DRAM at bus address 0).
"""

from __future__ import annotations

import bisect

__all__ = ["HostMemory", "ByteMemory", "OutOfMemory"]


class OutOfMemory(MemoryError):
    pass


class HostMemory:
    """Allocator over ``[base, base + size)`` plus abstract byte access."""

    def __init__(self, size: int, base: int = 0, reserve: int = 0x1000):
        if size <= reserve:
            raise ValueError("memory smaller than its reserved low area")
        self.size = size
        self.base = base
        # Free list of (start, length), sorted by start. The low ``reserve``
        # bytes are never handed out, so bus address 0 never means a buffer.
        self._free: list[tuple[int, int]] = [(base + reserve, size - reserve)]
        self._used: dict[int, int] = {}

    # -- allocation ------------------------------------------------------------
    def alloc(self, size: int, align: int = 64) -> int:
        """First-fit allocation; returns the bus address."""
        if size <= 0:
            raise ValueError(f"bad allocation size {size}")
        if align <= 0 or align & (align - 1):
            raise ValueError(f"alignment {align} is not a power of two")
        for i, (start, length) in enumerate(self._free):
            addr = (start + align - 1) & ~(align - 1)
            pad = addr - start
            if pad + size <= length:
                del self._free[i]
                if pad:
                    self._insert_free(start, pad)
                if pad + size < length:
                    self._insert_free(addr + size, length - pad - size)
                self._used[addr] = size
                return addr
        raise OutOfMemory(f"no {size}-byte block free (align {align})")

    def free(self, addr: int) -> None:
        size = self._used.pop(addr, None)
        if size is None:
            raise ValueError(f"free of unallocated address {addr:#x}")
        self._insert_free(addr, size)

    def _insert_free(self, start: int, length: int) -> None:
        i = bisect.bisect(self._free, (start, length))
        self._free.insert(i, (start, length))
        # coalesce with neighbours
        if i + 1 < len(self._free) and start + length == self._free[i + 1][0]:
            length += self._free.pop(i + 1)[1]
            self._free[i] = (start, length)
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == start:
            prev_start, prev_len = self._free.pop(i - 1)
            self._free[i - 1] = (prev_start, prev_len + length)

    @property
    def bytes_free(self) -> int:
        return sum(length for _, length in self._free)

    # -- access ------------------------------------------------------------------
    def _check(self, addr: int, n: int) -> None:
        if n < 0 or addr < self.base or addr + n > self.base + self.size:
            raise ValueError(f"access [{addr:#x}, +{n}) outside host memory")

    def read(self, addr: int, n: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def write(self, addr: int, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def read32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def write32(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))


class ByteMemory(HostMemory):
    """Host memory held in a Python ``bytearray`` (no hardware attached)."""

    def __init__(self, size: int = 4 << 20, base: int = 0):
        super().__init__(size, base)
        self._bytes = bytearray(size)

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        off = addr - self.base
        return bytes(self._bytes[off:off + n])

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data))
        off = addr - self.base
        self._bytes[off:off + len(data)] = data
