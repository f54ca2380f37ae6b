"""SO_CRYPT on the real cards: a BCM5820 or a Hifn 7751 beside the em NIC
(the machine of ocfsim/workloads/net.py's ``net_machine``), the records
built or verified through OCF by the card drivers (ubsec, hifn): the
IPsec-order cards get MAC and cipher as two requests, and on the BCM5820
a 20-byte HMAC goes to a separate (software) MAC session. The bytes are
checked by the peers (tlslite-ng, paramiko); a card driver unregistered
mid-stream moves the socket's sessions (EAGAIN inside the kernel) and the
stream goes on."""

from __future__ import annotations

import pytest

from netinet import socrypt
from netinet.if_em import EmIf
from netinet.partner import Partner, Transfer
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
                   timeout_s: float = 5.0) -> dict:
    """Send one write per entry of ``sizes`` (payload(n, i)), or, with
    ``rx_wire`` (hex), have the partner send those bytes and read them; the
    card's driver is unregistered after write (or read) ``unregister_at``.
    ``writes``: the bytes of ``sizes`` written in writes of these sizes
    instead (the last with MSG_EOR when ``eor_last``). ``split``: OCF refuses chains of two algorithms, as a card that cannot
    hold cipher and MAC in one session would, so the socket opens a cipher
    and a separate MAC session."""
    system = await boot(host)
    kernel, crypto = system.kernel, system.crypto
    sc = next(s for s in system.softcs if getattr(s, "driver", "") == "em")
    ifp = EmIf(sc)
    stack = NetStack(kernel, LOCAL_IP)
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
                          direction="rx" if rx else "tx", one_pass=one_pass)
    out: dict = {"errors": [], "got": "", "sessions": [], "after": []}

    def card_driver():
        return next((d for d in crypto.drivers if d is not None and d.driver is not None
                     and not d.flags & CRYPTOCAP_F_SOFTWARE), None)

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
    out["catchalls"] = kernel.catchalls
    return out


def _tx(card, backend, **kw):
    r = run(net_machine(card), ENTRY, kw, backend=backend)
    res = r.get("result", r)
    assert res["errors"] == [] and res["catchalls"] == 0, res["errors"]
    return res, bytes.fromhex(res["wire"])


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", pytest.param("hifn7751", marks=pytest.mark.slow)])
def test_tls_on_a_card_short(card):
    """One short TLS exchange per card on Verilator: records sent (MAC then
    encrypt as two requests on the card; the BCM5820's 20-byte MAC on a
    software session) read by tlslite-ng, then records from tlslite-ng
    received and verified through the card."""
    sizes = [1, 100]
    res, wire = _tx(card, "verilator", sizes=sizes)
    assert tls_read(wire, KEY, IV, MACKEY, count=2) == [(23, payload(n, i))
                                                        for i, n in enumerate(sizes)]
    assert res["sessions"][0] != "soft" and res["shared"]   # cipher and MAC on the card
    assert res["requests"] == 4
    recs = [(23, payload(300, 7)), (23, b"")]
    wire = tls_write(recs, KEY, IV, MACKEY)
    r = run(net_machine(card), ENTRY, {"rx_wire": wire.hex()}, backend="verilator")
    res = r.get("result", r)
    assert res["errors"] == [] and bytes.fromhex(res["got"]) == recs[0][1]

