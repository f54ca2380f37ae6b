"""CRC-32 of IEEE 802.3 §3.2.9 as combinational logic.

The frame check sequence is the CRC-32 with generator 0x04C11DB7, the
register preset to all ones, bits taken least significant first (so the
register shifts right with the reflected polynomial 0xEDB88320) and the
complement sent, least significant byte first — the same number
``zlib.crc32`` returns. Running the receiver's register over a frame and its
own FCS leaves the fixed residue :data:`RESIDUE`.

:func:`crc32_bytes` builds the next register value after ``n`` of four byte
lanes as a flat XOR network (each output bit the parity of a fixed set of
register and data bits, worked out here in Python), which keeps pysim fast.
"""

from functools import lru_cache

from amaranth.hdl import Cat, Mux

__all__ = ["CRC_INIT", "RESIDUE", "crc32_bytes", "crc32_update"]

#: the register's preset (IEEE 802.3 §3.2.9 a: "the first 32 bits ... complemented")
CRC_INIT = 0xFFFF_FFFF
#: register value after a frame and its FCS (reflected form of 0xC704DD7B)
RESIDUE = 0xDEBB_20E3
_POLY = 0xEDB8_8320


@lru_cache(maxsize=None)
def _matrix(nbytes: int):
    """For each of the 32 next-register bits: (register bits, data bits) whose
    parity it is, after ``nbytes`` data bytes."""
    # symbolic register: bit i is a set of ("c", j) / ("d", k) terms
    reg = [frozenset({("c", i)}) for i in range(32)]
    for k in range(8 * nbytes):
        fb = reg[0] ^ frozenset({("d", k)})
        reg = [reg[i + 1] if i < 31 else frozenset() for i in range(32)]
        for i in range(32):
            if _POLY >> i & 1:
                reg[i] = reg[i] ^ fb
    return tuple((tuple(sorted(j for t, j in r if t == "c")),
                  tuple(sorted(j for t, j in r if t == "d"))) for r in reg)


def crc32_update(crc, data, nbytes: int):
    """The register after the low ``nbytes`` bytes of ``data`` (byte 0 first)."""
    bits = []
    for cs, ds in _matrix(nbytes):
        terms = [crc[j] for j in cs] + [data[k] for k in ds]
        v = terms[0]
        for t in terms[1:]:
            v = v ^ t
        bits.append(v)
    return Cat(*bits)


def crc32_bytes(crc, data, n):
    """The register after ``n`` (1..4, a signal) of the four byte lanes of ``data``."""
    return Mux(n == 1, crc32_update(crc, data, 1),
               Mux(n == 2, crc32_update(crc, data, 2),
                   Mux(n == 3, crc32_update(crc, data, 3), crc32_update(crc, data, 4))))
