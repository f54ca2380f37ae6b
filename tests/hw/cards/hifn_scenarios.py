"""Host-side scenarios for the Hifn 7751 card RTL (either backend), through the
Host API only: config cycles, MMIO, DRAM backdoor and INTA#. A small ring
manager here stands in for a driver (it reuses the driver's command packing
and constants, as a test program would include hifn7751reg.h)."""

from __future__ import annotations

import hashlib
import hmac
import random
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from drivers import hifn as H
from hw.cards import hifn7751reg as R
from hw.structs import pack_int
from drivers.pci import enumerate_bus
from hw.pci.target import CMD_BUS_MASTER

RINGS = "csrd"            # order of CRAR/SRAR/RRAR/DRAR and of DMA_CSR fields
RAR = dict(c=R.CRAR.offset, s=R.SRAR.offset, r=R.RRAR.offset, d=R.DRAR.offset)
ALL_ENA = sum(R.csr_field(r, "ctrl").value(R.RingCtrl.ENA.value) for r in R.Ring)
ENA_C, ENA_D = (R.csr_field(r, "ctrl").value(R.RingCtrl.ENA.value) for r in (R.Ring.CMD, R.Ring.DST))
DIS_C, DIS_D = (R.csr_field(r, "ctrl").value(R.RingCtrl.DIS.value) for r in (R.Ring.CMD, R.Ring.DST))
IER = R.DMA_CSR.r_done.mask | R.DMACSR_ABORTS | R.DMA_CSR.d_over.mask


def reference(op: dict) -> tuple[bytes, bytes]:
    """Expected packet and MAC for an op dict (see ``random_op``)."""
    data = op["data"]
    out = data
    if op.get("cipher"):
        key = op["ckey"] if op["cipher"] == "3des" else op["ckey"] * 3
        c = Cipher(TripleDES(key), modes.CBC(op["iv"]))
        f = c.decryptor() if op["decrypt"] else c.encryptor()
        s, n = op["cskip"], op["clen"]
        out = data[:s] + f.update(data[s:s + n]) + f.finalize() + data[s + n:]
    mac = b""
    if op.get("mac"):
        src = data if op["decrypt"] else out        # MAC over the ciphertext (IPsec)
        s, n = op["mskip"], op["mlen"]
        mac = hmac.new(op["mkey"], src[s:s + n], hashlib.sha1).digest()
    return out, mac


def random_op(rng: random.Random, *, size=None, cipher=None, mac=None, decrypt=None,
              session=0, keys=True) -> dict:
    size = size if size is not None else 8 * rng.randint(1, 12)
    cipher = cipher if cipher is not None else rng.choice(["3des", "des", "3des", None])
    mac = mac if mac is not None else (rng.random() < 0.5 or cipher is None)
    decrypt = decrypt if decrypt is not None else rng.random() < 0.5
    op = dict(data=bytes(rng.getrandbits(8) for _ in range(size)), cipher=cipher, mac=mac,
              decrypt=decrypt, session=session, keys=keys, iv=bytes(rng.getrandbits(8) for _ in range(8)))
    if cipher:
        op["ckey"] = bytes(rng.getrandbits(8) for _ in range(24 if cipher == "3des" else 8))
        skip = 8 * rng.randint(0, 2) if size > 24 else 0
        op["cskip"], op["clen"] = skip, size - skip - (8 if size - skip > 16 and rng.random() < 0.3 else 0)
    if mac:
        op["mkey"] = bytes(rng.getrandbits(8) for _ in range(rng.choice([20, 20, 64, 5])))
        op["mskip"], op["mlen"] = 0, size
    return op


class Rig:
    """The card with its four rings in host DRAM (small rings: wrap-around comes early)."""

    def __init__(self, host, dev, sizes=None):
        self.host, self.dev = host, dev
        self.bar0, self.bar1 = dev.bar(0).addr, dev.bar(1).addr
        self.sizes = sizes or dict(c=4, s=6, r=4, d=6)
        self.mem = host.memory
        self.base = {r: self.mem.alloc(8 * (self.sizes[r] + 1), 64) for r in RINGS}
        self.idx = dict.fromkeys(RINGS, 0)
        self.cmdbufs = [self.mem.alloc(128, 64) for _ in range(self.sizes["c"])]
        self.resbufs = [self.mem.alloc(32, 64) for _ in range(self.sizes["r"])]
        self.irqs = 0
        self.results: list[int] = []          # result slots, in completion order
        self.pending = []                     # (op, res slot, res ring index, data addrs)
        self.csr_seen = 0
        self.cmd_lens: list[int] = []

    async def w0(self, reg, v): await self.host.mmio_write(self.bar0 + reg, v)
    async def w1(self, reg, v): await self.host.mmio_write(self.bar1 + reg, v)
    async def r0(self, reg): return await self.host.mmio_read(self.bar0 + reg)
    async def r1(self, reg): return await self.host.mmio_read(self.bar1 + reg)

    async def init(self, unlock=True, poll=(1, 0), enable=True):
        await self.w1(R.DMA_CNFG.offset, R.DMA_CNFG.mode.mask)            # reset
        run = R.DMA_CNFG.bits(mstreset=1, dmareset=1, mode=1)
        if unlock:
            await self.w1(R.DMA_CNFG.offset, run | R.DMA_CNFG.unlock.mask)
            await self.w1(R.SECRET2.offset, R.UNLOCK_KEY)
        for r in RINGS:
            self.mem.write(self.base[r], bytes(8 * (self.sizes[r] + 1)))
            self.mem.write(self.base[r] + 8 * self.sizes[r] + 4, struct.pack("<I", self.base[r]))
            await self.w1(RAR[r], self.base[r])
            self.idx[r] = 0
        await self.w1(R.DMA_IER.offset, IER)
        await self.w1(R.DMA_CNFG.offset, run | poll[0] << 16 | poll[1] << 8)
        await self.w0(R.PUCTRL.offset, R.PUCTRL.dmaena.mask)
        if enable:
            await self.w1(R.DMA_CSR.offset, ALL_ENA)

    def on_irq(self):
        async def service():
            csr = await self.r1(R.DMA_CSR.offset)
            self.csr_seen |= csr
            if csr & IER:
                await self.w1(R.DMA_CSR.offset, csr & IER)
        self.host.on_interrupt(lambda line, up: up and self._irq(service))

    def _irq(self, service):
        self.irqs += 1
        self.host.loop.spawn(service())

    def post(self, r, addr, l):
        i = self.idx[r]
        b = self.base[r]
        self.mem.write(b + 8 * i + 4, struct.pack("<I", addr))
        self.mem.write(b + 8 * i, struct.pack("<I", l))
        i += 1
        if i == self.sizes[r]:
            self.mem.write(b + 8 * i, struct.pack("<I", R.D_VALID | R.D_JUMP))
            i = 0
        self.idx[r] = i
        return b + 8 * (i - 1 if i else self.sizes[r] - 1)

    def submit(self, op, segs=1, dst_len=None, src_addr=None):
        """Post one packet; data in ``segs`` pieces, in place (dst = src)."""
        op.pop("_res", None)
        data = op["data"]
        n = len(data)
        buf = self.mem.alloc(max(n + 8, 8), 64)
        self.mem.write(buf, data)
        cuts = sorted(random.Random(n).sample(range(1, max(2, n // 4)), min(segs - 1, max(0, n // 4 - 1))))
        bounds = [0] + [4 * c for c in cuts] + [n]
        pieces = [(buf + a, b - a) for a, b in zip(bounds, bounds[1:])]
        mac = crypt = None
        if op.get("mac"):
            mac = (pack_int(R.MacMasks, result=1), op["mskip"], op["mlen"])
        if op.get("cipher"):
            crypt = ((pack_int(R.CryptMasks, alg=R.CryptAlg.TDES) if op["cipher"] == "3des" else 0)
                     | pack_int(R.CryptMasks, mode=R.CryptMode.CBC) | op.get("cmode", 0), op["cskip"], op["clen"])
        keys = op.get("keys", True)
        cmd = H.pack_command(session=op["session"], slen=n, dlen=n, decode=op["decrypt"],
                             mac=mac, crypt=crypt,
                             mac_key=op.get("mkey") if keys else None,
                             cipher_key=op.get("ckey") if keys else None,
                             iv=op["iv"] if crypt and op.get("send_iv", True) else None)
        ci = self.idx["c"]
        ri = self.idx["r"]
        self.cmd_lens.append(len(cmd))
        self.mem.write(self.cmdbufs[ci], cmd)
        self.mem.write(self.resbufs[ri], bytes(32))
        rdesc = self.post("r", self.resbufs[ri], 32 | R.D_VALID | R.D_LAST)
        dpieces = pieces if dst_len is None else [(buf, dst_len)]
        for k, (a, ln) in enumerate(dpieces):
            self.post("d", a, ln | R.D_VALID | R.D_MASKDONEIRQ
                      | (R.D_LAST if k == len(dpieces) - 1 else 0))
        for k, (a, ln) in enumerate(pieces):
            self.post("s", src_addr if src_addr is not None else a,
                      ln | R.D_VALID | R.D_MASKDONEIRQ
                      | (R.D_LAST if k == len(pieces) - 1 else 0))
        self.post("c", self.cmdbufs[ci], len(cmd) | R.D_VALID | R.D_LAST
                  | R.D_MASKDONEIRQ)
        self.pending.append((op, ri, rdesc, buf))
        return rdesc

    async def wait_all(self, timeout_us=20000):
        """Wait until every posted result descriptor is back with the host."""
        t_end = self.host.now + timeout_us * 1_000_000
        while self.host.now < t_end:
            if all(not struct.unpack("<I", self.mem.read(rd, 4))[0] & R.D_VALID
                   for _, _, rd, _ in self.pending):
                self._snapshot()
                return True
            await self.host.sleep(2_000_000)
        return False

    def _snapshot(self):
        """Keep each finished packet's result before its slot is reused."""
        for op, ri, rd, buf in self.pending:
            if "_res" not in op:
                op["_res"] = self.mem.read(self.resbufs[ri], 32)

    def result(self, i):
        op, ri, _, _ = self.pending[i]
        return H.unpack_result(op.get("_res") or self.mem.read(self.resbufs[ri], 32))

    def check(self):
        """Compare every finished packet with the reference; returns failure strings."""
        bad = []
        for op, ri, rd, buf in self.pending:
            n = len(op["data"])
            res = H.unpack_result(op.get("_res") or self.mem.read(self.resbufs[ri], 32))
            got = self.mem.read(buf, n)
            want, wmac = reference(op)
            if res["flags"] & 0x0203:
                bad.append(f"flags {res['flags']:#x} for {n} B {op.get('cipher')} mac={op.get('mac')}")
            elif got != want:
                bad.append(f"data differs: {n} B {op.get('cipher')} dec={op['decrypt']}")
            elif op.get("mac") and res["mac"] != wmac:
                bad.append(f"MAC differs: {n} B {op.get('cipher')} dec={op['decrypt']}")
        return bad


async def _rig(host, **kw):
    devs = await enumerate_bus(host)
    rig = Rig(host, devs[0], kw.pop("sizes", None))
    await rig.init(**kw)
    rig.on_irq()
    return rig


async def registers(host):
    devs = await enumerate_bus(host)
    d = devs[0]
    rig = Rig(host, d)
    out = {"vendor": d.vendor, "device": d.device, "class": d.class_code,
           "bars": [(b.index, b.size) for b in d.bars], "irq": d.irq}
    out["pustat_reset"] = await rig.r0(R.PUSTAT.offset)
    await rig.init(unlock=False, enable=False)
    out["pustat_locked"] = await rig.r0(R.PUSTAT.offset)
    await rig.init(unlock=True, enable=False)
    out["pustat_unlocked"] = await rig.r0(R.PUSTAT.offset)
    out["pucnfg"] = await rig.r0(R.PUCNFG.offset)
    out["rar"] = [await rig.r1(RAR[r]) for r in RINGS]
    out["bases"] = [rig.base[r] for r in RINGS]
    out["csr_idle"] = await rig.r1(R.DMA_CSR.offset)
    await rig.w1(R.DMA_CSR.offset, ENA_C | ENA_D)
    out["csr_enabled"] = await rig.r1(R.DMA_CSR.offset)
    # the empty command ring is polled: WAIT appears; write 1 clears it
    await host.sleep(30 * 1_000_000)
    out["csr_wait"] = await rig.r1(R.DMA_CSR.offset)
    await rig.w1(R.DMA_CSR.offset, R.DMA_CSR.c_wait.mask | DIS_C | DIS_D)
    out["csr_cleared"] = await rig.r1(R.DMA_CSR.offset)
    out["ier"] = await rig.r1(R.DMA_IER.offset)
    out["checker"] = host.checker_errors()
    return out


async def packets(host, n=3, seed=1, segs=1, sizes=None, sequential=False, size=None,
                  cipher=None, mac=None, decrypt=None):
    """``n`` random packets (each on its own session with new keys), byte-exact check."""
    rig = await _rig(host, sizes=sizes)
    rng = random.Random(seed)
    ops = [random_op(rng, session=i % 7, size=size, cipher=cipher, mac=mac, decrypt=decrypt)
           for i in range(n)]
    before = host.bus_stats()
    t0 = host.now
    ok = True
    window = max(1, min(rig.sizes["c"], rig.sizes["r"], rig.sizes["s"] // segs,
                        rig.sizes["d"] // segs))
    i = 0
    while i < n:
        # keep up to a ring's worth in flight (sequential: one at a time)
        batch = 1 if sequential else window
        for op in ops[i:i + batch]:
            rig.submit(op, segs=segs)
        ok &= await rig.wait_all()
        i += batch
    elapsed = host.now - t0
    after = host.bus_stats()
    return {"ok": ok, "failures": rig.check(), "n": n, "irqs": rig.irqs,
            "csr_seen": rig.csr_seen, "elapsed_ps": elapsed,
            "bytes": sum(len(o["data"]) for o in ops),
            "card_data": after["by_master"].get("slot1.master", {}).get("data", 0)
            - before["by_master"].get("slot1.master", {}).get("data", 0),
            "ring_idx": dict(rig.idx), "checker": host.checker_errors()}


async def key_cache(host, seed=2):
    """A session's keys go with its first command only; two sessions interleave."""
    rig = await _rig(host)
    rng = random.Random(seed)
    a = random_op(rng, size=48, cipher="3des", mac=True, decrypt=False, session=3)
    b = random_op(rng, size=32, cipher="des", mac=False, decrypt=True, session=900)
    ops = [a, b]
    for base, k in ((a, 3), (b, 2)):
        for _ in range(k):
            o = dict(base, data=bytes(rng.getrandbits(8) for _ in range(len(base["data"]))),
                     iv=bytes(rng.getrandbits(8) for _ in range(8)), keys=False)
            ops.append(o)
    order = [0, 1, 2, 5, 3, 6, 4]
    for i in order:
        rig.submit(ops[i])
        await rig.wait_all()
    # the IV-less command continues the session's CBC chain
    c = dict(a, data=bytes(range(16)), keys=False, send_iv=False, mac=False,
             cskip=0, clen=16)
    last_ct = None
    for op, ri, rd, buf in reversed(rig.pending):
        if op["session"] == 3:
            last_ct = rig.mem.read(buf + op["cskip"] + op["clen"] - 8, 8)
            break
    rig.submit(dict(c, iv=last_ct))
    await rig.wait_all()
    return {"failures": rig.check(), "irqs": rig.irqs, "n": len(rig.pending),
            "cmd_lens": rig.cmd_lens, "checker": host.checker_errors()}


async def poll_rate(host, freq=1, scalar=0, us=60):
    """Bus transactions of an idle card polling its empty command ring."""
    rig = await _rig(host, poll=(freq, scalar))
    b = host.bus_stats()["by_master"].get("slot1.master", {}).get("address", 0)
    await host.sleep(us * 1_000_000)
    a = host.bus_stats()["by_master"].get("slot1.master", {}).get("address", 0)
    # disabled rings are not polled
    await rig.w1(R.DMA_CSR.offset, DIS_C)
    await host.sleep(3 * 1_000_000)
    c = host.bus_stats()["by_master"].get("slot1.master", {}).get("address", 0)
    await host.sleep(us * 1_000_000)
    d = host.bus_stats()["by_master"].get("slot1.master", {}).get("address", 0)
    return {"polls": a - b, "polls_disabled": d - c, "checker": host.checker_errors()}


async def errors(host):
    """Invalid command, destination overrun, short source: each completes with flags."""
    rig = await _rig(host)
    rng = random.Random(5)
    out = {}
    ecb = random_op(rng, size=32, cipher="3des", mac=False, decrypt=False)
    ecb["cmode"] = 0x10                                   # CFB: not CBC → CMDINVAL
    rig.submit(ecb)
    # overrun: destination shorter than the packet
    ov = random_op(rng, size=64, cipher="3des", mac=False, decrypt=False, session=1)
    rig.submit(ov, dst_len=32)
    good = random_op(rng, size=40, cipher="3des", mac=True, decrypt=True, session=2)
    rig.submit(good)
    out["done"] = await rig.wait_all()
    res = [rig.result(i) for i in range(len(rig.pending))]
    out["flags"] = [r["flags"] for r in res]
    out["puisr"] = await rig.r0(R.PUISR.offset)
    out["csr_seen"] = rig.csr_seen
    rig.pending = rig.pending[2:]
    out["failures"] = rig.check()
    out["idx"] = dict(rig.idx)
    out["checker"] = host.checker_errors()
    return out


async def abort(host):
    """A source address nobody decodes: S_ABORT, the chip halts; reset, go on."""
    rig = await _rig(host)
    rng = random.Random(9)
    good = random_op(rng, size=32, cipher="3des", mac=True, decrypt=False)
    rig.submit(good)
    bad = random_op(rng, size=64, cipher="3des", mac=False, decrypt=False, session=1)
    rig.submit(bad, src_addr=0xF000_0000)
    after = random_op(rng, size=24, cipher="des", mac=False, decrypt=False, session=2)
    rig.submit(after)
    await rig.wait_all(timeout_us=150)
    out = {"csr_seen": rig.csr_seen, "irqs": rig.irqs}
    states = [not struct.unpack("<I", rig.mem.read(rd, 4))[0] & R.D_VALID
              for _, _, rd, _ in rig.pending]
    out["result_done"] = states
    rig.pending = rig.pending[:1]
    out["first_failures"] = rig.check()
    out["cfg_status"] = (await host.cfg_read(rig.dev.slot, 0x04)) >> 16
    # recovery: reset, rings from the start, keys again
    await rig.init()
    rig.pending = []
    again = random_op(rng, size=48, cipher="3des", mac=True, decrypt=True, session=1)
    rig.submit(again)
    out["recovered"] = await rig.wait_all()
    out["failures"] = rig.check()
    out["checker"] = host.checker_errors()
    return out


def _master_addresses(host, before):
    """Address phases the card's master has started since ``before``."""
    return host.bus_stats_since(before)["by_master"].get("slot1.master", {}).get("address", 0)


async def bme_outage(host, off_us=60):
    """Bus Master Enable (command bit 2) cleared for ``off_us`` with packets on
    the card, then set again; the abort recovery (reset, rings from the
    start, keys again); a new packet."""
    rig = await _rig(host)
    rng = random.Random(17)
    for s in range(2):
        rig.submit(random_op(rng, size=64, cipher="3des", mac=True, decrypt=False, session=s))
    await host.sleep(2 * 1_000_000)                       # the chip is on the first one
    cmd = await host.cfg_read(rig.dev.slot, 4) & 0xFFFF   # not the W1C status half
    await host.cfg_write(rig.dev.slot, 4, cmd & ~CMD_BUS_MASTER)
    before = host.bus_stats()
    await host.sleep(off_us * 1_000_000)
    out = {"starts_while_off": _master_addresses(host, before), "csr_seen": rig.csr_seen,
           "irqs": rig.irqs}
    await host.cfg_write(rig.dev.slot, 4, cmd)
    await rig.init()
    rig.pending = []
    rig.submit(random_op(rng, size=48, cipher="3des", mac=True, decrypt=True, session=1))
    out["recovered"] = await rig.wait_all(timeout_us=500)
    out["failures"] = rig.check()
    out["checker"] = host.checker_errors()
    return out


async def bad_command(host, patch, size=32, cipher="3des", mac=True, segs=1, timeout_us=400):
    """A packet whose command buffer is then patched (``patch``: [(offset, hex
    bytes)]), followed by a good one: both must complete (result back with
    the host); returns the results' flags and the good packet's check."""
    rig = await _rig(host)
    rng = random.Random(23)
    bad = random_op(rng, size=size, cipher=cipher, mac=mac, decrypt=False, session=1)
    ci = rig.idx["c"]
    rig.submit(bad, segs=segs)
    for off, hexb in patch:
        rig.mem.write(rig.cmdbufs[ci] + off, bytes.fromhex(hexb))
    good = random_op(rng, size=24, cipher="3des", mac=True, decrypt=True, session=2)
    rig.submit(good)
    out = {"done": await rig.wait_all(timeout_us=timeout_us)}
    out["flags"] = [rig.result(i)["flags"] for i in range(len(rig.pending))]
    out["puisr"] = await rig.r0(R.PUISR.offset)
    out["csr"] = await rig.r1(R.DMA_CSR.offset)
    rig.pending = rig.pending[1:]
    out["failures"] = rig.check()
    out["checker"] = host.checker_errors()
    return out


async def jump_loop(host, ring="c"):
    """A VALID JUMP descriptor that points to itself at the chip's position in
    ``ring``: the chip must abort that ring, not read it for ever; the abort
    recovery; a good packet."""
    rig = await _rig(host, enable=False)
    at = rig.base[ring]
    rig.mem.write(at, struct.pack("<II", R.D_VALID | R.D_JUMP, at))
    await rig.w1(R.DMA_CSR.offset, ALL_ENA)
    if ring != "c":
        rig.idx[ring] = 1                     # the packet's descriptor behind the loop
        rig.submit(random_op(random.Random(29), size=16, cipher="des", mac=False,
                             decrypt=False))
    await host.sleep(40 * 1_000_000)
    out = {"csr_seen": rig.csr_seen, "irqs": rig.irqs}
    await rig.init()
    rig.pending = []
    rig.submit(random_op(random.Random(31), size=32, cipher="3des", mac=True,
                         decrypt=False, session=3))
    out["recovered"] = await rig.wait_all(timeout_us=500)
    out["failures"] = rig.check()
    out["checker"] = host.checker_errors()
    return out
