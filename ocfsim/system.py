"""Boot a simulated machine: kernel, OCF, PCI enumeration, device drivers.

``await boot(host)`` is what the kernel's autoconfiguration does at startup:
start the simulated kernel on the machine's CPU and memory, route the
machine's interrupt lines to it, attach the crypto framework (OCF, the
software driver unless disabled, /dev/crypto), enumerate the PCI bus and
attach a driver to every device whose vendor:device is in a driver's
``MATCH`` table (the others are "not configured", as OpenBSD says). Driver
attach runs in a kernel thread, so the register accesses it makes are charged
to the CPU like everything else.

A driver's ``attach(pa, **options)`` receives a
:class:`drivers.pci.PciAttachArgs` (the device, its unit number, register
mapping, configuration space, DMA memory, interrupts, the kernel and OCF),
not the whole :class:`System`; units are numbered per driver in slot order.

``driver_options`` maps a driver module's name to the keyword options of its
softc, e.g. ``{"ubsec": {"maxaggr": 1, "watchdog_us": 50}, "hifn":
{"ring_sizes": {...}}}`` (each driver module's docstring lists them).
``System.softcs`` holds the attached softcs in slot order; each has ``name``
(``ubsec0``, ``hifn0``, ...), ``dev`` (its :class:`drivers.pci.PciDevice`:
``slot``, ``bars``, ``irq``), ``cid``, ``stats()`` and ``handover_hook``
(docs/reliability.md); each is an :class:`ocf.crypto.CryptoDriver`
(:class:`drivers.softc.PciCryptoSoftc`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from drivers.pci import PciAttachArgs, PciDevice, enumerate_bus
from ocf.attach import OCF, attach as ocf_attach
from sim.kernel import Kernel
from sim.kernel.profile import DEFAULT_PROFILE

__all__ = ["System", "boot", "DRIVERS", "DRIVER_MODULES", "match_table"]

#: the drivers configured into the kernel (OpenBSD's ioconf), each a module
#: with ``MATCH = {(vendor, device): name}`` and ``async attach(pa, **options)``
DRIVER_MODULES = ("drivers.ubsec", "drivers.hifn", "drivers.em")


def match_table(modules=DRIVER_MODULES) -> dict[tuple[int, int], str]:
    """vendor:device → ``"module:attach"`` from the modules' MATCH tables."""
    table: dict[tuple[int, int], str] = {}
    for name in modules:
        for ids in importlib.import_module(name).MATCH:
            if ids in table:
                raise ValueError(f"{ids[0]:04x}:{ids[1]:04x} matched by {table[ids]} and {name}")
            table[ids] = f"{name}:attach"
    return table


#: vendor:device → "module:attach". ``attach(pa, **options)`` is an async
#: function run in the autoconf kernel thread; it returns the softc or None.
DRIVERS: dict[tuple[int, int], str] = match_table()


@dataclass
class System:
    host: Any
    kernel: Kernel
    ocf: OCF
    devices: list[PciDevice] = field(default_factory=list)
    softcs: list[Any] = field(default_factory=list)

    @property
    def crypto(self):
        return self.ocf.crypto

    @property
    def cryptodev(self):
        return self.ocf.cryptodev


async def boot(host, *, profile: str = DEFAULT_PROFILE, software: bool = True,
               allow_soft: bool = False, driver_options: dict | None = None) -> System:
    """Bring the machine up; returns once every driver has attached."""
    kernel = Kernel(host.loop, host.memory, profile=profile)
    host.on_interrupt(kernel.interrupt)
    system = System(host, kernel, ocf_attach(kernel, software=software, allow_soft=allow_soft))
    options = driver_options or {}

    async def autoconf(t):
        system.devices = await enumerate_bus(host)
        units: dict[str, int] = {}
        for dev in system.devices:
            target = DRIVERS.get((dev.vendor, dev.device))
            if target is None:
                kernel.printf(f"{dev.name} at pci0 dev {dev.slot} not configured")
                continue
            module, _, fn = target.partition(":")
            driver = module.rsplit(".", 1)[-1]
            attach = getattr(importlib.import_module(module), fn)
            pa = PciAttachArgs(dev=dev, unit=units.get(driver, 0), kernel=kernel,
                               crypto=system.crypto, host=host)
            softc = await attach(pa, **options.get(driver, {}))
            if softc is not None:
                units[driver] = pa.unit + 1
                system.softcs.append(softc)

    await kernel.kthread_create("autoconf", autoconf).task
    return system
