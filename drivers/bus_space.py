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

    def __init__(self, host: Any, bars: dict[int, tuple[int, int]]):
        self.host = host
        self.bars = dict(bars)

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
        return await self.host.mmio_read(self._check(reg))

    async def write(self, reg: Register, value: int, be: int = 0xF) -> None:
        """``bus_space_write_4`` (``be``: byte enables of a narrower write)."""
        await self.host.mmio_write(self._check(reg), value, be)

    def __repr__(self) -> str:
        bars = ", ".join(f"BAR{i} at {a:#010x}" for i, (a, _) in sorted(self.bars.items()))
        return f"<BusSpace {bars}>"


class ConfigSpace:
    """A device's configuration registers (``pci_conf_read`` / ``pci_conf_write``)."""

    def __init__(self, host: Any, slot: int, func: int = 0):
        self.host = host
        self.slot = slot
        self.func = func

    @staticmethod
    def _offset(reg: Register) -> int:
        if not isinstance(reg, Register):
            raise TypeError(f"pci_conf: {reg!r} is not a hw.regs.Register")
        return reg.offset

    async def read(self, reg: Register) -> int:
        return await self.host.cfg_read(self.slot, self._offset(reg), self.func)

    async def write(self, reg: Register, value: int, be: int = 0xF) -> None:
        await self.host.cfg_write(self.slot, self._offset(reg), value, self.func, be=be)
