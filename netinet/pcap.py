"""A libpcap file writer: what ``tcpdump -w`` writes, on simulated time.

Format: the classic libpcap file (global header, then one record header and
the captured bytes per frame), nanosecond variant — magic ``0xa1b23c4d``,
version 2.4, ``LINKTYPE_ETHERNET`` (1) — as pcap-savefile(5) and the
tcpdump.org link-layer header types page define it. Timestamps are the
simulated time in nanoseconds (simulated time is picoseconds: the fraction
below 1 ns is dropped). Frames are captured without the FCS, as a capture on
an Ethernet interface gets them. Written little-endian (readers detect the
byte order from the magic).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Optional

__all__ = ["PcapWriter", "PCAP_MAGIC_NS", "LINKTYPE_ETHERNET"]

PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
_SNAPLEN = 65535


class PcapWriter:
    """``PcapWriter(path)``; ``write(t_ps, frame)``; ``close()``."""

    def __init__(self, path: "str | Path", snaplen: int = _SNAPLEN):
        self.path = Path(path)
        self._f: Optional[BinaryIO] = open(self.path, "wb")
        self.snaplen = snaplen
        self.count = 0
        self._f.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen,
                                  LINKTYPE_ETHERNET))

    def write(self, t_ps: int, frame: bytes) -> None:
        if self._f is None:
            raise ValueError(f"pcap {self.path} is closed")
        ns = t_ps // 1000
        cap = frame[:self.snaplen]
        self._f.write(struct.pack("<IIII", ns // 1_000_000_000, ns % 1_000_000_000,
                                  len(cap), len(frame)))
        self._f.write(cap)
        self.count += 1

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
