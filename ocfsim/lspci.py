"""``ocfsim lspci``: enumerate any machine's bus and list its devices like lspci(8).

``lspci`` is an experiment entry (``sim.experiment``): it enumerates the bus
as the BIOS would (``drivers.pci``) and, for ``-v``, reads each device's
64-byte type-0 header back through configuration cycles.
``format_devices`` prints the result in lspci's layout, as a tree: each bus
segment under a heading with its number, width and clock (M66EN, PCI 2.3
§7.5.1: hw/machine.py), a PCI-PCI bridge with its bus numbers and memory
window (PPB 1.1 §3.2.5), the devices behind it indented below it.
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
    (0x1011, 0x0024): "DEC 21152 PCI-to-PCI Bridge",
    (0x8086, 0x100C): "Intel 82544GC Gigabit Ethernet Controller (Copper)",
}
#: command register flags shown (PCI 2.3 §6.2.2)
CMD_FLAGS = {COMMAND.memory_space: "memory space", COMMAND.bus_master: "bus master"}
#: status register (PCI 2.3 §6.2.3): DEVSEL timing, error bits
DEVSEL = ("fast", "medium", "slow", "reserved")
STATUS_FLAGS = {STATUS.mhz66_capable: "66MHz",
                STATUS.interrupt_status: "INTx# asserted",
                STATUS.signaled_target_abort: "signalled target abort",
                STATUS.received_target_abort: "received target abort",
                STATUS.received_master_abort: "received master abort"}


async def lspci(host, config: bool = False) -> dict:
    """Every device found, with its BARs and IRQ; with ``config`` its header dwords."""
    devices = []
    for d in await enumerate_bus(host):
        row = {"bus": d.bus, "slot": d.slot, "vendor": d.vendor, "device": d.device,
               "class": d.class_code, "revision": d.revision, "irq": d.irq,
               "bars": [{"index": b.index, "addr": b.addr, "size": b.size,
                         "prefetchable": b.prefetchable} for b in d.bars]}
        if d.bridge:
            sec, sub, first, last = d.bridge
            row["bridge"] = {"secondary": sec, "subordinate": sub,
                             "window": None if first is None else [first, last]}
        if config:
            row["config"] = [await host.cfg_read(d.slot, reg, bus=d.bus)
                             for reg in range(0, HEADER_BYTES, 4)]
        devices.append(row)
    spec = host.spec
    segments = [{"bus": seg.index, "name": seg.name, "width": seg.width, "clock_mhz": mhz}
                for seg, mhz in zip(spec.segments(), spec.segment_clocks())]
    return {"devices": devices, "segments": segments}


def format_devices(devices: list[dict], verbose: bool = False,
                   segments: list[dict] | None = None) -> list[str]:
    """lspci's layout (``bus:device.function``): one line per device, its
    BARs; a bridge's bus numbers and window, and the devices behind it
    indented one step further; ``verbose`` as ``lspci -v -x``; with
    ``segments`` (:func:`lspci`'s) a heading per bus with its width and clock."""
    lines = []
    clock = {s["bus"]: s for s in segments or []}
    depth = {0: 0}
    for d in devices:
        bus = d.get("bus", 0)
        pad = "  " * depth.get(bus, 0)
        if bus in clock:
            s = clock.pop(bus)
            lines.append(f"{pad}bus {bus:02x}: {s['width']}-bit/{s['clock_mhz']} MHz"
                         + (f" (behind {s['name']})" if s["name"] else ""))
        name = NAMES.get((d["vendor"], d["device"]), "unknown device")
        lines.append(f"{pad}{bus:02x}:{d['slot']:02x}.0 class {d['class']:06x}: {name} "
                     f"[{d['vendor']:04x}:{d['device']:04x}] (rev {d['revision']:02x}) "
                     f"IRQ {_irq(d['irq'])}")
        if verbose and "config" in d:
            lines += [pad + x for x in _flags(d)]
        for b in d["bars"]:
            kind = "prefetchable" if b["prefetchable"] else "non-prefetchable"
            lines.append(f"{pad}\tBAR{b['index']}: memory at {b['addr']:08x} "
                         f"(32-bit, {kind}) [size={_size(b['size'])}]")
        br = d.get("bridge")
        if br:
            win = br["window"]
            lines.append(f"{pad}\tBus: primary={bus:02x}, secondary={br['secondary']:02x}, "
                         f"subordinate={br['subordinate']:02x}")
            lines.append(f"{pad}\tMemory behind bridge: "
                         + (f"{win[0]:08x}-{win[1]:08x}" if win else "none"))
            for k in range(br["secondary"], br["subordinate"] + 1):
                depth.setdefault(k, depth.get(bus, 0) + 1)
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
