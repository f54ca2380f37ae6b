"""Experiment entries for the fault tests: observe a fault from outside the plan."""

from __future__ import annotations

from hw.pci.pcireg import COMMAND
from ocfsim.faults import FaultPlan
from ocfsim.system import boot


async def observe(host, faults: list[str], reads: list[list]) -> dict:
    """Boot, arm ``faults``, then at each ``[time_us, what, bar, reg]`` read
    the card's config command register (``what == "command"``) or a BAR
    register (``"mmio"``) through the host bridge, as any agent would."""
    system = await boot(host)
    plan = FaultPlan.parse(faults).arm(system)
    dev = system.softcs[0].dev
    seen = []
    for at_us, what, bar, reg in sorted(reads):
        await host.sleep(max(0, plan.t0 + int(at_us * 1e6) - host.now))
        if what == "command":
            value = await host.cfg_read(dev.slot, COMMAND.offset) & 0xFFFF
        else:
            value = await host.mmio_read(dev.bar(bar).addr + reg)
        seen.append({"time_us": (host.now - plan.t0) / 1e6, "what": what, "value": value})
    await host.sleep(max(0, plan.window_end_ps - host.now))
    return {"seen": seen, "log": plan.log}
