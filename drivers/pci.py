"""PCI enumeration: find devices, size and place BARs, enable them, route IRQs.

What a BIOS or OpenBSD's ``pci_attach`` does for bus 0, through config
cycles only:

1. read the vendor ID of every slot (all ones: nobody answered, master abort);
2. size each BAR by writing all ones and reading back (PCI 2.3 §6.2.5.1),
   then place it, naturally aligned, in the host's MMIO window; a 64-bit
   memory BAR (type 10b) is sized over both of its registers and its upper
   dword programmed (0: the window is below 4 GiB);
3. set the latency timer, enable memory space and bus mastering;
4. look up the slot's interrupt pin in the board's routing table and write
   the line to the Interrupt Line register;
5. a PCI-to-PCI bridge (class 06 04) gets the next bus number as its
   secondary bus and the scan goes depth-first into it (type-1 configuration
   cycles, PCI 2.3 §3.2.2.3.1); on the way back its subordinate bus number and
   its memory window (1 MiB granules around the BARs placed behind it, PPB
   1.1 §3.2.5.8) are programmed, as Linux ``pci_scan_bridge`` and OpenBSD's
   ``ppb`` attach (``sys/dev/pci/ppb.c``) with a BIOS's assignment do. A
   device behind a bridge gets its interrupt through the bridge's swizzle
   (PPB 1.1 §9.1): pin p of device d is the bridge's pin ((d + p − 1) mod 4) + 1.

A driver's ``attach(pa, **options)`` receives a :class:`PciAttachArgs`
(OpenBSD's ``struct pci_attach_args`` with what autoconf adds): the device (a
:class:`PciDevice`: ``slot``, ids, ``bars`` with bus addresses, ``irq``), its
unit number, the register mapping (:meth:`PciAttachArgs.map`, a
:class:`drivers.bus_space.BusSpace`), configuration space
(:class:`drivers.bus_space.ConfigSpace`), DMA-able memory, interrupt
establishment, the kernel and the crypto framework. Recovery helpers for
drivers: :func:`quiesce` (Bus Master Enable off and INTx masked through
configuration space, which answers even when the device's memory decoders
do not) and :func:`restore_command`; :class:`Watchdog`, a completion timer in the manner
of OpenBSD ``hifn_tick`` (``sys/dev/pci/hifn7751.c``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from drivers.bus_space import BusSpace, ConfigSpace
from hw.pci.pcireg import (BAR64_SPAN, BAR_MEM_64, BAR_MEM_MASK, BAR_UPPER_LSB, BUS_NUMBERS,
                           CLASS, COMMAND, HEADER, ID, INTERRUPT, INTERRUPT_PIN_INTA,
                           MEMORY_WINDOW, PREFETCH_WINDOW, SUBSYSTEM, WINDOW_GRANULE,
                           WINDOW_SHIFT, bar, bar_upper)
from sim.kernel import PWAIT
from sim.kernel.errno import EIO, ETIMEDOUT, EWOULDBLOCK

__all__ = ["PciDevice", "PciAttachArgs", "Bar", "enumerate_bus", "bus_config", "CFG", "DEFAULT_LATENCY_TIMER",
           "CMD_MEMORY", "CMD_MASTER", "CMD_INTX_DISABLE", "ALL_ONES", "quiesce",
           "restore_command", "Watchdog"]

#: configuration-space offsets by the old names (for ocfsim.lspci; new code
#: takes the registers of hw.pci.pcireg)
CFG = dict(ID=ID.offset, COMMAND=COMMAND.offset, CLASS=CLASS.offset,
           CACHE_LAT=HEADER.offset, BAR0=bar(0).offset, SUBSYS=SUBSYSTEM.offset,
           INTR=INTERRUPT.offset)
#: COMMAND bits (PCI 2.3 §6.2.2)
CMD_MEMORY = COMMAND.mask("memory_space")
CMD_MASTER = COMMAND.mask("bus_master")
CMD_INTX_DISABLE = COMMAND.mask("intx_disable")
#: what a read returns when nobody claims it (master abort, PCI 2.3 §3.3.3.1)
ALL_ONES = 0xFFFF_FFFF
#: the vendor ID no device has: an empty slot's read (PCI 2.3 §6.2.1)
VENDOR_NONE = ID.mask("vendor_id")
#: INTA# .. INTD# (PCI 2.3 §6.2.4 Interrupt Pin: 1 .. 4)
INTERRUPT_PINS = range(INTERRUPT_PIN_INTA, INTERRUPT_PIN_INTA + 4)

#: class code of a PCI-to-PCI bridge: base class 06, sub-class 04 (PCI Code
#: and ID Assignment spec), any programming interface (the low byte)
CLASS_PCI_BRIDGE = 0x060400
CLASS_INTERFACE = 0xFF
#: device numbers a bridge's secondary bus can select: IDSEL = AD[16 + d]
#: (PPB 1.1 §3.2.5.3: 16 devices)
SECONDARY_SLOTS = range(0, 16)
#: the last bus number (8 bits, PCI 2.3 §3.2.2.3.1): a bridge's subordinate
#: bus while the scan below it runs
LAST_BUS = 0xFF

#: latency timer in clocks; BIOSes of the period programmed 32–64 (estimate;
#: PCI 2.3 §3.5.4 leaves it to system software). 64 lets a 256-dword burst
#: reach ~64 data phases before it must yield to a waiting master.
DEFAULT_LATENCY_TIMER = 64


@dataclass
class Bar:
    index: int
    addr: int
    size: int
    prefetchable: bool
    wide: bool = False                 # a 64-bit BAR (type 10b): ``index`` and the next


@dataclass
class PciDevice:
    slot: int                          # device number on its bus
    vendor: int
    device: int
    class_code: int
    revision: int
    int_pin: int
    irq: int | None                    # system line 0..3 (INTA#..INTD#) or None
    bars: list[Bar] = field(default_factory=list)
    bus: int = 0                       # bus number (0: the host's bus)
    #: a PCI-to-PCI bridge: (secondary, subordinate) bus and its memory window
    bridge: tuple | None = None

    @property
    def name(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    def bar(self, index: int = 0) -> Bar:
        for b in self.bars:
            if b.index == index:
                return b
        raise LookupError(f"device in slot {self.slot} has no BAR{index}")


@dataclass
class PciAttachArgs:
    """What autoconf hands a driver's ``attach`` (``struct pci_attach_args``
    plus the softc's unit and the kernel services a driver uses)."""
    dev: PciDevice
    unit: int                          # hifn0, hifn1, ...: per driver, in slot order
    kernel: Any                        # sim.kernel.Kernel: costs, sleep, printf, threads
    crypto: Any                        # ocf.crypto.Crypto: crypto_get_driverid / register
    host: Any = field(repr=False)      # the host bridge (the bus_space / pci_chipset tag)

    @property
    def config(self) -> ConfigSpace:
        """The device's configuration registers (``pa_pc``/``pa_tag``)."""
        if self.dev.bus:
            return ConfigSpace(bus_config(self.host, self.dev.bus), self.dev.slot)
        return ConfigSpace(self.host, self.dev.slot)

    def map(self, *bars: int) -> BusSpace:
        """``pci_mapreg_map`` of the given memory BARs (LookupError if absent)."""
        prof = self.kernel.profile
        return BusSpace(self.host, {i: (self.dev.bar(i).addr, self.dev.bar(i).size)
                                    for i in bars},
                        prof.cost("bridge.mmio_read") if prof.has("bridge.mmio_read") else 0)

    @property
    def clock_period_ps(self) -> int:
        """The PCI clock period (for registers counted in bus clocks)."""
        return self.host.period_ps

    @property
    def memory(self) -> Any:
        """Host memory as the device sees it (the DMA tag: bus = physical)."""
        return self.kernel.memory

    def dma_alloc(self, size: int, align: int) -> int | None:
        """``bus_dmamem_alloc``: bus address of ``size`` bytes, or None."""
        return self.kernel.malloc(size, align)

    def dma_free(self, addr: int) -> None:
        self.kernel.free(addr)

    def intr_establish(self, handler: Callable[[], Awaitable[bool]], name: str) -> Any:
        """``pci_intr_establish`` on the device's routed line."""
        return self.kernel.intr_establish(self.dev.irq, handler, name)


def bus_config(host: Any, bus: int) -> Any:
    """What ConfigSpace needs for bus ``bus``: the host itself for bus 0,
    else the host's configuration access to that bus (``host.config_bus``,
    the chipset's type-1 cycles, as ``pci_make_tag`` with a bus number in
    OpenBSD; a host without bridges need not have it)."""
    return host if bus == 0 else host.config_bus(bus)


class _Scan:
    """Enumeration state: the next free MMIO address and bus number."""

    def __init__(self, host, latency_timer):
        self.host, self.latency_timer = host, latency_timer
        self.next_addr, self.limit = host.mmio_window
        self.next_bus = 1
        self.found: list[PciDevice] = []


async def enumerate_bus(host, *, latency_timer: int = DEFAULT_LATENCY_TIMER,
                        slots=range(1, 16)) -> list[PciDevice]:
    """Scan ``slots`` of bus 0 and, depth-first, every bus behind a bridge;
    configure every device found; return them in scan order (a bridge
    before the devices behind it)."""
    scan = _Scan(host, latency_timer)
    await _scan_bus(scan, 0, slots, lambda slot, pin: host.interrupt_route(slot, pin))
    return scan.found


async def _scan_bus(scan: _Scan, bus: int, slots, route) -> None:
    """Configure the devices of ``bus``; ``route(slot, pin)`` gives a pin's
    system interrupt line (or None)."""
    where = bus_config(scan.host, bus)
    for slot in slots:
        cfg = ConfigSpace(where, slot)
        ident = ID.decode(await cfg.read(ID))
        if ident["vendor_id"] == VENDOR_NONE:
            continue                                   # master abort: empty slot
        klass = CLASS.decode(await cfg.read(CLASS))
        pin = INTERRUPT.decode(await cfg.read(INTERRUPT))["interrupt_pin"]
        is_bridge = klass["class_code"] & ~CLASS_INTERFACE == CLASS_PCI_BRIDGE
        if is_bridge:
            pin = 0                     # type 1: 3d is the pin, 3e bridge control
        dev = PciDevice(slot=slot, vendor=ident["vendor_id"], device=ident["device_id"],
                        class_code=klass["class_code"], revision=klass["revision_id"],
                        int_pin=pin, irq=route(slot, pin) if pin in INTERRUPT_PINS else None,
                        bus=bus)
        # keep decoders off while BARs move (the whole dword: STATUS gets 0, no W1C)
        await cfg.write(COMMAND, 0)
        await _place_bars(scan, cfg, dev, bars=2 if is_bridge else 6)
        await cfg.write(HEADER, HEADER.bits(latency_timer=scan.latency_timer), be=0b0010)
        if is_bridge:
            scan.found.append(dev)
            await _scan_bridge(scan, cfg, dev, route)
        elif dev.irq is not None:
            await cfg.write(INTERRUPT, INTERRUPT.bits(interrupt_line=dev.irq), be=0b0001)
        await cfg.write(COMMAND, CMD_MEMORY | CMD_MASTER)
        if not is_bridge:
            scan.found.append(dev)


async def _scan_bridge(scan: _Scan, cfg: ConfigSpace, dev: PciDevice, route) -> None:
    """Number the bus behind a bridge, scan it, then program the bridge's
    subordinate bus and memory window (PPB 1.1 §3.2.5.3-5, §3.2.5.8)."""
    secondary = scan.next_bus
    if secondary > LAST_BUS:
        raise RuntimeError(f"bus {dev.bus} slot {dev.slot}: no bus number left")
    scan.next_bus += 1

    def numbers(subordinate):
        return BUS_NUMBERS.bits(primary_bus=dev.bus, secondary_bus=secondary,
                                subordinate_bus=subordinate,
                                secondary_latency_timer=scan.latency_timer)

    # subordinate at the last bus while below is scanned, so every type-1
    # cycle to a bus found deeper passes this bridge
    await cfg.write(BUS_NUMBERS, numbers(LAST_BUS))
    base = _align(scan.next_addr, WINDOW_GRANULE)
    scan.next_addr = base

    def behind(slot, pin):                  # the bridge's swizzle, then its own route
        return route(dev.slot, (slot + pin - 1) % 4 + 1)

    await _scan_bus(scan, secondary, SECONDARY_SLOTS, behind)
    subordinate = scan.next_bus - 1
    await cfg.write(BUS_NUMBERS, numbers(subordinate))
    if scan.next_addr == base:              # nothing behind: the window off
        window = MEMORY_WINDOW.bits(base=MEMORY_WINDOW.base.mask >> MEMORY_WINDOW.base.lsb,
                                    limit=0)
        first, last = None, None
    else:
        end = _align(scan.next_addr, WINDOW_GRANULE)
        if end > scan.limit:
            raise RuntimeError(f"MMIO window exhausted behind bus {secondary}")
        window = MEMORY_WINDOW.bits(base=base >> WINDOW_SHIFT,
                                    limit=(end >> WINDOW_SHIFT) - 1)
        first, last = base, end - 1
        scan.next_addr = end
    await cfg.write(MEMORY_WINDOW, window)
    # every BAR behind sits in the memory window: the prefetchable one off
    await cfg.write(PREFETCH_WINDOW, PREFETCH_WINDOW.bits(
        base=PREFETCH_WINDOW.base.mask >> PREFETCH_WINDOW.base.lsb, limit=0))
    dev.bridge = (secondary, subordinate, first, last)


def _align(addr: int, size: int) -> int:
    return (addr + size - 1) & ~(size - 1)


async def _place_bars(scan: _Scan, cfg: ConfigSpace, dev: PciDevice, bars: int) -> None:
    """Size every memory BAR and place it, naturally aligned, at the next
    free MMIO address (PCI 2.3 §6.2.5.1)."""
    slot = dev.slot
    i = 0
    while i < bars:
        reg = bar(i)
        await cfg.write(reg, ALL_ONES)
        probe = await cfg.read(reg)
        if probe == 0 or probe & reg.mask("io_space"):   # unimplemented, or I/O BAR
            i += 1
            continue
        wide = reg.decode(probe)["type"] == BAR_MEM_64
        if wide and i == bars - 1:
            raise RuntimeError(f"slot {slot}: 64-bit BAR{i} has no upper register")
        addr_bits = probe & BAR_MEM_MASK
        span = ALL_ONES
        if wide:
            # §6.2.5.1: a 64-bit BAR is sized over both dwords
            await cfg.write(bar_upper(i + 1), ALL_ONES)
            addr_bits |= await cfg.read(bar_upper(i + 1)) << BAR_UPPER_LSB
            span = BAR64_SPAN
        size = (~addr_bits & span) + 1
        addr = _align(scan.next_addr, size)
        if addr + size > scan.limit:
            raise RuntimeError(f"MMIO window exhausted at slot {slot} BAR{i}")
        await cfg.write(reg, addr & ALL_ONES)
        if wide:                    # the window is below 4 GiB: upper dword 0
            await cfg.write(bar_upper(i + 1), addr >> BAR_UPPER_LSB)
        dev.bars.append(Bar(i, addr, size, bool(probe & reg.mask("prefetchable")),
                            wide=wide))
        scan.next_addr = addr + size
        i += 2 if wide else 1


# ---------------------------------------------------------------- recovery helpers
async def quiesce(cfg: ConfigSpace) -> None:
    """Stop a device mastering and asserting INTx#: clear Bus Master Enable and
    set Interrupt Disable in its command register (configuration cycles reach a
    device whose memory decoders are off)."""
    cmd = await cfg.read(COMMAND)
    await cfg.write(COMMAND, (cmd & ~CMD_MASTER) | CMD_INTX_DISABLE)


async def restore_command(cfg: ConfigSpace, *, master: bool) -> None:
    """Memory Space Enable on, INTx# allowed, Bus Master Enable as ``master``
    (what :func:`enumerate_bus` programmed)."""
    await cfg.write(COMMAND, CMD_MEMORY | (CMD_MASTER if master else 0))


#: the watchdog's bound: WD_FACTOR x the time the outstanding bytes take at the
#: card's datasheet rate, + WD_MARGIN_PS (the model's choice: far above any
#: packet's time on the card, far below hifn_tick's one-second period, so a lost
#: completion costs milliseconds, not a second)
WD_FACTOR = 4
WD_MARGIN_PS = 1_000_000_000          # 1 ms


def watchdog_bound(nbytes: int, mbps: float) -> int:
    """Picoseconds a card rated ``mbps`` may take for ``nbytes`` outstanding."""
    return int(WD_FACTOR * nbytes * 8e6 / mbps) + WD_MARGIN_PS


class Watchdog:
    """A completion timer for a driver, in the manner of OpenBSD ``hifn_tick``.

    A kernel thread that sleeps with no timer while the device is idle. The
    driver calls :meth:`arm` when it hands work to the device, :meth:`progress`
    when a request completes and :meth:`kick` when it must recover at once
    (the device reads all ones). While armed, the thread sleeps the bound
    (``override_ps``, else :func:`watchdog_bound` of ``outstanding()`` bytes at
    ``mbps``); if no request completed meanwhile it first awaits ``collect()``
    (completions the device wrote without an interrupt: then ``resume()``),
    else counts a timeout and awaits ``recover(ETIMEDOUT, why)``; a kick awaits
    ``recover(EIO, why)``. All of it runs at raised spl. When ``idle()`` is
    true at the end of a period it awaits ``on_idle()`` and disarms.
    """

    def __init__(self, kernel: Any, name: str, *, mbps: float,
                 outstanding: Callable[[], int], collect: Callable[[], Awaitable[None]],
                 resume: Callable[[], Awaitable[None]],
                 recover: Callable[[int, str], Awaitable[None]], idle: Callable[[], bool],
                 on_idle: Callable[[], Awaitable[None]] | None = None,
                 override_ps: int | None = None):
        self.kernel = kernel
        self.name = name
        self.mbps, self.outstanding, self.override_ps = mbps, outstanding, override_ps
        self.collect, self.resume, self.recover = collect, resume, recover
        self.idle, self.on_idle = idle, on_idle
        self.armed = False
        self.urgent = False
        self.completions = 0
        self.expiries = 0
        self.timeouts = 0
        self._chan = object()
        self.thread = kernel.kthread_create(name, self._run)

    def bound(self) -> int:
        """Picoseconds the device may go without completing a request now."""
        return self.override_ps or watchdog_bound(self.outstanding(), self.mbps)

    def arm(self) -> None:
        if not self.armed:
            self.armed = True
            self.kernel.wakeup(self._chan)

    def kick(self) -> None:
        self.urgent = True
        self.kernel.wakeup(self._chan)

    def progress(self) -> None:
        self.completions += 1

    async def _expire(self, gone: bool) -> None:
        k = self.kernel
        self.expiries += 1
        s = k.splraise()
        try:
            if gone:
                await self.recover(EIO, "device not responding")
                return
            mark = self.completions
            await self.collect()
            if self.completions != mark:
                k.printf(f"{self.name}: completions without an interrupt")
                await self.resume()
                return
            self.timeouts += 1
            await self.recover(ETIMEDOUT, f"no completion for {self.bound() / 1e6:.0f} us")
        finally:
            k.splx(s)

    async def _run(self, t: Any) -> None:
        k = self.kernel
        while True:
            if self.urgent:
                self.urgent = False
                await self._expire(True)
                continue
            if not self.armed:
                await k.tsleep(self._chan, PWAIT, f"{self.name}idle")
                continue
            mark = self.completions
            if await k.tsleep(self._chan, PWAIT, self.name, max(1, self.bound())) \
                    != EWOULDBLOCK:
                continue                        # kicked
            if self.completions == mark and not self.idle():
                await self._expire(False)
            if self.idle():
                self.armed = False
                if self.on_idle is not None:
                    await self.on_idle()
