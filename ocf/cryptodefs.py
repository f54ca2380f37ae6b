"""OCF constants and request types (sys/crypto/cryptodev.h, OpenBSD 3.x).

A request (:class:`CryptoOp`, ``struct cryptop``) carries its data in a
:class:`CryptoBuf`: one or more segments of host memory given by bus address
and length. The software driver reads and writes it through the memory
interface; a hardware driver hands the segment addresses to its card's DMA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# -- algorithms (cryptodev.h) ------------------------------------------------
CRYPTO_DES_CBC = 1
CRYPTO_3DES_CBC = 2
CRYPTO_BLF_CBC = 3
CRYPTO_CAST_CBC = 4
CRYPTO_SKIPJACK_CBC = 5
CRYPTO_MD5_HMAC = 6
CRYPTO_SHA1_HMAC = 7
CRYPTO_RIPEMD160_HMAC = 8
CRYPTO_MD5_KPDK = 9
CRYPTO_SHA1_KPDK = 10
CRYPTO_RIJNDAEL128_CBC = 11
CRYPTO_AES_CBC = 11
CRYPTO_ARC4 = 12
CRYPTO_MD5 = 13
CRYPTO_SHA1 = 14
CRYPTO_DEFLATE_COMP = 15
CRYPTO_NULL = 16
CRYPTO_LZS_COMP = 17
CRYPTO_ALGORITHM_MAX = 17
CRYPTO_ALGORITHM_ALL = CRYPTO_ALGORITHM_MAX + 1

ALGORITHM_NAMES = {
    CRYPTO_DES_CBC: "des-cbc", CRYPTO_3DES_CBC: "3des-cbc", CRYPTO_BLF_CBC: "blf-cbc",
    CRYPTO_CAST_CBC: "cast-cbc", CRYPTO_SKIPJACK_CBC: "skipjack-cbc",
    CRYPTO_MD5_HMAC: "hmac-md5", CRYPTO_SHA1_HMAC: "hmac-sha1",
    CRYPTO_RIPEMD160_HMAC: "hmac-ripemd160", CRYPTO_MD5_KPDK: "md5-kpdk",
    CRYPTO_SHA1_KPDK: "sha1-kpdk", CRYPTO_AES_CBC: "aes-cbc", CRYPTO_ARC4: "arc4",
    CRYPTO_MD5: "md5", CRYPTO_SHA1: "sha1", CRYPTO_DEFLATE_COMP: "deflate",
    CRYPTO_NULL: "null", CRYPTO_LZS_COMP: "lzs",
}

# -- driver capability flags (crypto_get_driverid) -------------------------------
CRYPTOCAP_F_CLEANUP = 0x01      # unregistered, sessions remain
CRYPTOCAP_F_SOFTWARE = 0x02
CRYPTOCAP_F_ENCRYPT_MAC = 0x04  # can do encrypt-then-MAC (IPsec order)
CRYPTOCAP_F_MAC_ENCRYPT = 0x08  # can do MAC-then-encrypt (TLS order)
#: the model's extension: takes CRD_F_MAC_ENCRYPT_ALL (a whole TLS 1.0 record
#: in one request); requests with that flag reach only drivers that have it
CRYPTOCAP_F_TLS_ONEPASS = 0x10

# -- per-algorithm flags (crypto_register) ---------------------------------------
CRYPTO_ALG_FLAG_SUPPORTED = 0x01
CRYPTO_ALG_FLAG_RNG_ENABLE = 0x02
CRYPTO_ALG_FLAG_DSA_SHA = 0x04

# -- descriptor flags (struct cryptodesc) ----------------------------------------
CRD_F_ENCRYPT = 0x01
CRD_F_IV_PRESENT = 0x02     # the IV is (to be) in the buffer at crd_inject
CRD_F_IV_EXPLICIT = 0x04    # the IV is in crd_iv
CRD_F_DSA_SHA_NEEDED = 0x08
#: the model's extension, on the cipher descriptor of a MAC-then-encrypt
#: chain: the MAC and the padding are encrypted too; the buffer has room for
#: them (see :func:`mac_encrypt_all_layout`)
CRD_F_MAC_ENCRYPT_ALL = 0x100

# -- request flags (struct cryptop) ----------------------------------------------
CRYPTO_F_IMBUF = 0x0001
CRYPTO_F_IOV = 0x0002
CRYPTO_F_REL = 0x0004
CRYPTO_F_DONE = 0x0020

SID_LOCAL_MASK = 0xFFFF_FFFF
#: largest TLS padding_length (a uint8, RFC 2246 §6.2.3.2)
TLS_PAD_MAX = 255


def mac_encrypt_all_layout(desc: list, maclen: int) -> Optional[int]:
    """The padding length of a CRD_F_MAC_ENCRYPT_ALL request, or None when
    the request does not have that shape (the caller's EINVAL).

    ``desc`` = [MAC descriptor, cipher descriptor with CRD_F_ENCRYPT and
    CRD_F_MAC_ENCRYPT_ALL]; ``maclen`` the session's MAC bytes. The MAC
    region ``[mac.skip, mac.inject)`` ends where the MAC goes and may start
    before the cipher region (a pseudo-header MAC'd but not encrypted, as
    TLS's seq/type/version/length, RFC 2246 §6.2.3.1). After the MAC come
    ``p + 1`` bytes of value ``p`` up to the end of the cipher region,
    ``p`` in 0..255 (RFC 2246 §6.2.3.2); the cipher region
    ``[enc.skip, enc.skip + enc.len)`` covers data, MAC and padding. The
    driver writes MAC and padding and then encrypts, so the result is a
    TLS 1.0 ``GenericBlockCipher`` body."""
    if len(desc) != 2:
        return None
    mac, enc = desc
    need = CRD_F_ENCRYPT | CRD_F_MAC_ENCRYPT_ALL
    if (enc.flags & need) != need or mac.flags & CRD_F_MAC_ENCRYPT_ALL:
        return None
    if any(type(v) is not int or v < 0 for d in desc for v in (d.skip, d.len, d.inject)):
        return None
    end = enc.skip + enc.len
    pad = end - mac.inject - maclen - 1
    if mac.skip + mac.len != mac.inject or not mac.skip <= enc.skip <= mac.inject \
            or not 0 <= pad <= TLS_PAD_MAX:
        return None
    return pad


def crypto_sid(hid: int, lid: int) -> int:
    """Session id = driver id << 32 | driver-local id."""
    return (hid << 32) | (lid & SID_LOCAL_MASK)


def crypto_sesid2hid(sid: int) -> int:
    return sid >> 32


def crypto_sesid2lid(sid: int) -> int:
    return sid & SID_LOCAL_MASK


@dataclass
class CryptoIni:
    """``struct cryptoini``: one algorithm of a session (a chain is a list of these).

    ``klen`` is in bits, as in OpenBSD. ``mlen`` (a FreeBSD field) is how many
    MAC bytes to produce: 0 means the algorithm's default (12 for the HMACs,
    as OpenBSD's ``*_96`` transforms; the full digest for plain hashes).
    """

    alg: int
    klen: int = 0
    key: bytes = b""
    iv: bytes = b""
    rnd: int = 0
    mlen: int = 0


@dataclass
class CryptoDesc:
    """``struct cryptodesc``: what to do to which bytes of the buffer."""

    ini: CryptoIni
    skip: int = 0
    len: int = 0
    inject: int = 0
    flags: int = 0
    iv: Optional[bytes] = None      # crd_iv, with CRD_F_IV_EXPLICIT

    @property
    def alg(self) -> int:
        return self.ini.alg

    @property
    def key(self) -> bytes:
        return self.ini.key

    @property
    def klen(self) -> int:
        return self.ini.klen


class CryptoBuf:
    """Request data in host memory: segments ``[(bus_addr, length), ...]``."""

    __slots__ = ("memory", "segs", "length")

    def __init__(self, memory: Any, segs: list[tuple[int, int]]):
        segs = [(int(a), int(n)) for a, n in segs]
        if any(n < 0 for _, n in segs):
            raise ValueError("negative segment length")
        self.memory = memory
        self.segs = tuple(segs)
        self.length = sum(n for _, n in segs)

    @classmethod
    def contiguous(cls, memory: Any, addr: int, length: int) -> "CryptoBuf":
        return cls(memory, [(addr, length)])

    def _check(self, off: Any, n: Any) -> None:
        if type(off) is not int or type(n) is not int or off < 0 or n < 0 \
                or off + n > self.length:
            raise ValueError(f"buffer access [{off}, +{n}) outside {self.length} bytes")

    def read(self, off: int, n: int) -> bytes:
        self._check(off, n)
        out = bytearray()
        pos = 0
        for addr, seglen in self.segs:
            if n <= 0:
                break
            if off < pos + seglen:
                start = max(0, off - pos)
                take = min(seglen - start, n)
                out += self.memory.read(addr + start, take)
                off += take
                n -= take
            pos += seglen
        return bytes(out)

    def write(self, off: int, data: bytes) -> None:
        n = len(data)
        self._check(off, n)
        pos = 0
        done = 0
        for addr, seglen in self.segs:
            if done >= n:
                break
            if off < pos + seglen:
                start = max(0, off - pos)
                take = min(seglen - start, n - done)
                self.memory.write(addr + start, bytes(data[done:done + take]))
                off += take
                done += take
            pos += seglen

    def __repr__(self) -> str:
        return f"CryptoBuf({', '.join(f'{a:#x}+{n}' for a, n in self.segs)})"


@dataclass(eq=False)
class CryptoOp:
    """``struct cryptop``: one symmetric request.

    ``callback(crp)`` runs exactly once per dispatch, from :meth:`Crypto.done`,
    with ``etype`` 0, an errno, or EAGAIN after a migration (``sid`` then holds
    the new session).
    """

    sid: int = 0
    ilen: int = 0
    olen: int = 0
    etype: int = 0
    flags: int = 0
    buf: Optional[CryptoBuf] = None
    opaque: Any = None
    desc: list[CryptoDesc] = field(default_factory=list)
    callback: Optional[Callable[["CryptoOp"], Any]] = None
    # bookkeeping of the framework
    driver: Any = None        # driver holding the request (stats), None when not there
    ndispatch: int = 0
    ndone: int = 0
    state: str = "idle"       # idle -> queued (dispatch) -> active (handed on) -> idle (done)
