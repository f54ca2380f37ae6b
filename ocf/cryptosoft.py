"""The software pseudo-driver (sys/crypto/cryptosoft.c) on the ``cryptography`` package.

Registers DES/3DES-CBC, HMAC-MD5/SHA1 (12-byte default, ``mlen`` up to the
full digest), MD5, SHA1 and NULL with CRYPTOCAP_F_SOFTWARE, so it is only
chosen when no hardware driver can take a session. ``process`` is
synchronous: it charges the CPU (``cryptosoft.process`` per request, then per
descriptor ``cryptosoft.<alg>.op`` + ``.byte`` x length, from the host
profile), transforms the buffer through the memory interface, and calls
``crypto.done`` before returning. Errors: EINVAL when a cipher length is not a
block multiple or a descriptor is malformed, ENOENT for an unknown session.

IV handling follows ``swcr_encdec``: CRD_F_IV_EXPLICIT takes ``crd.iv``;
otherwise decryption reads the IV from the buffer at ``crd_inject``; for
encryption CRD_F_IV_PRESENT also means "read it from the buffer" (OpenBSD
used a random IV there, which made /dev/crypto's "first block is the IV"
unusable), and with neither flag a random IV (``kernel.random``) is written
at ``crd_inject``.

CRD_F_MAC_ENCRYPT_ALL (the model's one-pass TLS record, advertised as
CRYPTOCAP_F_TLS_ONEPASS): the layout is checked first
(:func:`ocf.cryptodefs.mac_encrypt_all_layout`, EINVAL otherwise); the MAC
descriptor writes the MAC at ``crd_inject``, then the padding bytes are
written behind it and the cipher region, data, MAC and padding, encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sim.kernel.errno import EINVAL, ENOENT

from .crypto import Crypto
from .cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT,
                         CRD_F_MAC_ENCRYPT_ALL, CRYPTOCAP_F_TLS_ONEPASS, mac_encrypt_all_layout,
                         CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_MD5, CRYPTO_MD5_HMAC,
                         CRYPTO_NULL, CRYPTO_SHA1, CRYPTO_SHA1_HMAC,
                         CRYPTOCAP_F_ENCRYPT_MAC, CRYPTOCAP_F_MAC_ENCRYPT,
                         CRYPTOCAP_F_SOFTWARE, CryptoDesc, CryptoIni, CryptoOp)
from .xform import AUTH_HASHES, ENC_XFORMS

__all__ = ["CryptoSoft", "SOFT_ALGORITHMS"]

_PROFILE_KEY = {CRYPTO_DES_CBC: "des", CRYPTO_3DES_CBC: "3des", CRYPTO_NULL: "null",
                CRYPTO_MD5: "md5", CRYPTO_SHA1: "sha1", CRYPTO_MD5_HMAC: "md5_hmac",
                CRYPTO_SHA1_HMAC: "sha1_hmac"}
SOFT_ALGORITHMS = tuple(_PROFILE_KEY)
_HASHES = {CRYPTO_MD5: hashes.MD5, CRYPTO_SHA1: hashes.SHA1,
           CRYPTO_MD5_HMAC: hashes.MD5, CRYPTO_SHA1_HMAC: hashes.SHA1}


@dataclass
class _SwAlg:
    alg: int
    key: bytes
    mlen: int           # MAC bytes produced (auth only)
    op_ps: int
    byte_ps: float


def _bytes(x: Any) -> Optional[bytes]:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    return None


class CryptoSoft:
    """The software driver; ``CryptoSoft(crypto)`` registers it."""

    def __init__(self, crypto: Crypto):
        self.crypto = crypto
        self.kernel = crypto.kernel
        prof = self.kernel.profile
        self.c_process = prof.cost("cryptosoft.process")
        self.c_newsession = prof.cost("cryptosoft.newsession.op")
        self._cost = {alg: (prof.cost(f"cryptosoft.{key}.op"), prof.per_byte(f"cryptosoft.{key}.byte"))
                      for alg, key in _PROFILE_KEY.items()}
        self.sessions: dict[int, list[_SwAlg]] = {}
        self._next_lid = 1
        self.cid = crypto.get_driverid(CRYPTOCAP_F_SOFTWARE | CRYPTOCAP_F_ENCRYPT_MAC
                                       | CRYPTOCAP_F_MAC_ENCRYPT | CRYPTOCAP_F_TLS_ONEPASS)
        for alg in SOFT_ALGORITHMS:
            crypto.register(self.cid, alg, 0, 0, self)

    # ------------------------------------------------------------ sessions
    def _check_ini(self, c: CryptoIni) -> Optional[_SwAlg]:
        key = _bytes(c.key) if c.key is not None else b""
        if key is None or type(c.klen) is not int or c.klen < 0 or c.klen % 8:
            return None
        nkey = c.klen // 8
        if nkey > len(key):
            return None
        key = key[:nkey]
        op, byte = self._cost[c.alg]
        if c.alg in ENC_XFORMS:
            x = ENC_XFORMS[c.alg]
            if not x.minkey <= nkey <= x.maxkey:
                return None
            return _SwAlg(c.alg, key, 0, op, byte)
        h = AUTH_HASHES[c.alg]
        mlen = c.mlen
        if type(mlen) is not int or not 0 <= mlen <= h.hashsize:
            return None
        if h.hmac and nkey > h.blocksize:
            return None
        if not h.hmac and nkey:
            return None
        return _SwAlg(c.alg, key, h.maclen(mlen), op, byte)

    async def newsession(self, chain: list[CryptoIni]) -> tuple[int, int]:
        await self.kernel.charge("crypto", self.c_newsession)
        algs: list[_SwAlg] = []
        for c in chain:
            if c.alg not in self._cost or any(a.alg == c.alg for a in algs):
                return EINVAL, 0
            sw = self._check_ini(c)
            if sw is None:
                return EINVAL, 0
            algs.append(sw)
        lid = self._next_lid
        self._next_lid += 1
        self.sessions[lid] = algs
        return 0, lid

    def freesession(self, lid: int) -> int:
        return 0 if self.sessions.pop(lid, None) is not None else ENOENT

    # ------------------------------------------------------------ requests
    async def process(self, crp: CryptoOp) -> int:
        k = self.kernel
        await k.charge("crypto", self.c_process)
        err = 0
        sess = self.sessions.get(crp.sid & 0xFFFF_FFFF) if type(crp.sid) is int else None
        if sess is None:
            err = ENOENT
        elif (pad := self._onepass_pad(sess, crp)) == -1:
            err = EINVAL
        else:
            for crd in crp.desc:
                sw = next((a for a in sess if a.alg == crd.alg), None)
                if sw is None or not self._desc_ok(crd, crp):
                    err = EINVAL
                    break
                await k.charge("crypto", sw.op_ps + int(round(sw.byte_ps * crd.len)))
                try:
                    err = self._apply(sw, crd, crp, pad)
                except (ValueError, TypeError) as exc:
                    k.printf(f"cryptosoft: {exc}")
                    err = EINVAL
                if err:
                    break
        crp.etype = err
        self.crypto.done(crp)
        return 0

    @staticmethod
    def _onepass_pad(sess: list, crp: CryptoOp) -> Optional[int]:
        """CRD_F_MAC_ENCRYPT_ALL: its padding length, -1 when the request does
        not have the layout; None without the flag."""
        if not any(type(d.flags) is int and d.flags & CRD_F_MAC_ENCRYPT_ALL for d in crp.desc):
            return None
        mac = next((a for a in sess if crp.desc and a.alg == crp.desc[0].alg
                    and a.alg not in ENC_XFORMS), None)
        pad = mac_encrypt_all_layout(crp.desc, mac.mlen) if mac is not None else None
        return -1 if pad is None else pad

    @staticmethod
    def _desc_ok(crd: CryptoDesc, crp: CryptoOp) -> bool:
        n = crp.buf.length
        for v in (crd.skip, crd.len, crd.inject, crd.flags):
            if type(v) is not int or v < 0:
                return False
        return crd.skip + crd.len <= n

    def _apply(self, sw: _SwAlg, crd: CryptoDesc, crp: CryptoOp,
               pad: Optional[int] = None) -> int:
        buf = crp.buf
        if sw.alg in ENC_XFORMS:
            x = ENC_XFORMS[sw.alg]
            if crd.len % x.blocksize:
                return EINVAL
            if sw.alg == CRYPTO_NULL:
                return 0
            enc = bool(crd.flags & CRD_F_ENCRYPT)
            if crd.flags & CRD_F_IV_EXPLICIT:
                iv = _bytes(crd.iv)
                if iv is None or len(iv) < x.ivsize:
                    return EINVAL
                iv = iv[:x.ivsize]
            elif enc and not crd.flags & CRD_F_IV_PRESENT:
                iv = bytes(self.kernel.random.getrandbits(8) for _ in range(x.ivsize))
                buf.write(crd.inject, iv)
            else:
                iv = buf.read(crd.inject, x.ivsize)
            if pad is not None and crd.flags & CRD_F_MAC_ENCRYPT_ALL:
                # the MAC is in place (the MAC descriptor ran first); then
                # pad_len + 1 bytes of value pad_len (RFC 2246 §6.2.3.2)
                buf.write(crd.skip + crd.len - pad - 1, bytes([pad]) * (pad + 1))
            key = sw.key * 3 if sw.alg == CRYPTO_DES_CBC else sw.key
            cipher = Cipher(TripleDES(key), modes.CBC(iv))
            ctx = cipher.encryptor() if enc else cipher.decryptor()
            data = buf.read(crd.skip, crd.len)
            buf.write(crd.skip, ctx.update(data) + ctx.finalize())
            return 0
        h = AUTH_HASHES[sw.alg]
        if crd.inject + sw.mlen > buf.length:
            return EINVAL
        data = buf.read(crd.skip, crd.len)
        if h.hmac:
            m = hmac.HMAC(sw.key, _HASHES[sw.alg]())
        else:
            m = hashes.Hash(_HASHES[sw.alg]())
        m.update(data)
        buf.write(crd.inject, m.finalize()[:sw.mlen])
        return 0
