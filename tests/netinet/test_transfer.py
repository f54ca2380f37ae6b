"""TCP through the simulated kernel over the software link: the handshake, a
1 MB transfer each way checked byte for byte at the other end, and the
capture read back by dpkt with every checksum verified independently."""

from netinet.proto import TH_ACK, TH_FIN, TH_RST, TH_SYN
from netinet.wire import wire_time
from sim.kernel.errno import errorname

from .support import LOCAL, PARTNER, payload, read_to_eof, run

MB = 1 << 20


def _client_send(data, port=5001, write_size=None):
    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        assert err == 0
        res["connect"] = await st.sys_connect(p, fd, (PARTNER, port))
        res["t_connected"] = r.loop.now
        view = memoryview(data)
        sent = 0
        step = write_size or len(data)
        while sent < len(data):
            err, n = await st.sys_send(p, fd, view[sent:sent + step])
            assert err == 0, errorname(err)
            sent += n
        res["sent"] = sent
        res["close"] = await r.local.kernel.sys_close(p, fd)
    return client


def _data_stream(segs, src):
    """The payload of one direction reassembled from the capture by sequence number."""
    syn = next(s for s in segs if s.src == src and s.has(TH_SYN))
    base = (syn.seq + 1) & 0xFFFFFFFF
    got = {}
    for s in segs:
        if s.src == src and s.data:
            got[(s.seq - base) & 0xFFFFFFFF] = s.data
    out = bytearray()
    for off in sorted(got):
        d = got[off]
        if off > len(out):
            raise AssertionError(f"hole in the captured stream at {len(out)}")
        out += d[len(out) - off:]
    return bytes(out)


def test_handshake_options_and_one_megabyte_verified_at_the_partner(tmp_path):
    data = payload(MB)
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001))
    res, sink = r.result, r.result["service"]
    assert res["connect"] == 0 and res["sent"] == MB and res["close"] == 0
    assert sink.errors == [] and bytes(sink.data) == data
    segs = r.segs()
    # every frame: IP header and TCP checksums right (independent in_cksum)
    assert segs and all(s.ip_ok and s.tcp_ok for s in segs)
    # three-way handshake: SYN, SYN-ACK, ACK with consistent numbers
    syn, synack, ack = segs[0], segs[1], segs[2]
    assert (syn.src, syn.flags) == (LOCAL, TH_SYN)
    assert (synack.src, synack.flags) == (PARTNER, TH_SYN | TH_ACK)
    assert synack.ack == (syn.seq + 1) & 0xFFFFFFFF
    assert ack.src == LOCAL and ack.flags == TH_ACK and ack.ack == (synack.seq + 1) & 0xFFFFFFFF
    for s in (syn, synack):
        assert s.opts["mss"] == 1460 and s.opts["wscale"] == 0 and "ts" in s.opts
    assert synack.opts["ts"][1] == syn.opts["ts"][0]        # TSecr echoes TSval
    # data: 1448-byte segments (1460 - 12 for timestamps), timestamps on all
    data_segs = [s for s in segs if s.src == LOCAL and s.data]
    assert max(len(s.data) for s in data_segs) == 1448
    assert all("ts" in s.opts for s in segs[2:])
    assert _data_stream(segs, LOCAL) == data
    # no ACK acknowledges data not yet sent
    sent_hi = 0
    base = (syn.seq + 1) & 0xFFFFFFFF
    for s in segs:
        if s.src == LOCAL:
            sent_hi = max(sent_hi, ((s.seq - base) & 0xFFFFFFFF) + len(s.data)
                          + (1 if s.has(TH_FIN) else 0))
        elif s.has(TH_ACK) and not s.has(TH_SYN):
            assert (s.ack - base) & 0xFFFFFFFF <= sent_hi
    # timestamps: TSval never goes back, TSecr echoes a TSval the other end sent
    sent_ts = {LOCAL: set(), PARTNER: set()}
    last = {LOCAL: 0, PARTNER: 0}
    for s in segs:
        val, ecr = s.opts["ts"]
        assert val >= last[s.src]
        last[s.src] = val
        other = PARTNER if s.src == LOCAL else LOCAL
        assert ecr == 0 and s.has(TH_SYN) and not s.has(TH_ACK) or ecr in sent_ts[other]
        sent_ts[s.src].add(val)
    # the partner's cumulative ACKs never go back
    acks = [(s.ack - base) & 0xFFFFFFFF for s in segs[1:] if s.src == PARTNER]
    assert acks == sorted(acks) and acks[-1] == MB + 1
    # both FINs, no RST
    assert any(s.src == LOCAL and s.has(TH_FIN) for s in segs)
    assert any(s.src == PARTNER and s.has(TH_FIN) for s in segs)
    assert not any(s.has(TH_RST) for s in segs)
    # the sender's CPU went to the kinds the stack charges
    acct = r.local.kernel.accounting()
    assert sum(acct.values()) == r.loop.now
    for kind in ("copy", "checksum", "tcp", "ip", "ether", "driver", "socket"):
        assert acct[kind] > 0, kind
    prof = r.local.kernel.profile
    # checksums: at least every payload byte once, at the profile's rate
    assert acct["checksum"] >= prof.per_byte("net.cksum_byte") * MB
    # copies: at least the one copyin of every byte
    assert acct["copy"] >= prof.per_byte("copy.bandwidth") * MB


def test_receive_direction_one_megabyte_from_the_partner(tmp_path):
    data = payload(MB, seed=3)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        res["connect"] = await st.sys_connect(p, fd, (PARTNER, 6000))
        res["got"] = await read_to_eof(st, p, fd)
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.source(6000, data))
    assert r.result["connect"] == 0 and r.result["got"] == data
    segs = r.segs()
    assert all(s.ip_ok and s.tcp_ok for s in segs)
    assert _data_stream(segs, PARTNER) == data
    # the local receiver's window never exceeds its 16 KB buffer
    assert max(s.win for s in segs if s.src == LOCAL) <= 16384
    acct = r.local.kernel.accounting()
    assert acct["copy"] >= r.local.kernel.profile.per_byte("copy.bandwidth") * MB


def test_throughput_is_bounded_by_the_wire(tmp_path):
    data = payload(MB, seed=5)
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001))
    segs = r.segs()
    out = [s for s in segs if s.src == LOCAL]
    # frames of one direction never overlap on the wire
    for a, b in zip(out, out[1:]):
        assert b.t_ps >= a.t_ps + wire_time(a.frame_len)
    data_out = [s for s in out if s.data]
    # after the first data ACK (slow start begins at two segments)
    first_ack = next(s for s in segs if s.src == PARTNER and s.has(TH_ACK)
                     and s.ack != segs[2].seq and not s.has(TH_SYN))
    data_out = [s for s in data_out if s.t_ps > first_ack.t_ps]
    first, last = data_out[0], data_out[-1]
    duration = last.t_ps + wire_time(last.frame_len) - first.t_ps
    busy = sum(wire_time(s.frame_len) for s in out if first.t_ps <= s.t_ps <= last.t_ps)
    assert duration >= busy
    # goodput below the line rate less the framing of full segments (941.5 Mbit/s)
    goodput = 8 * sum(len(s.data) for s in data_out) / (duration / 1e12)
    assert goodput <= 1e9 * 1448 / 1538
    # and the transfer after slow start is not absurdly slow (the CPU model
    # lets a 1.4 GHz P3 keep a good share of the wire busy)
    assert busy / duration > 0.3
