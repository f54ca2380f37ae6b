"""The wire: a full-duplex gigabit Ethernet link on simulated time, with a
fault knob and a pcap tap, and the software interface that plugs a
:class:`netinet.stack.NetStack` into it.

Wire time. Each frame occupies its direction of the link for preamble and
start delimiter (8 bytes), the frame itself padded to the 60-byte minimum,
the FCS (4) and the inter-frame gap (12 bytes = 96 bit times), at 8 ns per
byte for 1000 Mb/s (IEEE 802.3 clause 3 frame format, §4.4.2 interFrameGap,
clause 38/1000BASE-SX runs 1.25 GBd 8b/10b = 1000 Mb/s of data). A full TCP
segment with timestamps (1448 bytes of data, 1514-byte frame) takes
1538 bytes = 12.304 µs; a pure ACK (66-byte frame) 90 bytes = 0.72 µs.
Frames queue behind each other per direction (the transmitter sends back
to back); ``propagation`` (ps) is added before arrival (fibre: ~5 ns/m).

Faults (per direction, :class:`Faults`): drop, duplicate, reorder (the frame
arrives ``reorder_delay`` late, so later frames overtake it), corrupt (one
bit flipped past the Ethernet header; the software interface has no FCS check, so IP/TCP checksums
must catch it) — each by rate from a seeded RNG, or at given frame indices.

The pcap tap records every frame as it starts onto the wire (before faults:
a capture at the sender's port), both directions in one file.

:class:`NicWire` puts a simulated NIC's wire (``host.wire_attach`` /
``host.wire_send``) on one port, counting wire time once: the NIC's MAC
serialises its own frames, the link the far end's (docs/network.md,
"Through the NIC").
"""

from __future__ import annotations

import heapq
import itertools
import random
import zlib
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from sim.kernel import Kernel
from sim.kernel.errno import ENOBUFS
from sim.loop import SimLoop, ns, us

from .pcap import PcapWriter
from .proto import ETHER_CRC_LEN, ETHER_MIN_LEN
from .stack import IfNet

if TYPE_CHECKING:
    from .stack import NetStack

__all__ = ["Link", "LinkPort", "Faults", "SoftIf", "NicWire", "BYTE_PS", "nic_capture_lag", "wire_bytes", "wire_time",
           "PREAMBLE_LEN", "IFG_LEN", "GIGABIT", "IFQ_MAXLEN", "SOFTIF_LINE"]

PREAMBLE_LEN = 8            # 7 preamble + 1 start frame delimiter
IFG_LEN = 12                # 96 bit times
GIGABIT = 1_000_000_000
IFQ_MAXLEN = 50             # net/if.h: the default interface queue length
SOFTIF_LINE = 49            # interrupt line of the software interface
FAULT_KINDS = ("drop", "duplicate", "reorder", "corrupt")
BYTE_PS = 8000              # one byte time at 1000 Mb/s


def nic_capture_lag(rate_bps: int = GIGABIT) -> int:
    """The ``capture_lag`` of a link with a :class:`NicWire` end: the NIC
    hands a frame over when its last beat has left, up to a full frame's
    wire time (1514 bytes) after it started, plus a margin of 1 µs for the
    host's attention."""
    return wire_time(1514, rate_bps) + 1_000_000


def wire_bytes(frame_len: int) -> int:
    """Bytes of line time for a frame of ``frame_len`` bytes (without FCS)."""
    return PREAMBLE_LEN + max(frame_len, ETHER_MIN_LEN - ETHER_CRC_LEN) + ETHER_CRC_LEN + IFG_LEN


def wire_time(frame_len: int, rate_bps: int = GIGABIT) -> int:
    """Picoseconds the frame occupies the wire."""
    return wire_bytes(frame_len) * 8 * 10**12 // rate_bps


class Faults:
    """What happens to frames on one direction of the link.

    ``Faults(drop=0.01, reorder=0.01, seed=1)`` by rate, or
    ``Faults(at={5: "drop", 9: "corrupt"})`` by frame index (0 = the first
    frame sent in that direction); both may be combined.
    """

    def __init__(self, drop: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 corrupt: float = 0.0, seed: int = 0, at: Optional[dict[int, str]] = None,
                 reorder_delay: int = us(50)):
        for name, r in (("drop", drop), ("duplicate", duplicate), ("reorder", reorder),
                        ("corrupt", corrupt)):
            if not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
                raise ValueError(f"fault rate {name}={r!r} is not in [0, 1]")
        at = dict(at or {})
        for i, kind in at.items():
            if type(i) is not int or i < 0 or kind not in FAULT_KINDS:
                raise ValueError(f"fault at frame {i!r}: {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
        if type(reorder_delay) is not int or reorder_delay <= 0:
            raise ValueError(f"reorder_delay must be a positive int of ps, not {reorder_delay!r}")
        self.rates = {"drop": drop, "duplicate": duplicate, "reorder": reorder, "corrupt": corrupt}
        self.at = at
        self.reorder_delay = reorder_delay
        self.rng = random.Random(seed)
        self.events: list[tuple[int, str]] = []

    def decide(self, index: int) -> set[str]:
        kinds = {k for k, r in self.rates.items() if r and self.rng.random() < r}
        if index in self.at:
            kinds.add(self.at[index])
        for k in sorted(kinds):
            self.events.append((index, k))
        return kinds

    def corrupt(self, frame: bytes) -> bytes:
        b = bytearray(frame)
        i = self.rng.randrange(14, len(b)) if len(b) > 14 else 0
        b[i] ^= 1 << self.rng.randrange(8)
        return bytes(b)


class LinkPort:
    """One end of the link: its transmitter (the direction away from it)."""

    def __init__(self, link: "Link", index: int, faults: Optional[Faults]):
        self.link = link
        self.index = index
        self.faults = faults
        self.peer: Optional[LinkPort] = None
        self.ifp: Optional["SoftIf"] = None
        self.busy_until = 0
        self._starts: deque[int] = deque()
        self.frames = 0               # frames sent in this direction
        self.bytes = 0
        self.queue_drops = 0
        self.delivered = 0

    def queued(self) -> int:
        now = self.link.loop.now
        while self._starts and self._starts[0] <= now:
            self._starts.popleft()
        return len(self._starts)

    def transmit(self, frame: bytes, *, started: Optional[int] = None) -> bool:
        """Queue ``frame`` for this direction; False when the queue is full.

        ``started``: the frame was put on the wire by hardware (a NIC's MAC,
        :class:`NicWire`) from that time (ps) on, so it is not serialised or
        queued again here: only faults, the tap and propagation apply."""
        link = self.link
        now = link.loop.now
        if started is None:
            if self.queued() >= link.queue_len:
                self.queue_drops += 1
                return False
            start = max(now, self.busy_until)
        else:
            start = started
        end = start + wire_time(len(frame), link.rate_bps)
        self.busy_until = max(self.busy_until, end)
        if start > now:
            self._starts.append(start)
        index = self.frames
        self.frames += 1
        self.bytes += len(frame)
        if link.pcap is not None:
            link.capture(start, frame)
        link.log.append((start, self.index, len(frame)))
        kinds = self.faults.decide(index) if self.faults is not None else set()
        if "drop" in kinds:
            return True
        peer = self.peer.ifp if self.peer is not None else None
        serialises = getattr(peer, "serialises", False)
        if serialises:
            # the receiver's MAC takes the frame bit by bit as it arrives
            # (NicWire → Host.wire_send): hand it over as its first bit
            # arrives, padded to the 60-byte minimum and with the FCS the
            # sender computed (IEEE 802.3 §3.2.8-9), so a bit flipped on the
            # way fails the receiving MAC's check
            frame = frame + bytes(max(0, ETHER_MIN_LEN - ETHER_CRC_LEN - len(frame)))
            fcs = zlib.crc32(frame).to_bytes(ETHER_CRC_LEN, "little")
        if "corrupt" in kinds:
            frame = self.faults.corrupt(frame)
        if serialises:
            frame += fcs
        arrive = (start if serialises else end) + link.propagation
        if "reorder" in kinds:
            arrive += self.faults.reorder_delay
        self._deliver_at(arrive, frame)
        if "duplicate" in kinds:
            self._deliver_at(arrive + wire_time(len(frame), link.rate_bps), frame)
        return True

    def _deliver_at(self, when: int, frame: bytes) -> None:
        fut, _ = self.link.loop.call_at(max(when, self.link.loop.now), f"wire{self.index}")
        fut.add_done_callback(lambda _f: self._arrive(frame))

    def _arrive(self, frame: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.ifp is not None:
            self.delivered += 1
            peer.ifp.receive(frame)


class Link:
    """A full-duplex point-to-point link (two :class:`LinkPort`: ``link.a``, ``link.b``).

    ``Link(loop, pcap="run.pcap", faults_ab=Faults(drop=0.01))``.
    """

    def __init__(self, loop: SimLoop, *, rate_bps: int = GIGABIT, propagation: int = ns(50),
                 pcap: "str | Path | None" = None, faults_ab: Optional[Faults] = None,
                 faults_ba: Optional[Faults] = None, queue_len: int = 256,
                 capture_lag: int = 0):
        if type(rate_bps) is not int or rate_bps <= 0:
            raise ValueError(f"rate_bps must be a positive int, not {rate_bps!r}")
        if type(propagation) is not int or propagation < 0:
            raise ValueError(f"propagation must be a non-negative int of ps, not {propagation!r}")
        self.loop = loop
        self.rate_bps = rate_bps
        self.propagation = propagation
        self.queue_len = queue_len
        if type(capture_lag) is not int or capture_lag < 0:
            raise ValueError(f"capture_lag must be a non-negative int of ps, not {capture_lag!r}")
        #: how far in the past a frame may start when it is handed over (a
        #: NIC's frame is handed over when it has left the MAC): the tap
        #: holds records that long to write them in time order
        self.capture_lag = capture_lag
        self.pcap = PcapWriter(pcap) if pcap is not None else None
        self._pending: list[tuple[int, int, bytes]] = []
        self._seq = itertools.count()
        #: (start ps, direction 0 = a→b / 1 = b→a, frame length) of every frame
        self.log: list[tuple[int, int, int]] = []
        self.a = LinkPort(self, 0, faults_ab)
        self.b = LinkPort(self, 1, faults_ba)
        self.a.peer, self.b.peer = self.b, self.a

    def capture(self, start: int, frame: bytes) -> None:
        """Record a frame for the pcap, written in time order: a frame queued
        behind others starts later than it is handed over, so records wait
        until no later hand-over can start earlier (both directions are FIFO)."""
        heapq.heappush(self._pending, (start, next(self._seq), frame))
        now = self.loop.now - self.capture_lag
        while self._pending and self._pending[0][0] <= now:
            t, _, f = heapq.heappop(self._pending)
            self.pcap.write(t, f)

    def close(self) -> None:
        """Write the frames still pending and close the pcap."""
        if self.pcap is not None:
            while self._pending:
                t, _, f = heapq.heappop(self._pending)
                self.pcap.write(t, f)
            self.pcap.close()


class SoftIf(IfNet):
    """A software Ethernet interface on a :class:`LinkPort` (stands in for a NIC).

    Output charges ``net.swif_frame`` (driver) and puts the frame on the wire;
    ENOBUFS when the wire's queue is full. A received frame is queued (up to
    ``IFQ_MAXLEN``) and the interface's interrupt line raised; the handler
    hands every queued frame to ``ether_input``.
    """

    def __init__(self, kernel: Kernel, port: LinkPort, lladdr: bytes, *, name: str = "sw0",
                 line: int = SOFTIF_LINE, ifq_maxlen: int = IFQ_MAXLEN):
        if type(lladdr) is not bytes or len(lladdr) != 6:
            raise ValueError(f"an Ethernet address is 6 bytes, not {lladdr!r}")
        self.kernel = kernel
        self.port = port
        self.lladdr = lladdr
        self.name = name
        self.line = line
        self.ifq_maxlen = ifq_maxlen
        self.inq: deque[bytes] = deque()
        self.ipackets = self.opackets = self.iqdrops = self.oerrors = 0
        self.c_frame = kernel.profile.cost("net.swif_frame")
        port.ifp = self

    def attach(self, stack: "NetStack") -> None:
        super().attach(stack)
        self.kernel.intr_establish(self.line, self._intr, self.name)

    async def if_output(self, frame: bytes) -> int:
        if self.c_frame:
            await self.kernel.charge("driver", self.c_frame)
        if not self.port.transmit(frame):
            self.oerrors += 1
            return ENOBUFS
        self.opackets += 1
        return 0

    def receive(self, frame: bytes) -> None:
        """A frame arrives from the wire (a plain function, on the loop)."""
        if len(self.inq) >= self.ifq_maxlen:
            self.iqdrops += 1
            return
        self.inq.append(frame)
        self.kernel.interrupt(self.line, True)

    async def _intr(self) -> bool:
        if not self.inq:
            return False
        while self.inq:
            frame = self.inq.popleft()
            self.ipackets += 1
            if self.c_frame:
                await self.kernel.charge("driver", self.c_frame)
            if self.stack is not None:
                await self.stack.ether_input(frame)
        self.kernel.interrupt(self.line, False)
        return True


class NicWire:
    """A simulated NIC's end of a :class:`Link`: the machine's wire port
    (``host.wire_attach`` / ``host.wire_send``, docs/em8254x.md) on ``port``.

    The NIC's MAC serialises its frames itself (preamble, bytes, FCS, gap at
    1 Gbit/s), so a frame it sends enters the link as already on the wire
    (:meth:`LinkPort.transmit` with ``started``): the tap records it at the
    time its preamble started, faults apply, and it reaches the far end one
    propagation delay after its end. Its FCS is checked (``zlib.crc32``,
    IEEE 802.3 §3.2.9; a bad one is counted in ``bad_fcs`` and the frame
    not passed on) and cut off: the link carries frames without FCS. A frame
    towards the NIC, serialised once by the far end's port, is handed to
    ``wire_send`` as its first bit arrives, padded and with its FCS (see
    :meth:`LinkPort.transmit`); the wire port then clocks it into the MAC at
    wire speed, so it is complete in the MAC when its last bit has arrived.

    ``time_ps`` of ``wire_attach`` is the start of the bus cycle of the
    frame's last beat (up to four bytes): the frame started
    (preamble + length − last beat) byte times before it, within a bus cycle.
    """

    serialises = True

    def __init__(self, host, slot: int, port: LinkPort):
        self.host, self.slot, self.port = host, slot, port
        self.sent = self.received = self.bad_fcs = 0
        port.ifp = self
        host.wire_attach(slot, self._on_frame)

    def _on_frame(self, time_ps: int, frame: bytes) -> None:
        body, fcs = frame[:-ETHER_CRC_LEN], frame[-ETHER_CRC_LEN:]
        if len(frame) <= ETHER_CRC_LEN or \
                zlib.crc32(body).to_bytes(ETHER_CRC_LEN, "little") != fcs:
            self.bad_fcs += 1
            return
        last_beat = len(frame) % 4 or 4
        start = time_ps - (PREAMBLE_LEN + len(frame) - last_beat) * BYTE_PS
        self.sent += 1
        self.port.transmit(body, started=start)

    def receive(self, frame: bytes) -> None:
        """A frame (with FCS) whose first bit reaches the NIC now."""
        self.received += 1
        self.host.wire_send(self.slot, frame, self.host.now)
