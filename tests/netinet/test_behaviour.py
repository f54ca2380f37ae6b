"""Nagle, delayed ACK, TCP_NODELAY, the sosend chunking and the write
quantum, as the capture (read by dpkt) shows them."""

import pytest

from netinet.mbuf import MCLBYTES, MINCLSIZE, MLEN
from netinet.socket import Socket, TCP_NODELAY
from netinet.proto import IPPROTO_TCP, TH_ACK
from sim.kernel import PPAUSE
from sim.loop import ms, us

from .support import LOCAL, PARTNER, payload, run

#: the delayed-ACK timeout: TCP_DELACK_MSECS 200 at hz 100, armed as a
#: 20-tick timeout, so it fires 190-200 ms after the segment
DELACK_MIN, DELACK_MAX, CLOCK_TICK = ms(190), ms(200), ms(10)


def _small_writes(count, size, nodelay=False, pause=0):
    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        if nodelay:
            assert await st.sys_setsockopt(p, fd, IPPROTO_TCP, TCP_NODELAY, 1) == 0
            assert await st.sys_getsockopt(p, fd, IPPROTO_TCP, TCP_NODELAY) == (0, 1)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        res["t0"] = r.loop.now
        for i in range(count):
            err, n = await st.sys_send(p, fd, bytes([i % 256]) * size)
            assert (err, n) == (0, size)
            if pause:
                await r.local.kernel.user(pause)
        # linger before close: a FIN would push the held data out (tcp_output
        # sends a FIN, and the data before it, whatever Nagle says)
        await r.local.kernel.tsleep(res, PPAUSE, "nanosleep", ms(500))
        await r.local.kernel.sys_close(p, fd)
    return client


def test_nagle_coalesces_small_writes_and_the_lone_segment_waits_for_the_delayed_ack(tmp_path):
    r = run(tmp_path, _small_writes(50, 10), serve=lambda pt: pt.sink(5001))
    assert bytes(r.result["service"].data) == b"".join(bytes([i]) * 10 for i in range(50))
    segs = r.segs()
    data = [s for s in segs if s.src == LOCAL and s.data]
    # the first write goes at once (nothing outstanding); the other 49 are
    # held until it is acknowledged, then leave together
    assert len(data[0].data) == 10
    assert len(data) == 2 and len(data[1].data) == 490
    ack = next(s for s in segs if s.src == PARTNER and s.ack == (data[0].seq + 10) & 0xFFFFFFFF)
    # the partner held its ACK of the lone segment for its delayed-ACK
    # timeout: 190-200 ms after the segment reached it, on a 10 ms clock tick
    # (the capture's times are the sender's tap; the wire adds ~2 us)
    held = ack.t_ps - data[0].t_ps
    assert DELACK_MIN - ms(1) < held <= DELACK_MAX + ms(1)
    assert data[1].t_ps > ack.t_ps


@pytest.mark.parametrize("pause", [0, ms(37), ms(133)])
def test_the_delayed_ack_timeout_runs_from_the_segment_not_a_global_tick(tmp_path, pause):
    """OpenBSD arms a per-connection timeout when it delays an ACK
    (TCP_SET_DELACK): the hold is 190-200 ms whatever the phase of the
    clock, not up to the next tick of a shared 200 ms timer."""
    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        await r.local.kernel.tsleep(res, PPAUSE, "nanosleep", ms(300) + pause)
        assert await st.sys_send(p, fd, b"x" * 10) == (0, 10)
        await r.local.kernel.tsleep(res, PPAUSE, "nanosleep", ms(500))
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    segs = r.segs()
    d = next(s for s in segs if s.src == LOCAL and s.data)
    ack = next(s for s in segs if s.src == PARTNER and s.ack == (d.seq + 10) & 0xFFFFFFFF)
    held = ack.t_ps - d.t_ps
    assert DELACK_MIN - ms(1) < held <= DELACK_MAX + ms(1)
    assert ack.t_ps % CLOCK_TICK < ms(1)
    assert r.partner.stack.tcp.stats["delack"] >= 1


def test_the_ack_of_the_syn_opens_the_window_to_two_segments(tmp_path):
    """After the handshake the active opener has cwnd = 1 + 1 segments (the
    SYN_SENT case opens it by one MSS for the acknowledged SYN), so its
    first two full segments leave back to back and the receiver's
    every-second-segment rule ACKs them at once: no delayed-ACK stall."""
    data = payload(4 * 1448, seed=3)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_send(p, fd, data) == (0, len(data))
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert bytes(r.result["service"].data) == data
    segs = r.segs()
    out = [s for s in segs if s.src == LOCAL and s.data]
    first_ack = next(i for i, s in enumerate(segs) if s.src == PARTNER and s.data == b""
                     and s.ack == (out[0].seq + 2 * 1448) & 0xFFFFFFFF)
    # two segments before any ACK of data, the second ACKed at once
    assert [s for s in segs[:first_ack] if s.src == LOCAL and s.data] == out[:2]
    assert segs[first_ack].t_ps - out[1].t_ps < ms(1)
    assert r.partner.stack.tcp.stats.get("delack", 0) == 0
    # the whole transfer takes well under one delayed-ACK hold
    assert out[-1].t_ps - out[0].t_ps < ms(5)


@pytest.mark.parametrize("kw, mss_segments", [({}, 2), ({"rfc3390": True}, None),
                                                 ({"initial_window": 3}, 4)])
def test_initial_window_after_the_handshake(tmp_path, kw, mss_segments):
    """cwnd once connect() returns: tcp_mss's initial window (1 segment; or
    RFC 3390 §1's min(4 MSS, max(2 MSS, 4380 bytes))) plus one segment for
    the acknowledged SYN; the passive end's too (its SYN is acknowledged by
    the third segment of the handshake)."""
    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        (tp,) = st.tcp.pcbs.values()
        res["cwnd"], res["mss"] = tp.snd_cwnd, tp.t_maxseg
        await r.local.kernel.tsleep(res, PPAUSE, "nanosleep", ms(10))
        (ptp,) = r.partner.stack.tcp.pcbs.values()
        res["pcwnd"] = ptp.snd_cwnd
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001), local_kw=kw, partner_kw=kw)
    mss = r.result["mss"]
    assert mss == 1460 - 12                       # timestamps on both ends
    if mss_segments is None:
        want = min(4 * mss, max(2 * mss, 4380)) + mss
    else:
        want = mss_segments * mss
    assert r.result["cwnd"] == want
    assert r.result["pcwnd"] == want


def seq_after(a, b):
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def _pru_sends(monkeypatch):
    seen = []
    orig = Socket._pru_send

    async def spy(self, top):
        seen.append([m.len for m in top])
        await orig(self, top)
    monkeypatch.setattr(Socket, "_pru_send", spy)
    return seen


@pytest.mark.parametrize("size, quantum, expect", [
    (300, None, [[MLEN], [300 - MLEN]]),                      # below MINCLSIZE: plain mbufs
    (5000, None, [[MCLBYTES], [MCLBYTES], [5000 - 2 * MCLBYTES]]),
    (MINCLSIZE, None, [[MINCLSIZE]]),                         # MINCLSIZE takes a cluster
    (10000, 4088, [[2048, 2040], [2048, 2040], [1824]]),      # pieces of at most 4088
])
def test_sosend_takes_one_mbuf_per_protocol_send(tmp_path, monkeypatch, size, quantum, expect):
    seen = _pru_sends(monkeypatch)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        seen.clear()
        res["send"] = await st.sys_send(p, fd, payload(size))
        res["seen"] = list(seen)
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001), local_kw={"write_quantum": quantum})
    assert r.result["send"] == (0, size)
    assert r.result["seen"] == expect
    assert bytes(r.result["service"].data) == payload(size)


def test_a_full_send_buffer_puts_the_writer_to_sleep_until_acks_free_it(tmp_path):
    data = payload(200_000)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        so = r.local.kernel.fd_get(p, fd)
        res["hiwat"] = so.snd.hiwat
        await st.sys_send(p, fd, data)
        await r.local.kernel.sys_close(p, fd)
    # a 100 Mbit/s link: the writer (about 1.5 Gbit/s of sosend work on the
    # P3) fills the 16 KB buffer long before the wire drains it (at 1 Gbit/s
    # the two are close enough that it may never fill once the handshake
    # leaves two segments of window)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001), rate_bps=100_000_000)
    assert r.result["hiwat"] == 16384
    assert bytes(r.result["service"].data) == data
    proc = next(c for c in r.local.kernel.contexts if c.name == "client")
    # it slept in sbwait again and again (each tsleep charges kernel.tsleep)
    assert proc.cpu["sched"] >= 10 * r.local.kernel.c_tsleep
