"""Helpers for the netinet tests: run a local process against the partner over
the software link, and read the pcap back with dpkt (an independent parser),
checking every checksum with an independent Internet checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

import dpkt

from netinet.partner import pair
from netinet.wire import Faults
from sim.loop import SimLoop, ms

LOCAL, PARTNER = "10.0.0.1", "10.0.0.2"


def ref_cksum(data: bytes) -> int:
    """RFC 1071 §1 done the slow, obvious way (big-endian words, end-around carry)."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@dataclass
class Seg:
    t_ps: int
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    data: bytes
    opts: dict
    frame_len: int
    ip_ok: bool
    tcp_ok: bool

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


def read_pcap(path: Path) -> list[Seg]:
    segs = []
    with open(path, "rb") as f:
        r = dpkt.pcap.Reader(f)
        assert r.datalink() == dpkt.pcap.DLT_EN10MB
        for ts, buf in r:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            assert isinstance(ip, dpkt.ip.IP), "only IPv4 on this wire"
            raw_ip = bytes(buf[14:14 + ip.hl * 4])
            tcp = ip.data
            assert isinstance(tcp, dpkt.tcp.TCP)
            tcp_raw = bytes(buf[14 + ip.hl * 4:14 + ip.len])
            pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, 6, len(tcp_raw))
            opts = {}
            for kind, val in dpkt.tcp.parse_opts(tcp.opts):
                if kind == dpkt.tcp.TCP_OPT_MSS:
                    opts["mss"] = struct.unpack("!H", val)[0]
                elif kind == dpkt.tcp.TCP_OPT_WSCALE:
                    opts["wscale"] = val[0]
                elif kind == dpkt.tcp.TCP_OPT_TIMESTAMP:
                    opts["ts"] = struct.unpack("!II", val)
            # ns pcap: dpkt gives seconds as a Decimal with 9 digits
            t_ps = int(round(ts * 10**12)) if not isinstance(ts, float) else int(round(ts * 1e12))
            segs.append(Seg(t_ps, ".".join(map(str, ip.src)), ".".join(map(str, ip.dst)),
                            tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.win,
                            bytes(tcp.data), opts, len(buf),
                            ref_cksum(raw_ip) == 0, ref_cksum(pseudo + tcp_raw) == 0))
    return segs


@dataclass
class Run:
    loop: SimLoop
    link: Any
    local: Any
    partner: Any
    result: dict = field(default_factory=dict)
    pcap: Optional[Path] = None

    def segs(self) -> list[Seg]:
        return read_pcap(self.pcap)


def run(tmp_path: Path, client: Callable[[Any, Any, dict], Awaitable[None]], *,
        serve: Optional[Callable[[Any], Any]] = None, faults_ab: Optional[Faults] = None,
        faults_ba: Optional[Faults] = None, local_kw: Optional[dict] = None,
        partner_kw: Optional[dict] = None, deadline_s: float = 600, **link_kw: Any) -> Run:
    """Run ``await client(p, run, result)`` as a process on the local host;
    ``serve(partner)`` starts the partner's side first. Returns when the
    client and the partner's service are done (the link's pcap closed), or
    when the client is done and set ``result["abandon"]``."""
    loop = SimLoop()
    pcap = tmp_path / "wire.pcap"
    link, local, partner = pair(loop, pcap=pcap, faults_ab=faults_ab, faults_ba=faults_ba,
                                local_kw=local_kw, partner_kw=partner_kw, **link_kw)
    r = Run(loop, link, local, partner, pcap=pcap)
    svc = serve(partner) if serve is not None else None
    r.result["service"] = svc

    async def proc(p):
        await client(p, r, r.result)
    ctx = local.kernel.fork("client", proc)

    async def main():
        await ctx.task
        while svc is not None and svc.done_ps is None and not r.result.get("abandon"):
            await loop.sleep(ms(10))
    try:
        loop.run(main(), deadline=int(deadline_s * 1e12))
    finally:
        link.close()
    return r


def payload(n: int, seed: int = 0) -> bytes:
    import random
    return random.Random(seed).randbytes(n)


async def read_to_eof(stack, p, fd, chunk: int = 8192) -> bytes:
    """``recv`` on ``fd`` in ``chunk``-byte reads until EOF; every call must succeed."""
    buf, got = bytearray(chunk), bytearray()
    while True:
        err, n = await stack.sys_recv(p, fd, buf)
        assert err == 0
        if n == 0:
            return bytes(got)
        got += buf[:n]
