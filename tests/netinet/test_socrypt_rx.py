"""SO_CRYPT receive: records written by tlslite-ng's RecordLayer or paramiko's
Packetizer (tests/netinet/peers.py), sent by the partner in arbitrary
pieces, are reassembled in the kernel, decrypted and verified through OCF
(cryptosoft here) and read as plaintext; any flipped bit is EBADMSG and the
socket reads nothing more; a length over the protocol's limit is EMSGSIZE."""

import random

import pytest

from netinet.socket import MSG_PEEK, SOL_SOCKET
from netinet.socrypt import (SO_CRYPT, SOL_TLS, TLS_GET_RECORD_TYPE, Transform, attach)
from ocf.attach import attach as ocf_attach
from sim.kernel.errno import EBADMSG, EINVAL, EIO, EMSGSIZE

from .peers import ssh_write, tls_write
from .support import PARTNER, payload, run
from .test_socrypt import IV, KEY, MACKEY


def _receive(tmp_path, t, wire, *, write_size=1000, bufsize=65536, cmsg=True, reads=None,
             peek_first=False):
    """The partner sends ``wire`` in writes of ``write_size``; the local
    process sets SO_CRYPT and reads until EOF or an error (``reads`` caps the
    number of reads). Returns ([(errno, bytes, record type or None)], rx)."""
    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        out = res["reads"] = []
        buf = bytearray(bufsize)
        if peek_first:
            err, n, cm = await st.sys_recvmsg(p, fd, buf, flags=MSG_PEEK)
            res["peek"] = (err, bytes(buf[:n]))
        while reads is None or len(out) < reads:
            if cmsg:
                err, n, cm = await st.sys_recvmsg(p, fd, buf)
                rt = None
                for level, typ, data in cm:
                    assert (level, typ) == (SOL_TLS, TLS_GET_RECORD_TYPE)
                    rt = data[0]
            else:
                err, n = await st.sys_recv(p, fd, buf)
                rt = None
            out.append((err, bytes(buf[:n]), rt))
            if err or n == 0:
                break
        so = r.local.kernel.fd_get(p, fd)
        res["rx"] = so.crypt_rx
        res["after"] = [await st.sys_recv(p, fd, buf) for _ in range(2)]
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.source(5001, wire, write_size))
    return r.result


def _data(reads):
    return b"".join(d for e, d, _ in reads if not e)


@pytest.mark.parametrize("write_size", [1, 7, 1000, 65536])
def test_tls_records_from_tlslite_read_byte_exact(tmp_path, write_size):
    sizes = [0, 1, 9, 100, 2048, 16384, 5] if write_size > 1 else [0, 1, 9, 100]
    recs = [(23, payload(n, i)) for i, n in enumerate(sizes)]
    wire = tls_write(recs, KEY, IV, MACKEY, seq=7)
    res = _receive(tmp_path, Transform("tls1.0", KEY, IV, MACKEY, seq=7, direction="rx"), wire,
                   write_size=write_size)
    reads = res["reads"]
    assert reads[-1] == (0, b"", None)                      # EOF after the last record
    assert _data(reads) == b"".join(d for _, d in recs)
    assert all(rt == 23 for e, d, rt in reads if d)
    assert res["rx"].records == len(recs)
    assert res["after"] == [(0, 0), (0, 0)]


def test_record_types_come_as_control_messages(tmp_path):
    """One read never mixes record types; the type comes in the cmsg; a
    plain recv() of a non-data record is EIO (Linux kTLS)."""
    recs = [(22, b"handshake!"), (23, b"data one"), (23, b"data two"), (21, b"\x01\x00")]
    wire = tls_write(recs, KEY, IV, MACKEY)
    t = Transform("tls1.0", KEY, IV, MACKEY, direction="rx")
    res = _receive(tmp_path, t, wire)
    assert [(rt, d) for e, d, rt in res["reads"] if d] == [(rt, d) for rt, d in recs]
    (tmp_path / "b").mkdir()
    res = _receive(tmp_path / "b", t, wire, cmsg=False)
    assert res["reads"] == [(EIO, b"", None)]


def test_a_small_buffer_reads_a_record_in_parts(tmp_path):
    recs = [(23, payload(3000, 1)), (23, payload(10, 2))]
    wire = tls_write(recs, KEY, IV, MACKEY)
    res = _receive(tmp_path, Transform("tls1.0", KEY, IV, MACKEY, direction="rx"), wire,
                   bufsize=700, peek_first=True)
    assert res["peek"] == (0, recs[0][1][:700])
    lens = [len(d) for e, d, _ in res["reads"] if d]
    assert lens == [700, 700, 700, 700, 200, 10]
    assert _data(res["reads"]) == recs[0][1] + recs[1][1]


@pytest.mark.parametrize("mac_len", [20, 12])
def test_ssh_packets_from_paramiko_read_byte_exact(tmp_path, mac_len):
    pls = [bytes([94]) + payload(n, i) for i, n in enumerate([0, 1, 2, 6, 7, 8, 100, 4096, 32767])]
    wire = ssh_write(pls, KEY, IV, MACKEY, mac_len, seq=5)
    t = Transform("ssh2", KEY, IV, MACKEY, mac_len=mac_len, seq=5, direction="rx")
    res = _receive(tmp_path, t, wire, write_size=777)
    assert [d for e, d, _ in res["reads"] if d] == pls
    assert res["reads"][-1] == (0, b"", None)


def _small_tls():
    return tls_write([(23, b"0123456789abcdefghij")], KEY, IV, MACKEY)


def test_tls_every_flipped_byte_is_ebadmsg(tmp_path):
    """A bit flipped in any byte of a small record: nothing delivered, EBADMSG
    (EINVAL for the version bytes, EMSGSIZE where the length grows over the
    limit), and the socket refuses every later read with the same errno."""
    good = _small_tls()
    t = Transform("tls1.0", KEY, IV, MACKEY, direction="rx")
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x80 if i == 3 else 0x01
        d = tmp_path / str(i)
        d.mkdir()
        res = _receive(d, t, bytes(bad) + good)
        want = EINVAL if i in (1, 2) else EMSGSIZE if i == 3 else EBADMSG
        assert res["reads"] == [(want, b"", None)], i
        assert res["after"] == [(want, 0), (want, 0)], i


def test_ssh_every_flipped_byte_is_ebadmsg(tmp_path):
    good = ssh_write([b"\x5e0123456789"], KEY, IV, MACKEY, 20)
    t = Transform("ssh2", KEY, IV, MACKEY, direction="rx")
    rng = random.Random(1)
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 1 << rng.randrange(8)
        d = tmp_path / str(i)
        d.mkdir()
        res = _receive(d, t, bytes(bad) + good)
        err = res["reads"][0][0]
        # a corrupted first block may make packet_length huge: EMSGSIZE
        assert res["reads"] == [(err, b"", None)] and err in (EBADMSG, EMSGSIZE), i
        if i >= 8:
            assert err == EBADMSG, i
        assert res["after"] == [(err, 0), (err, 0)]


def test_a_record_cut_by_eof_is_ebadmsg(tmp_path):
    wire = _small_tls()
    res = _receive(tmp_path, Transform("tls1.0", KEY, IV, MACKEY, direction="rx"), wire[:-3])
    assert res["reads"] == [(EBADMSG, b"", None)]


def test_tls_length_over_the_limit_is_emsgsize(tmp_path):
    """RFC 2246 §6.2.3: a TLSCiphertext length over 2^14 + 2048 is refused
    from the header alone, before the record arrives."""
    hdr = bytes([23, 3, 1]) + (16384 + 2048 + 8).to_bytes(2, "big")
    res = _receive(tmp_path, Transform("tls1.0", KEY, IV, MACKEY, direction="rx"), hdr + b"x" * 50)
    assert res["reads"] == [(EMSGSIZE, b"", None)]
    # at the limit it is only a bad record (the MAC cannot check)
    hdr = bytes([23, 3, 1]) + (16384 + 2048).to_bytes(2, "big")
    (tmp_path / "b").mkdir()
    res = _receive(tmp_path / "b", Transform("tls1.0", KEY, IV, MACKEY, direction="rx"),
                   hdr + bytes(16384 + 2048))
    assert res["reads"] == [(EBADMSG, b"", None)]


def test_ssh_packet_length_over_the_limit_is_emsgsize(tmp_path):
    """RFC 4253 §6.1: a packet over 35000 bytes is refused once its first
    block is decrypted; a payload of 32768 bytes (the most SO_CRYPT sends) is fine."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    first = (40000).to_bytes(4, "big") + b"\x04abc"
    enc = Cipher(TripleDES(KEY), modes.CBC(IV)).encryptor().update(first)
    t = Transform("ssh2", KEY, IV, MACKEY, direction="rx")
    res = _receive(tmp_path, t, enc + bytes(100))
    assert res["reads"] == [(EMSGSIZE, b"", None)]
    big = bytes([94]) + payload(32767, 3)
    (tmp_path / "b").mkdir()
    res = _receive(tmp_path / "b", t, ssh_write([big], KEY, IV, MACKEY, 20))
    assert _data(res["reads"]) == big


@pytest.mark.slow
def test_ssh_sequence_numbers_over_thousands_of_packets(tmp_path):
    """3000 packets from paramiko starting 1500 below 2^32: the receive
    sequence number wraps and every MAC checks."""
    start = (1 << 32) - 1500
    pls = [bytes([94]) + i.to_bytes(4, "big") for i in range(3000)]
    wire = ssh_write(pls, KEY, IV, MACKEY, 12, seq=start)
    t = Transform("ssh2", KEY, IV, MACKEY, mac_len=12, seq=start, direction="rx")
    res = _receive(tmp_path, t, wire, write_size=4096)
    assert [d for e, d, _ in res["reads"] if d] == pls
    assert res["rx"].seq == (start + 3000) % (1 << 32)


def test_tls_sequence_numbers_over_a_thousand_records(tmp_path):
    recs = [(23, i.to_bytes(2, "big")) for i in range(1200)]
    wire = tls_write(recs, KEY, IV, MACKEY, seq=(1 << 40))
    t = Transform("tls1.0", KEY, IV, MACKEY, seq=(1 << 40), direction="rx")
    res = _receive(tmp_path, t, wire, write_size=8192)
    assert [d for e, d, _ in res["reads"] if d] == [d for _, d in recs]


def test_both_directions_on_one_socket(tmp_path):
    """direction="both": send() builds records, recv() verifies the partner's;
    the two directions keep their own IV and sequence number."""
    from .peers import tls_read
    in_recs = [(23, payload(500, 1)), (23, payload(20000 - 16384, 2))]
    wire_in = tls_write(in_recs, KEY, IV, MACKEY)
    out = payload(3000, 3)

    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT,
                                       Transform("tls1.0", KEY, IV, MACKEY)) == 0
        # a second SO_CRYPT for a direction already set: EINVAL
        res["again"] = await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT,
                                               Transform("tls1.0", KEY, IV, MACKEY, direction="rx"))
        assert await st.sys_send(p, fd, out) == (0, len(out))
        buf = bytearray(65536)
        got = b""
        while True:
            err, n = await st.sys_recv(p, fd, buf)
            assert err == 0
            if n == 0:
                break
            got += bytes(buf[:n])
        res["got"] = got
        await r.local.kernel.sys_close(p, fd)

    def serve(pt):
        """Accept, send the records, read to EOF, close."""
        from netinet.partner import Transfer
        t = Transfer()

        async def main(p):
            err, fd = await pt._listen(p, 5001, t)
            assert err == 0
            assert await pt.stack.sys_send(p, fd, wire_in) == (0, len(wire_in))
            assert await pt.stack.sys_shutdown(p, fd, 1) == 0      # SHUT_WR: our EOF
            buf = bytearray(65536)
            while True:
                err, n = await pt.stack.sys_recv(p, fd, buf)
                assert err == 0
                if n == 0:
                    break
                t.data += buf[:n]
            await pt.kernel.sys_close(p, fd)
            t.done_ps = pt.kernel.now
        pt.kernel.fork("both", main)
        return t
    r = run(tmp_path, client, serve=serve)
    assert r.result["again"] == EINVAL
    assert r.result["got"] == b"".join(d for _, d in in_recs)
    assert tls_read(bytes(r.result["service"].data), KEY, IV, MACKEY, count=1) == [(23, out)]
