"""Nagle, delayed ACK, TCP_NODELAY, the sosend chunking and the write
quantum, as the capture (read by dpkt) shows them."""

import pytest

from netinet.mbuf import MCLBYTES, MINCLSIZE, MLEN
from netinet.socket import Socket, TCP_NODELAY
from netinet.proto import IPPROTO_TCP, TH_ACK
from sim.kernel import PPAUSE
from sim.loop import ms, us

from .support import LOCAL, PARTNER, payload, run

FAST_TICK = ms(200)


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
    # the partner held its ACK of the lone segment until the 200 ms fast timer
    assert ack.t_ps % FAST_TICK == 0 and ack.t_ps - data[0].t_ps > ms(1)
    assert data[1].t_ps > ack.t_ps


def test_nodelay_sends_every_small_write_at_once(tmp_path):
    r = run(tmp_path, _small_writes(50, 10, nodelay=True), serve=lambda pt: pt.sink(5001))
    assert len(r.result["service"].data) == 500
    data = [s for s in r.segs() if s.src == LOCAL and s.data]
    assert len(data) == 50 and all(len(s.data) == 10 for s in data)
    assert data[-1].t_ps - data[0].t_ps < ms(1)          # no waiting for ACKs


def test_bulk_receiver_acks_every_second_segment(tmp_path):
    data = payload(500_000)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        await st.sys_send(p, fd, data)
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    segs = r.segs()
    nseg = sum(1 for s in segs if s.src == LOCAL and s.data)
    acks = [s for s in segs if s.src == PARTNER and s.has(TH_ACK) and not s.data]
    # one ACK per two full segments (plus window updates and the end)
    assert 0.4 * nseg <= len(acks) <= 0.75 * nseg
    # a delayed-ACK timer ACK happened only for the lone first segment
    assert r.partner.stack.tcp.stats.get("delack", 0) <= 2


def test_the_4088_byte_write_quantum_sends_its_tail_under_nagle(tmp_path):
    """The socket-crypto paper's pattern: each 4088-byte send() becomes two
    full segments and a 1192-byte tail, which waits until everything before
    it is acknowledged."""
    blob = payload(4088 * 12, seed=8)

    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        for i in range(12):
            err, n = await st.sys_send(p, fd, blob[i * 4088:(i + 1) * 4088])
            assert n == 4088
            await r.local.kernel.user(us(150))    # the application's work between writes
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001), local_kw={"write_quantum": 4088})
    assert bytes(r.result["service"].data) == blob
    segs = r.segs()
    tails = [s for s in segs if s.src == LOCAL and len(s.data) == 4088 - 2 * 1448]
    assert len(tails) >= 5
    for t in tails:
        before = [s for s in segs[:segs.index(t)] if s.src == PARTNER]
        assert before[-1].ack == t.seq        # nothing outstanding when it left (Nagle)


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
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert r.result["hiwat"] == 16384
    assert bytes(r.result["service"].data) == data
    proc = next(c for c in r.local.kernel.contexts if c.name == "client")
    # it slept in sbwait again and again (each tsleep charges kernel.tsleep)
    assert proc.cpu["sched"] >= 10 * r.local.kernel.c_tsleep
