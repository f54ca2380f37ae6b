"""Host-side scenarios for the 82544GC-class NIC, run inside the simulator.

Rings and descriptors are built from the header's layouts (not by the
driver); frames are random bytes, checked byte for byte after MAC loopback,
their FCS against ``zlib.crc32``.
"""

import random
import zlib

from drivers.pci import enumerate_bus
from hw import structs
from hw.cards.em8254xreg import (EM_REGS, CTRL, RCTL, TCTL, ICR_TXDW, ICR_TXQE, ICR_RXT0,
                                 ICR_RXO, ICR_LSC, ICR_RXDMT0, LBM_MAC, TxDesc, RxDesc,
                                 DESC_BYTES)

STATION = bytes.fromhex("0002b3aabbcc")


class Nic:
    def __init__(self, host, base):
        self.host, self.base, self.mem = host, base, host.memory
        self.edges = []                 # (time ps, ICR read by the handler)
        self.ack = False
        host.on_interrupt(self._irq)

    def _irq(self, line, up):
        if up and self.ack:
            self.host.loop.spawn(self._handle(self.host.now), "em ack")

    async def _handle(self, t):
        self.edges.append((t, await self.rd("ICR")))

    async def rd(self, reg):
        return await self.host.mmio_read(self.base + getattr(EM_REGS, reg).offset)

    async def wr(self, reg, v):
        await self.host.mmio_write(self.base + getattr(EM_REGS, reg).offset, v)

    async def wait(self, us):
        await self.host.sleep(int(us * 1e6))


async def attach(host):
    dev = (await enumerate_bus(host))[0]
    return dev, Nic(host, dev.bar(0).addr)


async def register_basics(host):
    dev, nic = await attach(host)
    out = {"ident": [dev.vendor, dev.device, dev.class_code]}
    for reg in ("CTRL", "STATUS", "ICR", "IMS", "RCTL", "TCTL", "RAL0", "RAH0", "EECD",
                "GPRC", "TPT", "RDH", "TDLEN"):
        out[reg] = await nic.rd(reg)
    words = []
    for a in (0, 1, 2, 0x3F, 0x40):
        await nic.wr("EERD", a << 8 | 1)
        words.append(await nic.rd("EERD"))
    out["eerd"] = words
    await nic.wr("ICS", ICR_TXQE | ICR_RXO)
    out["irq_masked"] = host.irq_lines
    out["icr_1"] = await nic.rd("ICR")
    out["icr_2"] = await nic.rd("ICR")                 # read-to-clear
    await nic.wr("IMS", ICR_TXDW | ICR_RXT0)
    await nic.wr("IMS", ICR_LSC)
    await nic.wr("IMC", ICR_RXT0)
    out["ims"] = await nic.rd("IMS")
    await nic.wr("ICS", ICR_TXDW)
    await nic.rd("STATUS")
    out["irq_on"] = host.irq_lines
    await nic.wr("ICR", ICR_TXDW)                      # write 1 clears
    await nic.rd("STATUS")
    out["irq_off"] = host.irq_lines
    out["icr_3"] = await nic.rd("ICR")
    await nic.wr("CTRL", CTRL.slu.mask)
    out["status_up"] = await nic.rd("STATUS")
    out["icr_lsc"] = await nic.rd("ICR")
    await nic.wr("TDLEN", 16 * DESC_BYTES)
    await nic.wr("CTRL", CTRL.rst.mask)
    await nic.wait(1)
    out["after_reset"] = [await nic.rd(r) for r in ("CTRL", "TDLEN", "IMS", "RAL0")]
    out["checker"] = host.checker_errors()
    return out


def _rings(nic, n):
    tx = nic.mem.alloc(n * DESC_BYTES, 128)
    rx = nic.mem.alloc(n * DESC_BYTES, 128)
    nic.mem.write(tx, bytes(n * DESC_BYTES))
    nic.mem.write(rx, bytes(n * DESC_BYTES))
    return tx, rx


async def setup(nic, n=16, rx_bufs=0, rx_offset=2, itr=0, tidv=0, tadv=0, rdtr=0, radv=0,
                ims=0):
    """Rings of n descriptors, rx_bufs receive buffers of 2048 handed over,
    MAC loopback, TX and RX on."""
    tx, rx = _rings(nic, n)
    bufs = []
    for i in range(rx_bufs):
        b = nic.mem.alloc(2048 + 4, 4) + rx_offset
        bufs.append(b)
        nic.mem.write(rx + i * DESC_BYTES, structs.pack(RxDesc, addr=b))
    for reg, v in (("CTRL", CTRL.slu.mask), ("ITR", itr), ("TIDV", tidv), ("TADV", tadv),
                   ("RDTR", rdtr), ("RADV", radv),
                   ("TDBAL", tx), ("TDLEN", n * DESC_BYTES), ("TDH", 0), ("TDT", 0),
                   ("RDBAL", rx), ("RDLEN", n * DESC_BYTES), ("RDH", 0), ("RDT", rx_bufs),
                   ("RCTL", RCTL.bits(en=1, bam=1, lbm=LBM_MAC)),
                   ("TCTL", TCTL.bits(en=1, psp=1, ct=0x10, cold=0x40)), ("ICR", 0)):
        await nic.wr(reg, v)
    await nic.rd("ICR")
    if ims:
        await nic.wr("IMS", ims)
    return tx, rx, bufs


def _frame(rng, size):
    return STATION + bytes(rng.getrandbits(8) for _ in range(size - 6))


def queue_frame(nic, tx, slot, n, frame, segs, rng, ide=False):
    """Frame in ``segs`` pieces at odd addresses, one descriptor each; returns
    the next slot."""
    cuts = sorted(rng.sample(range(1, len(frame)), segs - 1)) if segs > 1 else []
    pieces = [frame[a:b] for a, b in zip([0] + cuts, cuts + [len(frame)])]
    for j, p in enumerate(pieces):
        a = nic.mem.alloc(len(p) + 8, 4) + rng.randrange(4)
        nic.mem.write(a, p)
        nic.mem.write(tx + slot * DESC_BYTES, structs.pack(TxDesc, {
            "addr": a, "length": len(p),
            "cmd": {"eop": j == len(pieces) - 1, "ifcs": 1, "rs": 1, "ide": ide}}))
        slot = (slot + 1) % n
    return slot


async def loopback(host, sizes=(60, 61, 1514), segs=1, rx_offset=2, seed=1):
    rng = random.Random(seed)
    dev, nic = await attach(host)
    n = 16
    tx, rx, bufs = await setup(nic, n, rx_bufs=n - 1, rx_offset=rx_offset)
    frames = [_frame(rng, s) for s in sizes]
    slot = 0
    for f in frames:
        slot = queue_frame(nic, tx, slot, n, f, segs, rng)
        await nic.wr("TDT", slot)                    # one TDT write per packet
    out = {"sent": [], "got": [], "tx_dd": [], "icr": 0}
    for _ in range(400):
        await nic.wait(2)
        out["icr"] |= await nic.rd("ICR")
        if await nic.rd("RDH") == len(frames):
            break
    for i in range(slot):
        out["tx_dd"].append(structs.unpack(TxDesc, nic.mem.read(tx + i * DESC_BYTES, 16))
                            ["status"]["dd"])
    for i, f in enumerate(frames):
        d = structs.unpack(RxDesc, nic.mem.read(rx + i * DESC_BYTES, 16))
        body = f.ljust(60, b"\0")
        out["sent"].append((body + zlib.crc32(body).to_bytes(4, "little")).hex())
        out["got"].append(nic.mem.read(bufs[i], d["length"]).hex())
        out.setdefault("status", []).append([d["status"]["dd"], d["status"]["eop"],
                                             d["errors"]["ce"]])
    out["stats"] = {r: await nic.rd(r) for r in ("GPTC", "TPT", "GOTCL", "GOTCH", "GPRC",
                                                "TPR", "GORCL", "GORCH", "CRCERRS", "MPC")}
    out["stats_again"] = [await nic.rd(r) for r in ("GPTC", "GPRC", "GORCL")]
    out["tdh"] = await nic.rd("TDH")
    out["tdt"] = slot
    out["checker"] = host.checker_errors()
    return out


async def overrun(host, frames=3, size=1514, seed=2):
    """No receive descriptors: frames wait in the receive FIFO until it cannot
    take a maximum frame; the next ones are dropped (RXO, MPC)."""
    rng = random.Random(seed)
    dev, nic = await attach(host)
    n = 8
    tx, rx, _ = await setup(nic, n, rx_bufs=0)
    slot = 0
    sent = [_frame(rng, size) for _ in range(frames)]
    for f in sent:
        slot = queue_frame(nic, tx, slot, n, f, 1, rng)
    await nic.wr("TDT", slot)
    await nic.wait(15 * frames + 10)
    out = {"icr": await nic.rd("ICR"), "mpc": await nic.rd("MPC"),
           "rnbc": await nic.rd("RNBC"), "tpr": await nic.rd("TPR"), "rdh": await nic.rd("RDH")}
    # now hand over buffers: the frames that waited arrive
    bufs = []
    for i in range(n - 1):
        b = nic.mem.alloc(2048, 4)
        bufs.append(b)
        nic.mem.write(rx + i * DESC_BYTES, structs.pack(RxDesc, addr=b))
    await nic.wr("RDT", n - 1)
    await nic.wait(30)
    out["rdh_after"] = await nic.rd("RDH")
    got = []
    for i in range(out["rdh_after"]):
        d = structs.unpack(RxDesc, nic.mem.read(rx + i * DESC_BYTES, 16))
        got.append(nic.mem.read(bufs[i], d["length"] - 4) == sent[i])
    out["delivered_ok"] = got
    out["checker"] = host.checker_errors()
    return out


async def throttle(host, itr=100, frames=3, gap_us=4.0, seed=3):
    """TXDW on every frame, ITR: assertions at least ITR x 256 ns apart."""
    rng = random.Random(seed)
    dev, nic = await attach(host)
    n = 8
    tx, rx, _ = await setup(nic, n, rx_bufs=0, itr=itr, ims=ICR_TXDW)
    nic.ack = True
    slot = 0
    for _ in range(frames):
        slot = queue_frame(nic, tx, slot, n, _frame(rng, 60), 1, rng)
        await nic.wr("TDT", slot)
        await nic.wait(gap_us)
    await nic.wait(itr * 0.256 * frames + 10)
    return {"edges": nic.edges, "checker": host.checker_errors()}


async def moderation(host, rdtr=0, radv=0, tidv=0, tadv=0, ims=ICR_RXT0, frames=1,
                     gap_us=1.0, ide=False, n=8, rx_bufs=7, seed=4):
    """Time from each TDT write to the interrupt(s) the handler sees, with
    the receive / transmit delay timers set."""
    rng = random.Random(seed)
    dev, nic = await attach(host)
    tx, rx, _ = await setup(nic, n, rx_bufs=rx_bufs, rdtr=rdtr, radv=radv, tidv=tidv,
                            tadv=tadv, ims=ims)
    nic.ack = True
    slot, starts = 0, []
    for _ in range(frames):
        slot = queue_frame(nic, tx, slot, n, _frame(rng, 60), 1, rng, ide=ide)
        starts.append(host.now)
        await nic.wr("TDT", slot)
        await nic.wait(gap_us)
    await nic.wait(200)
    return {"starts": starts, "edges": nic.edges, "icr": await nic.rd("ICR"),
            "rdh": await nic.rd("RDH"), "checker": host.checker_errors()}
