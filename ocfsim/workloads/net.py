"""Network workload: a process sends (or receives) a file over TCP through the
simulated NIC to the link partner, optionally encrypting each write.

This is the experiment of the socket-crypto paper (Burnside and Keromytis,
§IV-C, Table I): "encrypt a file in user space (with the OpenSSL EVP
framework), encrypt a file using /dev/crypto, ... In all cases, the
encrypted data is then transmitted to a remote machine over a TCP
connection", 100 MB in writes of 4088, 8176 and 16352 bytes.

The machine (:func:`net_machine`): a crypto card and the 82544GC-class NIC
(``em82544``, drivers/em.py) on one bus. With the BCM5820 it is the paper's
64-bit/66 MHz bus (§IV-C: "a Gbit Ethernet card and a Broadcom 5820 ... on
the 64/66 bus"); the Hifn 7751 is a 32-bit/33 MHz part (Hifn 7751
datasheet), so its machine is a 32-bit/33 MHz bus with the NIC on it too.

The path: the simulated kernel's ``netinet`` stack on :class:`netinet.if_em.EmIf`
(the em driver), the NIC's wire as host events joined to a
:class:`netinet.wire.Link` by :class:`netinet.wire.NicWire` (wire time
counted once: by the NIC's MAC for its frames, by the link for the
partner's), and a :class:`netinet.partner.Partner` on the far port (a free
CPU by default, as the testbed's second machine was not the bottleneck).

Encryption (``encrypt``): ``none``; ``evp``: user-space 3DES-CBC and
HMAC-SHA1 over each write, computed with the ``cryptography`` package and
charged as user-mode CPU time at the profile's ``evp.op`` + ``evp.byte`` per
byte (sim/profiles); ``devcrypto``: one CIOCCRYPT (3DES-CBC + HMAC-SHA1-96)
per write on the card through /dev/crypto, as ocfsim/workloads/devcrypto.py.
The CBC chain runs across writes (each write's IV is the last ciphertext
block of the one before), so the stream on the wire is the CBC encryption
of the whole (zero-padded) file: the partner's bytes are checked against
the ``cryptography`` package's encryption of the file and decrypted back to
it. Only the ciphertext is sent (the paper does not say what its test sent
besides it); each write's MAC is checked against ``hmac`` over the
ciphertext the partner received. With ``rx`` the partner sends the
ciphertext and the process reads records of ``write_size`` bytes
(MSG_WAITALL) and decrypts each.

The measured window runs from the process's first write (``rx``: first
read) to the partner's end of file (``rx``: the process's last decrypted
record). Every figure is over that window.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from hw.machine import CardSpec, MachineSpec
from netinet.if_em import EmIf
from netinet.partner import Partner, Transfer
from netinet import socrypt
from netinet.mbuf import MCLBYTES
from netinet.socket import MSG_EOR, MSG_WAITALL, SB_RESERVE_MAX, SOL_SOCKET
from netinet.stack import NetStack
from netinet.wire import Faults, Link, NicWire, nic_capture_lag, wire_time
from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC
from ocf.cryptodev import (CIOCCRYPT, CIOCFSESSION, CIOCGSESSION, COP_DECRYPT, COP_ENCRYPT,
                           CRIOGET, CrioGet, CryptOp, SessionOp)
from ocfsim.system import boot
from sim.kernel.errno import errorname
from sim.kernel.profile import DEFAULT_PROFILE

__all__ = ["net", "net_machine", "NET_CARDS", "ENCRYPTS", "BLOCK", "MAC_BYTES", "PORT",
           "LOCAL_IP", "PARTNER_IP", "NIC_SLOT", "CARD_SLOT", "WRITE_QUANTUM", "MB",
           "SO_CRYPT_FRAMINGS", "SO_CRYPT_MODES", "RecordReader", "RecordError",
           "encode_records"]

#: cards a network machine may hold beside the NIC
NET_CARDS = ("bcm5820", "hifn7751")
ENCRYPTS = ("none", "evp", "devcrypto", "so_crypt")
#: the 3DES block (FIPS 46-3): writes are encrypted in whole blocks
BLOCK = 8
#: HMAC-SHA1 truncated to 96 bits, as /dev/crypto returns it (RFC 2404)
MAC_BYTES = 12
KEY_BYTES, MACKEY_BYTES = 24, 20
PORT = 5001
LOCAL_IP, PARTNER_IP = "10.0.0.1", "10.0.0.2"
#: the NIC's station address (a locally administered one) and the slots
NIC_MAC = "02000000ee01"
CARD_SLOT, NIC_SLOT = 1, 2
#: socket paper §IV-A: OpenBSD's send() takes at most 4088 bytes per call
WRITE_QUANTUM = 4088
#: the paper's "100MB": 100 MiB (72,416 full segments of 1448 bytes carry it)
MB = 1 << 20
#: host DRAM of the network machine: the 4 MiB of the crypto machines
#: (ocfsim/machines.py) hold the rings, mbufs and /dev/crypto buffers
DRAM_BYTES = 4 << 20
#: ``sockbuf`` bounds: the send buffer's low-water mark (MCLBYTES, sosend
#: waits for that much room) and the most sbreserve grants
SOCKBUF_MIN = MCLBYTES
SOCKBUF_MAX = SB_RESERVE_MAX
#: simulated time after the transfer for frames in flight (a few frame times)
DRAIN_PS = 200_000_000


def net_machine(card: str = "bcm5820") -> MachineSpec:
    """The card in slot 1 and the NIC in slot 2: 64-bit/66 MHz with the
    BCM5820 (socket paper §IV-C), 32-bit/33 MHz with the Hifn 7751."""
    if card not in NET_CARDS:
        raise ValueError(f"card {card!r} is not one of {', '.join(NET_CARDS)}")
    mhz, width = (66, 64) if card == "bcm5820" else (33, 32)
    params = {"clock_mhz": mhz} if card == "hifn7751" else {}
    return MachineSpec(clock_mhz=mhz, bus_width=width, dram_bytes=DRAM_BYTES,
                       cards=[CardSpec(card, CARD_SLOT, params),
                              CardSpec("em82544", NIC_SLOT, {"mac": NIC_MAC, "bus_mhz": mhz})])


def _faults(spec) -> Faults | None:
    return Faults(**{k: ({int(i): v for i, v in spec["at"].items()} if k == "at" else v)
                     for k, v in spec.items()}) if spec else None


def _records(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


class _Evp:
    """User-space 3DES-CBC + HMAC-SHA1 (OpenSSL EVP's work), one call per write."""

    def __init__(self, kernel, key, mackey, iv, encrypt):
        p = kernel.profile
        for k in ("evp.op", "evp.byte"):
            if not p.has(k):
                raise ValueError(f"host profile {p.name!r} lacks {k} "
                                 "(see sim/profiles/p3-1400-openbsd.toml [evp])")
        self.kernel, self.mackey = kernel, mackey
        self.c_op, self.c_byte = p.cost("evp.op"), p.per_byte("evp.byte")
        c = Cipher(TripleDES(key), modes.CBC(iv))
        self.op = c.encryptor() if encrypt else c.decryptor()
        self.encrypt = encrypt

    async def run(self, data: bytes) -> tuple[bytes, bytes]:
        await self.kernel.charge("user", self.c_op + int(round(self.c_byte * len(data))))
        out = self.op.update(data)
        ct = out if self.encrypt else data
        return out, hmac.new(self.mackey, ct, hashlib.sha1).digest()[:MAC_BYTES]


class _DevCrypto:
    """/dev/crypto: one session of 3DES-CBC + HMAC-SHA1, one CIOCCRYPT per write."""

    def __init__(self, kernel, key, mackey, iv, encrypt):
        self.kernel, self.key, self.mackey, self.iv, self.encrypt = \
            kernel, key, mackey, iv, encrypt
        self.err = 0

    async def open(self, p) -> int:
        k = self.kernel
        err, self.fd = await k.sys_open(p, "/dev/crypto")
        g = CrioGet()
        err = err or await k.sys_ioctl(p, self.fd, CRIOGET, g)
        self.cfd = g.fd
        self.sop = SessionOp(cipher=CRYPTO_3DES_CBC, keylen=KEY_BYTES, key=self.key,
                             mac=CRYPTO_SHA1_HMAC, mackeylen=MACKEY_BYTES, mackey=self.mackey)
        return err or await k.sys_ioctl(p, self.cfd, CIOCGSESSION, self.sop)

    async def run(self, p, data: bytes) -> tuple[int, bytes, bytes]:
        dst, tag = bytearray(len(data)), bytearray(MAC_BYTES)
        cop = CryptOp(ses=self.sop.ses, op=COP_ENCRYPT if self.encrypt else COP_DECRYPT,
                      len=len(data), src=data, dst=dst, mac=tag, iv=self.iv)
        err = await self.kernel.sys_ioctl(p, self.cfd, CIOCCRYPT, cop)
        # the CBC chain goes on from the last ciphertext block
        self.iv = (bytes(dst) if self.encrypt else data)[-BLOCK:]
        return err, bytes(dst), bytes(tag)

    async def close(self, p) -> None:
        k = self.kernel
        await k.sys_ioctl(p, self.cfd, CIOCFSESSION, self.sop.ses)
        await k.sys_close(p, self.cfd)
        await k.sys_close(p, self.fd)


async def net(host, nbytes: int = 65536, write_size: int = WRITE_QUANTUM,
              encrypt: str = "none", rx: bool = False, file: str | None = None,
              profile: str = DEFAULT_PROFILE, seed: int = 1, pcap: str | None = None,
              faults_tx: dict | None = None, faults_rx: dict | None = None,
              partner_profile: str | None = None, write_quantum: int | None = WRITE_QUANTUM,
              warmup_bytes: int = 0, timeout_s: float = 120.0, framing: str = "tls1.0",
              mode: str | None = None, one_pass: bool = False,
              record_size: int | None = None, sockbuf: int | None = None) -> dict:
    """Send (``rx``: receive) ``nbytes`` random bytes (or ``file``) through the NIC.

    ``encrypt="so_crypt"``: the process sets SO_CRYPT (netinet.socrypt) on
    its socket with ``framing`` (tls1.0, ssh2, paper), ``mode``
    (whole-frame, piecemeal; None: socrypt's default), ``one_pass`` and
    ``record_size`` (the most plaintext per record, whole frame; None: the
    framing's limit), and
    writes plaintext; the partner decodes the records with
    :class:`RecordReader` and compares the plaintext with the file. With
    ``rx`` the partner sends records made by :func:`encode_records` and the
    process reads plaintext from its SO_CRYPT socket.

    ``sockbuf``: both hosts' TCP socket buffers in bytes (the
    ``net.inet.tcp.sendspace`` and ``recvspace`` sysctls; None: 16384, the
    era's default), which bound the window in flight.

    ``faults_tx`` / ``faults_rx``: :class:`netinet.wire.Faults` keywords for
    the NIC → partner and partner → NIC directions. ``timeout_s``: the run
    stops (failed) after that much simulated time. ``warmup_bytes``: the
    steady-state figures (``steady_*``) are measured from the read at which
    that many bytes had been delivered to the end.
    """
    if encrypt not in ENCRYPTS:
        raise ValueError(f"encrypt must be one of {', '.join(ENCRYPTS)}, not {encrypt!r}")
    if type(write_size) is not int or write_size <= 0:
        raise ValueError(f"write_size must be a positive int, not {write_size!r}")
    so = encrypt == "so_crypt"
    if so:
        if framing not in SO_CRYPT_FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(SO_CRYPT_FRAMINGS)}")
        if mode is not None and mode not in SO_CRYPT_MODES:
            raise ValueError(f"mode must be one of {', '.join(SO_CRYPT_MODES)}")
        limit = so_crypt_record_limit(framing)
        if record_size is not None and (mode == "piecemeal" or type(record_size) is not int
                                        or not 1 <= record_size <= limit):
            raise ValueError(f"record_size must be 1..{limit}, whole frame only "
                             f"(piecemeal: each write is one record), not {record_size!r}")
        if mode == "piecemeal" and write_size > so_crypt_record_limit(framing):
            raise ValueError(f"piecemeal: write_size {write_size} is over the "
                             f"{so_crypt_record_limit(framing)}-byte record limit")
    if sockbuf is not None and (type(sockbuf) is not int
                                or not SOCKBUF_MIN <= sockbuf <= SOCKBUF_MAX):
        raise ValueError(f"sockbuf must be {SOCKBUF_MIN}..{SOCKBUF_MAX} bytes, not {sockbuf!r}")
    bufs = {"sendspace": sockbuf, "recvspace": sockbuf} if sockbuf else {}
    if encrypt in ("evp", "devcrypto") and write_size % BLOCK:
        raise ValueError(f"write_size {write_size} is not a multiple of the {BLOCK}-byte "
                         "3DES block")
    rng = random.Random(seed)
    if file is not None:
        with open(file, "rb") as f:
            plain = f.read()
    else:
        plain = rng.randbytes(nbytes)
    nbytes = len(plain)
    if not nbytes:
        raise ValueError("nothing to send: give nbytes > 0 or a file that is not empty")
    key, mackey, iv0 = rng.randbytes(KEY_BYTES), rng.randbytes(MACKEY_BYTES), rng.randbytes(BLOCK)
    padded = plain + bytes(-len(plain) % BLOCK) if encrypt in ("evp", "devcrypto") else plain
    reader = RecordReader(framing, key, iv0, mackey) if so and not rx else None
    if so:
        # rx: what a SO_CRYPT sender would put on the wire (the partner sends it)
        wire_data = encode_records(framing, plain, write_size, key, iv0, mackey,
                                   random.Random(seed + 2)) if rx else None
    elif encrypt != "none":
        e = Cipher(TripleDES(key), modes.CBC(iv0)).encryptor()
        wire_data = e.update(padded) + e.finalize()       # what the wire must carry
    else:
        wire_data = padded

    system = await boot(host, profile=profile)
    kernel = system.kernel
    sc = next((s for s in system.softcs if getattr(s, "driver", "") == "em"), None)
    if sc is None:
        raise RuntimeError("no em NIC attached (the machine needs an em82544 card)")
    ifp = EmIf(sc)
    stack = NetStack(kernel, LOCAL_IP, write_quantum=write_quantum, **bufs)
    stack.attach(ifp)
    if so:
        socrypt.attach(stack, system.crypto)
    link = Link(host.loop, pcap=pcap, faults_ab=_faults(faults_tx), faults_ba=_faults(faults_rx),
                capture_lag=nic_capture_lag())
    nic = NicWire(host, sc.dev.slot, link.a)
    partner = Partner(host.loop, link.b, PARTNER_IP, profile=partner_profile, seed=seed + 1,
                      **bufs)
    stack.arp_add(PARTNER_IP, partner.lladdr)
    partner.stack.arp_add(LOCAL_IP, ifp.lladdr)

    window = {"start": None, "end": None}
    edges: dict = {}
    errors: list[str] = []
    macs: list[bytes] = []
    got = bytearray()                   # rx: what the process decrypted / read
    decoded = bytearray()               # SO_CRYPT tx: the plaintext the partner decoded
    want_total = nbytes if so else len(wire_data)   # bytes the far end must deliver
    arrivals: list[tuple[int, int]] = []  # (ps, bytes delivered so far) per read

    def counters():
        return {"bus": host.bus_stats(), "cpu": kernel.accounting(),
                "irq": _claimed(kernel), "t": kernel.now, "ocf": _ocf_counts(system.crypto),
                "records": reader.records if reader else len(arrivals)}

    def open_window():
        if window["start"] is None:
            window["start"] = kernel.now
            edges["start"] = counters()

    def warm(n):
        if warmup_bytes and n >= warmup_bytes and "warm" not in edges:
            edges["warm"] = counters()

    def close_window():
        if window["end"] is None and "start" in edges:
            window["end"] = kernel.now
            edges["end"] = counters()
            edges["bus"] = host.bus_stats_since(edges["start"]["bus"])
            if "warm" in edges:
                edges["steady_bus"] = host.bus_stats_since(edges["warm"]["bus"])

    def engine(p_encrypt):
        if encrypt == "evp":
            return _Evp(kernel, key, mackey, iv0, p_encrypt)
        if encrypt == "devcrypto":
            return _DevCrypto(kernel, key, mackey, iv0, p_encrypt)
        return None

    async def sink(p, t):
        """The partner's reader (``Partner.sink``), closing the window when
        the last byte of the file has arrived."""
        err, fd = await partner._listen(p, PORT, t)
        if err:
            return
        buf = bytearray(65536)
        while True:
            err, n = await partner.stack.sys_recv(p, fd, buf)
            if err:
                t.errors.append(("recv", err))
                break
            if n == 0:
                break
            t.data += buf[:n]
            have = len(t.data)
            if reader is not None:
                try:
                    decoded.extend(b"".join(reader.feed(bytes(buf[:n]))))
                except RecordError as exc:
                    errors.append(f"the partner refused a record: {exc}")
                    break
                have = len(decoded)
            arrivals.append((partner.kernel.now, have))
            warm(have)
            if have >= want_total:
                close_window()
        await partner.kernel.sys_close(p, fd)
        t.done_ps = partner.kernel.now

    async def connected(p, forward):
        """The process's engine (its /dev/crypto session open) and a socket
        connected to the partner; ``(None, None)`` after an error."""
        eng = engine(forward)
        if isinstance(eng, _DevCrypto):
            err = await eng.open(p)
            if err:
                errors.append(f"/dev/crypto session: {errorname(err)}")
                return None, None
        err, fd = await stack.sys_socket(p)
        err = err or await stack.sys_connect(p, fd, (PARTNER_IP, PORT))
        if err:
            errors.append(f"connect: {errorname(err)}")
            return None, None
        if so:
            extra = {"mode": mode} if mode is not None else {}
            if mode == "piecemeal":
                # each write is one record, encrypted in pieces of the write
                # quantum as sosend takes them (docs/so_crypt.md, piecemeal)
                extra["record_size"] = write_size
            if one_pass:
                extra["one_pass"] = True
            if record_size is not None:
                extra["record_size"] = record_size
            tr = socrypt.Transform(framing, key, iv0, mackey, seq=0,
                                   direction="tx" if forward else "rx", **extra)
            err = await stack.sys_setsockopt(p, fd, SOL_SOCKET, socrypt.SO_CRYPT, tr)
            if err:
                errors.append(f"setsockopt SO_CRYPT: {errorname(err)}")
                return None, None
        return eng, fd

    # piecemeal: each write ends its record (MSG_EOR), so a short last write
    # is a record of its own
    eor = MSG_EOR if so and mode == "piecemeal" else 0

    async def sender(p):
        st = stack
        eng, fd = await connected(p, True)
        if fd is None:
            return
        for rec in _records(padded, write_size):
            open_window()
            # (SO_CRYPT: the plaintext goes to send(); the socket builds the records)
            if isinstance(eng, _Evp):
                rec, tag = await eng.run(rec)
                macs.append(tag)
            elif isinstance(eng, _DevCrypto):
                err, rec, tag = await eng.run(p, rec)
                if err:
                    errors.append(f"CIOCCRYPT: {errorname(err)}")
                    return
                macs.append(tag)
            view, sent = memoryview(rec), 0
            while sent < len(rec):
                err, n = await st.sys_send(p, fd, view[sent:], flags=eor)
                sent += n
                if err:
                    errors.append(f"send: {errorname(err)}")
                    return
        await kernel.sys_close(p, fd)
        if isinstance(eng, _DevCrypto):
            await eng.close(p)

    async def receiver(p):
        st = stack
        eng, fd = await connected(p, False)
        if fd is None:
            return
        buf = bytearray(write_size)
        left = want_total
        while left:
            open_window()
            want = min(write_size, left)
            err, n = await st.sys_recv(p, fd, buf, want, MSG_WAITALL)
            if err or n == 0:
                errors.append(f"recv: {errorname(err) if err else 'early end of file'}")
                return
            rec = bytes(buf[:n])
            left -= n
            if eng is not None and n % BLOCK:
                errors.append(f"recv: a record of {n} bytes is not whole blocks")
                return
            if isinstance(eng, _Evp):
                rec, tag = await eng.run(rec)
                macs.append(tag)
            elif isinstance(eng, _DevCrypto):
                err, rec, tag = await eng.run(p, rec)
                if err:
                    errors.append(f"CIOCCRYPT: {errorname(err)}")
                    return
                macs.append(tag)
            got.extend(rec)
            arrivals.append((kernel.now, len(got)))
            warm(len(got))
        close_window()
        await kernel.sys_close(p, fd)
        if isinstance(eng, _DevCrypto):
            await eng.close(p)

    if rx:
        t = partner.source(PORT, wire_data, write_size=65536)
        proc = kernel.fork("recv", receiver)
    else:
        t = Transfer()
        partner.kernel.fork("sink", sink, t)
        proc = kernel.fork("send", sender)
    deadline = host.now + int(timeout_s * 1e12)
    while not (proc.task.done() and t.done_ps is not None) and host.now < deadline \
            and not (proc.task.done() and errors):
        await host.sleep(min(1_000_000_000, deadline - host.now))     # 1 ms steps
    if proc.task.done():
        proc.task.result()
    else:
        errors.append("the transfer did not end in time")
    # frames still on the wire (the last ACKs of the FINs) reach their end,
    # so the counts of frames sent and received agree
    await host.sleep(DRAIN_PS)
    link.close()

    # ------------------------------------------------------------ checks
    received = bytes(t.data) if not rx else bytes(got)
    if so:
        exact = (bytes(decoded) if not rx else received) == plain
    elif rx:
        exact = received == padded
    else:
        exact = received == wire_data
    if encrypt in ("evp", "devcrypto") and not rx and exact:
        d = Cipher(TripleDES(key), modes.CBC(iv0)).decryptor()
        exact = (d.update(received) + d.finalize())[:nbytes] == plain
    recs = _records(wire_data, write_size) if not so else _records(plain, write_size)
    if so:
        # every record's MAC checked by RecordReader (tx) or by the socket (rx)
        mac_ok = exact and (rx or reader.records > 0)
    else:
        mac_ok = encrypt == "none" or (len(macs) == len(recs) and all(
            m == hmac.new(mackey, r, hashlib.sha1).digest()[:MAC_BYTES] for m, r in zip(macs, recs)))
    if not exact:
        errors.append(f"the partner got {len(received)} bytes that differ from the "
                      f"{want_total} expected" if not rx else
                      "the bytes read differ from the file")
    if not mac_ok:
        errors.append("a MAC differs from hmac HMAC-SHA1 over the ciphertext")
    for e in t.errors:
        errors.append(f"partner {e[0]}: {errorname(e[1])}")

    # ----------------------------------------------------------- figures
    start, end = window["start"], window["end"]
    if start is None or end is None:
        edges.setdefault("start", counters())
        start = window["start"] = start or edges["start"]["t"]
        window["end"] = None
        close_window()
        end = window["end"]
    secs = max(1, end - start) / 1e12
    a, b = edges["start"], edges["end"]
    cpu = {k: v - a["cpu"].get(k, 0) for k, v in b["cpu"].items()}
    cpu_total = sum(cpu.values()) or 1
    bus = edges["bus"]
    irq = {name: (n - a["irq"].get(name, 0)) / secs for name, n in b["irq"].items()
           if n - a["irq"].get(name, 0)}
    wire = {d: sum(wire_time(n) for s, dd, n in link.log if dd == i and start <= s < end)
            / (secs * 1e12) for i, d in enumerate(("tx", "rx"))}
    mbps = 8 * nbytes / secs / 1e6
    tcp = {k: v for k, v in stack.tcp.stats.items()}
    steady = _steady(arrivals, start, warmup_bytes)
    if "warm" in edges and edges["end"]["t"] > edges["warm"]["t"]:
        w = edges["warm"]
        wcpu = {k: v - w["cpu"].get(k, 0) for k, v in b["cpu"].items()}
        wtotal = sum(wcpu.values()) or 1
        wsecs = (b["t"] - w["t"]) / 1e12
        steady["steady_cpu_busy"] = 1 - wcpu.get("idle", 0) / wtotal
        steady["steady_cpu_by_kind"] = {k: v / wtotal for k, v in sorted(wcpu.items()) if v}
        steady["steady_interrupts_per_s"] = {
            name: (n - w["irq"].get(name, 0)) / wsecs for name, n in b["irq"].items()
            if n - w["irq"].get(name, 0)}
        # after the warm-up: counts over the plaintext bytes delivered then
        # (steady_bytes), so a bench scales them to any file size
        steady["steady_ocf_requests"] = {k: v - w["ocf"].get(k, 0) for k, v in b["ocf"].items()}
        steady["steady_records"] = b["records"] - w["records"] if so else None
        steady["steady_interrupts"] = {name: n - w["irq"].get(name, 0)
                                       for name, n in b["irq"].items()
                                       if n - w["irq"].get(name, 0)}
        steady["steady_cpu_s"] = {k: v / 1e12 for k, v in sorted(wcpu.items()) if v}
        steady["steady_pci_utilisation"] = edges["steady_bus"]["pci_utilisation"]
        steady["steady_wire_utilisation"] = {
            d: sum(wire_time(n) for s, dd, n in link.log if dd == i and w["t"] <= s < end)
            / (b["t"] - w["t"]) for i, d in enumerate(("tx", "rx"))}
    ocf = {k: v - a["ocf"].get(k, 0) for k, v in b["ocf"].items()}
    nrec = (b["records"] - a["records"]) if so else None
    result = {
        "ok": not errors and exact and mac_ok and not kernel.catchalls
        and not host.checker_errors() and nic.bad_fcs == 0,
        "bytes": nbytes, "write_size": write_size, "encrypt": encrypt, "rx": rx,
        "sockbuf": stack.sendspace,
        "direction": "partner → host" if rx else "host → partner",
        "writes": len(recs), "exact": exact, "mac_ok": mac_ok,
        "sim_time_s": secs, "mbps": mbps, **steady,
        "seconds_per_100mb": 100 * MB * 8 / (mbps * 1e6) if mbps else None,
        "cpu_busy": 1 - cpu.get("idle", 0) / cpu_total,
        "cpu_by_kind": {k: v / cpu_total for k, v in sorted(cpu.items()) if v},
        "interrupts_per_s": irq,
        "pci_utilisation": bus["pci_utilisation"], "by_master": bus["by_master"],
        "breakdown": bus["breakdown"],
        "wire_utilisation": wire,
        "frames": {"tx": link.a.frames, "rx": link.b.frames},
        "tcp": {k: tcp.get(k, 0) for k in ("sndtotal", "rcvtotal", "rexmttimeo", "fastrexmt",
                                           "rcvdupack", "rcvoopack", "sndbyte", "rcvbyte")},
        "partner_tcp": {k: partner.stack.tcp.stats.get(k, 0)
                        for k in ("rexmttimeo", "fastrexmt", "rcvoopack", "rcvduppack")},
        "nic": sc.stats(), "nic_bad_fcs": nic.bad_fcs,
        "wire_stats": host.wire_stats(sc.dev.slot),
        "fault_events": {"tx": link.a.faults.events if link.a.faults else [],
                         "rx": link.b.faults.events if link.b.faults else []},
        "errors": errors[:5], "kernel_catchalls": kernel.catchalls,
        "checker": host.checker_errors(), "profile": profile,
        "devices": [f"{d.slot}:{d.name}" for d in system.devices],
        "pcap": pcap,
        "ocf_requests": ocf["total"],
        "ocf_by_driver": {k: v for k, v in ocf.items() if k != "total" and v},
        # the keys in hex, so a capture can be decoded by another peer
        "so_crypt": {"framing": framing, "mode": mode or "whole-frame", "one_pass": one_pass,
                     "record_size": record_size or (write_size if mode == "piecemeal"
                                                    else so_crypt_record_limit(framing)),
                     "key": key.hex(), "iv": iv0.hex(), "mac_key": mackey.hex(),
                     "records": nrec, "records_per_s": nrec / secs if nrec else None,
                     "ocf_requests_per_record": ocf["total"] / nrec if nrec else None}
        if so else None,
    }
    return result


def _claimed(kernel) -> dict[str, int]:
    """Interrupts claimed so far, by handler (device) name."""
    out: dict[str, int] = {}
    for st in kernel.intr_stats().values():
        for name, h in st["handlers"].items():
            out[name] = out.get(name, 0) + h["claimed"]
    return out


def _steady(arrivals: list[tuple[int, int]], start: int | None, warmup: int) -> dict:
    """The delivery rate after the first ``warmup`` bytes: from the first read
    that reached them to the last read (``steady_mbps``), and the time the
    warm-up took from the window's start (``warmup_s``)."""
    first = next(((t, n) for t, n in arrivals if n >= warmup), None) if warmup else \
        ((start, 0) if start is not None else None)
    if first is None or not arrivals or arrivals[-1][0] <= first[0]:
        return {"steady_mbps": None, "warmup_bytes": warmup, "warmup_s": None,
                "steady_bytes": 0, "steady_spread": None}
    (t0, n0), (t1, n1) = first, arrivals[-1]
    half = next(((t, n) for t, n in arrivals if n >= (n0 + n1) / 2 and t > t0), None)
    spread = None
    if half is not None and t0 < half[0] < t1:
        r1 = (half[1] - n0) / (half[0] - t0)
        r2 = (n1 - half[1]) / (t1 - half[0])
        spread = abs(r1 - r2) / ((n1 - n0) / (t1 - t0))
    return {"steady_mbps": 8 * (n1 - n0) / ((t1 - t0) / 1e12) / 1e6, "warmup_bytes": n0,
            "warmup_s": (t0 - (start or t0)) / 1e12, "steady_bytes": n1 - n0,
            "steady_spread": spread}


# ------------------------------------------------------------- SO_CRYPT records
#: framings ``ocfsim net --so-crypt`` takes (netinet.socrypt.FRAMINGS)
SO_CRYPT_FRAMINGS = ("tls1.0", "ssh2", "paper")
#: RFC 2246 §6.2.1: application_data, version {3, 1}; FIPS 180-1: SHA-1 is 20 bytes
_TLS_APPDATA, _TLS10, _SHA1 = 23, b"\x03\x01", 20


class RecordError(ValueError):
    """A record the far end cannot accept (bad MAC, padding or length)."""


class RecordReader:
    """The far end's decoder of a SO_CRYPT stream, written from the RFCs and
    independent of netinet/socrypt.py: ``feed(bytes)`` returns the
    plaintexts of the records completed so far, and raises
    :class:`RecordError` on a bad one.

    * ``tls1.0`` (RFC 2246 §6.2.3.1-2): a 5-byte clear header (type 23,
      version 03 01, length), then 3DES-CBC over data | HMAC-SHA1 | padding |
      padding length, each padding byte equal to the length; the MAC covers
      seq(8) | type | version | data length(2) | data; the IV of a record is
      the previous record's last ciphertext block, so one CBC decryptor runs
      across the records' encrypted parts.
    * ``paper``: the same layout with the MAC over the data alone (the
      socket-crypto paper §IV-B as written).
    * ``ssh2`` (RFC 4253 §6, §6.3, §6.4): E(packet_length(4) | padding_length
      | payload | padding ≥ 4) | MAC(seq(4) | packet), the chain running on
      across packets, the whole packet a multiple of 8."""

    def __init__(self, framing: str, key: bytes, iv: bytes, mac_key: bytes,
                 mac_len: int = _SHA1, seq: int = 0):
        self.framing, self.mac_key, self.mac_len, self.seq = framing, mac_key, mac_len, seq
        self.dec = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
        self.buf = bytearray()
        self.records = 0
        self._first = None              # ssh2: the decrypted first block of a packet

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self.mac_key, data, hashlib.sha1).digest()[:self.mac_len]

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while True:
            rec = self._ssh() if self.framing == "ssh2" else self._tls()
            if rec is None:
                return out
            out.append(rec)
            self.records += 1
            self.seq = (self.seq + 1) % (1 << (32 if self.framing == "ssh2" else 64))

    def _tls(self) -> bytes | None:
        b = self.buf
        if len(b) < 5:
            return None
        rtype, version, clen = b[0], bytes(b[1:3]), int.from_bytes(b[3:5], "big")
        if rtype != _TLS_APPDATA or version != _TLS10:
            raise RecordError(f"record {self.records}: header {bytes(b[:5]).hex()}")
        if clen % BLOCK or clen < _SHA1 + 1:
            raise RecordError(f"record {self.records}: length {clen}")
        if len(b) < 5 + clen:
            return None
        pt = self.dec.update(bytes(b[5:5 + clen]))
        del b[:5 + clen]
        pad = pt[-1]
        if pad + 1 + _SHA1 > clen or pt[-1 - pad:] != bytes([pad]) * (pad + 1):
            raise RecordError(f"record {self.records}: bad padding")
        n = clen - _SHA1 - pad - 1
        data, tag = pt[:n], pt[n:n + _SHA1]
        ad = b"" if self.framing == "paper" else \
            struct.pack("!QB2sH", self.seq, _TLS_APPDATA, _TLS10, n)
        if not hmac.compare_digest(tag, self._mac(ad + data)):
            raise RecordError(f"record {self.records}: bad MAC")
        return data

    def _ssh(self) -> bytes | None:
        b = self.buf
        if self._first is None:
            if len(b) < BLOCK:
                return None
            self._first = self.dec.update(bytes(b[:BLOCK]))
        plen = int.from_bytes(self._first[:4], "big")
        if (4 + plen) % BLOCK or plen < 1 + 4 or plen > 35000:   # RFC 4253 §6.1
            raise RecordError(f"packet {self.records}: packet_length {plen}")
        total = 4 + plen + self.mac_len
        if len(b) < total:
            return None
        packet = self._first + self.dec.update(bytes(b[BLOCK:4 + plen]))
        tag = bytes(b[4 + plen:total])
        del b[:total]
        self._first = None
        padlen = packet[4]
        if not 4 <= padlen <= plen - 1:
            raise RecordError(f"packet {self.records}: padding_length {padlen}")
        if not hmac.compare_digest(tag, self._mac(struct.pack("!I", self.seq) + packet)):
            raise RecordError(f"packet {self.records}: bad MAC")
        return packet[5:4 + plen - padlen]


def encode_records(framing: str, plain: bytes, size: int, key: bytes, iv: bytes,
                   mac_key: bytes, rng: random.Random, mac_len: int = _SHA1,
                   seq: int = 0) -> bytes:
    """What a SO_CRYPT sender puts on the wire for ``plain`` in records of
    ``size`` bytes (the partner's side of ``rx``), by the rules
    :class:`RecordReader` checks: TLS padding the least that fills the block,
    SSH padding 4..11 random bytes (paramiko's ``3 + 8 - (n + 8) % 8``)."""
    enc = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    out = bytearray()
    for data in _records(plain, size):
        n = len(data)
        if framing == "ssh2":
            pad = 3 + BLOCK - (n + 8) % BLOCK
            packet = struct.pack("!IB", 1 + n + pad, pad) + data + rng.randbytes(pad)
            tag = hmac.new(mac_key, struct.pack("!I", seq) + packet, hashlib.sha1).digest()
            out += enc.update(packet) + tag[:mac_len]
            seq = (seq + 1) % (1 << 32)
        else:
            pad = -(n + _SHA1 + 1) % BLOCK
            ad = b"" if framing == "paper" else struct.pack("!QB2sH", seq, _TLS_APPDATA, _TLS10, n)
            tag = hmac.new(mac_key, ad + data, hashlib.sha1).digest()
            body = data + tag + bytes([pad]) * (pad + 1)
            out += struct.pack("!B2sH", _TLS_APPDATA, _TLS10, len(body)) + enc.update(body)
            seq = (seq + 1) % (1 << 64)
    return bytes(out)


#: ``Transform(mode=...)`` values (the prototype's piecemeal build, or one record per write)
SO_CRYPT_MODES = ("whole-frame", "piecemeal")


def so_crypt_record_limit(framing: str) -> int:
    """The most plaintext in one record: 2^14 (RFC 2246 §6.2.1), SSH 32768 (RFC 4253 §6.1)."""
    return socrypt.SSH_MAX_PAYLOAD if framing == "ssh2" else socrypt.TLS_MAX_PLAINTEXT


def _ocf_counts(crypto) -> dict[str, int]:
    """OCF requests dispatched so far (``total``) and handed to each driver."""
    out = {"total": crypto.dispatched}
    for d in crypto.drivers:
        if d is not None:
            name = getattr(d.driver, "name", None) or ("cryptosoft" if d.software
                                                        else f"driver{d.cid}")
            out[name] = out.get(name, 0) + d.stats.operations
    return out
