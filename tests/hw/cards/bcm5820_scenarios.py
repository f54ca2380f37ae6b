"""Host-side scenarios for the BCM5820-like card, run inside the simulator.

Records, contexts and particles are built here from the ``lib.data`` layouts
of :mod:`hw.dma.mcr` (not from the driver), and every output is checked
against ``cryptography`` / ``hmac`` (3DES-CBC, HMAC-SHA1-96). Arguments are
JSON-able so the same scenario runs on both backends.
"""

import hashlib
import hmac
import random

from drivers.pci import enumerate_bus
from hw import structs
from hw.cards.ubsecreg import (UBSEC_REGS, CTRL, STAT, ContextLong, Mcr, McrHeader, McrPacket,
                               PktBuf, UBS_PKTCTX_ENC_3DES, UBS_PKTCTX_INBOUND,
                               UBS_PKTCTX_AUTH_SHA1, UBS_PKTCTX_AUTH_MD5, UBS_MCR_DONE,
                               UBS_MCR_ERROR, MCR_BYTES, MCR_ADD_BYTES, CTX_LONG_BYTES,
                               MAC_BYTES, MAX_PARTICLES, byte_offset)
from hw.pci.target import CMD_BUS_MASTER
from tests.hw.crypto.crypto_ref import cbc, hmac_midstates

BAD_ADDR = 0xF000_0000          # decoded by nobody: master abort


def _bytes(layout, value):
    return structs.pack(layout, value)


def context_bytes(flags, offset_words, key, iv, mackey):
    inner, outer = hmac_midstates(mackey) if mackey else (0, 0)
    return _bytes(ContextLong, {
        "len": CTX_LONG_BYTES, "type": 0, "flags": flags, "offset": offset_words,
        "deskey": [int.from_bytes(key[4 * j:4 * j + 4], "big") for j in range(6)],
        "iv": [int.from_bytes(iv[0:4], "big"), int.from_bytes(iv[4:8], "big")],
        "hminner": [(inner >> 32 * (4 - j)) & 0xFFFF_FFFF for j in range(5)],
        "hmouter": [(outer >> 32 * (4 - j)) & 0xFFFF_FFFF for j in range(5)],
    })


def expected(pkt):
    """(output bytes, MAC) of one packet, from cryptography and hmac."""
    data, skip = pkt["data"], 4 * pkt["offset"]
    out, mac = b"", b""
    if pkt["cipher"]:
        k = pkt["key"]
        out = cbc(k[0:8], k[8:16], k[16:24], pkt["iv"], data[skip:], pkt["inbound"])
    if pkt["mac"]:
        macced = data if (pkt["inbound"] or not pkt["cipher"]) else data[:skip] + out
        mac = hmac.new(pkt["mackey"], macced, hashlib.sha1).digest()[:MAC_BYTES]
    return out, mac


def _split(rng, n, segs):
    """Split n bytes into up to ``segs`` non-empty pieces (random lengths)."""
    if segs <= 1 or n < 2:
        return [n]
    cuts = sorted(rng.sample(range(1, n), min(segs - 1, n - 1)))
    return [b - a for a, b in zip([0] + cuts, cuts + [n])]


class Card:
    def __init__(self, host, base):
        self.host, self.base = host, base
        self.mem = host.memory
        self.irq_fut = None
        host.on_interrupt(self._irq)

    def _irq(self, line, up):
        if up and self.irq_fut is not None and not self.irq_fut.done():
            self.irq_fut.set_result(line)

    async def rd(self, reg):
        return await self.host.mmio_read(self.base + getattr(UBSEC_REGS, reg).offset)

    async def wr(self, reg, v):
        await self.host.mmio_write(self.base + getattr(UBSEC_REGS, reg).offset, v)

    async def wait_irq(self, timeout_cycles=2_000_000):
        """Wait for INTA#: a register read first (flushes posted writes, so an
        acknowledged interrupt has really gone), then for the line."""
        await self.rd("STAT")
        if self.host.irq_lines:
            return True
        loop = self.host.loop
        self.irq_fut = loop.create_future("bcm irq")
        timer, handle = loop.call_at(loop.now + timeout_cycles * self.host.period_ps, "irq timeout")
        timer.add_done_callback(lambda _f: self.irq_fut.done() or self.irq_fut.set_result(None))
        r = await self.irq_fut
        handle.cancel()
        return r is not None

    def alloc(self, n, align=4):
        return self.mem.alloc(max(n, 1), align)


def make_packet(rng, *, size, cipher=True, mac=True, inbound=None, offset_words=0,
                in_segs=1, out_segs=1, misalign=False):
    if inbound is None:
        inbound = rng.random() < 0.5
    return {
        "data": bytes(rng.getrandbits(8) for _ in range(size)),
        "key": bytes(rng.getrandbits(8) for _ in range(24)),
        "iv": bytes(rng.getrandbits(8) for _ in range(8)),
        "mackey": bytes(rng.getrandbits(8) for _ in range(20)) if mac else b"",
        "cipher": cipher, "mac": mac, "inbound": inbound, "offset": offset_words,
        "in_split": _split(rng, size, in_segs),
        "out_split": _split(rng, size - 4 * offset_words, out_segs) if cipher else [],
        "misalign": misalign,
    }


def place_packet(card, rng, pkt, bad_in=False):
    """Put a packet's context, particles and buffers in host memory; returns
    the McrPacket fields and the addresses to check."""
    mem = card.mem
    flags = (UBS_PKTCTX_ENC_3DES if pkt["cipher"] else 0) | (UBS_PKTCTX_INBOUND if pkt["inbound"] else 0) \
        | (UBS_PKTCTX_AUTH_SHA1 if pkt["mac"] else 0) | pkt.get("extra_flags", 0)
    ctx = card.alloc(CTX_LONG_BYTES)
    mem.write(ctx, context_bytes(flags, pkt["offset"], pkt["key"], pkt["iv"], pkt["mackey"]))

    def chain(pieces, fill):
        """Particles for ``pieces``; returns (first pktbuf dict, [(addr, len)])."""
        bufs = []
        for n in pieces:
            lead = rng.randrange(4) if pkt["misalign"] else 0
            a = card.alloc(n + 8) + lead
            bufs.append((a, n))
        pos = 0
        for a, n in bufs:
            if fill is not None:
                mem.write(a, fill[pos:pos + n])
            pos += n
        descs = [card.alloc(12) for _ in bufs[1:]]
        return bufs, descs

    ibufs, idescs = chain(pkt["in_split"], pkt["data"])
    if bad_in:
        ibufs[-1] = (BAD_ADDR, ibufs[-1][1])
    obufs, odescs = chain(pkt["out_split"], None)
    macbuf = card.alloc(MAC_BYTES + 8) + (rng.randrange(4) if pkt["misalign"] else 0)
    mem.write(macbuf, bytes(MAC_BYTES))

    def link(bufs, descs, tail):
        # particle k lives in the MCR (k = 0) or at descs[k-1]; next → descs[k]
        firsts = None
        for k, (a, n) in enumerate(bufs):
            nxt = descs[k] if k + 1 < len(bufs) else tail
            pb = {"addr": a, "next": nxt, "len": n}
            if k == 0:
                firsts = pb
            else:
                mem.write(descs[k - 1], _bytes(PktBuf, pb))
        return firsts

    ipb = link(ibufs, idescs, 0)
    tail = macbuf if pkt["mac"] else 0
    opb = link(obufs, odescs, tail) if obufs else {"addr": 0, "next": tail, "len": 0}
    fields = {"ctxp": ctx, "ipkt": ipb, "pktlen": len(pkt["data"]), "opkt": opb}
    return fields, {"obufs": obufs, "macbuf": macbuf}


def build_record(card, rng, pkts, bad_in_pkt=None):
    mem = card.mem
    mcr = card.alloc(MCR_BYTES + MCR_ADD_BYTES * (len(pkts) - 1))
    places = []
    raw = _bytes(McrHeader, {"pkts": len(pkts), "flags": 0})
    for i, p in enumerate(pkts):
        fields, where = place_packet(card, rng, p, bad_in=(i == bad_in_pkt))
        raw += _bytes(McrPacket, fields)
        places.append(where)
    mem.write(mcr, raw)
    return mcr, places


def check_record(card, mcr, pkts, places):
    flags = int.from_bytes(card.mem.read(mcr + 2, 2), "little")
    pk = int.from_bytes(card.mem.read(mcr, 2), "little")
    bad = []
    for i, (p, where) in enumerate(zip(pkts, places)):
        want_out, want_mac = expected(p)
        got = b"".join(card.mem.read(a, n) for a, n in where["obufs"])
        if got != want_out:
            bad.append(f"packet {i}: output differs")
        if p["mac"] and card.mem.read(where["macbuf"], MAC_BYTES) != want_mac:
            bad.append(f"packet {i}: MAC differs")
    return flags, pk, bad


async def attach_card(host, imod=0):
    devs = await enumerate_bus(host)
    dev = devs[0]
    card = Card(host, dev.bar(0).addr)
    await card.wr("CTRL", CTRL.mcr1int.mask | CTRL.dmaerr.mask)
    if imod:
        await card.wr("IMOD", imod)
    return dev, card


async def records(host, seed=1, n_records=1, pkts_per_record=1, sizes=(64,),
                  in_segs=1, out_segs=1, cipher=True, mac=True, inbound=None,
                  offset_words=0, misalign=False, imod=0, batch=False):
    """Submit ``n_records`` records (respecting MCR1_FULL), take interrupts,
    check every packet. ``batch``: queue as many as fit before the first wait."""
    rng = random.Random(seed)
    dev, card = await attach_card(host, imod)
    ident = await host.cfg_read(dev.slot, 0)
    klass = await host.cfg_read(dev.slot, 8) >> 8
    recs = []
    for r in range(n_records):
        pkts = [make_packet(rng, size=rng.choice(sizes), cipher=cipher, mac=mac,
                            inbound=inbound, offset_words=offset_words, in_segs=in_segs,
                            out_segs=out_segs, misalign=misalign)
                for _ in range(pkts_per_record)]
        mcr, places = build_record(card, rng, pkts)
        recs.append((mcr, pkts, places))
    c0 = host.cycle
    submitted, completed, interrupts, full_seen = 0, 0, 0, 0
    failures = []
    while completed < n_records:
        while submitted < n_records:
            st = await card.rd("STAT")
            if st & STAT.mcr1_full.mask:
                full_seen += 1
                break
            await card.wr("MCR1", recs[submitted][0])
            submitted += 1
        if not await card.wait_irq():
            failures.append("timeout waiting for an interrupt")
            break
        interrupts += 1
        st = await card.rd("STAT")
        await card.wr("STAT", st)
        if st & STAT.dmaerr.mask:
            failures.append(f"unexpected DMAERR, ERR={await card.rd('ERR'):#x}")
            break
        while completed < submitted:
            mcr, pkts, places = recs[completed]
            flags, pk, bad = check_record(card, mcr, pkts, places)
            if not flags & UBS_MCR_DONE:
                break
            if flags & UBS_MCR_ERROR:
                bad.append(f"record {completed}: ERROR flag, code {flags >> 8:#x}")
            if pk != len(pkts):
                bad.append("pkts field overwritten")
            failures += bad
            completed += 1
    return {"completed": completed, "interrupts": interrupts, "full_seen": full_seen,
            "failures": failures[:10], "ident": ident, "class": klass,
            "cycles": host.cycle - c0, "checker": host.checker_errors()}


async def register_basics(host):
    """Reset values, CTRL read-back, STAT bits, MCR2 stub, IMOD."""
    dev, card = await attach_card(host)
    out = {"ctrl": await card.rd("CTRL"), "stat": await card.rd("STAT"),
           "err": await card.rd("ERR"), "mcr2": await card.rd("MCR2")}
    await card.wr("MCR2", 0x1234)
    out["stat_after_mcr2"] = await card.rd("STAT")
    await card.wr("IMOD", 0x0000_6403)
    out["imod"] = await card.rd("IMOD")
    await card.wr("CTRL", CTRL.board_reset.mask | CTRL.mcr1int.mask)
    out["ctrl_after_reset"] = await card.rd("CTRL")
    out["imod_after_reset"] = await card.rd("IMOD")
    out["irq"] = host.irq_lines
    out["checker"] = host.checker_errors()
    return out


async def errors_in_packets(host, seed=3):
    """One record whose packets have context/length/chain errors around a good one."""
    rng = random.Random(seed)
    dev, card = await attach_card(host)
    good = make_packet(rng, size=32)
    md5 = make_packet(rng, size=32)
    md5["extra_flags"] = UBS_PKTCTX_AUTH_MD5
    badlen = make_packet(rng, size=36, mac=False)        # cipher region not 8-aligned
    short_out = make_packet(rng, size=32, mac=False)
    short_out["out_split"] = [16]                       # output chain too short
    good2 = make_packet(rng, size=40, offset_words=2)
    pkts = [good, md5, badlen, short_out, good2]
    mcr, places = build_record(card, rng, pkts)
    await card.wr("MCR1", mcr)
    ok = await card.wait_irq()
    st = await card.rd("STAT")
    await card.wr("STAT", st)
    flags = int.from_bytes(card.mem.read(mcr + 2, 2), "little")
    res = {}
    for name, i in (("good", 0), ("good2", 4)):
        _, _, bad = check_record(card, mcr, [pkts[i]], [places[i]])
        res[name] = bad
    # the short output chain got its first 16 bytes right
    want, _ = expected(short_out)
    got = card.mem.read(places[3]["obufs"][0][0], 16)
    res["short_prefix_ok"] = got == want[:16]
    # afterwards the card still works
    follow = make_packet(rng, size=24)
    mcr2, places2 = build_record(card, rng, [follow])
    await card.wr("MCR1", mcr2)
    ok2 = await card.wait_irq()
    st2 = await card.rd("STAT")
    await card.wr("STAT", st2)
    f2, _, bad2 = check_record(card, mcr2, [follow], places2)
    return {"irq": ok, "stat": st, "flags": flags, "res": res, "follow_flags": f2,
            "follow_bad": bad2, "irq2": ok2, "checker": host.checker_errors()}


async def dma_error(host, seed=5, where="input"):
    """A record whose input (or context) points nowhere: DMAERR, ERR, halt;
    reset; the next record works."""
    rng = random.Random(seed)
    dev, card = await attach_card(host)
    pkt = make_packet(rng, size=64)
    mcr, places = build_record(card, rng, [pkt], bad_in_pkt=0 if where == "input" else None)
    if where == "mcr":
        mcr_submit = BAD_ADDR + 0x40
    else:
        mcr_submit = mcr
    await card.wr("MCR1", mcr_submit)
    ok = await card.wait_irq()
    st = await card.rd("STAT")
    err = await card.rd("ERR")
    flags = int.from_bytes(card.mem.read(mcr + 2, 2), "little")
    pci_status = await host.cfg_read(dev.slot, 4) >> 16
    # recovery, as the driver does it
    await card.wr("CTRL", CTRL.board_reset.mask)
    while await card.rd("CTRL") & CTRL.board_reset.mask:
        pass
    await card.wr("STAT", 0xFFFF_FFFF)
    await card.wr("CTRL", CTRL.mcr1int.mask | CTRL.dmaerr.mask)
    st_after = await card.rd("STAT")
    good = make_packet(rng, size=48)
    mcr2, places2 = build_record(card, rng, [good])
    await card.wr("MCR1", mcr2)
    ok2 = await card.wait_irq()
    st2 = await card.rd("STAT")
    await card.wr("STAT", st2)
    f2, _, bad2 = check_record(card, mcr2, [good], places2)
    return {"irq": ok, "stat": st, "err": err, "flags": flags, "pci_status": pci_status,
            "stat_after_reset": st_after, "irq2": ok2, "flags2": f2, "bad2": bad2,
            "expect_err": (BAD_ADDR if where == "input" else BAD_ADDR + 0x40),
            "checker": host.checker_errors()}


async def recover(card):
    """The driver's DMA-error recovery: CTRL RESET, clear STAT, enable interrupts."""
    await card.wr("CTRL", CTRL.board_reset.mask)
    while await card.rd("CTRL") & CTRL.board_reset.mask:
        pass
    await card.wr("STAT", 0xFFFF_FFFF)
    await card.wr("CTRL", CTRL.mcr1int.mask | CTRL.dmaerr.mask)


async def one_good_record(card, rng, size=48):
    """Submit one fresh record, wait for it; returns (interrupt seen, flags, failures)."""
    good = make_packet(rng, size=size)
    mcr, places = build_record(card, rng, [good])
    await card.wr("MCR1", mcr)
    ok = await card.wait_irq()
    st = await card.rd("STAT")
    await card.wr("STAT", st)
    flags, _, bad = check_record(card, mcr, [good], places)
    return ok, flags, bad


async def master_card_addresses(host, before):
    """Address phases the card's master has started since ``before``."""
    return host.bus_stats_since(before)["by_master"].get("slot1.master", {}).get("address", 0)


async def bme_outage(host, seed=13, size=256, off_us=60):
    """Bus Master Enable (command bit 2) cleared for ``off_us`` with a record on
    the card, then set again; the driver's recovery; a new record."""
    rng = random.Random(seed)
    dev, card = await attach_card(host)
    pkt = make_packet(rng, size=size)
    mcr, places = build_record(card, rng, [pkt])
    await card.wr("MCR1", mcr)
    cmd = await host.cfg_read(dev.slot, 4) & 0xFFFF       # not the W1C status half
    await host.cfg_write(dev.slot, 4, cmd & ~CMD_BUS_MASTER)
    before = host.bus_stats()
    await host.sleep(off_us * 1_000_000)
    out = {"starts_while_off": await master_card_addresses(host, before),
           "irq": bool(host.irq_lines), "stat": await card.rd("STAT"),
           "err": await card.rd("ERR"),
           "flags": int.from_bytes(card.mem.read(mcr + 2, 2), "little")}
    await host.cfg_write(dev.slot, 4, cmd)
    await recover(card)
    out["stat_after_reset"] = await card.rd("STAT")
    out["irq2"], out["flags2"], out["bad2"] = await one_good_record(card, rng)
    out["checker"] = host.checker_errors()
    return out


#: byte offsets in a one-packet record of the input/output particles' fields
IPKT, OPKT = byte_offset(Mcr, "pkt", "ipkt"), byte_offset(Mcr, "pkt", "opkt")
PB_NEXT, PB_LEN = byte_offset(PktBuf, "next"), byte_offset(PktBuf, "len")


def _u32(mem, addr):
    return int.from_bytes(mem.read(addr, 4), "little")


def _nth_particle(mem, first, n):
    """Bus address of particle ``n`` (0 = ``first``) of a chain."""
    a = first
    for _ in range(n):
        a = _u32(mem, a + PB_NEXT)
    return a


def bad_chain_record(card, rng, kind):
    """A one-packet record whose chain the card must refuse; returns (mcr, the
    bus address of the particle the card must report)."""
    n = MAX_PARTICLES + 8
    shapes = {
        "in_self": dict(size=32, in_segs=2),         # 2nd input particle: len 0, next = itself
        "out_self": dict(size=32, out_segs=2, mac=False),
        "in_first0": dict(size=32),                  # the record's input particle: len 0
        "in_long": dict(size=n, cipher=False, in_segs=n),       # 1-byte particles
        "out_long": dict(size=n, out_segs=n, mac=False),
    }
    pkt = make_packet(rng, **shapes[kind])
    mcr, _ = build_record(card, rng, [pkt])
    mem = card.mem
    if kind in ("in_self", "out_self"):
        at = _u32(mem, mcr + (IPKT if kind == "in_self" else OPKT) + PB_NEXT)
        mem.write(at + PB_NEXT, at.to_bytes(4, "little"))
        mem.write(at + PB_LEN, bytes(4))
    elif kind == "in_first0":
        at = mcr + IPKT
        mem.write(at + PB_LEN, bytes(4))
    else:
        at = _nth_particle(mem, mcr + (IPKT if kind == "in_long" else OPKT), MAX_PARTICLES)
    return mcr, at


async def chain_error(host, kind, seed=21):
    """A chain the card must not walk: DMAERR with ERR at the particle, the
    record flagged ERROR + ERR_CHAIN without DONE; reset; a good record."""
    rng = random.Random(seed)
    dev, card = await attach_card(host)
    mcr, at = bad_chain_record(card, rng, kind)
    await card.wr("MCR1", mcr)
    out = {"irq": await card.wait_irq(timeout_cycles=30_000), "stat": await card.rd("STAT"),
           "err": await card.rd("ERR"), "expect_err": at,
           "flags": int.from_bytes(card.mem.read(mcr + 2, 2), "little")}
    await recover(card)
    out["irq2"], out["flags2"], out["bad2"] = await one_good_record(card, rng)
    out["checker"] = host.checker_errors()
    return out


async def moderation(host, seed=7, n_records=4, imod_n=3, imod_t=3000, size=16,
                     wait_cycles=2_000_000):
    """IMOD: N records or T clocks. Submits all records, counts interrupts."""
    rng = random.Random(seed)
    dev, card = await attach_card(host, imod=imod_n | imod_t << 8)
    recs = []
    for _ in range(n_records):
        pkts = [make_packet(rng, size=size)]
        mcr, places = build_record(card, rng, pkts)
        recs.append((mcr, pkts, places))
    t0 = host.cycle
    done_seen, interrupts, stamps = 0, 0, []
    sub = 0
    while done_seen < n_records:
        while sub < n_records and not (await card.rd("STAT")) & STAT.mcr1_full.mask:
            await card.wr("MCR1", recs[sub][0])
            sub += 1
        if not await card.wait_irq(wait_cycles):
            break
        interrupts += 1
        stamps.append(host.cycle - t0)
        st = await card.rd("STAT")
        await card.wr("STAT", st)
        while done_seen < sub:
            flags, _, bad = check_record(card, *recs[done_seen])
            if not flags & UBS_MCR_DONE:
                break
            done_seen += 1
    return {"done": done_seen, "interrupts": interrupts, "stamps": stamps,
            "edges": sum(host.interrupt_edges),
            "checker": host.checker_errors()}


async def tls_packets(host, cases, seed=7, misalign=True):
    """The model's one-pass TLS flag, driven from the bare card (no driver):
    one record with a packet per case ``(gap, n, pad_len, extra)``: ``gap``
    bytes MAC'd before the cipher (13: the TLS pseudo-header, RFC 2246
    §6.2.3.1), ``n`` data bytes, ``extra`` further context flags (to provoke
    errors). The expected output, E(data | HMAC-SHA1 | padding), and the
    MAC buffer's 12 bytes are built from cryptography and hmac."""
    from hw.cards.ubsecreg import UBS_PKTCTX_TLS, TLS_MAC_BYTES
    rng = random.Random(seed)
    dev, card = await attach_card(host)
    mem = card.mem
    mcr = card.alloc(MCR_BYTES + MCR_ADD_BYTES * (len(cases) - 1))
    raw = _bytes(McrHeader, {"pkts": len(cases), "flags": 0})
    want = []
    for gap, n, pad_len, extra in cases:
        lead = -gap % 4
        key = bytes(rng.getrandbits(8) for _ in range(24))
        iv = bytes(rng.getrandbits(8) for _ in range(8))
        mackey = bytes(rng.getrandbits(8) for _ in range(20))
        inp = bytes(rng.getrandbits(8) for _ in range(lead + gap + n))
        flags = UBS_PKTCTX_ENC_3DES | UBS_PKTCTX_AUTH_SHA1 | UBS_PKTCTX_TLS | \
            (lead << 8) | pad_len | extra
        ctx = card.alloc(CTX_LONG_BYTES)
        mem.write(ctx, context_bytes(flags, (lead + gap) // 4, key, iv, mackey))
        ia = card.alloc(len(inp) + 8) + (rng.randrange(4) if misalign else 0)
        mem.write(ia, inp)
        mac = hmac.new(mackey, inp[lead:], hashlib.sha1).digest()
        assert len(mac) == TLS_MAC_BYTES
        plain = inp[lead + gap:] + mac + bytes([pad_len]) * (pad_len + 1)
        olen = len(plain)
        # two output particles, the second at an odd address, then the MAC buffer
        cut = rng.randrange(1, olen)
        o1 = card.alloc(cut + 8) + (rng.randrange(4) if misalign else 0)
        o2 = card.alloc(olen - cut + 8) + 1
        macbuf = card.alloc(MAC_BYTES + 8)
        mem.write(macbuf, bytes(MAC_BYTES))
        d2 = card.alloc(12)
        mem.write(d2, _bytes(PktBuf, {"addr": o2, "next": macbuf, "len": olen - cut}))
        raw += _bytes(McrPacket, {"ctxp": ctx, "ipkt": {"addr": ia, "next": 0, "len": len(inp)},
                                  "pktlen": len(inp),
                                  "opkt": {"addr": o1, "next": d2, "len": cut}})
        ok = len(plain) % 8 == 0
        want.append(dict(out=cbc(key[0:8], key[8:16], key[16:24], iv, plain, False)
                         if ok else None, mac=mac[:MAC_BYTES], where=[(o1, cut), (o2, olen - cut)],
                         macbuf=macbuf))
    mem.write(mcr, raw)
    c0 = host.cycle
    await card.wr("MCR1", mcr)
    irq = await card.wait_irq()
    cycles = host.cycle - c0
    flags = int.from_bytes(mem.read(mcr + 2, 2), "little")
    res = []
    for w in want:
        got = b"".join(mem.read(a, k) for a, k in w["where"])
        res.append({"out_ok": w["out"] is not None and got == w["out"],
                    "mac_ok": mem.read(w["macbuf"], MAC_BYTES) == w["mac"]})
    return {"irq": irq, "flags": flags, "res": res, "cycles": cycles,
            "checker": host.checker_errors()}
