"""ubsec end-to-end scenarios through OCF directly (a kernel consumer, as IPsec
is), run inside the simulator on either backend. Every output is checked
against ``cryptography`` (3DES-CBC) and ``hmac`` (HMAC-SHA1-96)."""

import hashlib
import hmac
import random

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT,
                            CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC, CryptoBuf,
                            CryptoDesc, CryptoIni, CryptoOp)
from ocfsim.system import boot
from sim.kernel import PWAIT

BAD_ADDR = 0xF000_0000          # nobody decodes it: the card's read master-aborts
ALGS = ("3des", "des", "3des-sha1", "des-sha1", "sha1")


def make_spec(rng, alg, size, segs=1, encrypt=None, hdr_words=None, bad=False,
              implicit_iv=False):
    """A JSON-able request description."""
    return {"alg": alg, "size": size, "segs": segs,
            "encrypt": rng.random() < 0.5 if encrypt is None else encrypt,
            "hdr": 4 * (rng.randrange(3) if hdr_words is None else hdr_words),
            "bad": bad, "implicit_iv": implicit_iv, "seed": rng.getrandbits(32)}


def _reference(spec, key, mackey, iv, data, hdr):
    """(expected buffer [hdr | payload], expected MAC or b"")."""
    alg = spec["alg"]
    head, body = data[:hdr], data[hdr:]
    if alg.startswith(("3des", "des")):
        k = key if alg.startswith("3des") else key * 3
        c = Cipher(TripleDES(k), modes.CBC(iv))
        op = c.encryptor() if spec["encrypt"] else c.decryptor()
        out = op.update(body) + op.finalize()
    else:
        out = body
    mac = b""
    if alg.endswith("sha1"):
        macced = head + (out if spec["encrypt"] else body)
        mac = hmac.new(mackey, macced, hashlib.sha1).digest()[:12]
    return head + out, mac


def _split(rng, n, k):
    if k <= 1 or n < 2:
        return [n]
    cuts = sorted(rng.sample(range(1, n), min(k - 1, n - 1)))
    return [b - a for a, b in zip([0] + cuts, cuts + [n])]


async def requests(host, specs, burst=True, gap_ns=0, driver_options=None,
                   free_sessions=True, profile=None):
    """Issue every request of ``specs`` through OCF; return per-request results."""
    system = await boot(host, driver_options=driver_options,
                        **({"profile": profile} if profile else {}))
    k, crypto = system.kernel, system.crypto
    sc = next(s for s in system.softcs if s.name.startswith("ubsec"))
    chan = object()
    state = {"done": 0}
    results = [None] * len(specs)

    def callback(crp):
        i = crp.opaque
        r = results[i]
        r["calls"] += 1
        r["etype"] = crp.etype
        state["done"] += 1
        k.wakeup(chan)

    async def consumer(t):
        for i, spec in enumerate(specs):
            rng = random.Random(spec["seed"])
            alg = spec["alg"]
            cipher = {"3des": CRYPTO_3DES_CBC, "des": CRYPTO_DES_CBC}.get(alg.split("-")[0])
            has_mac = alg.endswith("sha1")
            key = bytes(rng.getrandbits(8) for _ in range(24 if alg.startswith("3des") else 8))
            mackey = bytes(rng.getrandbits(8) for _ in range(20))
            iv = bytes(rng.getrandbits(8) for _ in range(8))
            chain = []
            if cipher:
                chain.append(CryptoIni(cipher, 8 * len(key), key))
            if has_mac:
                chain.append(CryptoIni(CRYPTO_SHA1_HMAC, 160, mackey))
            err, sid = await crypto.newsession(chain, True)
            r = {"calls": 0, "etype": None, "newsession": err, "ok": None,
                 "hw": bool(not err and sid >> 32 == sc.cid)}
            results[i] = r
            if err:
                state["done"] += 1
                continue
            hdr = spec["hdr"] if has_mac else 0
            size = spec["size"]
            # buffer: [IV slot (implicit IV only)] [header] [payload] [MAC]
            pre = 8 if spec["implicit_iv"] and cipher and not spec["bad"] else 0
            n = pre + hdr + size + (12 if has_mac else 0)
            data = bytes(rng.getrandbits(8) for _ in range(hdr + size))
            pieces = _split(rng, n, spec["segs"])
            segs, addrs = [], []
            for p in pieces:
                a = k.malloc(p + 4, 4)
                addrs.append(a)
                segs.append((a + rng.randrange(4), p))     # any byte alignment
            buf = CryptoBuf(k.memory, segs)
            buf.write(0, (iv if pre else b"") + data + bytes(n - pre - len(data)))
            if spec["bad"]:
                buf = CryptoBuf(k.memory, [(BAD_ADDR, n)])
            descs = []
            if cipher:
                enc_desc = CryptoDesc(chain[0], skip=pre + hdr, len=size, inject=0,
                                      flags=(CRD_F_ENCRYPT if spec["encrypt"] else 0))
                if pre:
                    if not spec["encrypt"]:
                        enc_desc.flags |= CRD_F_IV_PRESENT      # read from the buffer
                    # encrypt: the driver writes its session IV at inject
                else:
                    enc_desc.flags |= CRD_F_IV_EXPLICIT
                    enc_desc.iv = iv
                descs.append(enc_desc)
            if has_mac:
                mac_desc = CryptoDesc(chain[-1], skip=pre, len=hdr + size,
                                      inject=pre + hdr + size)
                if spec["encrypt"]:
                    descs.append(mac_desc)
                else:
                    descs.insert(0, mac_desc)
            crp = CryptoOp(sid=sid, ilen=n, olen=n, buf=buf, desc=descs,
                           callback=callback, opaque=i)
            r.update(data=data, key=key, mackey=mackey, iv=iv, hdr=hdr, n=n, crp=crp, pre=pre,
                     sid=sid, addrs=addrs)
        # all requests prepared (sessions, buffers): dispatch them back to back
        for r in results:
            if r.get("crp") is None:
                continue
            await k.charge("ocf", crypto.c_dispatch)
            crypto.dispatch(r["crp"])
            if not burst or gap_ns:
                await k.charge("user", gap_ns * 1000 or 1)
        while state["done"] < len(specs):
            await k.tsleep(chan, PWAIT, "wait")
        # check
        for i, (spec, r) in enumerate(zip(specs, results)):
            if r.get("crp") is None:
                continue
            crp = r.pop("crp")
            if r["etype"] == 0 and not spec["bad"]:
                buf = crp.buf
                pre = r["pre"]
                got = buf.read(pre, r["hdr"] + spec["size"])
                iv = buf.read(0, 8) if pre else r["iv"]   # encrypt: the driver's IV
                want, want_mac = _reference(spec, r["key"], r["mackey"], iv, r["data"],
                                            r["hdr"])
                r["ok"] = got == want and (not want_mac or buf.read(
                    pre + r["hdr"] + spec["size"], 12) == want_mac)
                if pre and not spec["encrypt"]:
                    r["ok"] = r["ok"] and iv == r["iv"]
            for a in r.pop("addrs"):
                k.free(a)
            for key in ("data", "key", "mackey", "iv"):
                r.pop(key, None)
            if free_sessions:
                await crypto.freesession(r["sid"])
        return None

    await k.kthread_create("consumer", consumer).task
    return {"results": results, "driver": sc.stats(), "checker": host.checker_errors(),
            "dup_done": crypto.dup_done, "intr": k.intr_stats(),
            "msgs": [m for m in k.msgbuf if "ubsec" in m][-5:]}


async def mixed(host, seed=1, n=6, sizes=(8, 16, 24, 32), max_segs=3, algs=ALGS,
                bad_index=None, burst=True, driver_options=None):
    rng = random.Random(seed)
    specs = [make_spec(rng, rng.choice(algs), rng.choice(sizes), rng.randint(1, max_segs),
                       bad=(i == bad_index), implicit_iv=rng.random() < 0.3)
             for i in range(n)]
    return await requests(host, specs, burst=burst, driver_options=driver_options)


async def spec_list(host, specs, burst=True, driver_options=None, profile=None):
    return await requests(host, specs, burst=burst, driver_options=driver_options,
                          profile=profile)


async def invalid(host):
    """Requests the chip cannot do end in EINVAL without reaching it; the
    card keeps serving."""
    system = await boot(host)
    k, crypto = system.kernel, system.crypto
    sc = next(s for s in system.softcs if s.name.startswith("ubsec"))
    out = {}
    key = bytes(range(24))
    mackey = bytes(range(20))
    ini = CryptoIni(CRYPTO_3DES_CBC, 192, key)
    mini = CryptoIni(CRYPTO_SHA1_HMAC, 160, mackey)
    chan = object()
    got = {}

    def cb(crp):
        got[crp.opaque] = crp.etype
        k.wakeup(chan)

    async def body(t):
        err, sid = await crypto.newsession([ini, mini], True)
        out["sid_hw"] = sid >> 32 == sc.cid
        out["md5_session"] = (await crypto.newsession([CryptoIni(6, 128, bytes(16))], True))[0]
        out["bad_key"] = (await crypto.newsession([CryptoIni(CRYPTO_3DES_CBC, 64, key)], True))[0]
        buf_a = k.malloc(64 + 12)
        buf = CryptoBuf.contiguous(k.memory, buf_a, 64 + 12)
        cases = {
            "len_not_block": [CryptoDesc(ini, 0, 60, 0, CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT,
                                         bytes(8))],
            "tls_order": [CryptoDesc(mini, 0, 64, 64),
                          CryptoDesc(ini, 0, 64, 0, CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, bytes(8))],
            "ends_differ": [CryptoDesc(ini, 0, 56, 0, CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, bytes(8)),
                            CryptoDesc(mini, 0, 64, 64)],
            "past_buffer": [CryptoDesc(ini, 16, 64, 0, CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT,
                                       bytes(8))],
            "good": [CryptoDesc(ini, 0, 64, 0, CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, bytes(8)),
                     CryptoDesc(mini, 0, 64, 64)],
        }
        for name, descs in cases.items():
            crp = CryptoOp(sid=sid, ilen=76, buf=buf, desc=descs, callback=cb, opaque=name)
            crypto.dispatch(crp)
            while name not in got:
                await k.tsleep(chan, PWAIT, "wait")
        crp = CryptoOp(sid=(sid & ~0xFFFF_FFFF) | 999, ilen=76, buf=buf,
                       desc=cases["good"], callback=cb, opaque="bad_session")
        crypto.dispatch(crp)
        while "bad_session" not in got:
            await k.tsleep(chan, PWAIT, "wait")
    await k.kthread_create("t", body).task
    out["etypes"] = got
    out["driver"] = sc.stats()
    out["checker"] = host.checker_errors()
    return out


async def tls_records(host, sizes, mode="onepass", mlen=20, seed=3, pieces=2, hard=True):
    """TLS 1.0 records (RFC 2246 §6.2.3.2) through OCF on a 3DES + HMAC-SHA1
    session: ``onepass`` = one request with CRD_F_MAC_ENCRYPT_ALL on the
    cipher descriptor; ``two`` = the MAC alone, then the cipher over data,
    MAC and padding (padding written here), as for an IPsec-order card.
    The OCF buffer is the 13-byte pseudo-header then the record body, split
    into ``pieces`` segments at odd alignments. Returns per record the body
    (hex), the errno, the driver's records and the session IV after it; the
    test builds the expected bytes itself."""
    from ocf.cryptodefs import CRD_F_MAC_ENCRYPT_ALL
    system = await boot(host)
    k, crypto = system.kernel, system.crypto
    sc = next((s for s in system.softcs if s.name.startswith("ubsec")), None)
    rng = random.Random(seed)
    key = bytes(range(1, 25))
    mackey = bytes(range(0x40, 0x54))
    iv0 = bytes.fromhex("0123456789abcdef")
    enc_ini = CryptoIni(CRYPTO_3DES_CBC, 192, key)
    mac_ini = CryptoIni(CRYPTO_SHA1_HMAC, 160, mackey, mlen=mlen)
    out = {"records": []}
    chan = object()
    got = {}

    def cb(crp):
        got[crp.opaque] = crp.etype
        k.wakeup(chan)

    async def run1(sid, descs, buf, tag):
        crp = CryptoOp(sid=sid, ilen=buf.length, olen=buf.length, buf=buf, desc=descs,
                       callback=cb, opaque=tag)
        crypto.dispatch(crp)
        while tag not in got:
            await k.tsleep(chan, PWAIT, "tls")
        return got[tag]

    async def body(t):
        err, sid = await crypto.newsession([enc_ini, mac_ini], hard)
        out["newsession"] = err
        out["hw"] = bool(not err and sc is not None and sid >> 32 == sc.cid)
        if err:
            return
        iv = iv0
        for seq, n in enumerate(sizes):
            maclen = mlen or 12
            pad = (-(n + maclen + 1)) % 8
            clen = n + maclen + pad + 1
            ad = (seq.to_bytes(8, "big") + bytes([23, 3, 1]) + n.to_bytes(2, "big"))
            data = bytes(rng.getrandbits(8) for _ in range(n))
            total = 13 + clen
            cuts = sorted(rng.sample(range(14, total), pieces - 1)) if pieces > 1 and \
                total > 14 + pieces else []
            segs, addrs = [], []
            for a, b in zip([0] + cuts, cuts + [total]):
                m = k.malloc(b - a + 4, 4)
                addrs.append(m)
                segs.append((m + rng.randrange(4), b - a))
            buf = CryptoBuf(k.memory, segs)
            buf.write(0, ad + data + bytes(clen - n))
            mac = CryptoDesc(mac_ini, skip=0, len=13 + n, inject=13 + n)
            enc = CryptoDesc(enc_ini, skip=13, len=clen, flags=CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT,
                             iv=iv)
            t0 = k.now
            recs0 = sc.counters["records"] if sc else 0
            if mode == "onepass":
                enc.flags |= CRD_F_MAC_ENCRYPT_ALL
                e = await run1(sid, [mac, enc], buf, (seq, 0))
            else:
                e = await run1(sid, [mac], buf, (seq, 0))
                if not e:
                    buf.write(13 + n + maclen, bytes([pad]) * (pad + 1))
                    e = await run1(sid, [enc], buf, (seq, 1))
            rec = buf.read(13, clen)
            out["records"].append({"n": n, "etype": e, "body": rec.hex(), "data": data.hex(),
                                   "ad": buf.read(0, 13).hex(), "ps": k.now - t0,
                                   "chip_records": sc.counters["records"] - recs0 if sc else 0,
                                   "ses_iv": sc.sessions[sid & 0xFFFF_FFFF].iv.hex()
                                   if out["hw"] else None})
            iv = rec[-8:]                      # the next record chains on (§6.2.3.2)
            for a in addrs:
                k.free(a)
        # a bad layout (padding over 255 bytes) and a driver without the capability
        bad = CryptoBuf(k.memory, [(k.malloc(13 + 8 + 300), 13 + 8 + 300)])
        out["bad_layout"] = await run1(sid, [
            CryptoDesc(mac_ini, skip=0, len=21, inject=21),
            CryptoDesc(enc_ini, skip=13, len=8 + 296,
                       flags=CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT | CRD_F_MAC_ENCRYPT_ALL,
                       iv=iv0)], bad, "bad")
        out["driver"] = sc.stats() if sc else None
        out["driver_flags"] = crypto._driver(sid >> 32).flags
        await crypto.freesession(sid)

    await k.kthread_create("tls", body).task
    out["checker"] = host.checker_errors()
    out["dup_done"] = crypto.dup_done
    return out
