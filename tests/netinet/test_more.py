"""Window scaling with a large buffer, the persist timer against a closed
window, two connections at once, non-blocking and peeking calls, and a
partner with a real CPU, sequence numbers wrapping."""

import pytest

from netinet.socket import MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL, SO_RCVBUF, SO_SNDBUF, SOL_SOCKET
from netinet.wire import Faults
from sim.kernel import PPAUSE
from sim.kernel.errno import EWOULDBLOCK
from sim.loop import ms

from .support import LOCAL, PARTNER, payload, read_to_eof, run
from .test_transfer import _client_send


def _reader(port, total, *, rcvbuf=None, pause=0, chunk=8192):
    async def client(p, r, res):
        st, k = r.local.stack, r.local.kernel
        err, fd = await st.sys_socket(p)
        if rcvbuf:
            assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_RCVBUF, rcvbuf) == 0
        res["connect"] = await st.sys_connect(p, fd, (PARTNER, port))
        if pause:
            await k.tsleep(res, PPAUSE, "nanosleep", pause)
        res["got"] = await read_to_eof(st, p, fd, chunk)
        await k.sys_close(p, fd)
    return client


def test_a_128k_receive_buffer_negotiates_a_window_scale(tmp_path):
    data = payload(600_000, seed=21)
    r = run(tmp_path, _reader(6000, len(data), rcvbuf=128 * 1024),
            serve=lambda pt: pt.source(6000, data))
    assert r.result["got"] == data
    segs = r.segs()
    syn = segs[0]
    assert syn.opts["wscale"] == 2           # 65535 << 2 covers 131072 (RFC 7323 §2.3)
    assert segs[1].opts["wscale"] == 0       # the partner's 16 KB buffer needs none
    wins = [s.win << 2 for s in segs[2:] if s.src == LOCAL]
    assert max(wins) > 65535                 # a window beyond 16 bits, scaled
    # the partner keeps its window in scaled units: it saw more than 16 bits of window
    assert any(tp.snd_scale == 2 for tp in r.partner.stack.tcp.pcbs.values()) or \
        r.partner.stack.tcp.stats.get("connects", 0) == 0


def test_an_accepted_socket_has_its_listeners_buffer_sizes(tmp_path):
    """sonewconn gives the new socket the listener's SO_SNDBUF and SO_RCVBUF
    (OpenBSD uipc_socket2.c: soreserve with the head's high-water marks),
    so a server that sized its listening socket offers the window scale
    and the window that size asks for."""
    data = payload(400_000, seed=23)

    async def client(p, r, res):
        st, k = r.local.stack, r.local.kernel
        err, lfd = await st.sys_socket(p)
        assert err == 0 and await st.sys_bind(p, lfd, ("0.0.0.0", 7000)) == 0
        assert await st.sys_setsockopt(p, lfd, SOL_SOCKET, SO_RCVBUF, 128 * 1024) == 0
        assert await st.sys_setsockopt(p, lfd, SOL_SOCKET, SO_SNDBUF, 64 * 1024) == 0
        assert await st.sys_listen(p, lfd, 5) == 0

        async def sender(q):
            pst = r.partner.stack
            err, fd = await pst.sys_socket(q)
            assert err == 0 and await pst.sys_connect(q, fd, (LOCAL, 7000)) == 0
            assert await pst.sys_send(q, fd, data) == (0, len(data))
            await r.partner.kernel.sys_close(q, fd)
        r.partner.kernel.fork("sender", sender)
        err, fd, _ = await st.sys_accept(p, lfd)
        assert err == 0
        res["bufs"] = [(await st.sys_getsockopt(p, fd, SOL_SOCKET, o))[1]
                       for o in (SO_RCVBUF, SO_SNDBUF)]
        res["got"] = await read_to_eof(st, p, fd)
        await k.sys_close(p, fd)
        await k.sys_close(p, lfd)

    r = run(tmp_path, client)
    assert r.result["got"] == data
    assert r.result["bufs"] == [128 * 1024, 64 * 1024]
    segs = r.segs()
    synack = next(s for s in segs if s.src == LOCAL and s.has(0x02))
    assert synack.opts["wscale"] == 2          # 65535 << 2 covers 131072 (RFC 7323 §2.3)
    assert max(s.win << 2 for s in segs if s.src == LOCAL and not s.has(0x02)) > 65535


def test_a_closed_window_is_probed_by_the_persist_timer(tmp_path):
    data = payload(100_000, seed=22)
    # the reader connects, then reads nothing for 12 s: its 16 KB fill and the
    # window closes; the sender's persist timer (5 s at least, TCPTV_PERSMIN)
    # first pushes the last few hundred bytes its silly-window avoidance held
    # back, then probes the closed window with one byte
    r = run(tmp_path, _reader(6000, len(data), pause=ms(12_000)),
            serve=lambda pt: pt.source(6000, data))
    assert r.result["got"] == data
    assert r.partner.stack.tcp.stats.get("persisttimeo", 0) >= 2
    segs = r.segs()
    zero = [s for s in segs if s.src == LOCAL and s.win == 0]
    assert zero
    probes = [s for s in segs if s.src == PARTNER and zero[0].t_ps < s.t_ps < ms(12_000)
              and s.data]
    assert probes and all(len(s.data) == 1 for s in probes)
    assert probes[0].t_ps - zero[0].t_ps >= ms(4500)      # a persist interval later
    # each probe is answered at once, still with a zero window, and the byte
    # is not taken (it lies outside the window)
    for pr in probes:
        ans = next(s for s in segs if s.src == LOCAL and s.t_ps > pr.t_ps)
        assert ans.win == 0 and ans.ack == pr.seq


def test_two_connections_at_once(tmp_path):
    a, b = payload(300_000, seed=1), payload(300_000, seed=2)
    results = {}

    async def client(p, r, res):
        k = r.local.kernel
        procs = [k.fork(f"c{i}", _one(r, port, d, results)) for i, (port, d) in
                 enumerate(((5001, a), (5002, b)))]
        for c in procs:
            while c.state != "zombie":
                await k.tsleep(res, PPAUSE, "wait", ms(10))

    def _one(r, port, d, out):
        async def main(p):
            st = r.local.stack
            err, fd = await st.sys_socket(p)
            assert await st.sys_connect(p, fd, (PARTNER, port)) == 0
            out[port] = await st.sys_send(p, fd, d)
            await r.local.kernel.sys_close(p, fd)
        return main

    sinks = {}

    def serve(pt):
        sinks[5001], sinks[5002] = pt.sink(5001), pt.sink(5002)
        return sinks[5002]
    r = run(tmp_path, client, serve=serve)
    assert results == {5001: (0, len(a)), 5002: (0, len(b))}
    assert bytes(sinks[5001].data) == a and bytes(sinks[5002].data) == b
    ports = {s.sport for s in r.segs() if s.src == LOCAL}
    assert len(ports) == 2


def test_nonblocking_peek_and_waitall(tmp_path):
    data = payload(60_000, seed=5)

    async def client(p, r, res):
        st, k = r.local.stack, r.local.kernel
        err, fd = await st.sys_socket(p)
        await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_SNDBUF, 4096)
        await st.sys_connect(p, fd, (PARTNER, 6000))
        # nothing has arrived yet: a non-blocking read would block
        res["empty"] = await st.sys_recv(p, fd, bytearray(10), flags=MSG_DONTWAIT)
        peek = bytearray(100)
        res["peek"] = await st.sys_recv(p, fd, peek, flags=MSG_PEEK)
        res["peeked"] = bytes(peek[:res["peek"][1]])
        whole = bytearray(len(data))
        res["all"] = await st.sys_recv(p, fd, whole, flags=MSG_WAITALL)
        res["whole"] = bytes(whole)
        # a full 4 KB send buffer: a non-blocking send moves what fits
        res["nb_send"] = await st.sys_send(p, fd, payload(50_000), flags=MSG_DONTWAIT)
        await k.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.source(6000, data))
    res = r.result
    assert res["empty"] == (EWOULDBLOCK, 0)
    assert res["peek"][0] == 0 and 0 < res["peek"][1] <= 100
    assert res["peeked"] == data[:res["peek"][1]]
    assert res["all"] == (0, len(data)) and res["whole"] == data
    err, n = res["nb_send"]
    assert err == 0 and 0 < n <= 4096


def test_the_default_partner_cpu_is_free(tmp_path):
    data = payload(200_000, seed=6)
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001))
    assert bytes(r.result["service"].data) == data
    acct = r.partner.kernel.accounting()
    assert sum(v for k, v in acct.items() if k != "idle") == 0


def test_partner_profile_argument(tmp_path):
    import netinet.partner as partner_mod
    from sim.loop import SimLoop
    loop = SimLoop()
    link, local, partner = partner_mod.pair(loop, partner_profile="p3-1400-openbsd")
    data = payload(100_000, seed=7)
    sink = partner.sink(5001)

    async def client(p):
        st = local.stack
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        await st.sys_send(p, fd, data)
        await local.kernel.sys_close(p, fd)
    c = local.kernel.fork("client", client)

    async def main():
        await c.task
        while sink.done_ps is None:
            await loop.sleep(ms(10))
    loop.run(main(), deadline=ms(60_000))
    assert bytes(sink.data) == data
    acct = partner.kernel.accounting()
    for kind in ("copy", "checksum", "tcp", "ip", "ether", "driver", "intr"):
        assert acct[kind] > 0, kind
    # the receiver copies every byte out once
    assert acct["copy"] >= partner.kernel.profile.per_byte("copy.bandwidth") * len(data)
    link.close()


@pytest.mark.parametrize("faulty", [False, True])
def test_sequence_numbers_wrap_around_2_to_the_32(tmp_path, monkeypatch, faulty):
    from netinet.tcp import Tcp
    # both ends start just below 2^32: every comparison must be modular (RFC 793 §3.3)
    monkeypatch.setattr(Tcp, "new_iss", lambda self: 0xFFFFFFFF - 20_000)
    data = payload(300_000, seed=30)
    faults = Faults(drop=0.02, reorder=0.02, seed=5) if faulty else None
    r = run(tmp_path, _client_send(data), serve=lambda pt: pt.sink(5001), faults_ab=faults)
    assert bytes(r.result["service"].data) == data
    seqs = [s.seq for s in r.segs() if s.src == LOCAL and s.data]
    assert max(seqs) > 0xFFFF0000 and min(seqs) < 0x10000       # it did wrap
