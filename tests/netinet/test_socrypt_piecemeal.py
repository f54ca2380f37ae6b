"""SO_CRYPT piecemeal mode (the socket paper's prototype): a record longer
than one write is encrypted piece by piece as the bytes arrive, the CBC
chain carried from piece to piece and the HMAC kept on the host CPU. The
wire must be the very bytes whole-frame mode puts there for the same
records; tlslite-ng and paramiko read it."""

import pytest

from netinet.socket import MSG_EOR, SOL_SOCKET
from netinet.socrypt import SO_CRYPT, Transform, attach
from ocf.attach import attach as ocf_attach
from sim.kernel.errno import EINVAL, EMSGSIZE, errorname

from .peers import ssh_read, tls_read
from .support import PARTNER, payload, run
from .test_socrypt import IV, KEY, MACKEY, _tls_decode


def _sends(tmp_path, t, writes, *, stats=None, local_kw=None):
    """Connect, set SO_CRYPT, do each (bytes, flags) write; the partner's
    bytes. ``stats``: a dict that gets the socket's request/piece counts
    and the CPU accounting."""
    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        res["errs"] = []
        for d, flags in writes:
            err, n = await st.sys_send(p, fd, d, flags=flags)
            res["errs"].append(err)
            assert err or n == len(d), errorname(err)
        tx = r.local.kernel.fd_get(p, fd).crypt_tx
        if stats is not None:
            stats.update(requests=tx.requests, pieces=tx.pieces, records=tx.records,
                         onepass=tx.onepass,
                         acct=r.local.kernel.accounting())
        assert await r.local.kernel.sys_close(p, fd) == 0
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001), local_kw=local_kw)
    sink = r.result["service"]
    assert sink.errors == []
    return bytes(sink.data), r.result["errs"]


def _pieces(data, sizes):
    """``data`` cut into writes of the given sizes, cycling; the last one whatever is left."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        out.append(data[pos:pos + sizes[i % len(sizes)]])
        pos += len(out[-1])
        i += 1
    return out


@pytest.mark.parametrize("framing", ["tls1.0", "ssh2"])
@pytest.mark.parametrize("sizes", [[4088], [1, 7, 8, 9, 1000, 3], [5000]])
def test_piecemeal_wire_equals_whole_frame(tmp_path, framing, sizes):
    """Three full records written in pieces, then a short last record written
    with MSG_EOR: the same bytes as whole frame writing each record at once."""
    rs = 2048
    data = payload(3 * rs, 1)
    tail = payload(777, 2)
    whole = Transform(framing, KEY, IV, MACKEY, seq=9, record_size=rs)
    piece = Transform(framing, KEY, IV, MACKEY, seq=9, record_size=rs, mode="piecemeal")
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    wf, _ = _sends(tmp_path / "w", whole, [(data, 0), (tail, 0)])
    stats = {}
    pm, errs = _sends(tmp_path / "p", piece,
                      [(d, 0) for d in _pieces(data, sizes)] + [(tail, MSG_EOR)], stats=stats)
    assert errs == [0] * len(errs)
    assert pm == wf
    assert stats["records"] == 4
    if framing == "tls1.0":
        got = tls_read(pm, KEY, IV, MACKEY, seq=9, count=4)
        assert got == [(23, data[i:i + rs]) for i in range(0, 3 * rs, rs)] + [(23, tail)]
    else:
        got = ssh_read(pm, KEY, IV, MACKEY, 20, 4, seq=9)
        want = [data[i:i + rs] for i in range(0, 3 * rs, rs)] + [tail]
        # ssh_read gives paramiko's (message number, rest): the payload's first byte and the rest
        assert [bytes([c]) + m.asbytes() for c, m in got] == want


def test_piecemeal_requests_and_software_mac(tmp_path):
    """One cipher request per piece that completes a block, none for the MAC
    (it runs on the host CPU, charged as crypto), a record charged once."""
    t = Transform("tls1.0", KEY, IV, MACKEY, record_size=4096, mode="piecemeal")
    data = payload(4096, 3)
    stats = {}
    wire, _ = _sends(tmp_path, t, [(d, 0) for d in _pieces(data, [1024])], stats=stats)
    assert [d for _, d in _tls_decode(wire, KEY, IV, MACKEY)] == [data]
    assert stats["pieces"] == 4 and stats["records"] == 1
    assert stats["requests"] == 4
    assert stats["acct"]["socrypt"] > 0 and stats["acct"]["crypto"] > 0


def test_piecemeal_follows_the_write_quantum(tmp_path):
    """With the stack's 4088-byte write quantum (socket paper §IV-A) a
    16 KB record written at once still goes in pieces of 4088 bytes."""
    t = Transform("tls1.0", KEY, IV, MACKEY, mode="piecemeal")
    data = payload(16384, 4)
    stats = {}
    wire, _ = _sends(tmp_path, t, [(data, 0)], stats=stats, local_kw={"write_quantum": 4088})
    assert tls_read(wire, KEY, IV, MACKEY, count=1) == [(23, data)]
    assert stats["pieces"] == 5       # 4 x 4088 + 32


def test_piecemeal_eor_rules(tmp_path):
    """MSG_EOR: a record longer than record_size is EMSGSIZE; ending an open
    record short of the length its header announced is EINVAL; ending it
    exactly is fine. Nothing is sent for a refused write."""
    t = Transform("tls1.0", KEY, IV, MACKEY, record_size=1000, mode="piecemeal")
    a, b = payload(400, 5), payload(600, 6)
    wire, errs = _sends(tmp_path, t, [(payload(1001, 7), MSG_EOR), (a, 0), (b[:10], MSG_EOR),
                                      (b + b"x", MSG_EOR), (b, MSG_EOR)])
    assert errs == [EMSGSIZE, 0, EINVAL, EMSGSIZE, 0]
    assert tls_read(wire, KEY, IV, MACKEY, count=1) == [(23, a + b)]


def test_whole_frame_eor_is_one_record(tmp_path):
    t = Transform("ssh2", KEY, IV, MACKEY, record_size=500)
    m = payload(500, 8)
    wire, errs = _sends(tmp_path, t, [(payload(501, 9), MSG_EOR), (m, MSG_EOR)])
    assert errs == [EMSGSIZE, 0]
    (c, msg), = ssh_read(wire, KEY, IV, MACKEY, 20, 1)
    assert bytes([c]) + msg.asbytes() == m


def test_mode_is_checked(tmp_path):
    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        res["e"] = await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT,
                                           Transform("tls1.0", KEY, IV, MACKEY, mode="bulk"))
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert r.result["e"] == EINVAL


@pytest.mark.parametrize("framing", ["tls1.0", "paper"])
def test_one_pass_gives_the_same_wire_as_two_pass(tmp_path, framing):
    """one_pass=True: one CRD_F_MAC_ENCRYPT_ALL request per record (cryptosoft
    has CRYPTOCAP_F_TLS_ONEPASS), the same bytes as the MAC-then-encrypt
    requests; tlslite-ng reads them."""
    sizes = [0, 1, 15, 16, 4096, 16384]
    writes = [(payload(n, i), 0) for i, n in enumerate(sizes)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    s1, s2 = {}, {}
    two, _ = _sends(tmp_path / "a", Transform(framing, KEY, IV, MACKEY, direction="tx"), writes,
                    stats=s1)
    one, _ = _sends(tmp_path / "b", Transform(framing, KEY, IV, MACKEY, direction="tx",
                                              one_pass=True), writes, stats=s2)
    assert one == two
    assert s2["onepass"] == len(sizes) == s2["requests"] and s1["onepass"] == 0
    if framing == "tls1.0":
        assert tls_read(one, KEY, IV, MACKEY, count=len(sizes)) == [(23, d) for d, _ in writes]
