"""SO_CRYPT: records built in the kernel, the crypto done through OCF.

The socket option of Burnside & Keromytis (the socket-crypto paper, §III):
the application gives the socket a transform (framing, cipher and MAC with
their keys, IV, starting sequence number, direction) and from then on
``send()`` takes application bytes and puts *records* on the connection,
built and protected in the kernel. The descriptor is modelled on that paper
and on FreeBSD's ``TCP_TXTLS_ENABLE`` (``struct tls_enable``: keys, IV,
sequence number; ``sys/kern/uipc_ktls.c``).

Framings (what goes on the wire for ``n`` plaintext bytes):

* ``tls1.0`` — RFC 2246 §6.2.3.2, TLS_RSA_WITH_3DES_EDE_CBC_SHA:
  ``type | 03 01 | len`` in clear, then 3DES-CBC over
  ``data | HMAC-SHA1 | padding | padding_length``; the MAC covers the
  13-byte pseudo-header ``seq(8) | type | 03 01 | n(2)`` and the data
  (RFC 2246 §6.2.3.1); every padding byte holds the padding length and the
  total is a multiple of 8; the IV of a record is the last ciphertext block
  of the one before (§6.2.3.2).
* ``ssh2`` — RFC 4253 §6: ``E(packet_length(4) | padding_length(1) |
  payload | random padding) | MAC``; padding 4..255 bytes to a multiple of
  8 (paramiko's choice: ``3 + 8 - (n + 8) % 8``, 4..11 bytes); the MAC
  (hmac-sha1 20 bytes, hmac-sha1-96 its first 12) covers ``seq(4) |
  plaintext packet`` and is sent in clear; the CBC chain runs on from
  packet to packet (§6.3).
* ``paper`` — the paper's simplified layout (§IV-B as written): the TLS
  header in clear, the MAC over the data only (no sequence number, no
  pseudo-header), encryption over data, MAC and padding. Real TLS peers
  reject it (their MAC covers the pseudo-header).

How the record is built (whole frame: one record, one OCF request or two):
the user's bytes are copied (``copyin``, the one copy ``sosend`` does
anyway) into mbuf clusters behind the clear header; the trailer (MAC
space, padding) follows; the OCF buffer is a segment list over a small
kernel buffer holding the MAC's pseudo-header (TLS seq/type/version/length,
SSH seq; not sent) and the clusters, as FreeBSD's ``ktls_ocf.c`` puts
``struct tls_mac_data`` in front of the payload. Both protocols MAC the
plaintext and then encrypt. A driver that can do that order
(``CRYPTOCAP_F_MAC_ENCRYPT``; cryptosoft, which runs the descriptors in
order) gets one request with the MAC descriptor first; a card that only
does the IPsec order (encrypt, then MAC over the ciphertext: the BCM5820
and the Hifn 7751, see docs/bcm5820.md, docs/hifn7751.md) gets two
requests, MAC then encrypt, as ``ktls_ocf.c`` does for CBC. The BCM5820
returns only a 12-byte MAC, so a 20-byte HMAC session cannot live on it: a
separate MAC session is opened (it lands on a driver that can, cryptosoft
at worst) and the cipher session stays on the card (FreeBSD's ``mac_sid``).

CPU: ``socrypt`` work per record (framing, padding, bookkeeping) from the
profile key ``socrypt.record`` when the profile has it, else
:data:`RECORD_CYCLES`; the copy and OCF's own costs are charged as usual
(``copy``, ``ocf``, ``crypto``, ``driver``).

Piecemeal mode (``mode="piecemeal"``, the paper's prototype): a record of
``record_size`` bytes is opened with its header and encrypted piece by
piece as writes bring its bytes (one cipher request per piece, the CBC
chain carried in the last ciphertext block, a partial block held in the
kernel); neither card can hand back a partial HMAC state, so the MAC is
computed incrementally in the kernel's software HMAC on the host CPU
(charged at cryptosoft's costs). Receive: :class:`SoCryptRx`. See
docs/so_crypt.md.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, replace
from typing import Any, Optional

from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_MAC_ENCRYPT_ALL,
                            CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC, CRYPTOCAP_F_MAC_ENCRYPT,
                            CRYPTOCAP_F_SOFTWARE, CRYPTOCAP_F_TLS_ONEPASS, CryptoBuf,
                            CryptoDesc, CryptoIni, CryptoOp)
from sim.kernel import PSOCK
from sim.kernel.errno import EAGAIN, EBADMSG, EINVAL, EMSGSIZE, ENOBUFS, ENOMEM

from .mbuf import MCLBYTES

__all__ = ["SO_CRYPT", "Transform", "SoCryptTx", "SoCryptRx", "attach", "SOL_TLS",
           "TLS_GET_RECORD_TYPE", "TLS_SET_RECORD_TYPE", "TLS_MAX_CIPHERTEXT", "SSH_MAX_PACKET", "TX", "RX", "BOTH",
           "WHOLE_FRAME", "PIECEMEAL", "MODES", "TLS_MAX_PLAINTEXT", "SSH_MAX_PAYLOAD",
           "RECORD_CYCLES", "PIECE_CYCLES"]

#: the option number: OpenBSD 3.x's sys/socket.h uses SOL_SOCKET options up to
#: 0x1008 (SO_TYPE) and 0x0400 (SO_REUSEPORT) etc.; the paper names no value,
#: so 0x1020 is ours
SO_CRYPT = 0x1020
TX, RX, BOTH = "tx", "rx", "both"
WHOLE_FRAME, PIECEMEAL = "whole-frame", "piecemeal"
MODES = (WHOLE_FRAME, PIECEMEAL)
FRAMINGS = ("tls1.0", "ssh2", "paper")
TLS_MAX_PLAINTEXT = 1 << 14          # RFC 2246 §6.2.1: length <= 2^14
SSH_MAX_PAYLOAD = 32768              # RFC 4253 §6.1: uncompressed payload >= 32768 supported
TLS_HDR = 5                          # type, version (2), length (2): RFC 2246 §6.2.1
TLS_APPLICATION_DATA = 23            # RFC 2246 §6.2.1 ContentType
TLS10_VERSION = b"\x03\x01"          # RFC 2246 §6.2.1 ProtocolVersion {3, 1}
SHA1_LEN = 20                        # FIPS 180-1
DES_BLOCK = 8                        # FIPS 46-3: 64-bit blocks
#: socrypt work per record (framing, header, padding, OCF request set-up):
#: estimate ~600 cycles, of the order of one sosend pass plus a cryptodev op
RECORD_CYCLES = 600
#: socrypt work per piecemeal piece besides the record's (carry of the last
#: partial block, request set-up): estimate ~300 cycles, half a record's
PIECE_CYCLES = 300


@dataclass(frozen=True)
class Transform:
    """The SO_CRYPT descriptor (``setsockopt(fd, SOL_SOCKET, SO_CRYPT, t)``).

    ``framing``: ``tls1.0`` | ``ssh2`` | ``paper``; cipher 3DES-CBC with
    ``key`` (24 bytes) and ``iv`` (8); MAC HMAC-SHA1 with ``mac_key``,
    ``mac_len`` 20 (12 = hmac-sha1-96, SSH only); ``seq`` the first record's
    sequence number; ``direction`` tx | rx | both; ``record_size`` the most
    plaintext per record (TLS ≤ 2^14, SSH payload ≤ 32768); ``rtype`` the
    TLS content type of the records sent (application_data); ``mode``
    ``whole-frame`` (a record is built when all its bytes are in the
    kernel) or ``piecemeal`` (the socket paper's prototype: a record of
    ``record_size`` bytes is encrypted piece by piece as the bytes arrive,
    the MAC carried incrementally on the host CPU); ``one_pass`` (TLS
    framings, whole frame): one OCF request per record with
    ``CRD_F_MAC_ENCRYPT_ALL`` (the driver MACs, pads and encrypts) where the
    session's driver has ``CRYPTOCAP_F_TLS_ONEPASS``, else the usual path."""

    framing: str
    key: bytes
    iv: bytes
    mac_key: bytes
    mac_len: int = SHA1_LEN
    seq: int = 0
    direction: str = BOTH
    record_size: int = TLS_MAX_PLAINTEXT
    rtype: int = TLS_APPLICATION_DATA
    mode: str = WHOLE_FRAME
    one_pass: bool = False

    def check(self) -> Optional[str]:
        """None when valid, else why not (setsockopt answers EINVAL)."""
        if self.framing not in FRAMINGS:
            return f"framing must be one of {FRAMINGS}"
        for name, v, n in (("key", self.key, 24), ("iv", self.iv, DES_BLOCK)):
            if type(v) is not bytes or len(v) != n:
                return f"{name} must be {n} bytes"
        if type(self.mac_key) is not bytes or not 0 < len(self.mac_key) <= 64:
            return "mac_key must be 1..64 bytes (one HMAC-SHA1 block, RFC 2104 §2)"
        if self.mac_len not in ((SHA1_LEN, 12) if self.framing == "ssh2" else (SHA1_LEN,)):
            return "mac_len must be 20 (or 12, hmac-sha1-96, for ssh2)"
        seqbits = 32 if self.framing == "ssh2" else 64
        if type(self.seq) is not int or not 0 <= self.seq < 1 << seqbits:
            return f"seq must fit {seqbits} bits"
        if self.direction not in (TX, RX, BOTH):
            return "direction must be tx, rx or both"
        limit = SSH_MAX_PAYLOAD if self.framing == "ssh2" else TLS_MAX_PLAINTEXT
        if type(self.record_size) is not int or not 1 <= self.record_size <= limit:
            return f"record_size must be 1..{limit}"
        if type(self.rtype) is not int or not 0 <= self.rtype <= 255:
            return "rtype must be a byte"
        if self.mode not in MODES:
            return f"mode must be one of {MODES}"
        if type(self.one_pass) is not bool or (self.one_pass and self.framing == "ssh2"):
            return "one_pass is a bool, for the TLS framings only (SSH does not encrypt its MAC)"
        return None

    @property
    def seq_mod(self) -> int:
        """Sequence numbers wrap at 2^32 (SSH, RFC 4253 §6.4) or 2^64 (TLS, RFC 2246 §6.1)."""
        return 1 << (32 if self.framing == "ssh2" else 64)


def attach(stack: Any, crypto: Any) -> None:
    """Give a host's stack the OCF framework SO_CRYPT uses (``crypto_init`` order)."""
    stack.socrypt_crypto = crypto


def tls_padding(n: int, mac_len: int = SHA1_LEN) -> int:
    """Padding bytes p so (n + mac + p + 1) % 8 == 0, the least (RFC 2246 §6.2.3.2)."""
    return -(n + mac_len + 1) % DES_BLOCK


def ssh_padding(n: int) -> int:
    """RFC 4253 §6 padding for an n-byte payload: paramiko's 3 + bs - (n + 8) % bs."""
    return 3 + DES_BLOCK - (n + 8) % DES_BLOCK


class _Wait:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


class _Open:
    """A piecemeal record in progress: its length, what has been taken, the
    running HMAC (software: neither card exports a partial HMAC state) and
    the sequence number it was opened with."""

    __slots__ = ("n", "done", "mac", "seq", "hdr", "prefix", "pad", "padding", "adlen")

    def __init__(self, n: int, seq: int):
        self.n, self.done, self.seq = n, 0, seq
        self.mac: Any = None
        self.hdr = self.prefix = self.padding = b""
        self.pad = self.adlen = 0


class _SoCryptSide:
    """What both directions of a socket's SO_CRYPT state hold: the
    transform, its sequence number and chaining IV, the cipher and MAC
    parameters OCF sessions are made from, and the per-record cost."""

    def __init__(self, so: Any, t: Transform, crypto: Any):
        self.so, self.t, self.crypto = so, t, crypto
        self.kernel = so.stack.kernel
        self.seq = t.seq
        self.iv = t.iv
        self.enc_ini = CryptoIni(CRYPTO_3DES_CBC, 192, t.key)
        self.mac_ini = CryptoIni(CRYPTO_SHA1_HMAC, 8 * len(t.mac_key), t.mac_key, mlen=t.mac_len)
        self.records = 0
        self.requests = 0
        self.c_record = _cost(self.kernel.profile, "socrypt.record", RECORD_CYCLES)


class SoCryptTx(_SoCryptSide):
    """The transmit side of one socket's SO_CRYPT state."""

    def __init__(self, so: Any, t: Transform, crypto: Any):
        super().__init__(so, t, crypto)
        #: the TLS content type of the records being built: the transform's,
        #: or one ``sendmsg`` gave with TLS_SET_RECORD_TYPE for its bytes
        self.rtype = t.rtype
        self.enc_sid: Optional[int] = None
        self.mac_sid: Optional[int] = None
        self.pieces = 0
        self.onepass = 0                 # records done as one CRD_F_MAC_ENCRYPT_ALL request
        #: piecemeal: the record being built, and the plaintext of its last
        #: partial cipher block (two halves of one kernel buffer, so a failed
        #: piece leaves the held bytes as they were)
        self.open_rec: Optional[_Open] = None
        self.carry_buf: Optional[int] = None
        self.carry_half = 0
        self.ncarry = 0
        p = self.kernel.profile
        self.c_piece = _cost(p, "socrypt.piece", PIECE_CYCLES)
        # the incremental MAC runs the kernel's C HMAC-SHA1 on the host CPU:
        # cryptosoft's own per-request and per-byte costs
        self.c_mac_op = p.cost("cryptosoft.sha1_hmac.op")
        self.c_mac_byte = p.per_byte("cryptosoft.sha1_hmac.byte")

    @property
    def piecemeal(self) -> bool:
        return self.t.mode == PIECEMEAL

    # ------------------------------------------------------------ sessions
    async def open(self) -> int:
        """One session with both algorithms; if the chosen driver refuses it
        (the BCM5820 with a 20-byte MAC), a cipher and a MAC session.
        Piecemeal needs only the cipher session (its MAC is software)."""
        if self.enc_sid is not None:
            return 0
        if self.piecemeal:
            if self.carry_buf is None:
                self.carry_buf = self.kernel.malloc(2 * DES_BLOCK)
                if self.carry_buf is None:
                    return ENOMEM
            err, sid = await self.crypto.newsession([self.enc_ini])
            if not err:
                self.enc_sid = sid
            return err
        err, sid = await self.crypto.newsession([self.enc_ini, self.mac_ini])
        if not err:
            self.enc_sid = self.mac_sid = sid
            return 0
        err, esid = await self.crypto.newsession([self.enc_ini])
        if err:
            return err
        err, msid = await self.crypto.newsession([self.mac_ini])
        if err:
            # the card that took the cipher refuses this MAC too (OCF offers a
            # chain to one driver, hardware first): the software driver then
            err, msid = await self.crypto.newsession([self.mac_ini],
                                                     need_flags=CRYPTOCAP_F_SOFTWARE)
        if err:
            await self.crypto.freesession(esid)
            return err
        self.enc_sid, self.mac_sid = esid, msid
        return 0

    async def close(self) -> None:
        for sid in {self.enc_sid, self.mac_sid} - {None}:
            await self.crypto.freesession(sid)
        self.enc_sid = self.mac_sid = None
        if self.carry_buf is not None:
            self.kernel.free(self.carry_buf)
            self.carry_buf = None

    def one_pass(self) -> bool:
        """Can one request do MAC-then-encrypt (the driver holds both, in that order)?"""
        if self.enc_sid != self.mac_sid:
            return False
        drv = self.crypto._driver(self.enc_sid >> 32)
        return drv is not None and bool(drv.flags & CRYPTOCAP_F_MAC_ENCRYPT)

    def tls_onepass(self) -> bool:
        """Does the session's driver take CRD_F_MAC_ENCRYPT_ALL (a whole TLS record)?"""
        if self.enc_sid != self.mac_sid or self.enc_sid is None:
            return False
        drv = self.crypto._driver(self.enc_sid >> 32)
        return drv is not None and bool(drv.flags & CRYPTOCAP_F_TLS_ONEPASS)

    async def _run(self, descs: list[CryptoDesc], buf: CryptoBuf, which: str) -> int:
        """Dispatch one request and sleep until its callback; after an OCF
        migration (EAGAIN) keep the new session and submit again."""
        k = self.kernel
        w = _Wait()

        def cb(crp: CryptoOp) -> None:
            w.done = True
            k.wakeup(w)
        crp = CryptoOp(sid=self.enc_sid if which == "enc" else self.mac_sid,
                       ilen=buf.length, olen=buf.length, buf=buf, desc=descs, callback=cb)
        while True:
            await k.charge("ocf", self.crypto.c_dispatch)
            err = self.crypto.dispatch(crp)
            if err:
                return err
            self.requests += 1
            while not w.done:
                await k.tsleep(w, PSOCK, "socrypt")
            if crp.etype != EAGAIN:
                return crp.etype
            w.done = False
            err = await self._migrated(crp.sid, which, len({d.ini.alg for d in descs}))
            if err:
                return err

    async def _migrated(self, nsid: int, which: str, nalgs: int) -> int:
        """OCF moved a session (its driver went away): the new one holds the
        algorithms of the request that found out. A shared session moved by
        a one-algorithm request leaves the other algorithm without one: it
        gets its own (FreeBSD's separate ``mac_sid``)."""
        shared = self.enc_sid == self.mac_sid and self.mac_sid is not None
        if shared and nalgs == 2:
            self.enc_sid = self.mac_sid = nsid
            return 0
        if shared:
            other = self.mac_ini if which == "enc" else self.enc_ini
            err, osid = await self.crypto.newsession([other])
            if err:
                await self.crypto.freesession(nsid)
                self.enc_sid = self.mac_sid = None
                return err
            self.enc_sid, self.mac_sid = (nsid, osid) if which == "enc" else (osid, nsid)
        elif which == "enc":
            self.enc_sid = nsid
        else:
            self.mac_sid = nsid
        return 0

    # ------------------------------------------------------------ one record
    def layout(self, n: int) -> tuple[bytes, bytes, int, int]:
        """(clear header, MAC pseudo-header, cipher start in the wire record,
        wire length) for n plaintext bytes; the trailer after the data is
        MAC (+ padding + length for TLS)."""
        t = self.t
        if t.framing == "ssh2":
            pad = ssh_padding(n)
            plen = 1 + n + pad
            return b"", struct.pack("!I", self.seq), 0, 4 + plen + t.mac_len
        pad = tls_padding(n, t.mac_len)
        clen = n + t.mac_len + pad + 1
        hdr = struct.pack("!B2sH", self.rtype, TLS10_VERSION, clen)
        ad = b"" if t.framing == "paper" else \
            struct.pack("!QB2sH", self.seq, self.rtype, TLS10_VERSION, n)
        return hdr, ad, TLS_HDR, TLS_HDR + clen

    def _clusters(self, wlen: int) -> Optional[list]:
        """Clusters for ``wlen`` wire bytes, or None (ENOBUFS)."""
        pool = self.so.stack.pool
        mbufs = []
        left = wlen
        while left:
            m = pool.get()
            if m is None or not pool.clget(m):
                if m is not None:
                    pool.free(m)
                self._free(mbufs)
                return None
            m.len = min(MCLBYTES, left)
            left -= m.len
            mbufs.append(m)
        return mbufs

    def _free(self, mbufs: list) -> None:
        for x in mbufs:
            self.so.stack.pool.free(x)

    async def _copyin(self, view: memoryview, mbufs: list, off: int, n: int) -> int:
        """``uiomove`` of ``view[:n]`` into the clusters at wire offset ``off``."""
        done = 0
        while done < n:
            i, pos = divmod(off, MCLBYTES)
            take = min(MCLBYTES - pos, n - done)
            err = await self.kernel.copyin(view[done:done + take], mbufs[i].data + pos, take)
            if err:
                return err
            off += take
            done += take
        return 0

    async def record(self, buf: Any, start: int, n: int) -> tuple[int, list]:
        """Build one record from user bytes ``buf[start:start+n]``: (errno, mbufs)."""
        k, t = self.kernel, self.t
        await k.charge("socrypt", self.c_record)
        hdr, ad, cstart, wlen = self.layout(n)
        # the plaintext image of the wire record, header and data offsets
        if t.framing == "ssh2":
            pad = ssh_padding(n)
            head = struct.pack("!IB", 1 + n + pad, pad)        # packet_length, padding_length
            trailer = bytes(k.random.getrandbits(8) for _ in range(pad)) + bytes(t.mac_len)
            data_off = 5
            mac_off = 5 + n + pad                 # in the wire record
            ctext_len = mac_off
        else:
            pad = tls_padding(n, t.mac_len)
            head = hdr
            trailer = bytes(t.mac_len) + bytes([pad]) * (pad + 1)
            data_off = TLS_HDR
            mac_off = TLS_HDR + n
            ctext_len = wlen - TLS_HDR
        mbufs = self._clusters(wlen)
        if mbufs is None:
            return ENOBUFS, []
        segs = [(m.data, m.len) for m in mbufs]
        rec = CryptoBuf(k.memory, segs)
        rec.write(0, head)
        # the user's bytes into the clusters (copyin, cluster by cluster)
        view = memoryview(buf).cast("B")
        err = await self._copyin(view[start:start + n], mbufs, data_off, n)
        view.release()
        if err:
            self._free(mbufs)
            return err, []
        rec.write(data_off + n, trailer)
        adaddr = None
        if ad:
            adaddr = k.malloc(len(ad))
            if adaddr is None:
                self._free(mbufs)
                return ENOMEM, []
            k.memory.write(adaddr, ad)
        try:
            # the OCF buffer: [pseudo-header] + the wire record from the cipher start
            body = CryptoBuf(k.memory, ([(adaddr, len(ad))] if ad else [])
                             + _tail(segs, cstart))
            a = len(ad)
            if t.framing == "ssh2":
                mac = CryptoDesc(self.mac_ini, skip=0, len=a + ctext_len, inject=a + mac_off)
                enc = CryptoDesc(self.enc_ini, skip=a, len=ctext_len,
                                 flags=CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, iv=self.iv)
            else:
                mac = CryptoDesc(self.mac_ini, skip=a, len=n, inject=a + n) if not ad else \
                    CryptoDesc(self.mac_ini, skip=0, len=a + n, inject=a + n)
                enc = CryptoDesc(self.enc_ini, skip=a, len=ctext_len,
                                 flags=CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, iv=self.iv)
            if t.one_pass and self.tls_onepass():
                enc.flags |= CRD_F_MAC_ENCRYPT_ALL
                self.onepass += 1
                err = await self._run([mac, enc], body, "enc")
            elif self.one_pass():
                err = await self._run([mac, enc], body, "enc")
            else:
                err = await self._run([mac], body, "mac")
                if not err:
                    err = await self._run([enc], body, "enc")
        finally:
            if adaddr is not None:
                k.free(adaddr)
        if err:
            self._free(mbufs)
            return err, []
        self.iv = rec.read(cstart + ctext_len - DES_BLOCK, DES_BLOCK)
        self.seq = (self.seq + 1) % t.seq_mod
        self.records += 1
        return 0, mbufs

    # ------------------------------------------------------------ piecemeal
    def remaining(self) -> int:
        """Plaintext bytes the open piecemeal record still takes (0: none open)."""
        o = self.open_rec
        return 0 if o is None else o.n - o.done

    def _begin(self, n: int) -> _Open:
        """Open a piecemeal record of ``n`` plaintext bytes: its header (the
        length is on the wire before the data, so it is fixed now), the
        random SSH padding, the HMAC started over the pseudo-header."""
        t, k = self.t, self.kernel
        o = _Open(n, self.seq)
        if t.framing == "ssh2":
            o.pad = ssh_padding(n)
            o.prefix = struct.pack("!IB", 1 + n + o.pad, o.pad)
            o.padding = bytes(k.random.getrandbits(8) for _ in range(o.pad))
            first = struct.pack("!I", self.seq) + o.prefix
        else:
            o.pad = tls_padding(n, t.mac_len)
            o.hdr = struct.pack("!B2sH", self.rtype, TLS10_VERSION, n + t.mac_len + o.pad + 1)
            first = b"" if t.framing == "paper" else \
                struct.pack("!QB2sH", self.seq, self.rtype, TLS10_VERSION, n)
        o.mac = hmac.new(t.mac_key, first, hashlib.sha1)
        o.adlen = len(first)
        return o

    async def piece(self, buf: Any, start: int, take: int, rlen: int) -> tuple[int, list]:
        """Piecemeal: the next ``take`` user bytes of the open record (one is
        opened with ``rlen`` plaintext bytes if none is). The whole cipher
        blocks go out encrypted at once, CBC chained from the last block
        sent; a partial block waits in the kernel for the next piece; the
        HMAC is updated on the host CPU; the last piece adds the MAC and the
        padding. (errno, mbufs: the wire bytes of this piece, maybe none)."""
        k, t = self.kernel, self.t
        o = self.open_rec
        first = o is None
        if first:
            await k.charge("socrypt", self.c_record)
            o = self._begin(rlen)
        await k.charge("socrypt", self.c_piece)
        if take > o.n - o.done:
            return EINVAL, []
        ssh = t.framing == "ssh2"
        end = o.done + take == o.n
        hdr = o.hdr if first else b""
        # the cipher's plaintext this piece: held bytes | SSH lengths | user bytes | trailer
        old = k.memory.read(self.carry_buf + self.carry_half, self.ncarry) if self.ncarry else b""
        lead = old + (o.prefix if first else b"")
        trailer_len = (o.pad if ssh else t.mac_len + o.pad + 1) if end else 0
        avail = len(lead) + take + trailer_len
        clen = avail if end else avail - avail % DES_BLOCK
        tail = avail - clen                       # < 8: held for the next piece
        wlen = len(hdr) + clen + (t.mac_len if ssh and end else 0)
        mbufs = self._clusters(wlen)
        if mbufs is None:
            return ENOBUFS, []
        rec = CryptoBuf(k.memory, [(m.data, m.len) for m in mbufs])
        nlead = min(len(lead), clen)
        rec.write(0, hdr + lead[:nlead])
        new_half = DES_BLOCK - self.carry_half
        newc = self.carry_buf + new_half
        k.memory.write(newc, lead[nlead:])
        # user bytes: into the clusters up to the cipher's cut, the rest held
        u1 = max(0, min(take, clen - len(lead)))
        view = memoryview(buf).cast("B")[start:start + take]
        err = await self._copyin(view, mbufs, len(hdr) + len(lead), u1)
        if not err and take > u1:
            err = await k.copyin(view[u1:], newc + len(lead) - nlead, take - u1)
        view.release()
        if err:
            self._free(mbufs)
            return err, []
        data = (rec.read(len(hdr) + len(lead), u1) if u1 else b"") + \
            (k.memory.read(newc + len(lead) - nlead, take - u1) if take > u1 else b"")
        mac = o.mac.copy()
        mac.update(data)
        await k.charge("crypto", int(round(self.c_mac_byte * take)))
        if end:
            if ssh:
                mac.update(o.padding)
                rec.write(len(hdr) + clen - o.pad, o.padding)
            digest = mac.digest()[:t.mac_len]
            # the final blocks, and the pseudo-header (and SSH padding) hashed
            await k.charge("crypto", self.c_mac_op + int(round(self.c_mac_byte * (
                o.adlen + (o.pad if ssh else 0)))))
            if ssh:
                rec.write(clen, digest)
            else:
                rec.write(len(hdr) + clen - trailer_len, digest + bytes([o.pad]) * (o.pad + 1))
        if clen:
            body = CryptoBuf(k.memory, _tail([(m.data, m.len) for m in mbufs], len(hdr)))
            enc = CryptoDesc(self.enc_ini, skip=0, len=clen,
                             flags=CRD_F_ENCRYPT | CRD_F_IV_EXPLICIT, iv=self.iv)
            err = await self._run([enc], body, "enc")
            if err:
                self._free(mbufs)
                return err, []
            self.iv = rec.read(len(hdr) + clen - DES_BLOCK, DES_BLOCK)
        # the piece is in: commit the held bytes, the HMAC, the count
        self.carry_half, self.ncarry = new_half, tail
        o.mac = mac
        o.done += take
        self.pieces += 1
        self.open_rec = None if end else o
        if end:
            self.seq = (self.seq + 1) % t.seq_mod
            self.records += 1
        return 0, mbufs


def _cost(p: Any, key: str, cycles: int) -> int:
    """A profile cost, or ``cycles`` at the profile's clock when it lacks the key."""
    return p.cost(key) if p.has(key) else int(round(cycles * 1e12 / p.hz))


def _tail(segs: list[tuple[int, int]], skip: int) -> list[tuple[int, int]]:
    out = []
    for a, n in segs:
        if skip >= n:
            skip -= n
            continue
        out.append((a + skip, n - skip))
        skip = 0
    return out


def check_transform(t: Any) -> int:
    """0 or EINVAL for a descriptor handed to setsockopt."""
    return 0 if isinstance(t, Transform) and t.check() is None else EINVAL


# ---------------------------------------------------------------- receive
#: RFC 2246 §6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048
TLS_MAX_CIPHERTEXT = TLS_MAX_PLAINTEXT + 2048
#: RFC 4253 §6.1: implementations must handle packets of 35000 bytes in all
#: (packet_length, padding, MAC included); a longer one is refused
SSH_MAX_PACKET = 35000
#: the control messages of a record's type, Linux include/uapi/linux/tls.h
#: (SOL_TLS 282, TLS_SET_RECORD_TYPE 1 on sendmsg, TLS_GET_RECORD_TYPE 2 on
#: recvmsg) — the paper names none
SOL_TLS, TLS_SET_RECORD_TYPE, TLS_GET_RECORD_TYPE = 282, 1, 2


class SoCryptRx(_SoCryptSide):
    """The receive side of one socket's SO_CRYPT state.

    Records are reassembled in the kernel: the mbufs TCP queued on the
    socket are moved (not copied) into a reassembly buffer until a whole
    record is there, which frees the socket buffer so the window opens for
    the rest of a record larger than it (Linux's strparser does the same).
    The record is then decrypted in place and its MAC checked through OCF,
    in the receiving process's context, as Linux kTLS's ``tls_sw_recvmsg``:

    * TLS 1.0: one decrypt request over the encrypted part (IV: the last
      ciphertext block of the record before, RFC 2246 §6.2.3.2), the
      padding checked, then one MAC request over the 13-byte pseudo-header
      and the data into a scratch buffer, compared with the record's MAC
      (the length in the pseudo-header is only known after decryption, so
      MAC and decrypt cannot be one request on any driver);
    * SSH2: the first cipher block decrypted alone for ``packet_length``
      (RFC 4253 §6), the rest once it is all there, then the MAC over
      ``seq | packet`` compared with the MAC after the packet.

    Errors (Linux Documentation/networking/tls.rst): a length over the
    protocol's limit → EMSGSIZE; a TLS version other than 3.1 → EINVAL; a
    bad MAC, bad padding, a length that cannot be, or a record cut by EOF →
    EBADMSG. Nothing of the bad record is delivered and every later read
    gets the same errno (the connection is unusable from there, as KTLS).
    """

    def __init__(self, so: Any, t: Transform, crypto: Any):
        from .mbuf import SockBuf
        super().__init__(so, t, crypto)
        self.asm = SockBuf(so.stack.pool, 1 << 30, 1)     # the reassembly buffer
        self.error = 0
        #: the record being delivered: (content type, offset, bytes left, wire length)
        self.ready: Optional[list] = None
        self.ssh_len: Optional[int] = None     # packet_length once the first block is read
        self.ssh_iv = b""                      # its ciphertext: the IV of the rest
        # session and request plumbing: a cipher and a MAC session, as whole frame
        self._tx = SoCryptTx(so, replace(t, mode=WHOLE_FRAME), crypto)

    async def open(self) -> int:
        tx = self._tx
        err = await tx.open() if tx.enc_sid is None else 0
        return err

    async def close(self) -> None:
        await self._tx.close()
        self.asm.flush()

    async def _run(self, descs: list[CryptoDesc], buf: CryptoBuf, which: str) -> int:
        tx = self._tx
        before = tx.requests
        err = await tx._run(descs, buf, which)
        self.requests += tx.requests - before
        return err

    def _segs(self, off: int, n: int) -> list[tuple[int, int]]:
        """Bus segments of ``n`` reassembled bytes from ``off``."""
        return [(m.data + o, k) for m, o, k in self.asm.span(off, n)]

    def pull(self, want: int) -> int:
        """Move whole mbufs from the socket's receive buffer to the reassembly
        buffer until it holds ``want`` bytes; the bytes moved."""
        sb, asm = self.so.rcv, self.asm
        moved = 0
        while asm.cc < want and sb.chain:
            m = sb.chain.popleft()
            sb.cc -= m.len
            sb.mbcnt -= sb._mbsize(m)
            asm.append(m)
            moved += m.len
        return moved

    def need(self) -> tuple[int, int]:
        """(bytes the next record needs in the reassembly buffer, errno):
        the header's bytes until it is known, then the whole record."""
        t, asm = self.t, self.asm
        if t.framing == "ssh2":
            if self.ssh_len is None:
                return DES_BLOCK, 0
            return 4 + self.ssh_len + t.mac_len, 0
        if asm.cc < TLS_HDR:
            return TLS_HDR, 0
        rtype, ver, ln = struct.unpack("!B2sH", asm.copydata(0, TLS_HDR))
        if ver != TLS10_VERSION:
            return 0, EINVAL
        if ln > TLS_MAX_CIPHERTEXT:
            return 0, EMSGSIZE
        if ln % DES_BLOCK or ln < t.mac_len + 1:
            return 0, EBADMSG
        return TLS_HDR + ln, 0

    async def ssh_first(self) -> int:
        """Decrypt an SSH packet's first block for its packet_length."""
        t, k = self.t, self.kernel
        self.ssh_iv = self.asm.copydata(0, DES_BLOCK)
        buf = CryptoBuf(k.memory, self._segs(0, DES_BLOCK))
        dec = CryptoDesc(self.enc_ini, skip=0, len=DES_BLOCK, flags=CRD_F_IV_EXPLICIT, iv=self.iv)
        err = await self._run([dec], buf, "enc")
        if err:
            return err
        (plen,) = struct.unpack("!I", self.asm.copydata(0, 4))
        if 4 + plen + t.mac_len > SSH_MAX_PACKET:
            return EMSGSIZE
        if (4 + plen) % DES_BLOCK or plen < 12:     # RFC 4253 §6: >= 16 bytes, block multiple
            return EBADMSG
        self.ssh_len = plen
        return 0

    async def record(self) -> int:
        """Decrypt and verify the whole record at the front of the reassembly
        buffer; on success ``ready`` describes its plaintext."""
        t, k = self.t, self.kernel
        await k.charge("socrypt", self.c_record)
        if t.framing == "ssh2":
            return await self._ssh_record()
        _, _, ln = struct.unpack("!B2sH", self.asm.copydata(0, TLS_HDR))
        rtype = self.asm.copydata(0, 1)[0]
        wlen = TLS_HDR + ln
        next_iv = self.asm.copydata(wlen - DES_BLOCK, DES_BLOCK)
        body = CryptoBuf(k.memory, self._segs(TLS_HDR, ln))
        dec = CryptoDesc(self.enc_ini, skip=0, len=ln, flags=CRD_F_IV_EXPLICIT, iv=self.iv)
        err = await self._run([dec], body, "enc")
        if err:
            return err
        self.iv = next_iv
        pad = body.read(ln - 1, 1)[0]
        n = ln - t.mac_len - pad - 1
        if n < 0 or body.read(ln - 1 - pad, pad + 1) != bytes([pad]) * (pad + 1):
            return EBADMSG                  # RFC 2246 §6.2.3.2: each byte the length
        ad = b"" if t.framing == "paper" else \
            struct.pack("!QB2sH", self.seq, rtype, TLS10_VERSION, n)
        err = await self._mac(ad, TLS_HDR, n, TLS_HDR + n)
        if err:
            return err
        self.ready = [rtype, TLS_HDR, n, wlen]
        return 0

    async def _ssh_record(self) -> int:
        t, k = self.t, self.kernel
        plen = self.ssh_len
        clen = 4 + plen
        next_iv = self.asm.copydata(clen - DES_BLOCK, DES_BLOCK)
        rest = CryptoBuf(k.memory, self._segs(DES_BLOCK, clen - DES_BLOCK))
        dec = CryptoDesc(self.enc_ini, skip=0, len=clen - DES_BLOCK, flags=CRD_F_IV_EXPLICIT,
                         iv=self.ssh_iv)
        err = await self._run([dec], rest, "enc") if clen > DES_BLOCK else 0
        if err:
            return err
        self.iv = next_iv
        padlen = self.asm.copydata(4, 1)[0]
        n = plen - padlen - 1
        if padlen < 4 or n < 0:              # RFC 4253 §6: at least four bytes of padding
            return EBADMSG
        err = await self._mac(struct.pack("!I", self.seq), 0, clen, clen)
        if err:
            return err
        self.ready = [None, 5, n, clen + t.mac_len]
        self.ssh_len = None
        return 0

    async def _mac(self, ad: bytes, off: int, n: int, at: int) -> int:
        """HMAC of ``ad`` | reassembled bytes [off, off+n) through OCF into a
        scratch buffer; EBADMSG unless it equals the MAC at ``at``."""
        t, k = self.t, self.kernel
        ml = t.mac_len
        scratch = k.malloc(len(ad) + ml)
        if scratch is None:
            return ENOMEM
        try:
            k.memory.write(scratch, ad)
            segs = ([(scratch, len(ad))] if ad else []) + self._segs(off, n) + \
                [(scratch + len(ad), ml)]
            buf = CryptoBuf(k.memory, segs)
            mac = CryptoDesc(self.mac_ini, skip=0, len=len(ad) + n, inject=len(ad) + n)
            err = await self._run([mac], buf, "mac")
            if err:
                return err
            good = hmac.compare_digest(k.memory.read(scratch + len(ad), ml),
                                       self.asm.copydata(at, ml))
        finally:
            k.free(scratch)
        if not good:
            return EBADMSG
        self.seq = (self.seq + 1) % t.seq_mod
        self.records += 1
        return 0

    def consumed(self, k: int) -> None:
        """``k`` plaintext bytes of the ready record went to the user."""
        r = self.ready
        r[1] += k
        r[2] -= k
        if r[2] == 0:
            self.asm.drop(r[3])
            self.ready = None

    def fail(self, err: int) -> int:
        """A bad record: nothing of it is delivered, and no more reads."""
        self.error = err
        self.asm.flush()
        self.ready = None
        return err
