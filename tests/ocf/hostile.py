"""Hostile /dev/crypto users for the property tests: user buffers of every kind,
an independent model of the errno OpenBSD's cryptodev.c gives, and reference
results from hashlib/hmac and the ``cryptography`` package."""

from __future__ import annotations

import array
import hashlib
import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ocf.cryptodefs import (CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_MD5, CRYPTO_MD5_HMAC,
                            CRYPTO_NULL, CRYPTO_SHA1, CRYPTO_SHA1_HMAC)
from ocf.cryptodev import COP_DECRYPT, COP_ENCRYPT, CRYPTODEV_MAXLEN, CryptOp, SessionOp
from sim.kernel.errno import E2BIG, EFAULT, EINVAL

#: cipher -> (block, iv, min key, max key) and mac -> (key, digest, default MAC,
#: hashlib name, keyed), as OpenBSD's xform.c defines them
CIPHERS = {CRYPTO_DES_CBC: (8, 8, 8, 8), CRYPTO_3DES_CBC: (8, 8, 24, 24), CRYPTO_NULL: (4, 0, 0, 256)}
MACS = {CRYPTO_SHA1: (0, 20, 20, "sha1", False), CRYPTO_MD5: (0, 16, 16, "md5", False),
        CRYPTO_SHA1_HMAC: (20, 20, 12, "sha1", True), CRYPTO_MD5_HMAC: (16, 16, 12, "md5", True)}

BUFFER_KINDS = ("bytes", "bytearray", "view", "readonly", "cast_c", "cast_b", "cast_H",
                "cast_I", "cast_d", "strided", "two_d", "released", "array_B", "list",
                "str", "none", "int")


def make_buffer(kind: str, data: bytes):
    """A user buffer of ``kind`` holding ``data`` (where the kind can hold bytes)."""
    ba = bytearray(data)
    if kind == "bytes":
        return bytes(data)
    if kind == "bytearray":
        return ba
    if kind == "view":
        return memoryview(ba)
    if kind == "readonly":
        return memoryview(ba).toreadonly()
    if kind.startswith("cast_"):
        fmt = kind[5:]
        size = {"c": 1, "b": 1, "H": 2, "I": 4, "d": 8}[fmt]
        return memoryview(ba[:len(ba) - len(ba) % size]).cast(fmt)
    if kind == "strided":
        return memoryview(bytearray(2 * len(ba)))[::2]
    if kind == "two_d":
        return memoryview(ba[:len(ba) & ~1]).cast("B", (2, len(ba) // 2)) if len(ba) >= 2 else None
    if kind == "released":
        m = memoryview(ba)
        m.release()
        return m
    if kind == "array_B":
        return array.array("B", data)
    if kind == "list":
        return list(data)
    if kind == "str":
        return data.decode("latin-1")
    if kind == "int":
        return len(data)
    return None


def user_bytes(buf, writable=False):
    """What a C pointer to ``buf`` reaches: its bytes, or None when it is no byte buffer."""
    if type(buf) in (bytes, bytearray):
        return None if writable and type(buf) is bytes else bytes(buf)
    if type(buf) is not memoryview:
        return None
    try:
        if buf.ndim != 1 or buf.itemsize != 1 or not buf.c_contiguous:
            return None
        if writable and buf.readonly:
            return None
        return buf.tobytes()
    except ValueError:                    # released
        return None


def fits(buf, n, writable=False) -> bool:
    """A copy of ``n`` bytes to/from ``buf`` would not fault."""
    if n == 0 and buf is None:
        return True
    b = user_bytes(buf, writable)
    return b is not None and len(b) >= n


def is_int(x) -> bool:
    return type(x) is int


def session_errno(sop: SessionOp) -> int:
    """CIOCGSESSION's errno for ``sop`` when software may serve it."""
    if not (is_int(sop.cipher) and is_int(sop.mac)):
        return EINVAL
    if sop.cipher and sop.cipher not in CIPHERS or sop.mac and sop.mac not in MACS:
        return EINVAL
    if not sop.cipher and not sop.mac:
        return EINVAL
    if sop.cipher:
        _, _, kmin, kmax = CIPHERS[sop.cipher]
        if not is_int(sop.keylen) or not kmin <= sop.keylen <= kmax:
            return EINVAL
        if not fits(sop.key, sop.keylen):
            return EFAULT
    if sop.mac:
        klen, digest, _, _, _ = MACS[sop.mac]
        if not is_int(sop.mackeylen) or sop.mackeylen != klen:
            return EINVAL
        if not fits(sop.mackey, sop.mackeylen):
            return EFAULT
        if not is_int(sop.mlen) or not 0 <= sop.mlen <= digest:
            return EINVAL
    return 0


def crypt_errno(sess, cop: CryptOp) -> int:
    """CIOCCRYPT's errno for ``cop`` on ``sess`` (a Session or None)."""
    if sess is None:
        return EINVAL
    if not (is_int(cop.len) and is_int(cop.op) and is_int(cop.flags)):
        return EINVAL
    if cop.len > CRYPTODEV_MAXLEN:
        return E2BIG
    if cop.len < 0 or cop.op not in (COP_ENCRYPT, COP_DECRYPT) or cop.flags:
        return EINVAL
    if sess.cipher and (cop.len == 0 or cop.len % CIPHERS[sess.cipher][0]):
        return EINVAL
    if cop.iv is not None:
        if not sess.cipher or not CIPHERS[sess.cipher][1]:
            return EINVAL
        if not fits(cop.iv, 8):
            return EFAULT
    if cop.mac is not None:
        if not sess.mac:
            return EINVAL
        if not fits(cop.mac, sess.maclen, writable=True):
            return EFAULT
    if not fits(cop.src, cop.len):
        return EFAULT
    if cop.dst is not None and not fits(cop.dst, cop.len, writable=True):
        return EFAULT
    return 0


class Session:
    """What a successful CIOCGSESSION made, for the reference results."""

    def __init__(self, sop: SessionOp):
        self.cipher, self.mac = sop.cipher, sop.mac
        self.key = (user_bytes(sop.key) or b"")[:sop.keylen] if sop.cipher else b""
        self.mackey = (user_bytes(sop.mackey) or b"")[:sop.mackeylen] if sop.mac else b""
        self.maclen = (sop.mlen or MACS[sop.mac][2]) if sop.mac else 0

    def _cbc(self, data: bytes, iv: bytes, enc: bool) -> bytes:
        if self.cipher == CRYPTO_NULL or not data:
            return data
        key = self.key * 3 if self.cipher == CRYPTO_DES_CBC else self.key
        c = Cipher(TripleDES(key), modes.CBC(iv))
        x = c.encryptor() if enc else c.decryptor()
        return x.update(data) + x.finalize()

    def _digest(self, data: bytes) -> bytes:
        _, _, _, name, keyed = MACS[self.mac]
        d = hmac.new(self.mackey, data, name).digest() if keyed else hashlib.new(name, data).digest()
        return d[:self.maclen]

    def result(self, src: bytes, op: int, iv) -> tuple[bytes, bytes]:
        """(output buffer, MAC): cipher over the buffer (the first block is the
        IV when none is given), MAC over the ciphertext."""
        enc = op == COP_ENCRYPT
        out = src
        if self.cipher:
            if iv is not None or not CIPHERS[self.cipher][1]:
                out = self._cbc(src, user_bytes(iv)[:8] if iv is not None else b"", enc)
            else:
                out = src[:8] + self._cbc(src[8:], src[:8], enc)
        mac = self._digest(out if enc else src) if self.mac else b""
        return out, mac
