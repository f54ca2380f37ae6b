"""Boot a simulated machine: kernel, OCF, PCI enumeration, device drivers.

``await boot(host)`` is what the kernel's autoconfiguration does at startup:
start the simulated kernel on the machine's CPU and memory, route the
machine's interrupt lines to it, attach the crypto framework (OCF, the
software driver unless disabled, /dev/crypto), enumerate the PCI bus and
attach a driver to every device whose vendor:device it knows. Driver attach
runs in a kernel thread, so the register accesses it makes are charged to
the CPU like everything else.

``driver_options`` maps a driver module's name to the keyword options of its
softc, e.g. ``{"ubsec": {"maxaggr": 1, "watchdog_us": 50}, "hifn":
{"ring_sizes": {...}}}`` (each driver module's docstring lists them).
``System.softcs`` holds the attached softcs in slot order; each has ``name``
(``ubsec0``, ``hifn0``, ...), ``dev`` (its :class:`drivers.pci.PciDevice`:
``slot``, ``bars``, ``irq``), ``stats()`` and ``handover_hook``
(docs/reliability.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from drivers.pci import PciDevice, enumerate_bus
from ocf.attach import OCF, attach as ocf_attach
from sim.kernel import Kernel
from sim.kernel.profile import DEFAULT_PROFILE

__all__ = ["System", "boot", "DRIVERS"]

#: vendor:device → "module:attach". ``attach(system, device, **options)`` is an
#: async function run in the autoconf kernel thread; it returns the softc.
DRIVERS: dict[tuple[int, int], str] = {
    (0x14E4, 0x5820): "drivers.ubsec:attach",
    (0x13A3, 0x0005): "drivers.hifn:attach",
}


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
        for dev in system.devices:
            target = DRIVERS.get((dev.vendor, dev.device))
            if target is None:
                continue
            module, _, fn = target.partition(":")
            try:
                attach = getattr(importlib.import_module(module), fn)
            except (ImportError, AttributeError):
                kernel.printf(f"{dev.name} at pci0 dev {dev.slot} not configured")
                continue
            softc = await attach(system, dev, **options.get(module.rsplit(".", 1)[-1], {}))
            if softc is not None:
                system.softcs.append(softc)

    await kernel.kthread_create("autoconf", autoconf).task
    return system
