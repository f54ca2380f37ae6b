"""The same /dev/crypto requests on whichever driver the machine has.

:func:`answers` opens one session per case and runs its request, returning
(errno, output bytes hex, MAC hex) for each, so a test can compare drivers
with each other and with ``cryptography``/``hmac``.
"""

from __future__ import annotations

from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC
from ocf.cryptodev import (CIOCCRYPT, CIOCGSESSION, COP_DECRYPT, COP_ENCRYPT, CRIOGET, CrioGet,
                           CryptOp, SessionOp)
from ocfsim.system import boot

CIPHERS = {"3des": (CRYPTO_3DES_CBC, 24), "des": (CRYPTO_DES_CBC, 8), "": (0, 0)}


async def answers(host, cases: list[dict], driver_options: dict | None = None) -> dict:
    """Each case: cipher ("3des", "des" or ""), mac (bool), len, decrypt, iv
    (hex or None: the IV is the buffer's first block), data (hex), key,
    mackey (hex)."""
    system = await boot(host, allow_soft=True, driver_options=driver_options)
    k = system.kernel
    out: list = []

    async def app(p):
        err, fd = await k.sys_open(p, "/dev/crypto")
        g = CrioGet()
        await k.sys_ioctl(p, fd, CRIOGET, g)
        for c in cases:
            cipher, keylen = CIPHERS[c["cipher"]]
            sop = SessionOp(cipher=cipher, keylen=keylen, key=bytes.fromhex(c["key"])[:keylen])
            if c["mac"]:
                sop.mac, sop.mackeylen, sop.mackey = CRYPTO_SHA1_HMAC, 20, bytes.fromhex(c["mackey"])
            err = await k.sys_ioctl(p, g.fd, CIOCGSESSION, sop)
            if err:
                out.append((err, "", ""))
                continue
            dst = bytearray(c["len"])
            tag = bytearray(12) if c["mac"] else None
            cop = CryptOp(ses=sop.ses, op=COP_DECRYPT if c["decrypt"] else COP_ENCRYPT,
                          len=c["len"], src=bytes.fromhex(c["data"]), dst=dst, mac=tag,
                          iv=bytes.fromhex(c["iv"]) if c["iv"] else None)
            err = await k.sys_ioctl(p, g.fd, CIOCCRYPT, cop)
            out.append((err, bytes(dst).hex(), bytes(tag).hex() if tag else ""))

    await k.fork("app", app).task
    names = {getattr(sc, "cid", None): sc.name for sc in system.softcs}
    if system.ocf.swcr is not None:
        names[system.ocf.swcr.cid] = "cryptosoft"
    used = {name for cid, name in names.items()
            if cid is not None and system.crypto.driver_stats(cid).operations}
    return {"answers": out, "drivers": sorted(used),
            "stats": {sc.name: sc.stats() for sc in system.softcs},
            "raised": [m for m in k.msgbuf if "raised" in m], "checker": host.checker_errors()}
