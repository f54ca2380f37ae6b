"""Loss, reordering, duplication and corruption on the wire: the transfer
completes and matches, and the capture shows how TCP recovered."""

import pytest

from netinet.wire import Faults

from .support import LOCAL, PARTNER, payload, read_to_eof, run
from .test_transfer import MB, _client_send, _data_stream


def _retransmitted(segs, src):
    seen, again = set(), 0
    for s in segs:
        if s.src == src and s.data:
            key = (s.seq, len(s.data))
            again += key in seen
            seen.add(key)
    return again


def test_one_percent_drops_and_reordering_both_ways(tmp_path):
    data = payload(MB, seed=11)
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001),
            faults_ab=Faults(drop=0.01, reorder=0.01, seed=7),
            faults_ba=Faults(drop=0.01, reorder=0.01, seed=8))
    sink = r.result["service"]
    assert r.result["connect"] == 0 and bytes(sink.data) == data and sink.errors == []
    ev = r.link.a.faults.events
    assert any(k == "drop" for _, k in ev) and any(k == "reorder" for _, k in ev)
    tcp = r.local.stack.tcp.stats
    assert tcp.get("fastrexmt", 0) + tcp.get("rexmttimeo", 0) > 0
    segs = r.segs()
    assert all(s.ip_ok and s.tcp_ok for s in segs)          # captured before the faults
    assert _retransmitted(segs, LOCAL) > 0
    assert _data_stream(segs, LOCAL) == data
    # the receiver saw segments out of order and answered with duplicate ACKs
    assert r.partner.stack.tcp.stats.get("rcvoopack", 0) > 0
    assert tcp.get("rcvdupack", 0) > 0


def test_a_dropped_segment_is_fast_retransmitted_after_three_duplicate_acks(tmp_path):
    data = payload(200_000, seed=2)
    # frame 0 SYN, 1 ACK, then data; drop a data frame once the window is open
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001),
            faults_ab=Faults(at={40: "drop"}))
    assert bytes(r.result["service"].data) == data
    tcp = r.local.stack.tcp.stats
    assert tcp.get("fastrexmt") == 1 and tcp.get("rexmttimeo", 0) == 0
    segs = r.segs()
    lost = [s for s in segs if s.src == LOCAL and s.data][38]   # frame 40 = data segment 38
    later = segs[segs.index(lost) + 1:]
    dups = [s for s in later if s.src == PARTNER and s.ack == lost.seq and not s.data]
    assert len(dups) >= 3
    rexmit = next(s for s in later if s.src == LOCAL and s.seq == lost.seq)
    third = dups[2]
    assert rexmit.t_ps > third.t_ps


def test_a_lost_tail_is_recovered_by_the_retransmission_timer(tmp_path):
    data = payload(3000, seed=4)
    # the last data segment is lost: no later segment makes duplicate ACKs
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001),
            faults_ab=Faults(at={4: "drop"}))
    assert bytes(r.result["service"].data) == data
    assert r.local.stack.tcp.stats.get("rexmttimeo", 0) >= 1
    segs = r.segs()
    first = [s for s in segs if s.src == LOCAL and s.data]
    orig = first[-2] if first[-1].seq == first[-2].seq else None
    assert orig is not None
    # the RTO is at least TCPTV_MIN (1 s, RFC 6298 §2.4) and a whole number of 500 ms ticks late
    gap = first[-1].t_ps - orig.t_ps
    assert gap >= 500_000_000_000
    assert first[-1].t_ps % 500_000_000_000 < 100_000_000     # fired at a slow tick


@pytest.mark.parametrize("kind", ["corrupt", "duplicate"])
def test_corrupt_and_duplicate_frames(tmp_path, kind):
    data = payload(300_000, seed=9)
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001),
            faults_ab=Faults(**{kind: 0.02}, seed=3), faults_ba=Faults(**{kind: 0.02}, seed=4))
    assert bytes(r.result["service"].data) == data
    pst = r.partner.stack
    if kind == "corrupt":
        bad = (pst.tcp.stats.get("rcvbadsum", 0) + pst.stats.get("ip_badhdr", 0)
               + r.local.stack.tcp.stats.get("rcvbadsum", 0) + r.local.stack.stats.get("ip_badhdr", 0))
        assert bad > 0
    else:
        assert pst.tcp.stats.get("rcvduppack", 0) > 0


def test_fault_knob_refuses_bad_settings():
    with pytest.raises(ValueError, match="drop"):
        Faults(drop=1.5)
    with pytest.raises(ValueError, match="kinds"):
        Faults(at={3: "explode"})
    with pytest.raises(ValueError, match="reorder_delay"):
        Faults(reorder_delay=0)


def test_the_fault_plan_is_reproducible(tmp_path):
    data = payload(200_000, seed=1)
    runs = []
    for sub in ("a", "b"):
        d = tmp_path / sub
        d.mkdir()
        r = run(d, _client_send(data), serve=lambda pt: pt.sink(5001),
                faults_ab=Faults(drop=0.02, seed=42))
        runs.append((r.link.a.faults.events, r.loop.now, (d / "wire.pcap").read_bytes()))
    assert runs[0] == runs[1]
    assert runs[0][0]                                   # something happened


def test_retransmission_backs_off_exponentially_up_to_64_seconds(tmp_path):
    data = payload(3000, seed=4)
    # the last data segment (frame 4) and its next eight retransmissions are lost
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001),
            faults_ab=Faults(at={i: "drop" for i in range(4, 13)}))
    assert bytes(r.result["service"].data) == data
    segs = r.segs()
    tail = [s for s in segs if s.src == LOCAL and s.data][-1]
    sends = [s.t_ps for s in segs if s.src == LOCAL and s.seq == tail.seq and s.data]
    assert len(sends) == 10
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    tick = 500_000_000_000
    for g0, g1 in zip(gaps, gaps[1:]):
        assert g1 >= g0 - tick                         # never shorter (back-off)
    assert max(gaps) <= 64 * 10**12 + tick             # TCPTV_REXMTMAX
    assert gaps[-1] >= 63 * 10**12                     # and it got there
    assert r.local.stack.tcp.stats["rexmttimeo"] == 9


def test_a_lost_handshake_ack_is_answered_when_the_syn_ack_comes_again(tmp_path):
    data = payload(20_000, seed=12)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        res["connect"] = await st.sys_connect(p, fd, (PARTNER, 6000))
        res["got"] = await read_to_eof(st, p, fd, 4096)
        await r.local.kernel.sys_close(p, fd)
    # frame 1 of the local host is the ACK completing the handshake
    r = run(tmp_path, client, serve=lambda pt: pt.source(6000, data),
            faults_ab=Faults(at={1: "drop"}))
    assert r.result["connect"] == 0 and r.result["got"] == data
    segs = r.segs()
    synacks = [s for s in segs if s.src == PARTNER and s.has(0x02)]
    assert len(synacks) == 2                 # the partner's SYN_RECEIVED timer resent it (6 s)
    answer = segs[segs.index(synacks[1]) + 1]
    assert answer.src == LOCAL and answer.flags == 0x10 and answer.ack == (synacks[1].seq + 1) & 0xFFFFFFFF
