"""The Internet checksum (RFC 1071) and the TCP pseudo-header (RFC 793 §3.1).

``in_cksum(data)`` is the 16-bit ones' complement of the ones' complement sum
of ``data`` taken as big-endian 16-bit words, an odd last byte padded with a
zero (RFC 1071 §1). The sum is computed on native little-endian words and
byte-swapped at the end, which RFC 1071 §2(B) shows gives the same result
("byte order independence"). The CPU time of a checksum is charged by the
caller (:meth:`netinet.stack.NetStack.cksum_cost`), not here.
"""

from __future__ import annotations

import sys

__all__ = ["cksum_sum", "cksum_fold", "in_cksum", "pseudo_header_sum"]


def cksum_sum(data: bytes | bytearray | memoryview) -> int:
    """The unfolded ones' complement sum of ``data`` as big-endian words."""
    view = memoryview(data).cast("B")
    n = len(view)
    if n & 1:
        view = memoryview(bytes(view) + b"\0")
        n += 1
    if n == 0:
        return 0
    words = view.cast("H")
    s = sum(words)
    if sys.byteorder == "little":
        s = cksum_fold(s)
        s = ((s & 0xFF) << 8) | (s >> 8)
    return s


def cksum_fold(s: int) -> int:
    """Fold the carries of a 32+-bit sum into 16 bits (RFC 1071 §2(C))."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def in_cksum(*parts: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """``~sum`` over the concatenation of ``parts`` (each part of even length
    but the last), plus ``initial`` (e.g. a pseudo-header sum)."""
    s = initial
    for p in parts:
        s += cksum_sum(p)
    return (~cksum_fold(s)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The sum of the TCP/UDP pseudo-header (RFC 793 §3.1: source address,
    destination address, zero, protocol, TCP length)."""
    return cksum_sum(src + dst + bytes((0, proto)) + length.to_bytes(2, "big"))
