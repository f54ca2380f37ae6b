"""Mbufs, clusters and socket buffers, with the era's sizes, in host memory.

Sizes (i386): ``MSIZE`` 256 and ``MCLBYTES`` 2048 (``MCLSHIFT`` 11),
``NMBCLUSTERS`` 6144 — OpenBSD ``sys/arch/i386/include/param.h`` rev 1.40.
``MLEN = MSIZE - sizeof(struct m_hdr)`` and ``MHLEN = MLEN - sizeof(struct
pkthdr)``, ``MINCLSIZE = MHLEN + MLEN`` — 4.4BSD-Lite ``sys/sys/mbuf.h`` 8.5
(``struct m_hdr``: next, nextpkt, data, len (4 bytes each), type, flags (2
each) = 20 bytes on i386; ``struct pkthdr``: rcvif, len = 8 bytes). So MLEN
236, MHLEN 228, MINCLSIZE 464. (OpenBSD 3.x's pkthdr also carries a tag list
and checksum flags, a few bytes more; only writes of a few hundred bytes
would notice.)

Storage is real: every mbuf and every cluster is a block of the host's
memory (``kernel.malloc``), so ``copyin``/``copyout`` move bytes between a
user buffer and a cluster exactly as ``uiomove`` does, and a NIC driver can
later hand a cluster's bus address to its DMA engine. Clusters are reference
counted (``m_copym`` of a cluster shares it, Stevens vol. 2 §2.9).
"""

from __future__ import annotations

from collections import deque
from typing import Iterator, Optional

from sim.memory import HostMemory

__all__ = ["MSIZE", "MCLBYTES", "MCLSHIFT", "NMBCLUSTERS", "MLEN", "MHLEN", "MINCLSIZE",
           "Mbuf", "MbufPool", "SockBuf"]

MSIZE = 256            # i386 param.h
MCLSHIFT = 11
MCLBYTES = 1 << MCLSHIFT
NMBCLUSTERS = 6144     # i386 param.h rev 1.40
_M_HDR = 20            # sizeof(struct m_hdr), i386
_PKTHDR = 8            # sizeof(struct pkthdr), 4.4BSD-Lite
MLEN = MSIZE - _M_HDR
MHLEN = MLEN - _PKTHDR
MINCLSIZE = MHLEN + MLEN

M_EXT, M_PKTHDR = 0x0001, 0x0002    # sys/mbuf.h m_flags


class Cluster:
    __slots__ = ("addr", "refcnt")

    def __init__(self, addr: int):
        self.addr, self.refcnt = addr, 1


class Mbuf:
    """One mbuf: ``data`` is the bus address of its first byte, ``len`` its bytes."""

    __slots__ = ("block", "data", "len", "flags", "ext", "next")

    def __init__(self, block: int, data: int, flags: int):
        self.block, self.data, self.len, self.flags = block, data, 0, flags
        self.ext: Optional[Cluster] = None
        self.next: Optional[Mbuf] = None

    @property
    def size(self) -> int:
        """Room from ``data`` to the end of the storage (``M_TRAILINGSPACE`` + len)."""
        if self.ext is not None:
            return self.ext.addr + MCLBYTES - self.data
        return self.block + MSIZE - self.data


class MbufPool:
    """The mbuf and cluster free lists of one host (``uipc_mbuf.c``)."""

    def __init__(self, memory: HostMemory, nmbclusters: int = NMBCLUSTERS):
        self.memory = memory
        self.nmbclusters = nmbclusters
        self._mfree: list[int] = []
        self._clfree: list[int] = []
        self.mbufs = 0         # in use
        self.clusters = 0      # in use
        self.peak_clusters = 0
        self.drops = 0         # allocations refused (ENOBUFS)

    def _page(self, size: int, free: list[int]) -> bool:
        """Grow ``free`` by a 4 KB page of ``size`` blocks (the kmem_map pages)."""
        try:
            base = self.memory.alloc(4096, max(size, 64))
        except (MemoryError, ValueError):
            return False
        free.extend(range(base + 4096 - size, base - 1, -size))
        return True

    def get(self, pkthdr: bool = False) -> Optional[Mbuf]:
        """``MGET``/``MGETHDR``; None when memory is exhausted."""
        if not self._mfree and not self._page(MSIZE, self._mfree):
            self.drops += 1
            return None
        block = self._mfree.pop()
        self.mbufs += 1
        off = _M_HDR + (_PKTHDR if pkthdr else 0)
        return Mbuf(block, block + off, M_PKTHDR if pkthdr else 0)

    def clget(self, m: Mbuf) -> bool:
        """``MCLGET``: attach a fresh cluster to ``m``; False at NMBCLUSTERS."""
        if self.clusters >= self.nmbclusters or (
                not self._clfree and not self._page(MCLBYTES, self._clfree)):
            self.drops += 1
            return False
        c = Cluster(self._clfree.pop())
        self.clusters += 1
        self.peak_clusters = max(self.peak_clusters, self.clusters)
        m.ext, m.data, m.flags = c, c.addr, m.flags | M_EXT
        return True

    def free(self, m: Mbuf) -> Optional[Mbuf]:
        """``m_free``: release one mbuf (and its cluster reference); its successor."""
        c = m.ext
        if c is not None:
            c.refcnt -= 1
            if c.refcnt == 0:
                self._clfree.append(c.addr)
                self.clusters -= 1
        self._mfree.append(m.block)
        self.mbufs -= 1
        nxt, m.next, m.ext = m.next, None, None
        return nxt

    def freem(self, m: Optional[Mbuf]) -> None:
        while m is not None:
            m = self.free(m)

    def read(self, m: Mbuf, off: int = 0, n: Optional[int] = None) -> bytes:
        n = m.len - off if n is None else n
        return self.memory.read(m.data + off, n) if n > 0 else b""

    def write(self, m: Mbuf, data: bytes) -> None:
        """Fill ``m`` with ``data`` (what a device's DMA or a kernel store does)."""
        if len(data) > m.size:
            raise ValueError(f"{len(data)} bytes do not fit an mbuf of {m.size}")
        if data:
            self.memory.write(m.data, bytes(data))
        m.len = len(data)


class SockBuf:
    """A socket buffer (``struct sockbuf``, sys/socketvar.h): a chain of
    mbufs holding ``cc`` bytes, with the high and low water marks."""

    def __init__(self, pool: MbufPool, hiwat: int, lowat: int):
        self.pool = pool
        self.hiwat, self.lowat = hiwat, lowat
        self.mbmax = 2 * hiwat           # soreserve: sb_mbmax = 2 * sb_hiwat
        self.mbcnt = 0
        self.cc = 0
        self.chain: deque[Mbuf] = deque()

    def space(self) -> int:
        """``sbspace``: min(hiwat - cc, mbmax - mbcnt), never below 0."""
        return max(0, min(self.hiwat - self.cc, self.mbmax - self.mbcnt))

    @staticmethod
    def _mbsize(m: Mbuf) -> int:
        return MSIZE + (MCLBYTES if m.ext is not None else 0)

    def append(self, m: Mbuf) -> None:
        """``sbappendstream``: add ``m`` (one mbuf) at the end."""
        self.chain.append(m)
        self.cc += m.len
        self.mbcnt += self._mbsize(m)

    def drop(self, n: int) -> int:
        """``sbdrop``: remove ``n`` bytes from the front; returns mbufs freed."""
        freed = 0
        n = min(n, self.cc)
        self.cc -= n
        while n > 0:
            m = self.chain[0]
            if m.len <= n:
                n -= m.len
                self.chain.popleft()
                self.mbcnt -= self._mbsize(m)
                self.pool.free(m)
                freed += 1
            else:
                m.data += n
                m.len -= n
                n = 0
        return freed

    def span(self, off: int, n: int) -> Iterator[tuple[Mbuf, int, int]]:
        """The pieces of ``n`` bytes from ``off``: (mbuf, offset in it, length),
        in chain order."""
        for m in self.chain:
            if n <= 0:
                break
            if off >= m.len:
                off -= m.len
                continue
            take = min(m.len - off, n)
            yield m, off, take
            n -= take
            off = 0

    def copydata(self, off: int, n: int) -> bytes:
        """``m_copydata`` of ``n`` bytes from ``off`` (what ``m_copy`` hands the
        interface: the same bytes, shared by cluster reference)."""
        return b"".join(self.pool.read(m, o, k) for m, o, k in self.span(off, n))

    def flush(self) -> None:
        self.drop(self.cc)
        while self.chain:                  # empty mbufs
            self.pool.free(self.chain.popleft())
        self.mbcnt = 0
