"""Scenarios for the driver contract: every register access the drivers make,
and what autoconf attaches."""

from __future__ import annotations

from ocfsim.system import boot

from .answer_scenarios import answers


def _record(host, log: list) -> None:
    """Wrap the host's MMIO and configuration entry points to log each access."""
    mmio_read, mmio_write = host.mmio_read, host.mmio_write
    cfg_read, cfg_write = host.cfg_read, host.cfg_write

    async def rd(addr, **kw):
        log.append(("mmio_read", addr, None, 0xF))
        return await mmio_read(addr, **kw)

    async def wr(addr, value, be=0xF):
        log.append(("mmio_write", addr, value, be))
        await mmio_write(addr, value, be)

    async def crd(slot, reg, func=0):
        log.append(("cfg_read", slot << 8 | reg, None, 0xF))
        return await cfg_read(slot, reg, func)

    async def cwr(slot, reg, value, func=0, be=0xF):
        log.append(("cfg_write", slot << 8 | reg, value, be))
        await cfg_write(slot, reg, value, func, be)

    host.mmio_read, host.mmio_write = rd, wr
    host.cfg_read, host.cfg_write = crd, cwr


async def register_trace(host, cases: list[dict]) -> dict:
    """Boot, run ``cases`` (as :func:`answers`) and return every access made,
    with the devices' BARs to decode them."""
    log: list = []
    _record(host, log)
    out = await answers(host, cases)
    return {"accesses": log, "answers": out["answers"], "drivers": out["drivers"],
            "stats": out["stats"]}


async def autoconf(host) -> dict:
    """What autoconf attached, and its messages."""
    system = await boot(host)
    return {"softcs": [(sc.name, sc.dev.slot, sc.cid, sc.product) for sc in system.softcs],
            "devices": [(d.slot, d.vendor, d.device, [(b.index, b.addr, b.size) for b in d.bars])
                        for d in system.devices],
            "registered": {sc.name: sorted(system.crypto.drivers[sc.cid].algs)
                           for sc in system.softcs},
            "msgbuf": list(system.kernel.msgbuf)}
