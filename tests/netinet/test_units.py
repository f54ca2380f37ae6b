"""The pieces on their own: RFC 1071 checksum, wire formats against dpkt,
mbuf sizes and socket buffers, wire time, the pcap header, the free profile."""

import struct

import dpkt
import pytest
from hypothesis import given, strategies as st

from netinet.in_cksum import in_cksum, pseudo_header_sum
from netinet.mbuf import (MCLBYTES, MHLEN, MINCLSIZE, MLEN, MSIZE, NMBCLUSTERS, MbufPool,
                          SockBuf)
from netinet.partner import free_profile
from netinet.pcap import PcapWriter
from netinet.proto import (TH_ACK, TH_PUSH, TcpHdr, TcpOpts, ether_header, ip_aton, ip_header,
                           parse_ip, parse_tcp, tcp_segment)
from netinet.wire import wire_bytes, wire_time
from sim.memory import ByteMemory

from .support import ref_cksum


def test_rfc1071_example():
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement) → 220d
    assert in_cksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@given(st.binary(max_size=3000))
def test_in_cksum_matches_an_independent_sum(data):
    assert in_cksum(data) == ref_cksum(data)
    assert in_cksum(data) == dpkt.in_cksum(data)


def test_headers_parse_in_dpkt_and_back():
    src, dst = ip_aton("10.0.0.1"), ip_aton("10.0.0.2")
    th = TcpHdr(1234, 80, 0xFFFFFFF0, 77, TH_ACK | TH_PUSH, 16384,
                TcpOpts(mss=1460, wscale=0, ts=(5, 6)))
    seg = tcp_segment(src, dst, th, b"payload!")
    pkt = ip_header(src, dst, len(seg), 42) + seg
    frame = ether_header(b"\x02" * 6, b"\x04" * 6) + pkt
    e = dpkt.ethernet.Ethernet(frame)
    ip, tcp = e.data, e.data.data
    assert (ip.src, ip.dst, ip.id, ip.ttl, ip.len) == (src, dst, 42, 64, len(pkt))
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.win) == (1234, 80, 0xFFFFFFF0, 77, 16384)
    assert tcp.data == b"payload!"
    # dpkt recomputes the checksums to the same values
    ip2 = dpkt.ip.IP(src=src, dst=dst, p=6, id=42, ttl=64,
                     data=dpkt.tcp.TCP(bytes(tcp)))
    ip2.data.sum = 0
    ip2.sum = 0
    assert dpkt.ip.IP(bytes(ip2)).sum == ip.sum and dpkt.ip.IP(bytes(ip2)).data.sum == tcp.sum
    assert parse_ip(pkt)[3] == seg
    hdr, data = parse_tcp(src, dst, seg)
    assert (hdr.seq, hdr.opts.mss, hdr.opts.wscale, hdr.opts.ts, data) == \
        (0xFFFFFFF0, 1460, 0, (5, 6), b"payload!")
    bad = bytearray(seg)
    bad[-1] ^= 1
    assert parse_tcp(src, dst, bytes(bad)) is None
    assert pseudo_header_sum(src, dst, 6, 20) == struct.unpack("!H", struct.pack("!H", (
        0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20)))[0]


def test_mbuf_sizes_are_the_eras():
    assert (MSIZE, MCLBYTES, NMBCLUSTERS) == (256, 2048, 6144)
    assert (MLEN, MHLEN, MINCLSIZE) == (236, 228, 464)


def test_clusters_live_in_host_memory_and_socket_buffers_count_them():
    mem = ByteMemory(1 << 20)
    pool = MbufPool(mem, nmbclusters=3)
    sb = SockBuf(pool, hiwat=16384, lowat=2048)
    for i in range(3):
        m = pool.get()
        assert pool.clget(m)
        pool.write(m, bytes([i]) * 1000)
        assert mem.read(m.data, 1000) == bytes([i]) * 1000
        sb.append(m)
    m = pool.get()
    assert not pool.clget(m) and pool.drops == 1          # NMBCLUSTERS reached
    pool.free(m)
    assert sb.cc == 3000 and sb.space() == 16384 - 3000
    assert sb.copydata(999, 3) == b"\0\1\1"
    assert sb.drop(1500) == 1 and sb.cc == 1500 and sb.copydata(0, 2) == b"\1\1"
    sb.flush()
    assert sb.cc == 0 and pool.clusters == 0 and pool.mbufs == 0


def test_wire_time_of_full_segments_and_acks():
    # 1514-byte frame: 8 + 1514 + 4 + 12 = 1538 bytes at 8 ns = 12.304 us
    assert wire_bytes(1514) == 1538 and wire_time(1514) == 12_304_000
    # a 66-byte pure ACK with timestamps: 90 bytes, 0.72 us
    assert wire_time(66) == 720_000
    # runts are padded to 60 bytes before the FCS
    assert wire_bytes(54) == wire_bytes(60) == 84


def test_pcap_header_is_nanosecond_ethernet(tmp_path):
    w = PcapWriter(tmp_path / "x.pcap")
    w.write(1_234_567_891_234, b"\xff" * 60)
    w.close()
    raw = (tmp_path / "x.pcap").read_bytes()
    assert struct.unpack_from("<IHHiIII", raw) == (0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    assert struct.unpack_from("<IIII", raw, 24) == (1, 234_567_891, 60, 60)
    with open(tmp_path / "x.pcap", "rb") as f:
        (ts, buf), = list(dpkt.pcap.Reader(f))
    assert buf == b"\xff" * 60 and abs(float(ts) - 1.234567891) < 1e-9
    with pytest.raises(ValueError, match="closed"):
        w.write(0, b"")


def test_free_profile_zeroes_costs_keeps_periods():
    p = free_profile()
    assert p.cost("net.tcp_input") == 0 and p.cost("kernel.context_switch") == 0
    assert p.per_byte("copy.bandwidth") == 0.0
    assert p.cost("kernel.quantum") > 0 and p.hz > 0
