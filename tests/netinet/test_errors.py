"""System-call errors as the BSD kernel gives them."""

import pytest

from netinet.socket import (SHUT_WR, SO_ERROR, SO_RCVBUF, SO_SNDBUF, SOL_SOCKET)
from netinet.stack import NetStack
from sim.kernel import PPAUSE, File
from sim.kernel.errno import (EADDRINUSE, EAFNOSUPPORT, EBADF, ECONNREFUSED, ECONNRESET, EFAULT,
                              EINVAL, EISCONN, ENOBUFS, ENOTCONN, ENOTSOCK, EPIPE,
                              EPROTONOSUPPORT, errorname)
from sim.loop import ms

from .support import PARTNER, run


def _client(body):
    async def client(p, r, res):
        await body(p, r, r.local.stack, res)
    return client


def test_connect_to_a_closed_port_is_refused_by_the_partners_rst(tmp_path):
    async def body(p, r, st, res):
        err, fd = await st.sys_socket(p)
        res["connect"] = await st.sys_connect(p, fd, (PARTNER, 4444))
        res["send"] = await st.sys_send(p, fd, b"x")
        res["close"] = await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, _client(body))
    assert errorname(r.result["connect"]) == "ECONNREFUSED"
    assert r.result["send"][0] in (ENOTCONN, EPIPE)
    assert r.result["close"] == 0
    segs = r.segs()
    assert len(segs) == 2 and segs[1].has(0x04) and segs[1].ack == (segs[0].seq + 1) & 0xFFFFFFFF
    assert ECONNREFUSED == 61


def test_send_after_shutdown_is_epipe_and_the_peer_sees_eof(tmp_path):
    async def body(p, r, st, res):
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        assert await st.sys_send(p, fd, b"hello") == (0, 5)
        res["shutdown"] = await st.sys_shutdown(p, fd, SHUT_WR)
        res["send"] = await st.sys_send(p, fd, b"more")
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, _client(body), serve=lambda pt: pt.sink(5001))
    assert r.result["shutdown"] == 0 and r.result["send"] == (EPIPE, 0)
    assert bytes(r.result["service"].data) == b"hello" and r.result["service"].errors == []


def test_data_to_a_peer_that_closed_draws_a_reset_then_epipe(tmp_path):
    async def body(p, r, st, res):
        err, fd = await st.sys_socket(p)
        await st.sys_connect(p, fd, (PARTNER, 5001))
        # the partner accepts and closes at once; wait for its FIN
        buf = bytearray(16)
        res["eof"] = await st.sys_recv(p, fd, buf)
        res["send1"] = await st.sys_send(p, fd, b"late data")
        await r.local.kernel.tsleep(res, PPAUSE, "nanosleep", ms(5))
        res["send2"] = await st.sys_send(p, fd, b"later")
        await r.local.kernel.sys_close(p, fd)

    def serve(pt):
        t = pt.sink(5001)

        async def eof_at_once(p, fd, buf, n=None, flags=0):   # the server reads nothing
            return 0, 0
        pt.stack.sys_recv = eof_at_once                       # so it closes after accept
        return t
    r = run(tmp_path, _client(body), serve=serve)
    assert r.result["eof"] == (0, 0)
    assert r.result["send1"] == (0, 9)                 # accepted into the send buffer
    assert r.result["send2"] in ((EPIPE, 0), (ECONNRESET, 0))
    assert any(s.has(0x04) and s.src == PARTNER for s in r.segs())     # the RST


def test_bad_descriptors_and_non_sockets(tmp_path):
    async def body(p, r, st, res):
        k = r.local.kernel
        res["send"] = await st.sys_send(p, 99, b"x")
        res["recv"] = await st.sys_recv(p, 99, bytearray(4))
        res["close"] = await k.sys_close(p, 99)
        res["connect"] = await st.sys_connect(p, "3", (PARTNER, 1))
        fd = k.fdalloc(p, File())                      # an open file that is no socket
        res["notsock"] = await st.sys_send(p, fd, b"x")
        res["af"] = await st.sys_socket(p, 1)          # AF_UNIX
        res["proto"] = await st.sys_socket(p, 2, 2)    # SOCK_DGRAM
    r = run(tmp_path, _client(body))
    res = r.result
    assert res["send"] == (EBADF, 0) and res["recv"] == (EBADF, 0) and res["close"] == EBADF
    assert res["connect"] == EBADF and res["notsock"] == (ENOTSOCK, 0)
    assert res["af"] == (EAFNOSUPPORT, -1) and res["proto"] == (EPROTONOSUPPORT, -1)


def test_einval_and_friends(tmp_path):
    async def body(p, r, st, res):
        err, fd = await st.sys_socket(p)
        res["accept_unlistened"] = (await st.sys_accept(p, fd))[0]
        res["recv_unconnected"] = await st.sys_recv(p, fd, bytearray(4))
        res["send_unconnected"] = await st.sys_send(p, fd, b"x")
        res["bind"] = await st.sys_bind(p, fd, ("10.0.0.1", 7000))
        res["bind_again"] = await st.sys_bind(p, fd, ("10.0.0.1", 7001))
        res["bad_addr"] = await st.sys_bind(p, fd, ("not an address", 7))
        err, fd2 = await st.sys_socket(p)
        res["in_use"] = await st.sys_bind(p, fd2, ("10.0.0.1", 7000))
        res["listen"] = await st.sys_listen(p, fd, 5)
        res["opt_not_int"] = await st.sys_setsockopt(p, fd2, SOL_SOCKET, SO_SNDBUF, b"\1\0")
        res["opt_huge"] = await st.sys_setsockopt(p, fd2, SOL_SOCKET, SO_RCVBUF, 1 << 30)
        res["opt_ok"] = await st.sys_setsockopt(p, fd2, SOL_SOCKET, SO_RCVBUF, 65536)
        res["opt_get"] = await st.sys_getsockopt(p, fd2, SOL_SOCKET, SO_RCVBUF)
        res["so_error"] = await st.sys_getsockopt(p, fd2, SOL_SOCKET, SO_ERROR)
        err, fd3 = await st.sys_socket(p)
        await st.sys_connect(p, fd3, (PARTNER, 5001))
        res["connect_again"] = await st.sys_connect(p, fd3, (PARTNER, 5001))
        res["listen_connected"] = await st.sys_listen(p, fd3, 5)
        res["fault_send"] = await st.sys_send(p, fd3, [1, 2, 3], 3)
        res["fault_recv"] = await st.sys_recv(p, fd3, b"read-only", 4)
        res["bad_len"] = await st.sys_send(p, fd3, b"abc", -1)
        await r.local.kernel.sys_close(p, fd3)
    r = run(tmp_path, _client(body), serve=lambda pt: pt.sink(5001))
    res = r.result
    assert res["accept_unlistened"] == EINVAL
    assert res["recv_unconnected"] == (ENOTCONN, 0) and res["send_unconnected"] == (ENOTCONN, 0)
    assert res["bind"] == 0 and res["bind_again"] == EINVAL and res["bad_addr"] == EINVAL
    assert res["in_use"] == EADDRINUSE and res["listen"] == 0
    assert res["opt_not_int"] == EINVAL and res["opt_huge"] == ENOBUFS and res["opt_ok"] == 0
    assert res["opt_get"] == (0, 65536) and res["so_error"] == (0, 0)
    assert res["connect_again"] == EISCONN and res["listen_connected"] == EINVAL
    assert res["fault_send"] == (EFAULT, 0) and res["fault_recv"] == (EFAULT, 0)
    assert res["bad_len"] == (EINVAL, 0)


def test_stack_parameters_are_checked():
    from sim.kernel import Kernel
    from sim.loop import SimLoop
    from sim.memory import ByteMemory
    k = Kernel(SimLoop(), ByteMemory(1 << 20))
    with pytest.raises(ValueError, match="write_quantum"):
        NetStack(k, write_quantum=0)
    with pytest.raises(ValueError, match="IPv4"):
        NetStack(k, "10.0.0")
    with pytest.raises(ValueError, match="sendspace"):
        NetStack(k, sendspace=-1)
    # a host profile without the network constants is refused in one line
    from sim.kernel.profile import Profile
    bare = Profile("bare", "", k.profile.hz, {key: c for key, c in k.profile.constants.items()
                                              if not key.startswith("net.")})
    with pytest.raises(ValueError, match="lacks net.sosend"):
        NetStack(Kernel(SimLoop(), ByteMemory(1 << 20), bare))
