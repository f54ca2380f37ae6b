"""Host-side scenarios the PCI tests run inside the simulator (either backend)."""

from drivers.pci import enumerate_bus
from ocfsim.workloads.dma import REG, ST_DONE, ST_ERROR, dma_copy  # noqa: F401


async def enumerate_and_probe(host):
    devices = await enumerate_bus(host)
    out = []
    for d in devices:
        # re-size BAR0 by hand to check the sizing protocol independently
        saved = await host.cfg_read(d.slot, 0x10)
        await host.cfg_write(d.slot, 0x10, 0xFFFF_FFFF)
        probe = await host.cfg_read(d.slot, 0x10)
        await host.cfg_write(d.slot, 0x10, saved)
        restored = await host.cfg_read(d.slot, 0x10)
        out.append({"slot": d.slot, "vendor": d.vendor, "device": d.device,
                    "class": d.class_code, "irq": d.irq,
                    "bars": [(b.index, b.addr, b.size) for b in d.bars],
                    "probe": probe, "saved": saved, "restored": restored,
                    "command": await host.cfg_read(d.slot, 0x04) & 0xFFFF,
                    "lat": await host.cfg_read(d.slot, 0x0C) >> 8 & 0xFF,
                    "intline": await host.cfg_read(d.slot, 0x3C) & 0xFF})
    return {"devices": out, "checker": host.checker_errors()}


async def mmio_and_aborts(host):
    devices = await enumerate_bus(host)
    base = devices[0].bar(0).addr
    await host.mmio_write(base + REG["SRC"], 0x1234_5678)
    await host.mmio_write(base + REG["DST"], 0xCAFE_F00C)
    src = await host.mmio_read(base + REG["SRC"])
    dst = await host.mmio_read(base + REG["DST"])
    ident = await host.mmio_read(base + REG["ID"])
    # byte-enable write: only byte 1 of LEN changes
    await host.mmio_write(base + REG["LEN"], 0x1111_1111)
    await host.mmio_write(base + REG["LEN"], 0xAABB_CCDD, be=0b0010)
    length = await host.mmio_read(base + REG["LEN"])
    # nobody decodes this address: master abort, all ones, no hang
    hole = 0xF000_0000
    value, status = await host.mmio_read_status(hole)
    await host.mmio_write(hole, 0xDEAD_BEEF)
    after, after_status = await host.mmio_read_status(base + REG["ID"])
    return {"src": src, "dst": dst, "id": ident, "len": length,
            "hole_value": value, "hole_status": status,
            "write_errors": host.write_errors,
            "after": after, "after_status": after_status,
            "checker": host.checker_errors()}


async def bad_dma_then_good(host, nbytes=64):
    bad = await dma_copy(host, nbytes, bad_addr=True)
    # the simulation carries on: the same card copies correctly afterwards
    good = await dma_copy(host, nbytes, seed=7)
    return {"bad": bad, "good": good}


async def peer_read(host, nbytes=32):
    """Card 1 DMA-reads card 2's register BAR: the non-prefetchable target
    disconnects after every dword, and the initiator resumes."""
    devices = await enumerate_bus(host)
    a, b = devices[0], devices[1]
    bbase = b.bar(0).addr
    await host.mmio_write(bbase + REG["SRC"], 0x0000_1000)
    await host.mmio_write(bbase + REG["DST"], 0x0000_2000)
    await host.mmio_write(bbase + REG["LEN"], 0x0000_0ABC)
    expected = [0x1000, 0x2000, 0xABC, 0, 0, 0, 256, 0x0CF5D0A1]
    dst = host.memory.alloc(64)
    host.memory.write(dst, bytes(64))
    abase = a.bar(0).addr
    done = host.loop.create_future("peer done")

    async def service(line):
        st = await host.mmio_read(abase + REG["STATUS"])
        if st & (ST_DONE | ST_ERROR) and not done.done():
            await host.mmio_write(abase + REG["STATUS"], st)
            done.set_result(st)

    host.on_interrupt(lambda line, up: up and host.loop.spawn(service(line)))
    before = host.bus_stats()
    for reg, val in (("SRC", bbase), ("DST", dst), ("LEN", nbytes), ("BURST", 8),
                     ("INTEN", 1), ("CTRL", 1)):
        await host.mmio_write(abase + REG[reg], val)
    st = await done
    got = host.memory.read(dst, nbytes)
    words = [int.from_bytes(got[i:i + 4], "little") for i in range(0, nbytes, 4)]
    after = host.bus_stats()
    return {"status": st, "words": words, "expected": expected[:nbytes // 4],
            "aborts": after["breakdown"]["abort"] - before["breakdown"]["abort"],
            "checker": host.checker_errors()}


async def copies_under_wait_states(host, nbytes=256, burst=256, sweep=()):
    """One DMA copy per ``(wait_every, wait_len)`` in ``sweep``, on one machine.

    After each copy the card's STATUS has been read (the driver's flush of
    posted writes, PCI 2.3 §3.2.5) and host DRAM is compared with the
    expected copy at once (``dma_copy``)."""
    out = []
    for wait_every, wait_len in sweep:
        r = await dma_copy(host, nbytes, burst=burst, seed=wait_every * 100 + wait_len,
                           dram_timing={"wait_every": wait_every, "wait_len": wait_len})
        card = r["per_card"][0]
        out.append({"wait_every": wait_every, "wait_len": wait_len, "ok": r["ok"],
                    "copied": card["copied"], "tail_untouched": card["tail_untouched"],
                    "error": card["error"], "aborts": r["breakdown"]["abort"]})
    host.set_dram_timing()
    return {"copies": out, "checker": host.checker_errors()}
