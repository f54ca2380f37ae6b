"""ubsec: driver for the BCM5820-like card (OpenBSD ``sys/dev/pci/ubsec.c``).

Talks to the card only through its registers and command records in DMA
memory, both as the card's header :mod:`hw.cards.ubsecreg` describes them
(``ubsecreg.h``; registers through :class:`drivers.bus_space.BusSpace`,
records packed with :mod:`hw.structs`), and its interrupt.

* attach: reset the board, CTRL = MCR1INT | DMAERR (little-endian, no
  BE32/BE64), optional interrupt moderation, ``intr_establish``, register
  DES-CBC, 3DES-CBC and HMAC-SHA1 with OCF as a driver that can do the IPsec
  order (``CRYPTOCAP_F_ENCRYPT_MAC``).
* newsession: 3DES key words (DES: the key three times, as the 5820 does),
  HMAC inner/outer SHA-1 midstates computed on the host CPU (a pure-Python
  SHA-1 compression: hashlib hides midstates), a random session IV.
* process: validate the request, build the packet (80-byte context, input
  and output particle chains over the request's segments, MAC buffer) in DMA
  memory, put it on the software queue and feed the chip.
* one-pass TLS records (the card's TLS flag, a model extension;
  docs/bcm5820.md): advertised as ``CRYPTOCAP_F_TLS_ONEPASS``; a request
  whose cipher descriptor carries ``CRD_F_MAC_ENCRYPT_ALL`` (layout:
  :func:`ocf.cryptodefs.mac_encrypt_all_layout`) on a 3DES + HMAC-SHA1
  session with the full 20-byte MAC is one packet: the input chain is the
  MAC region (behind 0..3 lead-in bytes so that the cipher starts on a
  dword), the output chain the cipher region, data | MAC | padding. Such a
  session (``mlen`` 20 is accepted only together with a cipher) serves its
  other requests with the MAC on the host CPU, as the chip writes 12 bytes.
  A one-pass request the card cannot take (a 12-byte MAC, longer than a
  packet) is served the same way: MAC and padding by the host, the cipher
  on the chip.
* requests the chip cannot take as one packet (its length field has 16
  bits; a packet cannot be empty) are still served, with the same answer as
  cryptosoft: a cipher range of length 0 is left alone; an HMAC-SHA1 over an
  empty or longer-than-a-packet range is finished on the host CPU from the
  session's midstates (charged at cryptosoft's SHA-1 HMAC rate); a longer
  cipher range goes to the chip in pieces (the largest multiple of 8 bytes
  that fits a packet), one after the other, each piece's IV the CBC chain of
  the one before.
* feed (``ubsec_feed``): when packets are queued and STAT.MCR1_FULL is
  clear, merge up to ``maxaggr`` queued packets into one record and write
  its address to MCR1 — one record per call, as OpenBSD's ubsec_feed
  (``ubsec.c``: the merging path writes one MCR and returns; its one-packet
  path is only taken with a single packet queued). Requests wait in the
  queue while the chip is full; the next request or interrupt feeds again.
  Packets are merged only when they were queued while MCR1 was full.
* interrupt: read STAT, acknowledge, complete records in submission order up
  to the first whose DONE flag is clear (copy the MAC out, update the session
  IV, ``crypto_done``), then feed. DMAERR: recover (below) with EFAULT.
  STAT reading all ones is no DMA error: the card is not decoding; the
  handler quiesces it through configuration space (Bus Master Enable off,
  INTx# disabled) and has the watchdog recover it at once with EIO.
* watchdog (after OpenBSD hifn's ``hifn_tick``; :class:`drivers.pci.Watchdog`):
  armed only while records are on the chip or queued; when no record
  completed for 4x the outstanding bytes at the datasheet rate plus 1 ms, it
  first collects records DONE without an interrupt, then recovers with
  ETIMEDOUT.
* recovery: make sure the card can no longer master (CTRL RESET; if it does
  not complete or the card reads all ones, Bus Master Enable off), complete
  every record the card finished (in any position), fail the others with the
  errno, restore the command register and CTRL/IMOD and feed the queue.

Options (``boot(driver_options={"ubsec": {...}})``): ``maxaggr`` (packets per
record, default 5 = OpenBSD's UBS_MAX_AGGR; 1 disables chaining),
``imod_records`` / ``imod_usec`` (the card's IMOD moderation extension:
raise MCR1_DONE after N records or T µs; 0 = off, the default),
``watchdog_us`` (a fixed completion bound instead of the derived one),
``max_packet`` (largest packet handed to the chip, default and maximum
65535; smaller only so tests can exercise the split path briefly).

``handover_hook`` (default None): ``hook(kind, addr, size)`` is called after
the driver wrote a structure to DMA memory and before the MCR1 write tells
the card, for each packet's context (``"ctx"``) and particle descriptors
(``"particle"``) and the record (``"mcr"``).

CPU costs are charged as ``driver`` work with constants from the host
profile table ``[ubsec]``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from ocf.sha1 import SHA1_IV, hmac_sha1_midstates, sha1_compress  # noqa: F401 (re-exported)
from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT,
                            CRD_F_MAC_ENCRYPT_ALL, CRYPTOCAP_F_TLS_ONEPASS,
                            CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC,
                            mac_encrypt_all_layout,
                            SID_LOCAL_MASK, CryptoDesc, CryptoIni, CryptoOp)
from drivers.pci import ALL_ONES, PciAttachArgs
from drivers.softc import PciCryptoSoftc
from hw.cards import ubsecreg as U
from hw.cards.ubsecreg import (CTRL, ERR, IMOD, MCR1, STAT, CTX_LONG_BYTES, MAC_BYTES,
                               MACBUF_BYTES, MAX_PARTICLES, MAX_PKTLEN, MCR_ADD_BYTES,
                               MCR_BYTES, PKTBUF_BYTES, ContextLong, Mcr, McrFlags,
                               McrHeader, McrPacket, PktBuf)
from hw.structs import pack, unpack
from sim.kernel.errno import EFAULT, EINVAL, EIO, ENOMEM

__all__ = ["MATCH", "attach", "Ubsec", "sha1_compress", "hmac_sha1_midstates", "MAXAGGR"]

#: the devices this driver attaches to: (vendor, device) → product
MATCH = {(U.VENDOR_ID, U.DEVICE_ID): "Broadcom 5820"}

#: packets merged into one record (ubsecvar.h UBS_MAX_AGGR)
MAXAGGR = U.UBS_MAX_AGGR
#: longest particle the driver makes: UBS_PKTBUF_LEN kept to whole dwords
MAX_PARTICLE = U.UBS_PKTBUF_LEN & ~3
#: 8259-era boards: the card's reset needs DELAY(10) (ubsec_reset_board)
#: reads of CTRL while waiting for RESET to clear (model's choice: ~100 µs of reads)
RESET_POLLS = 100
#: where the card writes a record's mcr_flags
_MCR_FLAGS = U.byte_offset(Mcr, "hdr", "flags")
#: BCM5820 datasheet rate, 3DES+HMAC-SHA1 (Broadcom BCM5820 product brief: 310 Mbit/s)
DATASHEET_MBPS = 310.0


# -- driver state -------------------------------------------------------------------
@dataclass
class _Session:
    deskey: Optional[tuple] = None     # six u32 words (key bytes big-endian per word)
    inner: Optional[tuple] = None
    outer: Optional[tuple] = None
    iv: bytes = b""
    mlen: int = MAC_BYTES              # MAC bytes the session gives (12, or 20 with a cipher)


@dataclass
class _Q:
    """One request on its way through the chip (``struct ubsec_q``)."""
    crp: CryptoOp
    ses: _Session
    dma: int                           # context + MAC buffer + particle descriptors
    packet: bytes                      # its McrPacket (struct ubsec_mcr_add)
    macbuf: int
    mac_inject: Optional[int]
    mac_len: int
    enc_out: Optional[tuple]           # (skip, len) of ciphertext to update the IV from
    inbound: bool
    nparts: int = 0                    # particles in both chains
    nbytes: int = 0                    # packet length (for the watchdog bound)
    descs: list = field(default_factory=list)   # particle descriptors in DMA memory
    then: Any = None                   # piece of a long request: async then(err)


@dataclass
class _Rec:
    mcr: int
    qs: list = field(default_factory=list)


def _ctx_words(key: bytes) -> tuple:
    """Key bytes → u32 words, big-endian per word (ntohl in ubsec.c)."""
    return tuple(int.from_bytes(key[i:i + 4], "big") for i in range(0, len(key), 4))


class Ubsec(PciCryptoSoftc):
    """The softc (``struct ubsec_softc``)."""

    driver = "ubsec"
    MATCH = MATCH

    def __init__(self, pa: PciAttachArgs, maxaggr: int = MAXAGGR,
                 imod_records: int = 0, imod_usec: float = 0.0,
                 watchdog_us: Optional[float] = None, max_packet: int = MAX_PKTLEN):
        if not isinstance(maxaggr, int) or maxaggr < 1:
            raise ValueError(f"ubsec: maxaggr must be a positive integer, not {maxaggr!r}")
        if not 0 <= int(imod_records) <= 255 or imod_usec < 0:
            raise ValueError("ubsec: imod_records must be 0..255 and imod_usec >= 0")
        if not isinstance(max_packet, int) or not 8 <= max_packet <= MAX_PKTLEN:
            raise ValueError(f"ubsec: max_packet must be 8..{MAX_PKTLEN}, not {max_packet!r}")
        super().__init__(pa, watchdog_us=watchdog_us)
        self.max_packet = max_packet
        self.piece = max_packet & ~7
        self.regs = pa.map(0)
        self.maxaggr = maxaggr
        cycles = int(round(imod_usec * 1e6 / pa.clock_period_ps)) if imod_usec else 0
        t_max = (1 << IMOD.field("t").width) - 1
        self.imod = IMOD.bits(n=int(imod_records), t=min(cycles, t_max)) if imod_records else 0
        p = self.kernel.profile
        self.c = {k: p.cost(f"ubsec.{k}") for k in (
            "process", "particle", "feed", "feed_packet", "intr", "callback",
            "newsession", "hmac_precompute", "freesession", "reset_delay")}
        self.sessions: dict[int, _Session] = {}
        self._next_lid = 1
        self.queue: deque[_Q] = deque()     # sc_queue: waiting for the chip
        self.chip: deque[_Rec] = deque()    # sc_qchip: records on the chip
        self.counters = dict(requests=0, records=0, packets=0, interrupts=0, claimed=0,
                      completed=0, errors=0, dma_errors=0, resets=0, mcr1_full=0,
                      max_aggr=0, queue_max=0, chip_max=0, einval=0,
                      recoveries=0, gone=0, offline=0, tls_onepass=0, tls_host=0)

    # ------------------------------------------------------------ board
    async def reset_board(self) -> bool:
        """``ubsec_reset_board``: CTRL |= RESET, DELAY(10); then wait for it.
        Returns whether the reset completed (False: CTRL reads all ones, or
        RESET never cleared)."""
        ctrl = await self.regs.read(CTRL)
        if ctrl == ALL_ONES:
            return False
        await self.regs.write(CTRL, ctrl | CTRL.mask("board_reset"))
        await self.kernel.charge("driver", self.c["reset_delay"])
        self.counters["resets"] += 1
        for _ in range(RESET_POLLS):
            ctrl = await self.regs.read(CTRL)
            if ctrl == ALL_ONES:
                return False
            if not ctrl & CTRL.mask("board_reset"):
                return True
        return False

    async def init_board(self) -> None:
        """``ubsec_init_board``: interrupts on, little-endian, moderation."""
        await self.regs.write(STAT, STAT.mask("mcr1_done", "dmaerr"))
        await self.regs.write(IMOD, self.imod)
        await self.regs.write(CTRL, CTRL.bits(mcr1int=1, dmaerr=1))

    async def attach(self) -> bool:
        """``ubsec_attach`` after the PCI part: reset, init, interrupt, OCF."""
        await self.reset_board()
        await self.init_board()
        self.ih = self.pa.intr_establish(self.intr, self.name)
        self.start_watchdog(mbps=DATASHEET_MBPS,
                            outstanding=lambda: sum(q.nbytes for rec in self.chip for q in rec.qs),
                            collect=self._complete_done, resume=self.feed)
        self.register_algs((CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC),
                           CRYPTOCAP_F_TLS_ONEPASS)
        self.kernel.printf(f"{self.name} at pci0 dev {self.dev.slot}: {self.product}, irq line "
                           f"{self.dev.irq}, maxaggr {self.maxaggr}"
                           f"{', imod %#x' % self.imod if self.imod else ''}")
        return True

    # ------------------------------------------------------------ sessions
    async def newsession(self, chain: list[CryptoIni]) -> tuple[int, int]:
        k = self.kernel
        await k.charge("driver", self.c["newsession"])
        enc = mac = None
        for c in chain:
            if c.alg in (CRYPTO_DES_CBC, CRYPTO_3DES_CBC) and enc is None:
                enc = c
            elif c.alg == CRYPTO_SHA1_HMAC and mac is None:
                mac = c
            else:
                return EINVAL, 0
        ses = _Session()
        if enc is not None:
            key = bytes(enc.key or b"")
            nkey = enc.klen // 8 if isinstance(enc.klen, int) else -1
            want = 8 if enc.alg == CRYPTO_DES_CBC else 24
            if nkey != want or len(key) < want or enc.klen % 8:
                return EINVAL, 0
            key = key[:want]
            if enc.alg == CRYPTO_DES_CBC:
                key = key * 3                  # the 5820 only does EDE (OCF §5.2)
            ses.deskey = _ctx_words(key)
            ses.iv = bytes(k.random.getrandbits(8) for _ in range(8))
        if mac is not None:
            key = bytes(mac.key or b"")
            # the full MAC only beside a cipher: a one-pass TLS session
            mlens = (0, MAC_BYTES) + ((U.TLS_MAC_BYTES,) if enc is not None else ())
            if not isinstance(mac.klen, int) or mac.klen % 8 or mac.klen // 8 > len(key) \
                    or mac.mlen not in mlens:
                return EINVAL, 0
            ses.mlen = mac.mlen or MAC_BYTES
            await k.charge("driver", self.c["hmac_precompute"])
            ses.inner, ses.outer = hmac_sha1_midstates(key[:mac.klen // 8])
        lid = self._next_lid
        self._next_lid += 1
        self.sessions[lid] = ses
        return 0, lid

    async def freesession(self, lid: int) -> int:
        await self.kernel.charge("driver", self.c["freesession"])
        return 0 if self.sessions.pop(lid, None) is not None else EINVAL

    # ------------------------------------------------------------ requests
    async def process(self, crp: CryptoOp) -> int:
        k = self.kernel
        await k.charge("driver", self.c["process"])
        self.counters["requests"] += 1
        err, q = self._prepare(crp)
        if err:
            self.counters["einval"] += err == EINVAL
            return err
        s = k.splraise()                       # splnet: the queue is shared with intr
        try:
            if isinstance(q, _Q):
                await self._enqueue(q)
            else:
                await q()                      # more (or less) than one packet
            await self.feed()
        finally:
            k.splx(s)
        return 0

    async def _enqueue(self, q: _Q) -> None:
        await self.kernel.charge("driver", self.c["particle"] * q.nparts)
        self.queue.append(q)
        self.wd.arm()
        self.counters["queue_max"] = max(self.counters["queue_max"], len(self.queue))

    def _prepare(self, crp: CryptoOp) -> tuple[int, Optional[_Q]]:
        """Check the request and lay out its context and particles in DMA memory."""
        ses = self.sessions.get(crp.sid & SID_LOCAL_MASK) if type(crp.sid) is int else None
        if ses is None or crp.buf is None or not crp.desc or len(crp.desc) > 2:
            return EINVAL, None
        enc = mac = None
        for d in crp.desc:
            if d.alg in (CRYPTO_DES_CBC, CRYPTO_3DES_CBC) and enc is None:
                enc = d
            elif d.alg == CRYPTO_SHA1_HMAC and mac is None:
                mac = d
            else:
                return EINVAL, None
        if (enc and ses.deskey is None) or (mac and ses.inner is None):
            return EINVAL, None
        for d in crp.desc:
            if any(type(v) is not int or v < 0 for v in (d.skip, d.len, d.inject, d.flags)):
                return EINVAL, None
        buflen = crp.buf.length
        encrypt = bool(enc and enc.flags & CRD_F_ENCRYPT)
        if any(d.flags & CRD_F_MAC_ENCRYPT_ALL for d in crp.desc):
            return self._prepare_onepass(crp, ses, enc, mac)
        if enc and mac:
            # IPsec orders only: encrypt-then-MAC, or MAC-then-decrypt
            first = crp.desc[0]
            if (encrypt and first is not enc) or (not encrypt and first is not mac):
                return EINVAL, None
            if enc.skip + enc.len != mac.skip + mac.len or enc.skip < mac.skip \
                    or (enc.skip - mac.skip) % 4:
                return EINVAL, None
        if enc and (enc.len % 8 or enc.skip + enc.len > buflen):
            return EINVAL, None
        if mac and (mac.skip + mac.len > buflen or mac.inject + ses.mlen > buflen):
            return EINVAL, None
        iv, err = self._iv(crp, ses, enc, encrypt)
        if err:
            return err, None
        if enc and enc.len == 0:
            enc = None                         # nothing to cipher (cryptosoft: unchanged)
        main = mac or enc
        if main is None or main.len == 0 or main.len > self.max_packet \
                or (mac is not None and ses.mlen != MAC_BYTES):
            # the chip writes a 12-byte MAC: a full one is the host's
            return 0, lambda: self._not_one_packet(crp, ses, enc, mac, iv, encrypt)
        return self._packet(crp, ses, enc, mac, iv, encrypt, main.skip, main.len)

    def _iv(self, crp: CryptoOp, ses: _Session, enc, encrypt: bool) -> tuple[bytes, int]:
        """The request's IV (swcr_encdec semantics, see ocf/cryptosoft.py), errno."""
        buflen = crp.buf.length
        iv = b""
        if enc:
            if enc.flags & CRD_F_IV_EXPLICIT:
                if not isinstance(enc.iv, (bytes, bytearray)) or len(enc.iv) < 8:
                    return b"", EINVAL
                iv = bytes(enc.iv[:8])
            elif encrypt and not enc.flags & CRD_F_IV_PRESENT:
                if enc.inject + 8 > buflen:
                    return b"", EINVAL
                iv = ses.iv
                crp.buf.write(enc.inject, iv)
            else:
                if enc.inject + 8 > buflen:
                    return b"", EINVAL
                iv = crp.buf.read(enc.inject, 8)
        return iv, 0

    def _prepare_onepass(self, crp: CryptoOp, ses: _Session, enc, mac) -> tuple[int, Any]:
        """CRD_F_MAC_ENCRYPT_ALL: one TLS packet, or MAC and padding on the host."""
        pad = mac_encrypt_all_layout(crp.desc, ses.mlen) if enc and mac else None
        if pad is None or crp.desc[0] is not mac or enc.len % 8 \
                or enc.skip + enc.len > crp.buf.length:
            return EINVAL, None
        iv, err = self._iv(crp, ses, enc, True)
        if err:
            return err, None
        gap = enc.skip - mac.skip            # MAC'd bytes before the cipher
        lead = -gap % 4                      # so that the cipher starts on a dword
        pktlen = lead + mac.len
        if ses.mlen != U.TLS_MAC_BYTES or pktlen > self.max_packet or mac.len == 0:
            self.counters["tls_host"] += 1
            return 0, lambda: self._onepass_host(crp, ses, enc, mac, iv, pad)
        self.counters["tls_onepass"] += 1
        return self._packet(crp, ses, enc, mac, iv, True, mac.skip, mac.len,
                            tls=dict(lead=lead, pad_len=pad, offset=(gap + lead) // 4))

    async def _onepass_host(self, crp: CryptoOp, ses: _Session, enc, mac, iv: bytes,
                            pad: int) -> None:
        """A one-pass request the card cannot take: MAC and padding written by
        the host, then the cipher region encrypted on the chip."""
        await self._host_mac(crp, ses, mac)
        end = enc.skip + enc.len
        crp.buf.write(end - pad - 1, bytes([pad]) * (pad + 1))
        await self._not_one_packet(crp, ses, enc, None, iv, True)

    def _packet(self, crp: CryptoOp, ses: _Session, enc, mac, iv: bytes, encrypt: bool,
                start: int, pktlen: int, tls: Optional[dict] = None) -> tuple[int, Any]:
        """Lay out one packet: context, particle chains, MAC buffer."""
        in_parts = _particles(crp.buf.segs, start, pktlen)
        out_parts = _particles(crp.buf.segs, enc.skip, enc.len) if enc else []
        lead = tls["lead"] if tls else 0
        if max(len(in_parts) + bool(lead), len(out_parts)) > MAX_PARTICLES:
            # the card refuses a longer chain (a DMA error that would fail every
            # request on it); OpenBSD's bus_dmamap_load of more than
            # UBS_MAX_SCATTER segments fails and ubsec_process returns ENOMEM
            return ENOMEM, None
        nextra = max(0, len(in_parts) - 1) + max(0, len(out_parts) - 1)
        nextra += bool(lead)
        size = CTX_LONG_BYTES + MACBUF_BYTES + PKTBUF_BYTES * nextra + 4 * bool(lead)
        dma = self.kernel.malloc(size, 16)
        if dma is None:
            return ENOMEM, None
        macbuf = dma + CTX_LONG_BYTES
        # context (struct ubsec_pktctx_long)
        flags = dict(enc_3des=bool(enc), auth_sha1=bool(mac), inbound=bool(enc and not encrypt))
        if tls:
            flags.update(tls=1, lead=lead, pad_len=tls["pad_len"])
            offset = tls["offset"]
        else:
            offset = (enc.skip - mac.skip) // 4 if enc and mac else 0
        ctx = pack(ContextLong, len=CTX_LONG_BYTES, type=U.UBS_PKTCTX_TYPE_IPSEC,
                   flags=flags, offset=offset,
                   deskey=ses.deskey or (0,) * 6, iv=_ctx_words(iv) if iv else (0, 0),
                   hminner=ses.inner or (0,) * 5, hmouter=ses.outer or (0,) * 5)
        mem = self.kernel.memory
        mem.write(dma, ctx)
        # particle chains: first particle in the MCR, the rest in DMA memory
        slot = [macbuf + MACBUF_BYTES]

        all_descs = []

        def chain(parts, tail):
            if not parts:
                return dict(addr=0, next=tail, len=0)
            descs = [slot[0] + PKTBUF_BYTES * i for i in range(len(parts) - 1)]
            slot[0] += PKTBUF_BYTES * len(descs)
            all_descs.extend(descs)
            raw = b""
            for i, (a, n) in enumerate(parts[1:], start=1):
                nxt = descs[i] if i < len(descs) else tail
                raw += pack(PktBuf, addr=a, next=nxt, len=n)
            if raw:
                mem.write(descs[0], raw)
            return dict(addr=parts[0][0], next=descs[0] if descs else tail, len=parts[0][1])

        if lead:                               # lead-in bytes: not MAC'd, not written
            leadbuf = dma + size - 4
            mem.write(leadbuf, bytes(4))
            in_parts = [(leadbuf, lead)] + in_parts
        ipb = chain(in_parts, 0)
        opb = chain(out_parts, macbuf if mac else 0)
        packet = pack(McrPacket, ctxp=dma, ipkt=ipb, pktlen=pktlen + lead, opkt=opb)
        q = _Q(crp=crp, ses=ses, dma=dma, packet=packet, macbuf=macbuf,
               # one-pass: the MAC is inside the ciphertext already
               mac_inject=mac.inject if mac and not tls else None,
               mac_len=MAC_BYTES, enc_out=(enc.skip, enc.len) if enc and encrypt else None,
               inbound=bool(enc and not encrypt), nparts=len(in_parts) + len(out_parts),
               nbytes=pktlen + lead, descs=all_descs)
        return 0, q

    async def feed(self) -> bool:
        """``ubsec_feed``: one record to the chip if MCR1 has room (OpenBSD
        ubsec.c writes one MCR per call). Returns whether it read STAT
        (which also flushes posted writes)."""
        k = self.kernel
        read = False
        if self.queue:
            read = True
            stat = await self.regs.read(STAT)
            if stat == ALL_ONES:                  # not decoding: recover now
                await self.gone()
                return read
            if stat & STAT.mask("mcr1_full"):
                self.counters["mcr1_full"] += 1
                return read
            n = min(len(self.queue), self.maxaggr)
            qs = [self.queue.popleft() for _ in range(n)]
            await k.charge("driver", self.c["feed"] + (n - 1) * self.c["feed_packet"])
            mcr = k.malloc(MCR_BYTES + MCR_ADD_BYTES * (n - 1), 16)
            if mcr is None:                       # give them back; try at the next interrupt
                self.queue.extendleft(reversed(qs))
                return read
            k.memory.write(mcr, pack(McrHeader, pkts=n) + b"".join(q.packet for q in qs))
            rec = _Rec(mcr, qs)
            self.chip.append(rec)
            self._handover_record(rec)
            await self.regs.write(MCR1, mcr)
            self.counters["records"] += 1
            self.counters["packets"] += n
            self.counters["max_aggr"] = max(self.counters["max_aggr"], n)
            self.counters["chip_max"] = max(self.counters["chip_max"], len(self.chip))
        return read

    def _handover_record(self, rec: _Rec) -> None:
        """Tell ``handover_hook`` about every structure of ``rec`` in DMA memory."""
        if self.handover_hook is None:
            return
        for q in rec.qs:
            self._handover("ctx", q.dma, CTX_LONG_BYTES)
            for a in q.descs:
                self._handover("particle", a, PKTBUF_BYTES)
        self._handover("mcr", rec.mcr, MCR_BYTES + MCR_ADD_BYTES * (len(rec.qs) - 1))

    # ------------------------------------------------------------ completion
    async def intr(self) -> bool:
        """``ubsec_intr``."""
        self.counters["interrupts"] += 1
        raw = await self.regs.read(STAT)
        if raw == ALL_ONES:
            return await self.gone()
        stat = raw & STAT.mask("mcr1_done", "dmaerr")
        if not stat:
            return False
        self.counters["claimed"] += 1
        k = self.kernel
        await k.charge("driver", self.c["intr"])
        await self.regs.write(STAT, stat)         # acknowledge
        if stat & STAT.mask("mcr1_done"):
            await self._complete_done()
        if stat & STAT.mask("dmaerr"):
            err = await self.regs.read(ERR)
            self.counters["dma_errors"] += 1
            way = "read" if err & ERR.mask("read") else "write"
            await self._recover(EFAULT, f"dma error, {way} at {err & ERR.mask('addr'):#010x}")
        elif not await self.feed():
            await self.regs.read(STAT)            # flush the acknowledge before returning
        return True

    async def _complete_done(self, anywhere: bool = False) -> None:
        """Complete records the card marked DONE: in submission order up to the
        first that is not, or (``anywhere``, once the card has stopped) all."""
        mem = self.kernel.memory
        for rec in list(self.chip):
            flags = unpack(McrFlags, mem.read(rec.mcr + _MCR_FLAGS, 2))
            if not flags["done"]:
                if anywhere:
                    continue
                break
            self.chip.remove(rec)
            err = EIO if flags["error"] else 0
            for q in rec.qs:
                self.wd.progress()
                await self._finish(q, err)
            self.kernel.free(rec.mcr)

    # ------------------------------------------------------------ watchdog and recovery
    def _idle(self) -> bool:
        return not self.chip and not self.queue

    async def _recover(self, err: int, why: str) -> None:
        """Stop the card, complete what it finished, fail the rest with ``err``,
        restart it and feed the queue. A request fails only once the card can
        no longer touch its buffers."""
        k = self.kernel
        self.counters["recoveries"] += 1
        k.printf(f"{self.name}: {why}: resetting")
        await self.stop()
        await self._complete_done(anywhere=True)
        chip, self.chip = self.chip, deque()
        for rec in chip:
            for q in rec.qs:
                await self._finish(q, err)
            k.free(rec.mcr)
        if not await self._restart():
            self.counters["offline"] += 1
            k.printf(f"{self.name}: device still not responding: failing queued requests")
            while self.queue:
                await self._finish(self.queue.popleft(), err)
            return
        await self.feed()

    async def _restart(self) -> bool:
        """After :meth:`_recover` stopped the card: :meth:`reenable` it, then
        restore CTRL/IMOD. False: the card still does not respond."""
        if not await self.reenable():
            return False
        await self.init_board()
        return True

    async def _finish(self, q: _Q, err: int) -> None:
        """``ubsec_callback`` / ``ubsec_free_q``."""
        k = self.kernel
        await k.charge("driver", self.c["callback"])
        crp = q.crp
        if not err:
            if q.mac_inject is not None:
                crp.buf.write(q.mac_inject, k.memory.read(q.macbuf, q.mac_len))
            if q.enc_out is not None:              # next IV = last ciphertext block
                skip, n = q.enc_out
                q.ses.iv = crp.buf.read(skip + n - 8, 8)
        k.free(q.dma)
        if q.then is not None:
            await q.then(err)
            return
        self._done(crp, err)

    def _done(self, crp: CryptoOp, err: int) -> None:
        self.counters["completed"] += 1
        self.counters["errors"] += bool(err)
        crp.etype = err
        self.crypto.done(crp)

    # ------------------------------------------------------------ beyond one packet
    async def _not_one_packet(self, crp: CryptoOp, ses: _Session, enc, mac, iv: bytes,
                              encrypt: bool) -> None:
        """Serve a request whose range is empty or longer than a packet:
        MAC on the host, cipher in chained pieces on the chip (IPsec order:
        the MAC covers the ciphertext, so it comes after encrypting and
        before decrypting)."""
        if mac is not None and not (enc and encrypt):
            await self._host_mac(crp, ses, mac)
        if enc is None:
            self._done(crp, 0)
            return
        n = self.piece
        ends = list(range(enc.skip + n, enc.skip + enc.len, n)) + [enc.skip + enc.len]
        state = {"start": enc.skip, "iv": iv}

        async def piece(err: int = 0) -> None:
            start = state["start"]
            if err or start == ends[-1]:
                if not err and encrypt:
                    ses.iv = crp.buf.read(start - 8, 8)
                if not err and mac is not None and encrypt:
                    self.crypto.defer(lambda: self._mac_then_done(crp, ses, mac))
                else:
                    self._done(crp, err)
                return
            end = next(e for e in ends if e > start)
            iv_now = state["iv"]
            # the next piece's IV: the last ciphertext block of this one
            state["iv"] = None if encrypt else crp.buf.read(end - 8, 8)
            if encrypt and start > enc.skip:
                iv_now = crp.buf.read(start - 8, 8)
            sub = CryptoOp(sid=crp.sid, buf=crp.buf, desc=[CryptoDesc(
                enc.ini, start, end - start, 0,
                (CRD_F_ENCRYPT if encrypt else 0) | CRD_F_IV_EXPLICIT, iv_now)])
            state["start"] = end
            err, q = self._prepare(sub)
            if err:                                # e.g. the session was freed meanwhile
                self._done(crp, err)
                return
            q.then = piece
            await self._enqueue(q)

        await piece()

    async def _mac_then_done(self, crp: CryptoOp, ses: _Session, mac) -> None:
        await self._host_mac(crp, ses, mac)
        self._done(crp, 0)

    async def _host_mac(self, crp: CryptoOp, ses: _Session, mac) -> None:
        """HMAC-SHA1 (the session's length, 12 or 20 bytes) of the MAC range on
        the host CPU, from the midstates."""
        p = self.kernel.profile
        await self.kernel.charge("crypto", p.cost("cryptosoft.sha1_hmac.op")
                                 + p.bytes_cost("cryptosoft.sha1_hmac.byte", mac.len))
        inner = _sha1_finish(ses.inner, crp.buf.read(mac.skip, mac.len))
        crp.buf.write(mac.inject, _sha1_finish(ses.outer, inner)[:ses.mlen])

    def stats(self) -> dict:
        return dict(self.counters, queued=len(self.queue), on_chip=sum(len(r.qs) for r in self.chip),
                    maxaggr=self.maxaggr, imod=self.imod, **self.watchdog_stats())


def _sha1_finish(state: tuple, data: bytes) -> bytes:
    """SHA-1 digest of (one 64-byte block already in ``state``) + ``data``:
    the rest of an HMAC pass from its midstate (FIPS 180-4 §5.1.1 padding)."""
    total = 64 + len(data)
    msg = data + b"\x80" + bytes((55 - total) % 64) + (8 * total).to_bytes(8, "big")
    for i in range(0, len(msg), 64):
        state = sha1_compress(state, msg[i:i + 64])
    return b"".join(x.to_bytes(4, "big") for x in state)


def _particles(segs, skip: int, length: int) -> list[tuple[int, int]]:
    """Bus (addr, len) pieces of ``[skip, skip + length)`` of a segment list,
    each at most MAX_PARTICLE bytes."""
    out = []
    pos = 0
    for addr, n in segs:
        lo, hi = max(skip, pos), min(skip + length, pos + n)
        a = addr + lo - pos
        while lo < hi:
            take = min(hi - lo, MAX_PARTICLE)
            out.append((a, take))
            a += take
            lo += take
        pos += n
    return out


async def attach(pa: PciAttachArgs, **options: Any) -> Optional[Ubsec]:
    """``ubsec_attach``: autoconf's entry for a device in :data:`MATCH`."""
    sc = Ubsec(pa, **options)
    return sc if await sc.attach() else None
