"""Host-side scenarios for the hifn driver: the booted kernel, OCF and the card."""

from __future__ import annotations

import random

from drivers import hifn as H
from hw.cards import hifn7751reg as R
from hw.structs import size, unpack
from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRYPTO_3DES_CBC,
                            CRYPTO_DES_CBC, CRYPTO_MD5_HMAC, CRYPTO_SHA1_HMAC, CryptoBuf,
                            CryptoDesc, CryptoIni, CryptoOp)
from ocfsim.system import boot
from ocfsim.workloads.devcrypto import reference
from sim.kernel.errno import EIO


def _cmd_masks(mem, sc, slot):
    """(base masks, MAC masks or None, crypt masks or None, command length) of a
    slot, the masks as dicts of the header's fields."""
    buf = mem.read(sc.cmdbuf + slot * H.HIFN_CMD_SLOT, H.HIFN_CMD_SLOT)
    bm = unpack(R.BaseCommand, buf)["masks"]
    off, mm, cm = size(R.BaseCommand), None, None
    if bm["mac"]:
        mm = unpack(R.MacCommand, buf[off:])["masks"]
        off += size(R.MacCommand)
    if bm["crypt"]:
        cm = unpack(R.CryptCommand, buf[off:])["masks"]
        off += size(R.CryptCommand)
    # the command's length, from its own masks (the ring is rewritten after a reset)
    ln = off + (R.MAC_KEY_LENGTH if mm is not None and mm["new_key"] else 0)
    if cm is not None:
        if cm["new_key"]:
            ln += R.TDES_KEY_LENGTH if cm["alg"] == R.CryptAlg.TDES.value else R.DES_KEY_LENGTH
        ln += R.IV_LENGTH if cm["new_iv"] else 0
    return bm, mm, cm, ln


def _mkop(k, sid, cini, mini, data, iv, encrypt, bad_addr=None):
    n = len(data)
    addr = k.malloc(n + 12)
    k.memory.write(addr, data)
    buf = CryptoBuf(k.memory, [(bad_addr if bad_addr is not None else addr, n + 12)])
    crde = CryptoDesc(cini, 0, n, 0, (CRD_F_ENCRYPT if encrypt else 0) | CRD_F_IV_EXPLICIT, iv)
    crda = CryptoDesc(mini, 0, n, n)
    return CryptoOp(sid=sid, ilen=n, buf=buf, desc=[crde, crda] if encrypt else [crda, crde]), addr


async def _wait(host, reqs, us=4000):
    t_end = host.now + us * 1_000_000
    while host.now < t_end and not all(r["calls"] for r in reqs):
        await host.sleep(2_000_000)


async def keys_and_abort(host, n_before=2, n_after=2, size=32, seed=3):
    """Keys on a session's first command only; a DMA error mid-stream; keys again."""
    system = await boot(host)
    k, crypto = system.kernel, system.crypto
    sc = system.softcs[0]
    rng = random.Random(seed)
    key, mkey = bytes(rng.getrandbits(8) for _ in range(24)), bytes(rng.getrandbits(8) for _ in range(20))
    cini = CryptoIni(CRYPTO_3DES_CBC, 192, key)
    mini = CryptoIni(CRYPTO_SHA1_HMAC, 160, mkey)
    reqs: list[dict] = []
    st = {}

    def submit(sid, bad=False, encrypt=True):
        data = bytes(rng.getrandbits(8) for _ in range(size))
        iv = bytes(rng.getrandbits(8) for _ in range(8))
        crp, addr = _mkop(k, sid, cini, mini, data, iv, encrypt,
                          bad_addr=0xF000_0000 if bad else None)
        r = {"data": data, "iv": iv, "addr": addr, "calls": 0, "etype": None, "bad": bad,
             "encrypt": encrypt}

        def cb(c, r=r):
            r["calls"] += 1
            r["etype"] = c.etype
        crp.callback = cb
        reqs.append(r)
        crypto.dispatch(crp)

    async def phase1(p):
        err, st["sid"] = await crypto.newsession([cini, mini])
        st["err"] = err
        # one request first: the session's keys go with it
        submit(st["sid"])
    await k.fork("app", phase1).task
    await _wait(host, reqs)
    first_cmd = _cmd_masks(k.memory, sc, 0)

    async def phase2(p):
        for _ in range(n_before):
            submit(st["sid"], encrypt=False)
        submit(st["sid"], bad=True)
        for _ in range(n_after):
            submit(st["sid"])
    await k.fork("app2", phase2).task
    await _wait(host, reqs)
    second_cmd = _cmd_masks(k.memory, sc, 1)
    n_mid = len(reqs)

    async def phase3(p):
        submit(st["sid"])
        submit(st["sid"], encrypt=False)
    await k.fork("app3", phase3).task
    await _wait(host, reqs)
    after_abort = [_cmd_masks(k.memory, sc, i) for i in range(2)]

    failures = []
    for i, r in enumerate(reqs):
        if r["calls"] != 1:
            failures.append(f"request {i} completed {r['calls']} times")
        elif r["etype"] == 0:
            out = k.memory.read(r["addr"], size + 12)
            want, tag = reference("3des-sha1", key, mkey, r["iv"], r["data"], r["encrypt"])
            if out[:size] != want or out[size:] != tag:
                failures.append(f"request {i}: wrong bytes")
    return {"err": st["err"], "first_cmd": first_cmd, "second_cmd": second_cmd,
            "after_abort": after_abort, "etypes": [r["etype"] for r in reqs],
            "calls": [r["calls"] for r in reqs], "bad_index": n_before + 1,
            "n_mid": n_mid, "failures": failures, "stats": sc.stats(),
            "msgs": k.msgbuf[-3:], "checker": host.checker_errors(), "EIO": EIO}


async def sessions(host):
    """newsession / freesession argument checks and slot reuse."""
    system = await boot(host, software=False)
    k, crypto = system.kernel, system.crypto
    sc = system.softcs[0]
    out = {}

    async def app(p):
        key = bytes(24)
        out["3des"] = await crypto.newsession([CryptoIni(CRYPTO_3DES_CBC, 192, key)], True)
        out["des"] = await crypto.newsession([CryptoIni(CRYPTO_DES_CBC, 64, key[:8])], True)
        out["badkey"] = await crypto.newsession([CryptoIni(CRYPTO_3DES_CBC, 128, key)], True)
        out["md5"] = await crypto.newsession([CryptoIni(CRYPTO_MD5_HMAC, 128, key[:16])], True)
        out["mlen"] = await crypto.newsession([CryptoIni(CRYPTO_SHA1_HMAC, 160, key[:20],
                                                         mlen=16)], True)
        out["two_ciphers"] = await crypto.newsession([CryptoIni(CRYPTO_3DES_CBC, 192, key),
                                                      CryptoIni(CRYPTO_DES_CBC, 64, key[:8])], True)
        out["free"] = await crypto.freesession(out["3des"][1])
        out["again"] = await crypto.newsession([CryptoIni(CRYPTO_3DES_CBC, 192, key)], True)
        out["free_twice"] = (await crypto.freesession(out["des"][1]),
                             await crypto.freesession(out["des"][1]))
    await k.fork("app", app).task
    out["stats"] = sc.stats()
    out["checker"] = host.checker_errors()
    return out
