"""Experiment entries for tests/hw/test_segments*.py: machines with bus
segments behind PCI-PCI bridges, driven through the host API only."""

from drivers.bus_space import ConfigSpace
from drivers.pci import ALL_ONES, enumerate_bus
from hw.cards.dmatest import REG
from hw.pci.pcireg import BUS_NUMBERS, ID, MEMORY_WINDOW, STATUS, window_bounds
from ocfsim.workloads.dma import dma_copy


def _row(d):
    return {"bus": d.bus, "slot": d.slot, "vendor": d.vendor, "device": d.device,
            "irq": d.irq, "bridge": list(d.bridge) if d.bridge else None,
            "bars": [[b.addr, b.size] for b in d.bars]}


async def tree(host, empty=(1, 9), beyond=7) -> dict:
    """Enumerate; read every bridge's bus numbers and memory window back
    through configuration cycles; a configuration read of an empty device
    behind a bridge (``empty`` = bus, device) and of a bus no bridge
    forwards (``beyond``); MMIO to each DMA test card: posted writes of its
    SRC register, then a read (the delayed read must see the last write)."""
    devices = await enumerate_bus(host)
    rows = [_row(d) for d in devices]
    for d, row in zip(devices, rows):              # STATUS: 66MHz Capable (M66EN)
        where = host if d.bus == 0 else host.config_bus(d.bus)
        status = await ConfigSpace(where, d.slot).read(STATUS)
        row["m66"] = bool(STATUS.mhz66_capable.get(status))
    readback = {}
    for d in devices:
        if d.bridge:
            where = host if d.bus == 0 else host.config_bus(d.bus)
            cfg = ConfigSpace(where, d.slot)
            readback[f"{d.bus}:{d.slot}"] = {
                "buses": BUS_NUMBERS.decode(await cfg.read(BUS_NUMBERS)),
                "window": list(window_bounds(MEMORY_WINDOW, await cfg.read(MEMORY_WINDOW)))}
    bus, dev = empty
    empty_id = await host.config_bus(bus).cfg_read(dev, ID.offset)
    beyond_id = await host.config_bus(beyond).cfg_read(0, ID.offset)
    order = []
    for d in devices:
        if d.vendor == 0x0CF5:
            base = d.bar(0).addr
            for k in range(6):                       # posted, one behind another
                await host.mmio_write(base + REG["SRC"], 0x1000 * (k + 1) + 4 * d.slot)
            await host.mmio_write(base + REG["DST"], 0xABC0)
            order.append([d.bus, d.slot, await host.mmio_read(base + REG["SRC"]),
                          await host.mmio_read(base + REG["DST"]),
                          await host.mmio_read(base + REG["ID"])])
    return {"devices": rows, "readback": readback, "empty_id": empty_id,
            "beyond_id": beyond_id, "all_ones": ALL_ONES, "order": order,
            "bus": host.bus_stats(), "checker": host.checker_errors(),
            "checker_by_segment": [host.checker_errors(k)
                                   for k in range(len(host.spec.segments()))],
            "cycle": host.cycle}


async def copy(host, nbytes: int = 64, burst: int = 16) -> dict:
    """Every DMA test card (behind bridges too) copies host memory by DMA,
    completion by interrupt (ocfsim.workloads.dma)."""
    r = await dma_copy(host, nbytes, burst=burst)
    r["bus"] = host.bus_stats()
    r["checker_by_segment"] = [host.checker_errors(k) for k in range(len(host.spec.segments()))]
    r["lines"] = list(host.interrupt_edges)
    return r
