"""SO_CRYPT transmit: records built in the kernel through OCF (cryptosoft),
decoded at the partner by independent code: paramiko's Packetizer for SSH2,
and RFC 2246 §6.2.3 decoding on the ``cryptography`` package for TLS 1.0."""

import hashlib
import hmac
import socket
import struct

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from netinet.socket import MSG_EOR, SOL_SOCKET
from netinet.socrypt import SO_CRYPT, SOL_TLS, TLS_SET_RECORD_TYPE, Transform, attach
from ocf.attach import attach as ocf_attach
from ocf.cryptodefs import CRYPTOCAP_F_MAC_ENCRYPT
from ocf.cryptosoft import CryptoSoft
from sim.kernel.errno import EINVAL, ERESTART, errorname

from .support import PARTNER, payload, run

KEY = bytes(range(1, 25))
IV = bytes(range(100, 108))
MACKEY = bytes(range(50, 70))


def _send_records(tmp_path, t, sizes, seed=0):
    """Connect, set SO_CRYPT, send one write per size; the partner's bytes."""
    datas = [payload(n, seed + i) for i, n in enumerate(sizes)]

    async def client(p, r, res):
        st = r.local.stack
        ocf = ocf_attach(r.local.kernel)
        attach(st, ocf.crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        res["t0_ps"] = r.loop.now
        for d in datas:
            err, n = await st.sys_send(p, fd, d)
            assert err == 0, errorname(err)
            assert n == len(d)
        res["t1_ps"] = r.loop.now
        res["acct"] = r.local.kernel.accounting()
        assert await r.local.kernel.sys_close(p, fd) == 0
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    sink = r.result["service"]
    assert sink.errors == []
    return datas, bytes(sink.data), r.result


def _tls_decode(stream, key, iv, mackey, seq=0, paper=False):
    """RFC 2246 §6.2.3.2 by hand: header, 3DES-CBC with the chained IV,
    padding, HMAC-SHA1 over seq | type | version | length | data."""
    out, pos = [], 0
    dec = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()    # one CBC chain
    while pos < len(stream):
        rtype, ver, ln = struct.unpack("!B2sH", stream[pos:pos + 5])
        assert ver == b"\x03\x01" and ln % 8 == 0
        pt = dec.update(stream[pos + 5:pos + 5 + ln])
        pad = pt[-1]
        assert pt[-1 - pad:] == bytes([pad]) * (pad + 1), "bad padding"
        data, mac = pt[:-21 - pad], pt[-21 - pad:-1 - pad]
        ad = b"" if paper else struct.pack("!QB2sH", seq, rtype, ver, len(data))
        assert hmac.new(mackey, ad + data, hashlib.sha1).digest() == mac, "bad MAC"
        out.append((rtype, data))
        seq += 1
        pos += 5 + ln
    return out


@pytest.mark.parametrize("sizes", [[0, 1, 2], [7, 8, 9, 10, 11, 12], [16383, 16384, 16385]])
def test_tls10_records_decode_independently(tmp_path, sizes):
    t = Transform("tls1.0", KEY, IV, MACKEY, seq=5)
    datas, wire, res = _send_records(tmp_path, t, sizes)
    recs = _tls_decode(wire, KEY, IV, MACKEY, seq=5)
    # a write of more than 2^14 bytes is cut into records of at most 2^14
    want = [d[i:i + 16384] for d in datas for i in range(0, max(len(d), 1), 16384)]
    assert [d for _, d in recs] == want
    assert all(rt == 23 for rt, _ in recs)
    assert res["acct"].get("socrypt", 0) > 0 and res["acct"].get("crypto", 0) > 0


def test_tls10_a_flipped_bit_is_caught_by_the_decoder(tmp_path):
    t = Transform("tls1.0", KEY, IV, MACKEY)
    _, wire, _ = _send_records(tmp_path, t, [100])
    for i in range(5, len(wire)):
        bad = bytearray(wire)
        bad[i] ^= 0x10
        with pytest.raises(AssertionError):
            _tls_decode(bytes(bad), KEY, IV, MACKEY)


def test_paper_framing_is_not_tls(tmp_path):
    """The paper's layout (MAC over the data only) fails RFC 2246's MAC check."""
    t = Transform("paper", KEY, IV, MACKEY)
    datas, wire, _ = _send_records(tmp_path, t, [64])
    assert [d for _, d in _tls_decode(wire, KEY, IV, MACKEY, paper=True)] == datas
    with pytest.raises(AssertionError, match="bad MAC"):
        _tls_decode(wire, KEY, IV, MACKEY)


def _paramiko_read(wire, mac_len, n):
    import paramiko.packet
    a, b = socket.socketpair()
    try:
        pk = paramiko.packet.Packetizer(b)
        dec = Cipher(TripleDES(KEY), modes.CBC(IV)).decryptor()
        pk.set_inbound_cipher(dec, 8, hashlib.sha1, mac_len, MACKEY)
        a.sendall(wire)
        return [pk.read_message() for _ in range(n)]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("mac_len", [20, 12])
def test_ssh2_packets_read_by_paramiko(tmp_path, mac_len):
    from paramiko.message import Message
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 100, 4096]
    # payload byte 0 is the message number (RFC 4253 §6); CHANNEL_DATA 94
    msgs = []
    for i, n in enumerate(sizes):
        m = Message()
        m.add_byte(bytes([94]))
        m.add_int(7)
        m.add_string(payload(n, i))
        msgs.append(m.asbytes())
    t = Transform("ssh2", KEY, IV, MACKEY, mac_len=mac_len)

    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        for m in msgs:
            assert await st.sys_send(p, fd, m) == (0, len(m))
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    wire = bytes(r.result["service"].data)
    got = _paramiko_read(wire, mac_len, len(msgs))
    for (cmd, msg), n, i in zip(got, sizes, range(len(sizes))):
        assert cmd == 94 and msg.get_int() == 7 and msg.get_string() == payload(n, i)
    bad = bytearray(wire)
    bad[len(wire) // 2] ^= 1
    with pytest.raises(Exception):
        _paramiko_read(bytes(bad), mac_len, len(msgs))


def test_bad_transforms_are_einval(tmp_path):
    bad = [Transform("tls1.1", KEY, IV, MACKEY), Transform("tls1.0", KEY[:16], IV, MACKEY),
           Transform("tls1.0", KEY, IV[:4], MACKEY), Transform("tls1.0", KEY, IV, MACKEY, mac_len=12),
           Transform("ssh2", KEY, IV, MACKEY, seq=1 << 32),
           Transform("tls1.0", KEY, IV, MACKEY, record_size=16385), "not a transform"]

    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        # not connected yet: EINVAL (ktls_enable_tx wants a connected socket)
        res["early"] = await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT,
                                               Transform("tls1.0", KEY, IV, MACKEY))
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        res["bad"] = [await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) for t in bad]
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert r.result["early"] == EINVAL
    assert r.result["bad"] == [EINVAL] * len(bad)


def test_ssh2_sequence_number_wraps_over_thousands_of_packets(tmp_path):
    """2000 packets starting 1000 below 2^32: the uint32 sequence number wraps
    (RFC 4253 §6.4) and every MAC still checks in paramiko."""
    import paramiko.packet
    count, start = 2000, (1 << 32) - 1000
    t = Transform("ssh2", KEY, IV, MACKEY, seq=start)
    msgs = [bytes([94]) + struct.pack("!I", i) for i in range(count)]

    async def client(p, r, res):
        st = r.local.stack
        attach(st, ocf_attach(r.local.kernel).crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        for m in msgs:
            assert await st.sys_send(p, fd, m) == (0, len(m))
        await r.local.kernel.sys_close(p, fd)
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    wire = bytes(r.result["service"].data)
    a, b = socket.socketpair()
    try:
        pk = paramiko.packet.Packetizer(b)
        pk.set_inbound_cipher(Cipher(TripleDES(KEY), modes.CBC(IV)).decryptor(), 8,
                              hashlib.sha1, 20, MACKEY)
        pk._Packetizer__sequence_number_in = start
        pk._initial_kex_done = True      # paramiko refuses a wrap before the first kex ends
        a.setblocking(False)
        pos = 0
        for i in range(count):
            while pos < len(wire):
                try:
                    pos += a.send(wire[pos:pos + 65536])
                except BlockingIOError:
                    break
            cmd, msg = pk.read_message()
            assert cmd == 94 and msg.get_int() == i
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("sizes", [[0, 1, 9], [16384]])
def test_tls10_records_read_by_tlslite(tmp_path, sizes):
    from tlslite.errors import TLSBadRecordMAC
    from .peers import tls_read
    t = Transform("tls1.0", KEY, IV, MACKEY, seq=3)
    datas, wire, _ = _send_records(tmp_path, t, sizes)
    got = tls_read(wire, KEY, IV, MACKEY, seq=3, count=len(sizes))
    assert got == [(23, d) for d in datas]
    bad = bytearray(wire)
    bad[-3] ^= 0x40
    with pytest.raises(TLSBadRecordMAC):
        tls_read(bytes(bad), KEY, IV, MACKEY, seq=3, count=len(sizes))


def test_paper_framing_rejected_by_tlslite(tmp_path):
    from tlslite.errors import TLSBadRecordMAC
    from .peers import tls_read
    _, wire, _ = _send_records(tmp_path, Transform("paper", KEY, IV, MACKEY), [64])
    with pytest.raises(TLSBadRecordMAC):        # its MAC lacks seq and header
        tls_read(wire, KEY, IV, MACKEY, count=1)


@pytest.mark.parametrize("framing", ["tls1.0", "ssh2"])
def test_two_request_path_gives_the_same_wire(tmp_path, monkeypatch, framing):
    """The MAC-then-encrypt pair of requests (the path of an IPsec-order card)
    puts the same bytes on the wire as cryptosoft's one request, and makes
    twice the OCF requests."""
    from netinet.socrypt import SoCryptTx
    t = Transform(framing, KEY, IV, MACKEY, direction="tx")
    counts = {}
    orig_close = SoCryptTx.close

    async def close(self):
        counts.setdefault("req", []).append(self.requests)
        await orig_close(self)
    monkeypatch.setattr(SoCryptTx, "close", close)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, one, _ = _send_records(tmp_path / "a", t, [5, 4096, 17])
    monkeypatch.setattr(SoCryptTx, "one_pass", lambda self: False)
    _, two, _ = _send_records(tmp_path / "b", t, [5, 4096, 17])
    assert one == two and len(one) > 4096
    assert counts["req"] == [3, 6]


def test_records_near_the_buffer_size_do_not_wait_for_delayed_acks(tmp_path):
    # 16352-byte writes (the socket paper's largest) make 16381-byte wire
    # records in a 16 KB send buffer: waiting for the whole record's room
    # means waiting for the buffer to drain, the tail segment held by Nagle
    # behind the partner's delayed ACK (190-200 ms a record, tcp_var.h's
    # TCPTV_DELACK); a record goes in once the low-water mark is free instead
    n = 8
    t = Transform("paper", KEY, IV, MACKEY)
    datas, wire, res = _send_records(tmp_path, t, [16352] * n)
    assert [d for _, d in _tls_decode(wire, KEY, IV, MACKEY, paper=True)] == datas
    assert (res["t1_ps"] - res["t0_ps"]) * 1e-12 < 0.19     # less than one delayed ACK in all


class RestartingCard(CryptoSoft):
    """A hardware driver (no CRYPTOCAP_F_SOFTWARE, so OCF places the session
    on it) that does cryptosoft's work and, from its ``after``-th request on,
    answers ERESTART, as a driver whose card was reset: OCF unregisters it and
    moves the request's session to another driver (ocf/crypto.py)."""

    def __init__(self, crypto, after: int):
        real = crypto.get_driverid
        crypto.get_driverid = lambda flags: real(CRYPTOCAP_F_MAC_ENCRYPT)
        try:
            super().__init__(crypto)
        finally:
            crypto.get_driverid = real
        self.after, self.seen = after, 0

    async def process(self, crp):
        self.seen += 1
        if self.seen >= self.after:
            return ERESTART
        return await super().process(crp)


def test_a_driver_leaving_mid_stream_migrates_the_session_unseen(tmp_path):
    # records 1-3 go through the card, the 4th request finds it gone (ERESTART):
    # OCF moves the session to cryptosoft with EAGAIN inside the kernel, the
    # socket resubmits, every send() returns its full count and the stream
    # decodes as one CBC chain with consecutive sequence numbers
    datas = [payload(1000, 40 + i) for i in range(8)]
    t = Transform("tls1.0", KEY, IV, MACKEY)

    async def client(p, r, res):
        st = r.local.stack
        ocf = ocf_attach(r.local.kernel)
        card = RestartingCard(ocf.crypto, after=4)
        attach(st, ocf.crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        for d in datas:
            assert await st.sys_send(p, fd, d) == (0, len(d))
        res["card"] = (card.seen, ocf.crypto.drivers[card.cid])
        res["migrated"] = ocf.crypto.migrated
        assert await r.local.kernel.sys_close(p, fd) == 0
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert r.result["service"].errors == []
    recs = _tls_decode(bytes(r.result["service"].data), KEY, IV, MACKEY)
    assert [d for _, d in recs] == datas
    seen, driver = r.result["card"]
    assert seen == 4 and driver is None           # unregistered after its ERESTART
    assert r.result["migrated"] == 1


@pytest.mark.parametrize("mode", ["whole-frame", "piecemeal"])
def test_sendmsg_sets_the_record_type_read_by_tlslite(tmp_path, mode):
    # Linux kTLS's TLS_SET_RECORD_TYPE: a handshake (22) and an alert (21)
    # record between application data, each ending with its call
    from .peers import tls_read
    calls = [(22, payload(40, 1)), (23, payload(100, 2)), (21, payload(2, 3)),
             (23, payload(7, 4))]
    t = Transform("tls1.0", KEY, IV, MACKEY, mode=mode, record_size=4096)

    async def client(p, r, res):
        st = r.local.stack
        ocf = ocf_attach(r.local.kernel)
        attach(st, ocf.crypto)
        err, fd = await st.sys_socket(p)
        assert await st.sys_connect(p, fd, (PARTNER, 5001)) == 0
        assert await st.sys_setsockopt(p, fd, SOL_SOCKET, SO_CRYPT, t) == 0
        for rtype, d in calls:
            cm = [(SOL_TLS, TLS_SET_RECORD_TYPE, bytes([rtype]))] if rtype != 23 else []
            # piecemeal: application data ends its record too (MSG_EOR), or
            # the open record could not change type (EINVAL)
            eor = MSG_EOR if mode == "piecemeal" else 0
            assert await st.sys_sendmsg(p, fd, d, cm, flags=eor) == (0, len(d))
        cm = [(SOL_TLS, TLS_SET_RECORD_TYPE, b"\x16")]
        res["refused"] = [
            await st.sys_sendmsg(p, fd, b"x" * 8, [(SOL_TLS, 99, b"\x16")]),   # unknown type
            await st.sys_sendmsg(p, fd, b"x" * 8, [(SOL_TLS, TLS_SET_RECORD_TYPE, b"")]),
            await st.sys_sendmsg(p, fd, b"x" * 8, cm + cm),
        ]
        assert await r.local.kernel.sys_close(p, fd) == 0
    r = run(tmp_path, client, serve=lambda pt: pt.sink(5001))
    assert r.result["service"].errors == []
    wire = bytes(r.result["service"].data)
    assert tls_read(wire, KEY, IV, MACKEY, count=len(calls)) == calls
    assert r.result["refused"] == [(EINVAL, 0)] * 3
