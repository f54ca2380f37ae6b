"""SO_CRYPT on the real cards: a BCM5820 or a Hifn 7751 beside the em NIC
(the machine of ocfsim/workloads/net.py's ``net_machine``), the records
built or verified through OCF by the card drivers (ubsec, hifn): the
IPsec-order cards get MAC and cipher as two requests on one session (the
BCM5820's driver finishes a 20-byte MAC on the host; with one_pass it does
a TLS record as one packet), a MAC session of its own when OCF refuses
the pair (on the 5820 a 20-byte one lands on cryptosoft). The bytes are
checked by the peers (tlslite-ng, paramiko); a card driver unregistered
mid-stream moves the socket's sessions (EAGAIN inside the kernel) and the
stream goes on."""

from __future__ import annotations

import json

import pytest

from netinet import socrypt
from netinet.if_em import EmIf
from netinet.partner import Partner
from netinet.socket import MSG_EOR, SOL_SOCKET
from netinet.stack import NetStack
from netinet.wire import Link, NicWire, nic_capture_lag
from ocf.cryptodefs import CRYPTOCAP_F_SOFTWARE
from ocfsim.system import boot
from ocfsim.workloads.net import LOCAL_IP, PARTNER_IP, PORT, net_machine
from sim.experiment import run
from sim.kernel.errno import EINVAL, errorname

from .peers import ssh_read, ssh_write, tls_read, tls_write
from .support import payload

ENTRY = "tests.netinet.test_socrypt_cards:workload"
KEY = bytes(range(1, 25))
IV = bytes(range(100, 108))
MACKEY = bytes(range(50, 70))


def _name(crypto, sid):
    if sid is None:
        return None
    d = crypto._driver(sid >> 32)
    if d is None or d.driver is None:
        return "gone"
    return "soft" if d.flags & CRYPTOCAP_F_SOFTWARE else type(d.driver).__name__


async def workload(host, framing: str = "tls1.0", mac_len: int = 20, mode: str = "whole-frame",
                   sizes: list | None = None, rx_wire: str = "", unregister_at: int = -1,
                   writes: list | None = None, eor_last: bool = False,
                   one_pass: bool = False, split: bool = False,
                   record_size: int = 16384, write_quantum: int | None = None,
                   timeout_s: float = 5.0) -> dict:
    """Send one write per entry of ``sizes`` (payload(n, i)), or, with
    ``rx_wire`` (hex), have the partner send those bytes and read them; the
    card's driver is unregistered after write (or read) ``unregister_at``.
    ``writes``: the bytes of ``sizes`` written in writes of these sizes
    instead (the last with MSG_EOR when ``eor_last``). ``split``: OCF
    refuses chains of two algorithms, as a card that cannot hold cipher and
    MAC in one session would, so the socket opens a cipher and a separate
    MAC session. ``record_size``: the transform's; ``write_quantum``: the stack's. A
    receive that fails reads once more (``again``: that read's errno)."""
    system = await boot(host)
    kernel, crypto = system.kernel, system.crypto
    sc = next(s for s in system.softcs if getattr(s, "driver", "") == "em")
    ifp = EmIf(sc)
    stack = NetStack(kernel, LOCAL_IP, write_quantum=write_quantum)
    stack.attach(ifp)
    link = Link(host.loop, capture_lag=nic_capture_lag())
    NicWire(host, sc.dev.slot, link.a)
    partner = Partner(host.loop, link.b, PARTNER_IP, seed=2)
    stack.arp_add(PARTNER_IP, partner.lladdr)
    partner.stack.arp_add(LOCAL_IP, ifp.lladdr)
    socrypt.attach(stack, crypto)
    if split:
        newsession = crypto.newsession

        async def one_algorithm(chain, *a, **kw):
            return (EINVAL, 0) if len(chain) > 1 else await newsession(chain, *a, **kw)
        crypto.newsession = one_algorithm
    rx = bool(rx_wire)
    t = socrypt.Transform(framing, KEY, IV, MACKEY, mac_len=mac_len, mode=mode,
                          direction="rx" if rx else "tx", one_pass=one_pass,
                          record_size=record_size)
    out: dict = {"errors": [], "got": "", "sessions": [], "after": []}

    def card_driver():
        return next((d for d in crypto.drivers if d is not None and d.driver is not None
                     and not d.flags & CRYPTOCAP_F_SOFTWARE), None)

    cap = card_driver()
    card = cap.driver

    async def unregister():
        d = card_driver()
        out["unregistered"] = type(d.driver).__name__
        crypto.unregister(d.cid)

    async def proc(p):
        err, fd = await stack.sys_socket(p)
        err = err or await stack.sys_connect(p, fd, (PARTNER_IP, PORT))
        err = err or await stack.sys_setsockopt(p, fd, SOL_SOCKET, socrypt.SO_CRYPT, t)
        if err:
            out["errors"].append(f"set-up: {errorname(err)}")
            return
        so = kernel.fd_get(p, fd)
        c = so.crypt_rx._tx if rx else so.crypt_tx
        if rx:
            buf, got, i = bytearray(65536), bytearray(), 0
            while True:
                err, n = await stack.sys_recv(p, fd, buf)
                if not out["sessions"]:
                    out["sessions"] = [_name(crypto, c.enc_sid), _name(crypto, c.mac_sid)]
                if err or n == 0:
                    if err:
                        out["errors"].append(f"recv: {errorname(err)}")
                        out["again"] = errorname((await stack.sys_recv(p, fd, buf))[0])
                    break
                got += buf[:n]
                if i == unregister_at:
                    await unregister()
                i += 1
            out["got"] = bytes(got).hex()
            out["requests"] = so.crypt_rx.requests
        else:
            chunks = [payload(n, i) for i, n in enumerate(sizes or [])]
            if writes:
                stream, chunks, pos = b"".join(chunks), [], 0
                for w in writes:
                    chunks.append(stream[pos:pos + w])
                    pos += w
            for i, d in enumerate(chunks):
                n = len(d)
                flags = MSG_EOR if eor_last and i == len(chunks) - 1 else 0
                err, m = await stack.sys_send(p, fd, d, flags=flags)
                if i == 0:
                    out["sessions"] = [_name(crypto, c.enc_sid), _name(crypto, c.mac_sid)]
                    out["shared"] = c.enc_sid == c.mac_sid
                if err or m != n:
                    out["errors"].append(f"send: {errorname(err)} after {m}")
                    break
                if i == unregister_at:
                    await unregister()
            out["requests"] = c.requests
            out["onepass"] = c.onepass
            out["pieces"] = c.pieces
        out["after"] = [_name(crypto, c.enc_sid), _name(crypto, c.mac_sid)]
        await kernel.sys_close(p, fd)

    if rx:
        sink = partner.source(PORT, bytes.fromhex(rx_wire), write_size=1460)
    else:
        sink = partner.sink(PORT)
    task = kernel.fork("socrypt", proc)
    deadline = host.now + int(timeout_s * 1e12)
    while not (task.task.done() and sink.done_ps is not None) and host.now < deadline:
        await host.sleep(1_000_000_000)
    if task.task.done():
        task.task.result()
    else:
        out["errors"].append("did not end in time")
    await host.sleep(200_000_000)
    link.close()
    out["wire"] = bytes(sink.data).hex() if not rx else ""
    out["migrated"] = crypto.migrated
    out["card_ops"] = cap.stats.operations      # OCF's count of requests handed to the card
    out["card"] = dict(card.counters)           # the driver's own (ubsec: packets, tls_onepass)
    out["catchalls"] = kernel.catchalls
    return out


_RUNS: dict = {}


def _run(card, **kw):
    """The workload on ``card`` on Verilator (one run per distinct set of
    arguments in a test session: tests comparing two runs share them)."""
    key = (card, json.dumps(kw, sort_keys=True))
    if key not in _RUNS:
        r = run(net_machine(card), ENTRY, kw, backend="verilator")
        _RUNS[key] = r.get("result", r)
    return _RUNS[key]


def _tx(card, **kw):
    """A send run that must end clean: (result, wire bytes)."""
    res = _run(card, **kw)
    assert res["errors"] == [] and res["catchalls"] == 0, res["errors"]
    return res, bytes.fromhex(res["wire"])


def _records(sizes, record_size=16384):
    """The application data records of one write per size (payload(n, i)),
    each write cut at ``record_size`` (an empty write is one empty record)."""
    out = []
    for i, n in enumerate(sizes):
        d = payload(n, i)
        out += [(23, d[j:j + record_size]) for j in range(0, max(n, 1), record_size)]
    return out


CARDS = ["bcm5820", "hifn7751"]
SLOW = pytest.mark.slow
#: records of 0 bytes to one full 2^14 record (RFC 2246 §6.2.1's limit)
SIZES = [0, 1, 100, 3000, 16384]


def _card(card):
    return {"bcm5820": "Ubsec", "hifn7751": "HifnSoftc"}[card]


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", pytest.param("hifn7751", marks=SLOW)])
def test_tls_on_a_card_short(card):
    """TLS on each card on Verilator: records sent (MAC then encrypt as two
    requests on the card's one session, the 5820 finishing its 20-byte MAC
    from the session's midstates) byte-exact to the records tlslite-ng
    writes with the same keys and read by tlslite-ng, then records from
    tlslite-ng received and verified through the card."""
    res, wire = _tx(card, sizes=SIZES)
    recs = _records(SIZES)
    assert wire == tls_write(recs, KEY, IV, MACKEY)
    assert tls_read(wire, KEY, IV, MACKEY, count=len(recs)) == recs
    assert res["sessions"] == [_card(card)] * 2 and res["shared"]   # cipher and MAC on the card
    assert res["requests"] == res["card_ops"] == 2 * len(recs) and res["onepass"] == 0
    if card == "bcm5820":      # the chip ciphers; a 20-byte MAC is finished on the host
        assert res["card"]["packets"] == len(recs)
    recs = [(23, payload(300, 7)), (23, b"")]
    res = _run(card, rx_wire=tls_write(recs, KEY, IV, MACKEY).hex())
    assert res["errors"] == [] and bytes.fromhex(res["got"]) == recs[0][1]
    assert res["sessions"] == [_card(card)] * 2 and res["requests"] == res["card_ops"] == 4


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", pytest.param("hifn7751", marks=SLOW)])
def test_one_pass_on_the_card(card):
    """one_pass: the BCM5820 builds each TLS record in one request (its TLS
    flag, CRYPTOCAP_F_TLS_ONEPASS: MAC, padding and 3DES on the chip), the
    same wire bytes as its two-pass requests; the Hifn has no such flag and
    keeps two requests per record. Both read by tlslite-ng."""
    one, wire1 = _tx(card, sizes=SIZES, one_pass=True)
    two, wire2 = _tx(card, sizes=SIZES)
    recs = _records(SIZES)
    assert wire1 == wire2
    assert tls_read(wire1, KEY, IV, MACKEY, count=len(recs)) == recs
    assert one["sessions"] == [_card(card)] * 2
    if card == "bcm5820":      # every record one packet on the chip, none finished on the host
        assert one["onepass"] == one["requests"] == one["card_ops"] == len(recs)
        assert one["card"]["tls_onepass"] == one["card"]["packets"] == len(recs)
        assert one["card"]["tls_host"] == 0
    else:
        assert one["onepass"] == 0 and one["requests"] == 2 * len(recs)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("mac_len", [20, 12])
@pytest.mark.parametrize("card", CARDS)
def test_ssh2_on_the_card(card, mac_len):
    """SSH2 (3des-cbc, hmac-sha1 or hmac-sha1-96) through the card: packets
    sent read by paramiko's Packetizer (two requests each, MAC and cipher
    on the card's one session); paramiko's packets received and verified
    through the card (three requests each), then a packet with one bit
    flipped: EBADMSG, nothing of it delivered, and the next read too."""
    sizes = [1, 13, 100, 4096]
    res, wire = _tx(card, framing="ssh2", mac_len=mac_len, sizes=sizes)
    got = ssh_read(wire, KEY, IV, MACKEY, mac_len, len(sizes))
    assert [bytes([c]) + m.asbytes() for c, m in got] == [payload(n, i)
                                                          for i, n in enumerate(sizes)]
    assert res["sessions"] == [_card(card)] * 2
    assert res["requests"] == res["card_ops"] == 2 * len(sizes)
    if card == "bcm5820":      # hmac-sha1-96 on the chip; the full MAC finished on the host
        assert res["card"]["packets"] == (2 if mac_len == 12 else 1) * len(sizes)
    msgs = [payload(n, 20 + i) for i, n in enumerate([5, 600, 3000])]
    good = ssh_write(msgs, KEY, IV, MACKEY, mac_len)
    bad = bytearray(ssh_write(msgs + [payload(40, 9)], KEY, IV, MACKEY, mac_len))
    bad[len(good) + 20] ^= 0x10           # inside the last packet's payload
    res = _run(card, framing="ssh2", mac_len=mac_len, rx_wire=bytes(bad).hex())
    assert bytes.fromhex(res["got"]) == b"".join(msgs)
    assert res["errors"] == ["recv: EBADMSG"] and res["again"] == "EBADMSG"
    assert res["sessions"] == [_card(card)] * 2
    assert res["requests"] == res["card_ops"] == 3 * len(msgs) + 3


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("card", CARDS)
def test_piecemeal_on_the_card(card):
    """Piecemeal TLS (records of 2048 bytes; writes of 1 to 3000 bytes, the
    stack's write quantum 1024, so a write is cut into pieces and runs
    across records; a short last record ended by MSG_EOR): each piece's
    cipher blocks on the card, the HMAC on the host; the very bytes the
    card's whole-frame records give and tlslite-ng writes."""
    rs, sizes = 2048, [3 * 2048, 777]
    writes = [1, 7, 1000, 3000, 2136, 777]
    pm, pwire = _tx(card, sizes=sizes, writes=writes, eor_last=True, mode="piecemeal",
                    record_size=rs, write_quantum=1024)
    wf, wwire = _tx(card, sizes=sizes, record_size=rs, write_quantum=1024)
    recs = _records(sizes, rs)
    assert pwire == wwire == tls_write(recs, KEY, IV, MACKEY)
    assert tls_read(pwire, KEY, IV, MACKEY, count=len(recs)) == recs
    assert pm["sessions"] == [_card(card), None]          # the MAC is not on a session
    # cut by the quantum and the records; a piece without a whole block needs no request
    assert pm["pieces"] > len(writes) and 0 < pm["requests"] <= pm["pieces"]
    assert pm["card_ops"] == pm["requests"]
    assert wf["requests"] == 2 * len(recs)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("card", CARDS)
def test_split_sessions_on_the_card(card):
    """OCF refusing two-algorithm sessions: the cipher session on the card
    and a MAC session of its own (the 5820 cannot give a 20-byte MAC
    alone, docs/bcm5820.md: it lands on cryptosoft; the Hifn holds it),
    the same wire bytes; and hmac-sha1-96 SSH, whose MAC fits either card."""
    res, wire = _tx(card, sizes=[1, 100, 3000], split=True)
    recs = _records([1, 100, 3000])
    assert wire == tls_write(recs, KEY, IV, MACKEY)
    assert not res["shared"] and res["requests"] == 2 * len(recs)
    assert res["sessions"] == [_card(card), "soft" if card == "bcm5820" else _card(card)]
    assert res["card_ops"] == (1 if card == "bcm5820" else 2) * len(recs)
    res, wire = _tx(card, framing="ssh2", mac_len=12, sizes=[50, 500], split=True)
    got = ssh_read(wire, KEY, IV, MACKEY, 12, 2)
    assert [bytes([c]) + m.asbytes() for c, m in got] == [payload(50, 0), payload(500, 1)]
    assert res["sessions"] == [_card(card)] * 2 and not res["shared"]
    assert res["card_ops"] == res["requests"] == 4


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", pytest.param("hifn7751", marks=SLOW)])
@pytest.mark.parametrize("one_pass", [False, pytest.param(True, marks=SLOW)])
def test_card_unregistered_mid_stream_tx(card, one_pass):
    """The card's driver unregistered after the second send: OCF moves the
    socket's sessions to cryptosoft on their next request (EAGAIN inside
    the kernel); every send returns its full count and the stream is one
    CBC chain with consecutive sequence numbers, byte-exact to tlslite-ng's
    records."""
    sizes = [100, 3000, 1, 16384, 50]
    res, wire = _tx(card, sizes=sizes, unregister_at=1, one_pass=one_pass)
    recs = _records(sizes)
    assert wire == tls_write(recs, KEY, IV, MACKEY)
    assert res["unregistered"] == _card(card)
    assert res["sessions"] == [_card(card)] * 2 and res["after"] == ["soft", "soft"]
    # two records on the card; one request found it gone (EAGAIN) and was resubmitted
    assert res["migrated"] == 1
    assert res["card_ops"] == (1 if one_pass and card == "bcm5820" else 2) * 2


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("framing", ["tls1.0", "ssh2"])
@pytest.mark.parametrize("card", CARDS)
def test_card_unregistered_mid_stream_rx(card, framing):
    """The card's driver unregistered after the first read: the receive
    sessions move to cryptosoft and every later record is still verified
    and delivered byte-exact; the reader sees no error."""
    msgs = [payload(n, 30 + i) for i, n in enumerate([200, 3000, 16384, 7, 1000])]
    if framing == "ssh2":
        wire = ssh_write(msgs, KEY, IV, MACKEY, 20)
    else:
        wire = tls_write([(23, m) for m in msgs], KEY, IV, MACKEY)
    res = _run(card, framing=framing, rx_wire=wire.hex(), unregister_at=0)
    assert res["errors"] == [] and bytes.fromhex(res["got"]) == b"".join(msgs)
    assert res["unregistered"] == _card(card)
    assert res["sessions"] == [_card(card)] * 2 and res["after"] == ["soft", "soft"]
    assert res["migrated"] == 1
    assert res["card_ops"] == (3 if framing == "ssh2" else 2)    # the first record's requests


@pytest.mark.verilator
@pytest.mark.parametrize("card", [pytest.param("bcm5820", marks=SLOW), "hifn7751"])
def test_a_flipped_bit_on_the_card_is_ebadmsg(card):
    """tlslite-ng's records received through the card, the third with one
    bit flipped in its ciphertext: the first two delivered byte-exact, the
    bad one EBADMSG with none of its bytes delivered, and the next read
    EBADMSG too."""
    msgs = [payload(500, 40), payload(1, 41)]
    good = tls_write([(23, m) for m in msgs], KEY, IV, MACKEY)
    bad = bytearray(tls_write([(23, m) for m in msgs] + [(23, payload(800, 42))],
                              KEY, IV, MACKEY))
    bad[len(good) + 5 + 300] ^= 0x01      # inside the third record's data
    res = _run(card, rx_wire=bytes(bad).hex())
    assert bytes.fromhex(res["got"]) == b"".join(msgs)
    assert res["errors"] == ["recv: EBADMSG"] and res["again"] == "EBADMSG"
    # two requests each (decrypt, then the MAC that fails), all on the card
    assert res["sessions"] == [_card(card)] * 2 and res["card_ops"] == res["requests"] == 6
