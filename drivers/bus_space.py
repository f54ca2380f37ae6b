"""Register access for drivers, in the manner of OpenBSD's bus_space(9).

A driver never adds an offset to a BAR address: it reads and writes
:class:`hw.regs.Register` objects from the chip's header module through a
:class:`BusSpace` that maps the device's BARs (``bus_space_read_4(sc->sc_st1,
sc->sc_sh1, HIFN_1_DMA_CSR)`` becomes ``await regs.read(DMA_CSR)``: the
register names its BAR), and its PCI configuration registers through
:class:`ConfigSpace` (``pci_conf_read``).
Each access is exactly one host MMIO (or configuration) cycle, dword wide
unless the caller gives byte enables, so the bus traffic is the driver's
own.

A register whose ``bar`` a :class:`BusSpace` does not map, or whose offset is
past the BAR's size, is refused (``ValueError``).
"""

from __future__ import annotations

from typing import Any

from hw.regs import Register

__all__ = ["BusSpace", "ConfigSpace"]


class BusSpace:
    """The memory BARs of one device, mapped (``bus_space_map``): ``bars`` maps a
    BAR index to its (bus address, size). A register is reached through the
    BAR its description names."""

    def __init__(self, host: Any, bars: dict[int, tuple[int, int]], read_latency_ps: int = 0):
        self.host = host
        self.bars = dict(bars)
        #: the CPU's own part of an uncached read (front-side bus and the host
        #: bridge's CPU-to-PCI path), before the bus cycle; the CPU stalls
        self.read_latency_ps = read_latency_ps

    def _check(self, reg: Register) -> int:
        if not isinstance(reg, Register):
            raise TypeError(f"bus_space: {reg!r} is not a hw.regs.Register")
        addr, size = self.bars.get(reg.bar, (None, 0))
        if addr is None or not 0 <= reg.offset < size:
            raise ValueError(f"bus_space: register {reg.name} (BAR{reg.bar} + "
                             f"{reg.offset:#x}) is not mapped")
        return addr + reg.offset

    async def read(self, reg: Register) -> int:
        """``bus_space_read_4``."""
        addr = self._check(reg)
        if self.read_latency_ps:
            await self.host.sleep(self.read_latency_ps)
        return await self.host.mmio_read(addr)

    async def write(self, reg: Register, value: int, be: int = 0xF) -> None:
        """``bus_space_write_4`` (``be``: byte enables of a narrower write)."""
        await self.host.mmio_write(self._check(reg), value, be)

    def __repr__(self) -> str:
        bars = ", ".join(f"BAR{i} at {a:#010x}" for i, (a, _) in sorted(self.bars.items()))
        return f"<BusSpace {bars}>"


class ConfigSpace:
    """A device's configuration registers (``pci_conf_read`` / ``pci_conf_write``).

    Configuration cycles are dword cycles (PCI 2.3 §3.2.2.3.2). A register
    narrower than a dword (COMMAND, STATUS: 16 bits) is read as its own bits
    of its dword; a write puts the value at the register's bytes and, unless
    ``be`` says otherwise, enables all four bytes (as ``pci_conf_write``,
    which writes a whole dword)."""

    def __init__(self, host: Any, slot: int, func: int = 0):
        self.host = host
        self.slot = slot
        self.func = func

    @staticmethod
    def _where(reg: Register) -> tuple[int, int]:
        if not isinstance(reg, Register):
            raise TypeError(f"pci_conf: {reg!r} is not a hw.regs.Register")
        return reg.offset & ~3, 8 * (reg.offset & 3)

    async def read(self, reg: Register) -> int:
        dword, shift = self._where(reg)
        value = await self.host.cfg_read(self.slot, dword, self.func)
        return (value >> shift) & ((1 << reg.width) - 1)

    async def write(self, reg: Register, value: int, be: int = 0xF) -> None:
        dword, shift = self._where(reg)
        await self.host.cfg_write(self.slot, dword, (value << shift) & 0xFFFF_FFFF,
                                  self.func, be=be)
