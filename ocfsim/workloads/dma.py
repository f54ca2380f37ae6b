"""DMA test-card workload: K cards copy host memory concurrently, verified.

Runs inside the simulator (an experiment entry, see ``sim.experiment``).
The driver side is written as a real driver would: registers through MMIO,
completion by interrupt, then a status read before the data is trusted
(an INTx# can overtake the DMA it announces: interrupts are not ordered
with data, PCI 2.3 Appendix E).
"""

from __future__ import annotations

import random

from drivers.pci import enumerate_bus

__all__ = ["dma_copy", "lspci", "DMA_VENDOR", "DMA_DEVICE"]

DMA_VENDOR, DMA_DEVICE = 0x0CF5, 0xD0A1
REG = dict(SRC=0x00, DST=0x04, LEN=0x08, CTRL=0x0C, STATUS=0x10, INTEN=0x14,
           BURST=0x18, ID=0x1C, MOVED=0x20)
ST_BUSY, ST_DONE, ST_ERROR = 1, 2, 4


async def lspci(host) -> dict:
    devices = await enumerate_bus(host)
    return {"devices": [
        {"slot": d.slot, "vendor": d.vendor, "device": d.device,
         "class": d.class_code, "revision": d.revision,
         "irq": d.irq, "bars": [{"index": b.index, "addr": b.addr, "size": b.size,
                                 "prefetchable": b.prefetchable} for b in d.bars]}
        for d in devices]}


async def dma_copy(host, nbytes: int, burst: int = 256, seed: int = 1,
                   bad_addr: bool = False, dram_timing: dict | None = None,
                   latency_timer: int = 64) -> dict:
    """Every DMA test card copies ``nbytes``; all start together; verify all bytes."""
    devices = [d for d in await enumerate_bus(host, latency_timer=latency_timer)
               if (d.vendor, d.device) == (DMA_VENDOR, DMA_DEVICE)]
    if not devices:
        return {"ok": False, "error": "no DMA test card found"}
    if dram_timing:
        host.set_dram_timing(**dram_timing)
    rng = random.Random(seed)
    mem = host.memory
    loop = host.loop
    jobs = []
    for dev in devices:
        src = mem.alloc(max(nbytes, 4))
        dst = mem.alloc(max(nbytes, 4) + 8)
        payload = rng.randbytes(nbytes)
        mem.write(src, payload)
        guard = rng.randbytes(nbytes + 8)
        mem.write(dst, guard)               # so a short copy is visible
        jobs.append(dict(dev=dev, src=src, dst=dst, payload=payload, guard=guard,
                         done=loop.create_future(f"slot{dev.slot} done")))

    by_line: dict[int, list] = {}
    for j in jobs:
        by_line.setdefault(j["dev"].irq, []).append(j)

    async def service(line):
        # interrupt handler: read STATUS of each card on the line, ack, complete
        for j in by_line.get(line, []):
            if j["done"].done():
                continue
            base = j["dev"].bar(0).addr
            st = await host.mmio_read(base + REG["STATUS"])
            if st & (ST_DONE | ST_ERROR):
                await host.mmio_write(base + REG["STATUS"], st & (ST_DONE | ST_ERROR))
                j["done"].set_result(st)

    host.on_interrupt(lambda line, asserted: asserted and loop.spawn(service(line), "intr"))

    before = host.bus_stats()
    t0, c0 = host.now, host.cycle
    for j in jobs:
        base = j["dev"].bar(0).addr
        src = 0xFFFF_FFF0 if bad_addr else j["src"]   # nobody decodes it: master abort
        await host.mmio_write(base + REG["SRC"], src)
        await host.mmio_write(base + REG["DST"], j["dst"])
        await host.mmio_write(base + REG["LEN"], nbytes)
        await host.mmio_write(base + REG["BURST"], burst)
        await host.mmio_write(base + REG["INTEN"], 1)
    for j in jobs:
        await host.mmio_write(j["dev"].bar(0).addr + REG["CTRL"], 1)
    statuses = [await j["done"] for j in jobs]
    t1, c1 = host.now, host.cycle
    stats = host.bus_stats_since(before)

    results = []
    ok = True
    for j, st in zip(jobs, statuses):
        got = mem.read(j["dst"], nbytes + 8)
        copied = got[:nbytes] == j["payload"]
        untouched = got[nbytes:] == j["guard"][nbytes:]
        err = bool(st & ST_ERROR)
        card_ok = (err if bad_addr else (copied and untouched and not err))
        ok &= card_ok
        cfg_status = await host.cfg_read(j["dev"].slot, 0x04) >> 16
        results.append({"slot": j["dev"].slot, "ok": card_ok, "error": err,
                        "err_code": st >> 4 & 3, "copied": copied,
                        "tail_untouched": untouched,
                        "rx_master_abort": bool(cfg_status & (1 << 13))})
    return {
        "ok": ok and not host.checker_errors(),
        "bytes": nbytes * len(jobs),
        "cards": len(jobs),
        "burst": burst,
        "sim_cycles": c1 - c0,
        "sim_time_s": (t1 - t0) / 1e12,
        "pci_utilisation": stats["pci_utilisation"],
        "breakdown": stats["breakdown"],
        "by_master": stats["by_master"],
        "interrupts": sum(host.interrupt_edges),
        "per_card": results,
        "checker": host.checker_errors(),
        "arbiter_wait_max": host.arbiter_wait_max(),
    }
