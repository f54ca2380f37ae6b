"""Wire formats: Ethernet II, IPv4, TCP — one definition for output, input and tests.

Ethernet: 14-byte header (destination, source, type), ``ETHERTYPE_IP``
0x0800, ``ETHERMTU`` 1500, minimum frame 64 bytes with the 4-byte FCS
(IEEE 802.3 §3.2, §4.4.2; OpenBSD ``sys/net/if_ether.h``). IPv4: RFC 791
§3.1, no options, TTL 64 (OpenBSD ``ip_defttl``, ``sys/netinet/ip_input.c``).
TCP: RFC 793 §3.1 header; options MSS (RFC 793/1122 §4.2.2.6), window scale
and timestamps (RFC 7323 §2.2, §3.2), laid out as 4.4BSD ``tcp_output.c``
does (MSS; NOP + window scale; NOP NOP + timestamps = ``TCPOLEN_TSTAMP_APPA``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from .in_cksum import in_cksum, pseudo_header_sum

__all__ = ["ETHER_ADDR_LEN", "ETHER_HDR_LEN", "ETHER_CRC_LEN", "ETHER_MIN_LEN", "ETHERMTU",
           "ETHERTYPE_IP", "IP_HDR_LEN", "IPPROTO_TCP", "IPDEFTTL", "TCP_HDR_LEN",
           "TH_FIN", "TH_SYN", "TH_RST", "TH_PUSH", "TH_ACK", "TH_URG",
           "TCPOPT_EOL", "TCPOPT_NOP", "TCPOPT_MAXSEG", "TCPOPT_WINDOW", "TCPOPT_TIMESTAMP",
           "TCPOLEN_TSTAMP_APPA", "TcpHdr", "TcpOpts", "ether_header", "ip_header",
           "tcp_segment", "parse_ether", "parse_ip", "parse_tcp", "ip_aton", "ip_ntoa"]

ETHER_ADDR_LEN = 6
ETHER_HDR_LEN = 14
ETHER_CRC_LEN = 4
ETHER_MIN_LEN = 64            # with the FCS: frames are padded to 60 bytes before it
ETHERMTU = 1500
ETHERTYPE_IP = 0x0800

IP_HDR_LEN = 20
IPVERSION = 4
IPPROTO_TCP = 6
IPDEFTTL = 64

TCP_HDR_LEN = 20
TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK, TH_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MAXSEG, TCPOPT_WINDOW, TCPOPT_TIMESTAMP = 0, 1, 2, 3, 8
TCPOLEN_MAXSEG, TCPOLEN_WINDOW, TCPOLEN_TIMESTAMP = 4, 3, 10
TCPOLEN_TSTAMP_APPA = TCPOLEN_TIMESTAMP + 2     # with two NOPs: 12 (RFC 7323 Appendix A)

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")


def ip_aton(s: str) -> bytes:
    parts = s.split(".")
    if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise ValueError(f"not an IPv4 address: {s!r}")
    return bytes(int(p) for p in parts)


def ip_ntoa(b: bytes) -> str:
    return ".".join(str(x) for x in b)


@dataclass
class TcpOpts:
    mss: Optional[int] = None
    wscale: Optional[int] = None
    ts: Optional[tuple[int, int]] = None      # (TSval, TSecr)

    def encode(self) -> bytes:
        out = b""
        if self.mss is not None:
            out += struct.pack("!BBH", TCPOPT_MAXSEG, TCPOLEN_MAXSEG, self.mss)
        if self.wscale is not None:
            out += struct.pack("!BBBB", TCPOPT_NOP, TCPOPT_WINDOW, TCPOLEN_WINDOW, self.wscale)
        if self.ts is not None:
            out += struct.pack("!BBBBII", TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP,
                               TCPOLEN_TIMESTAMP, self.ts[0] & 0xFFFFFFFF, self.ts[1] & 0xFFFFFFFF)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> "TcpOpts":
        """``tcp_dooptions``: unknown options are skipped, a malformed one ends the walk."""
        o = cls()
        i = 0
        while i < len(raw):
            kind = raw[i]
            if kind == TCPOPT_EOL:
                break
            if kind == TCPOPT_NOP:
                i += 1
                continue
            if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
                break
            ln = raw[i + 1]
            body = raw[i + 2:i + ln]
            if kind == TCPOPT_MAXSEG and ln == TCPOLEN_MAXSEG:
                o.mss = struct.unpack("!H", body)[0]
            elif kind == TCPOPT_WINDOW and ln == TCPOLEN_WINDOW:
                o.wscale = min(body[0], 14)           # RFC 7323 §2.3: at most 14
            elif kind == TCPOPT_TIMESTAMP and ln == TCPOLEN_TIMESTAMP:
                o.ts = struct.unpack("!II", body)
            i += ln
        return o


@dataclass
class TcpHdr:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    opts: TcpOpts
    hlen: int = TCP_HDR_LEN


def ether_header(dst: bytes, src: bytes, etype: int = ETHERTYPE_IP) -> bytes:
    return _ETH.pack(dst, src, etype)


def ip_header(src: bytes, dst: bytes, payload_len: int, ip_id: int,
              proto: int = IPPROTO_TCP, ttl: int = IPDEFTTL) -> bytes:
    """A 20-byte IPv4 header with its header checksum (RFC 791 §3.1)."""
    h = _IP.pack((IPVERSION << 4) | (IP_HDR_LEN >> 2), 0, IP_HDR_LEN + payload_len,
                 ip_id & 0xFFFF, 0, ttl, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", in_cksum(h)) + h[12:]


def tcp_segment(src: bytes, dst: bytes, th: TcpHdr, data: bytes) -> bytes:
    """TCP header + options + data, with the checksum over the pseudo-header."""
    opts = th.opts.encode()
    opts += b"\0" * (-len(opts) % 4)
    hlen = TCP_HDR_LEN + len(opts)
    hdr = _TCP.pack(th.sport, th.dport, th.seq & 0xFFFFFFFF, th.ack & 0xFFFFFFFF,
                    (hlen >> 2) << 4, th.flags, th.win, 0, 0) + opts
    ck = in_cksum(hdr, data, initial=pseudo_header_sum(src, dst, IPPROTO_TCP, hlen + len(data)))
    return hdr[:16] + struct.pack("!H", ck) + hdr[18:] + data


def parse_ether(frame: bytes) -> Optional[tuple[bytes, bytes, int, bytes]]:
    """(dst, src, type, payload) or None for a runt."""
    if len(frame) < ETHER_HDR_LEN:
        return None
    dst, src, etype = _ETH.unpack_from(frame)
    return dst, src, etype, frame[ETHER_HDR_LEN:]


def parse_ip(pkt: bytes) -> Optional[tuple[bytes, bytes, int, bytes]]:
    """``ip_input`` checks: version, header length, header checksum, total
    length (trailing Ethernet padding dropped), no fragments. (src, dst,
    proto, payload) or None."""
    if len(pkt) < IP_HDR_LEN:
        return None
    vhl, _tos, total, _id, off, _ttl, proto, _ck, src, dst = _IP.unpack_from(pkt)
    hlen = (vhl & 0xF) << 2
    if vhl >> 4 != IPVERSION or hlen < IP_HDR_LEN or len(pkt) < hlen or total < hlen:
        return None
    if in_cksum(pkt[:hlen]) != 0 or total > len(pkt):
        return None
    if off & 0x3FFF:            # MF or a fragment offset: no reassembly modelled
        return None
    return src, dst, proto, pkt[hlen:total]


def parse_tcp(src: bytes, dst: bytes, seg: bytes) -> Optional[tuple[TcpHdr, bytes]]:
    """Header and data of a TCP segment whose checksum verifies, else None."""
    if len(seg) < TCP_HDR_LEN:
        return None
    if in_cksum(seg, initial=pseudo_header_sum(src, dst, IPPROTO_TCP, len(seg))) != 0:
        return None
    sport, dport, seq, ack, off, flags, win, _ck, _urp = _TCP.unpack_from(seg)
    hlen = (off >> 4) << 2
    if hlen < TCP_HDR_LEN or hlen > len(seg):
        return None
    return (TcpHdr(sport, dport, seq, ack, flags & 0x3F, win,
                   TcpOpts.decode(seg[TCP_HDR_LEN:hlen]), hlen), seg[hlen:])
