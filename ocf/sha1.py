"""SHA-1 compression and HMAC midstates on the host CPU.

hashlib does not expose SHA-1's chaining value, and a BCM5820 driver must
hand the card the inner and outer midstates of HMAC-SHA1 (RFC 2104: the
state after compressing key^ipad and key^opad), as ``ubsec_setup_mackey``
does. Written from FIPS 180-4 §6.1.2.
"""

import struct

__all__ = ["SHA1_IV", "sha1_compress", "hmac_sha1_midstates"]

#: FIPS 180-4 §5.3.1 initial hash value
SHA1_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFF_FFFF


def sha1_compress(state: tuple, block: bytes) -> tuple:
    """One SHA-1 compression of a 64-byte block (FIPS 180-4 §6.1.2)."""
    w = list(struct.unpack(">16I", block))
    for t in range(16, 80):
        w.append(_rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1))
    a, b, c, d, e = state
    for t in range(80):
        if t < 20:
            f, k = (b & c) | (~b & d), 0x5A827999
        elif t < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif t < 60:
            f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        a, b, c, d, e = (_rotl(a, 5) + f + e + k + w[t]) & 0xFFFF_FFFF, a, _rotl(b, 30), c, d
    return tuple((x + y) & 0xFFFF_FFFF for x, y in zip(state, (a, b, c, d, e)))


def hmac_sha1_midstates(key: bytes) -> tuple[tuple, tuple]:
    """(inner, outer) SHA-1 chaining values after key^ipad / key^opad (RFC 2104;
    ubsec_setup_mackey). Keys longer than 64 bytes are hashed first (§2)."""
    if len(key) > 64:
        import hashlib
        key = hashlib.sha1(key).digest()
    k = key.ljust(64, b"\0")
    inner = sha1_compress(SHA1_IV, bytes(b ^ 0x36 for b in k))
    outer = sha1_compress(SHA1_IV, bytes(b ^ 0x5C for b in k))
    return inner, outer
