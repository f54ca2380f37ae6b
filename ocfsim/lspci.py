"""``ocfsim lspci``: enumerate any machine's bus and list its devices like lspci(8).

``lspci`` is an experiment entry (``sim.experiment``): it enumerates the bus
as the BIOS would (``drivers.pci``) and, for ``-v``, reads each device's
64-byte type-0 header back through configuration cycles.
``format_devices`` prints the result in lspci's layout.
"""

from __future__ import annotations

from drivers.pci import enumerate_bus
from hw.pci.pcireg import COMMAND, HEADER, STATUS
from ocfsim.system import DRIVERS

__all__ = ["lspci", "format_devices"]

#: bytes of the type-0 configuration header (PCI 2.3 §6.1)
HEADER_BYTES = 64
#: vendor:device → name shown (the datasheets' part names; 0cf5:d0a1 is the
#: model's own DMA test card)
NAMES = {
    (0x14E4, 0x5820): "Broadcom BCM5820 Crypto Accelerator",
    (0x13A3, 0x0005): "Hifn 7751 Security Processor",
    (0x0CF5, 0xD0A1): "ocfsim DMA test card",
}
#: command register flags shown (PCI 2.3 §6.2.2)
CMD_FLAGS = {COMMAND.memory_space: "memory space", COMMAND.bus_master: "bus master"}
#: status register (PCI 2.3 §6.2.3): DEVSEL timing, error bits
DEVSEL = ("fast", "medium", "slow", "reserved")
STATUS_FLAGS = {STATUS.interrupt_status: "INTx# asserted",
                STATUS.signaled_target_abort: "signalled target abort",
                STATUS.received_target_abort: "received target abort",
                STATUS.received_master_abort: "received master abort"}


async def lspci(host, config: bool = False) -> dict:
    """Every device found, with its BARs and IRQ; with ``config`` its header dwords."""
    devices = []
    for d in await enumerate_bus(host):
        row = {"slot": d.slot, "vendor": d.vendor, "device": d.device,
               "class": d.class_code, "revision": d.revision, "irq": d.irq,
               "bars": [{"index": b.index, "addr": b.addr, "size": b.size,
                         "prefetchable": b.prefetchable} for b in d.bars]}
        if config:
            row["config"] = [await host.cfg_read(d.slot, reg)
                             for reg in range(0, HEADER_BYTES, 4)]
        devices.append(row)
    return {"devices": devices}


def format_devices(devices: list[dict], verbose: bool = False) -> list[str]:
    """lspci's layout: one line per device, its BARs; ``verbose`` as ``lspci -v -x``."""
    lines = []
    for d in devices:
        name = NAMES.get((d["vendor"], d["device"]), "unknown device")
        lines.append(f"00:{d['slot']:02x}.0 class {d['class']:06x}: {name} "
                     f"[{d['vendor']:04x}:{d['device']:04x}] (rev {d['revision']:02x}) "
                     f"IRQ {_irq(d['irq'])}")
        if verbose and "config" in d:
            lines += _flags(d)
        for b in d["bars"]:
            kind = "prefetchable" if b["prefetchable"] else "non-prefetchable"
            lines.append(f"\tBAR{b['index']}: memory at {b['addr']:08x} "
                         f"(32-bit, {kind}) [size={_size(b['size'])}]")
        if verbose and "config" in d:
            driver = DRIVERS.get((d["vendor"], d["device"]))
            lines.append(f"\tKernel driver in use: {driver.split(':')[0].rsplit('.', 1)[-1]}"
                         if driver else "\tKernel driver in use: none")
            lines += _hexdump(d["config"])
            lines.append("")
    return lines or ["no devices"]


def _irq(line: int | None) -> str:
    return "none" if line is None else "INT" + "ABCD"[line]


def _size(nbytes: int) -> str:
    for unit, shift in (("M", 20), ("K", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


def _flags(d: dict) -> list[str]:
    """The command, status and latency-timer fields, decoded."""
    def reg(r):                       # a register's value from its header dword
        return d["config"][r.offset // 4] >> 8 * (r.offset % 4) & ((1 << r.width) - 1)

    command, status = reg(COMMAND), reg(STATUS)
    flags = [n for f, n in CMD_FLAGS.items() if f.get(command)]
    flags.append(f"{DEVSEL[STATUS.devsel_timing.get(status)]} devsel")
    flags.append(f"latency {HEADER.latency_timer.get(reg(HEADER))}")
    flags += [n for f, n in STATUS_FLAGS.items() if f.get(status)]
    return [f"\tFlags: {', '.join(flags)}"]


def _hexdump(dwords: list[int]) -> list[str]:
    """The header as ``lspci -x`` prints it: 16 bytes per line, offset first."""
    raw = b"".join(w.to_bytes(4, "little") for w in dwords)
    return [f"{off:02x}: " + " ".join(f"{b:02x}" for b in raw[off:off + 16])
            for off in range(0, len(raw), 16)]
