"""hifn(4): driver for the Hifn 7751-like card (``hw/cards/hifn7751.py``).

Written against the card's registers and memory structures only, after
OpenBSD's sys/dev/pci/hifn7751.c of 2002-03 (registers: hifn7751reg.h):

- attach: reset (DMA_CNFG reset bits), unlock and enable-level check
  (PUSTAT), context RAM size (PUCNFG) → number of sessions, four rings plus
  command and result buffers in DMA memory, interrupt enables, interrupt
  handler, registration with OCF (DES, 3DES, HMAC-SHA1 by level; IPsec
  order only, ``CRYPTOCAP_F_ENCRYPT_MAC``).
- newsession: a session number (context RAM slot) in state USED; the first
  command of the session carries its keys (NEW_KEY) and moves it to KEY;
  later commands carry none. The OCF-local id is ``unit << 28 | session``.
- process: command buffer (base, MAC, crypt commands, keys when needed, IV
  always), result, destination and source descriptors (one per segment,
  in place: destination = source), the command descriptor last; enables
  idle rings with one DMA_CSR write. A request that does not fit the rings
  waits in a software queue and goes out as results free slots.
- interrupt: read DMA_CSR, acknowledge (write-1-to-clear), walk the result
  ring while descriptors are owned by the host, copy MACs, ``crypto_done``,
  reclaim ring slots.
- abort (any ring's ABORT bit): recovery (below) with EIO.
- all ones from DMA_CSR: the card does not decode; the handler quiesces it
  through configuration space (Bus Master Enable off, INTx# disabled), claims
  the interrupt once and has the watchdog recover it at once with EIO.
- watchdog (``hifn_tick``'s role, :class:`drivers.pci.Watchdog`): armed only
  while commands are on the rings or queued; when no result came back for 4x
  the outstanding bytes at the datasheet rate plus 1 ms it first collects
  results posted without an interrupt, then recovers with ETIMEDOUT. When it
  finds the card idle it disables the rings (what hifn_tick does each second)
  and disarms.
- recovery: the card is reset (if its registers read all ones, Bus Master
  Enable goes off first), so it can no longer touch host memory; results it
  wrote are completed, the other commands fail with the errno, the command
  register, rings and DMA registers are restored and every session's keys are
  re-sent with its next command; queued requests then go out.

A result counts as written only when its descriptor is no longer VALID and
the result buffer's session field no longer holds the 0xFFFF the driver put
there (the chip writes a 12-bit session number): a result descriptor handed
over without VALID cannot pass for a finished command.

Options: ``poll_freq``, ``poll_scalar`` (DMA_CNFG poll rate), ``ring_sizes``,
``watchdog_us`` (a fixed completion bound instead of the derived one).
``handover_hook`` (default None): ``hook(kind, addr, size)`` is called after
each structure is written to DMA memory and before the card is told, kinds
``"hifn-cmdbuf"`` (command buffer), ``"hifn-res"``, ``"hifn-dst"``,
``"hifn-src"`` and ``"hifn-cmd"`` (ring descriptors, in that order).

Segments that are not dword aligned, or not a multiple of 4 bytes except
the last, are bounced through an aligned kernel buffer (hifn_dmamap_aligned
→ copy, as the original does with mbufs).

Byte order: descriptors, command and result buffers are little-endian.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT,
                            CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC,
                            SID_LOCAL_MASK, CryptoDesc, CryptoIni, CryptoOp)
from drivers.pci import ALL_ONES, PciAttachArgs
from drivers.ring import DescriptorRing
from drivers.softc import PciCryptoSoftc
from hw.cards import hifn7751reg as R
from hw.cards.hifn7751reg import (CRAR, DMA_CNFG, DMA_CSR, DMA_IER, DRAR, PUCNFG, PUCTRL,
                                  PUIER, PUISR, PUSTAT, RRAR, SECRET1, SECRET2, SRAR,
                                  BaseCommand, BaseResult, CryptAlg, CryptCommand,
                                  CryptMasks, CryptMode, MacAlg, MacCommand, MacMasks,
                                  MacMode, PuStatEna, Result, ResultFlags, Ring, RingCtrl)
from hw.structs import pack, pack_int, size, unpack, unpack_int
from sim.kernel.errno import EINVAL, EIO, ENOENT, ENOMEM

__all__ = ["MATCH", "attach", "HifnSoftc", "pack_command", "unpack_result", "HIFN_SID",
           "HIFN_CMD_SLOT", "DATASHEET_MBPS"]

#: the devices this driver attaches to: (vendor, device) → product
MATCH = {(R.VENDOR_ID, R.DEVICE_ID): "Hifn 7751"}

#: bytes per command buffer slot: MAX_COMMAND rounded up to a power of two
#: (the driver's layout of its command buffers)
HIFN_CMD_SLOT = 128
#: longest segment per descriptor: the 16-bit length kept to whole dwords
HIFN_MAX_SEGLEN = R.D_LENGTH & ~3
#: hifn7751var.h HIFN_SID / HIFN_CARD / HIFN_SESSION: card in bits 31:28,
#: session number in bits 10:0
SID_CARD_SHIFT = 28
SID_SESSION_MASK = (1 << 11) - 1
#: context RAM sessions: 16 << PUCNFG.dram (the model's encoding), at most the
#: 2048 an 11-bit session number names
SESSIONS_PER_DRAM_STEP = 16
MAX_SESSIONS = SID_SESSION_MASK + 1
#: the counts' bits 17:16 sit above the 16 low bits (HIFN_BASE_CMD_LENMASK_HI)
_HI_SHIFT = R.LENMASK_LO.bit_length()
#: every PUISR status bit (the card's register is bits 15:0, as PUIER)
PUISR_ALL = (1 << 16) - 1

HS_STATE_FREE, HS_STATE_USED, HS_STATE_KEY = 0, 1, 2
#: result session field before the chip writes it (all ones: the chip writes a
#: 12-bit session number, bits 15:12 zero)
RES_UNWRITTEN = (1 << 16) - 1
#: Hifn 7751 datasheet rate, 3DES (Hifn 7751 data sheet: 83 Mbit/s)
DATASHEET_MBPS = 83.0
_FULL = -1                        # _submit: no room on the rings now

#: PUSTAT values at each enable level (HIFN_PUSTAT_ENA_1 / _2)
_ENA_1 = PUSTAT.bits(chipena=PuStatEna.ENA_1.value)
_ENA_2 = PUSTAT.bits(chipena=PuStatEna.ENA_2.value)
#: DMA_CNFG with the card and DMA unit out of reset (the reset bits are active low)
_CNFG_RUN = DMA_CNFG.bits(mstreset=1, dmareset=1, mode=1)
#: the driver's rings by OpenBSD's letters (ring_sizes option keys)
_RINGS = dict(c=Ring.CMD, s=Ring.SRC, r=Ring.RES, d=Ring.DST)
_RAR = dict(c=CRAR, s=SRAR, d=DRAR, r=RRAR)        # hifn_init_pci_registers order
_KIND = dict(c="hifn-cmd", s="hifn-src", r="hifn-res", d="hifn-dst")
_RESULT_BYTES = size(Result)


def _ring_ctrl(r: str, code: RingCtrl) -> int:
    """DMA_CSR bits setting ring ``r``'s control to ``code``."""
    return R.csr_field(_RINGS[r], "ctrl").value(code.value)


def HIFN_SID(unit: int, session: int) -> int:
    """OCF-local session id: card << 28 | session (HIFN_SID, hifn7751var.h)."""
    return (unit << SID_CARD_SHIFT) | (session & SID_SESSION_MASK)


def _masks(layout, value) -> dict:
    """A masks struct as field values, from an int or a dict."""
    return dict(unpack_int(layout, value)) if isinstance(value, int) else dict(value)


def pack_command(*, session: int, slen: int, dlen: int, decode: bool = False,
                 mac: Optional[tuple[Any, int, int]] = None,
                 crypt: Optional[tuple[Any, int, int]] = None,
                 mac_key: Optional[bytes] = None, cipher_key: Optional[bytes] = None,
                 iv: Optional[bytes] = None) -> bytes:
    """A command buffer. ``mac``/``crypt`` = (masks, header_skip, source_count),
    masks as an int or a dict of :class:`MacMasks` / :class:`CryptMasks`
    fields; the NEW_KEY/NEW_IV masks and count bits 17:16 are set here from
    the arguments given."""
    out = pack(BaseCommand, masks=dict(mac=bool(mac), crypt=bool(crypt), decode=decode),
               session=session & R.SESSION_MASK,
               src_hi=(slen & R.LENMASK_HI) >> _HI_SHIFT,
               dst_hi=(dlen & R.LENMASK_HI) >> _HI_SHIFT,
               src_count=slen & R.LENMASK_LO, dst_count=dlen & R.LENMASK_LO)
    if mac:
        mm, skip, count = mac
        m = _masks(MacMasks, mm)
        m["new_key"] = m.get("new_key", 0) | (mac_key is not None)
        m["count_hi"] = m.get("count_hi", 0) | (count & R.LENMASK_HI) >> _HI_SHIFT
        out += pack(MacCommand, masks=m, header_skip=skip, source_count=count & R.LENMASK_LO)
    if crypt:
        cm, skip, count = crypt
        c = _masks(CryptMasks, cm)
        c["new_key"] = c.get("new_key", 0) | (cipher_key is not None)
        c["new_iv"] = c.get("new_iv", 0) | (iv is not None)
        c["count_hi"] = c.get("count_hi", 0) | (count & R.LENMASK_HI) >> _HI_SHIFT
        out += pack(CryptCommand, masks=c, header_skip=skip, source_count=count & R.LENMASK_LO)
    if mac and mac_key is not None:
        out += bytes(mac_key).ljust(R.MAC_KEY_LENGTH, b"\0")
    if crypt and cipher_key is not None:
        out += bytes(cipher_key)
    if crypt and iv is not None:
        out += bytes(iv)
    return out


def unpack_result(buf: bytes) -> dict:
    """A result buffer: ``flags`` (the ResultFlags word), ``session``, the
    18-bit counts and, for a full :class:`Result`, ``mac_flags`` and ``mac``."""
    base = unpack(BaseResult, buf)
    f = base["flags"]
    r = {"flags": pack_int(ResultFlags, f), "session": base["session"] & R.SESSION_MASK,
         "src_count": base["src_count"] | f["src_hi"] << _HI_SHIFT,
         "dst_count": base["dst_count"] | f["dst_hi"] << _HI_SHIFT}
    if len(buf) >= _RESULT_BYTES:
        mac = unpack(Result, buf)["mac"]
        r["mac_flags"] = mac["flags"]
        r["mac"] = mac["mac"].to_bytes(R.MAC_RESULT_LENGTH, "little")
    return r


@dataclass
class HifnSession:
    state: int = HS_STATE_FREE
    cipher: int = 0                 # CRYPTO_DES_CBC / CRYPTO_3DES_CBC / 0
    ckey: bytes = b""
    mac: int = 0                    # CRYPTO_SHA1_HMAC / 0
    mkey: bytes = b""
    mlen: int = 0                   # MAC bytes returned


@dataclass
class HifnCommand:
    """``struct hifn_command``: one request on the card."""
    crp: CryptoOp
    session: int
    crde: Optional[CryptoDesc]
    crda: Optional[CryptoDesc]
    mlen: int
    nsrc: int = 0
    ndst: int = 0
    resi: int = 0
    bounce: Optional[tuple[int, int]] = None     # (kernel address, length)
    keys: bool = False
    nbytes: int = 0                              # source bytes (watchdog bound)


class HifnSoftc(PciCryptoSoftc):
    """``struct hifn_softc``."""

    driver = "hifn"
    MATCH = MATCH

    def __init__(self, pa: PciAttachArgs, *, poll_freq: int = R.POLL_FREQUENCY,
                 poll_scalar: int = R.POLL_SCALAR, ring_sizes: Optional[dict] = None,
                 watchdog_us: Optional[float] = None):
        super().__init__(pa, watchdog_us=watchdog_us)
        self.regs = pa.map(0, 1)
        # DMA_CNFG's poll fields (ValueError when they do not fit)
        self.poll = DMA_CNFG.bits(pollfreq=poll_freq, pollinval=poll_scalar)
        #: descriptors per ring (plus the JUMP slot); smaller than OpenBSD's for tests
        self.ring_size = dict(c=R.D_CMD_RSIZE, s=R.D_SRC_RSIZE, r=R.D_RES_RSIZE,
                              d=R.D_DST_RSIZE)
        self.ring_size.update(ring_sizes or {})
        if any(not 1 <= v <= 1024 for v in self.ring_size.values()) \
                or self.ring_size["c"] != self.ring_size["r"]:
            raise ValueError(f"bad ring sizes {self.ring_size}")
        prof = self.kernel.profile
        self.c_process = prof.cost("hifn.process")
        self.c_process_seg = prof.cost("hifn.process_seg")
        self.c_intr = prof.cost("hifn.intr")
        self.c_callback = prof.cost("hifn.callback")
        self.c_newsession = prof.cost("hifn.newsession")
        self.c_freesession = prof.cost("hifn.freesession")
        self.c_abort = prof.cost("hifn.abort")
        self.level = 0
        self.maxses = 0
        self.sessions: list[HifnSession] = []
        self.dmaier = DMA_IER.mask("r_done", "c_abort", "s_abort", "r_abort", "d_abort",
                                   "d_over", "r_over", "engine")
        # ring state
        self.dma = 0
        self.rings: dict[str, DescriptorRing] = {}
        self.cmdbuf = self.resbuf = 0
        self.inflight: deque[HifnCommand] = deque()
        self.queue: deque[CryptoOp] = deque()
        self.counters = dict(requests=0, results=0, errors=0, interrupts=0, stray=0,
                             aborts=0, failed=0, keys_sent=0, queued=0,
                             bounced=0, dstover=0, ring_enables=0,
                             recoveries=0, gone=0, offline=0)

    def stats(self) -> dict:
        s = dict(self.counters)
        s.update(sessions=sum(1 for x in self.sessions if x.state != HS_STATE_FREE),
                 maxses=self.maxses, level=hex(self.level), on_chip=len(self.inflight),
                 queued_now=len(self.queue), **self.watchdog_stats())
        return s

    # ------------------------------------------------------------ attach
    async def attach(self) -> bool:
        k = self.kernel
        await self.reset_board()
        if not await self.enable_crypto():
            k.printf(f"{self.name}: crypto disabled (enable level {self.level:#x})")
            return False
        dram = PUCNFG.decode(await self.regs.read(PUCNFG))["dram"]
        self.maxses = min(MAX_SESSIONS, SESSIONS_PER_DRAM_STEP << dram)
        self.sessions = [HifnSession() for _ in range(self.maxses)]
        self.init_dma()
        await self.init_registers()
        if self.dev.irq is None:
            k.printf(f"{self.name}: no interrupt line")
            return False
        self.ih = self.pa.intr_establish(self.intr, self.name)
        algs = [CRYPTO_DES_CBC]
        if self.level == _ENA_2:
            algs += [CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC]
        self.register_algs(algs)
        self.start_watchdog(mbps=DATASHEET_MBPS,
                            outstanding=lambda: sum(cmd.nbytes for cmd in self.inflight),
                            collect=self._walk_results, resume=self._kick,
                            on_idle=self._rings_off)
        k.printf(f"{self.name} at pci0 dev {self.dev.slot}: {self.product}, "
                 f"{self.maxses} sessions, "
                 f"{'3DES' if self.level == _ENA_2 else 'DES'}, irq {self.dev.irq}")
        return True

    async def reset_board(self) -> bool:
        """hifn_reset_board: hold the DMA unit and the chip in reset, release.
        Returns whether the chip came out of reset (False: it reads all ones
        or the reset bit never cleared)."""
        await self.regs.write(DMA_CNFG, DMA_CNFG.bits(mode=1))
        await self.regs.write(DMA_CNFG, _CNFG_RUN)
        # hifn_puc_wait: the reset bit reads back clear when the unit is ready
        for _ in range(100):
            puctrl = await self.regs.read(PUCTRL)
            if puctrl == ALL_ONES:
                return False
            if not puctrl & PUCTRL.mask("chip_reset"):
                break
        else:
            return False
        await self.regs.write(PUCTRL, PUCTRL.bits(dmaena=1))
        return True

    async def enable_crypto(self) -> bool:
        """hifn_enable_crypto: unlock (simplified handshake) and read the level."""
        ena = await self.regs.read(PUSTAT) & PUSTAT.mask("chipena")
        if ena != _ENA_2:
            await self.regs.write(DMA_CNFG, _CNFG_RUN | DMA_CNFG.bits(unlock=1))
            await self.regs.read(SECRET1)
            await self.regs.write(SECRET2, R.UNLOCK_KEY)
            await self.regs.write(DMA_CNFG, _CNFG_RUN)
            ena = await self.regs.read(PUSTAT) & PUSTAT.mask("chipena")
        self.level = ena
        return ena in (_ENA_1, _ENA_2)

    def init_dma(self) -> None:
        """hifn_init_dma: rings (each plus a JUMP slot), command and result buffers."""
        sizes = self.ring_size
        if not self.dma:
            total = sum(DescriptorRing.bytes_for(n) for n in sizes.values()) \
                + sizes["c"] * HIFN_CMD_SLOT + sizes["r"] * R.MAX_RESULT
            self.dma = self.pa.dma_alloc(total, 64)
            if self.dma is None:
                raise MemoryError("hifn: no DMA memory for rings")
            a = self.dma
            for r in "csrd":
                self.rings[r] = DescriptorRing(self.memory, a, sizes[r], _KIND[r],
                                               self._handover)
                a += DescriptorRing.bytes_for(sizes[r])
            self.cmdbuf = a
            self.resbuf = a + sizes["c"] * HIFN_CMD_SLOT
        for ring in self.rings.values():
            ring.reset()

    async def init_registers(self) -> None:
        """hifn_init_pci_registers: ring addresses, interrupt enables, DMA config."""
        for r, rar in _RAR.items():
            await self.regs.write(rar, self.rings[r].base)
        # all rings disabled, stale status cleared
        dis = 0
        for r in "csrd":
            dis |= _ring_ctrl(r, RingCtrl.DIS)
        await self.regs.write(DMA_CSR, dis | R.DMACSR_STATUS)
        await self.regs.write(PUISR, PUISR_ALL)
        await self.regs.write(PUIER, PUIER.bits(dstover=1))
        await self.regs.write(DMA_IER, self.dmaier)
        await self.regs.write(DMA_CNFG, _CNFG_RUN | DMA_CNFG.bits(last=1) | self.poll)
        await self.regs.write(PUCTRL, PUCTRL.bits(dmaena=1))

    # ------------------------------------------------------------ sessions
    async def newsession(self, chain: list[CryptoIni]) -> tuple[int, int]:
        await self.kernel.charge("driver", self.c_newsession)
        cipher = mac = None
        for c in chain:
            if c.alg in (CRYPTO_DES_CBC, CRYPTO_3DES_CBC):
                if cipher is not None:
                    return EINVAL, 0
                need = R.DES_KEY_LENGTH if c.alg == CRYPTO_DES_CBC else R.TDES_KEY_LENGTH
                if c.alg == CRYPTO_3DES_CBC and self.level != _ENA_2:
                    return EINVAL, 0
                if c.klen != need * 8 or not isinstance(c.key, (bytes, bytearray)) \
                        or len(c.key) < need:
                    return EINVAL, 0
                cipher = c
            elif c.alg == CRYPTO_SHA1_HMAC:
                if mac is not None or self.level != _ENA_2:
                    return EINVAL, 0
                if type(c.klen) is not int or c.klen % 8 \
                        or not 0 <= c.klen <= 8 * R.MAC_KEY_LENGTH \
                        or len(c.key or b"") < c.klen // 8:
                    return EINVAL, 0
                if c.mlen not in (0, 12, 20):
                    return EINVAL, 0
                mac = c
            else:
                return EINVAL, 0
        if cipher is None and mac is None:
            return EINVAL, 0
        for i, s in enumerate(self.sessions):
            if s.state == HS_STATE_FREE:
                break
        else:
            return ENOMEM, 0
        self.sessions[i] = HifnSession(
            state=HS_STATE_USED,
            cipher=cipher.alg if cipher else 0,
            ckey=bytes(cipher.key[:cipher.klen // 8]) if cipher else b"",
            mac=mac.alg if mac else 0,
            mkey=bytes(mac.key[:mac.klen // 8]) if mac else b"",
            mlen=(mac.mlen or 12) if mac else 0)
        return 0, HIFN_SID(self.unit, i)

    def _session(self, lid: Any) -> Optional[int]:
        if type(lid) is not int or (lid >> SID_CARD_SHIFT) != self.unit:
            return None
        ses = lid & SID_SESSION_MASK
        if ses >= self.maxses or self.sessions[ses].state == HS_STATE_FREE:
            return None
        return ses

    async def freesession(self, lid: int) -> int:
        await self.kernel.charge("driver", self.c_freesession)
        ses = self._session(lid & SID_LOCAL_MASK if type(lid) is int else lid)
        if ses is None:
            return EINVAL
        self.sessions[ses] = HifnSession()
        return 0

    # ------------------------------------------------------------ requests
    async def process(self, crp: CryptoOp) -> int:
        """hifn_process: check the request, build the command, post descriptors."""
        k = self.kernel
        await k.charge("driver", self.c_process)
        ses = self._session(crp.sid & SID_LOCAL_MASK) if type(crp.sid) is int else None
        if ses is None:
            return ENOENT
        err = self._check(crp, ses)
        if err:
            return err
        self.counters["requests"] += 1
        s = k.splraise()
        try:
            err = _FULL if self.queue else await self._submit(crp, ses)
            if err == _FULL:
                self.queue.append(crp)
                self.counters["queued"] += 1
                self.wd.arm()
                err = 0
        finally:
            k.splx(s)
        return err

    def _descs(self, crp: CryptoOp) -> tuple[Optional[CryptoDesc], Optional[CryptoDesc]]:
        crde = crda = None
        for d in crp.desc:
            if d.alg in (CRYPTO_DES_CBC, CRYPTO_3DES_CBC):
                crde = d
            elif d.alg == CRYPTO_SHA1_HMAC:
                crda = d
        return crde, crda

    def _check(self, crp: CryptoOp, ses: int) -> int:
        sess = self.sessions[ses]
        if not 1 <= len(crp.desc) <= 2 or crp.buf is None:
            return EINVAL
        crde, crda = self._descs(crp)
        if (crde is None) + (crda is None) != 2 - len(crp.desc):
            return EINVAL                                 # unknown or repeated algorithm
        if crde is not None and crde.alg != sess.cipher or crda is not None and not sess.mac:
            return EINVAL
        if crde is not None and crda is not None:
            # the chip does encrypt-then-MAC or MAC-then-decrypt (IPsec) only
            enc = bool(crde.flags & CRD_F_ENCRYPT)
            if (crp.desc[0] is crde) != enc:
                return EINVAL
        n = crp.buf.length
        for d in (crde, crda):
            if d is None:
                continue
            for v in (d.skip, d.len, d.inject, d.flags):
                if type(v) is not int or v < 0:
                    return EINVAL
            # header_skip has 16 bits, the counts 18 (LENMASK_LO | LENMASK_HI)
            if d.skip + d.len > n or d.skip > R.LENMASK_LO \
                    or d.len > R.LENMASK_LO | R.LENMASK_HI:
                return EINVAL
        if crde is not None:
            if crde.len % 8:
                return EINVAL
            if crde.flags & CRD_F_IV_EXPLICIT:
                if not isinstance(crde.iv, (bytes, bytearray)) or len(crde.iv) < R.IV_LENGTH:
                    return EINVAL
            elif crde.inject + R.IV_LENGTH > n:
                return EINVAL
        if crda is not None and crda.inject + sess.mlen > n:
            return EINVAL
        return 0

    def _segments(self, crp: CryptoOp, total: int) -> tuple[list[tuple[int, int]], bool]:
        segs, left = [], total
        for addr, ln in crp.buf.segs:
            if left <= 0:
                break
            take = min(ln, left)
            if take:
                segs.append((addr, take))
            left -= take
        aligned = all(a % 4 == 0 and (n % 4 == 0 or i == len(segs) - 1)
                      for i, (a, n) in enumerate(segs))
        return segs, aligned

    async def _submit(self, crp: CryptoOp, ses: int) -> int:
        """hifn_crypto: 0 when posted, ``_FULL`` when the rings are full (the
        caller queues), else an errno."""
        k, mem = self.kernel, self.memory
        sess = self.sessions[ses]
        crde, crda = self._descs(crp)
        total = max(d.skip + d.len for d in (crde, crda) if d is not None)
        segs, aligned = self._segments(crp, total)
        bounce = None
        if not aligned:
            kaddr = k.malloc(max(total, 4), 4)
            if kaddr is None:
                return _FULL
            bounce = (kaddr, total)
            segs = [(kaddr, total)]
        chunks = []
        for a, n in segs:
            while n > HIFN_MAX_SEGLEN:
                chunks.append((a, HIFN_MAX_SEGLEN))
                a += HIFN_MAX_SEGLEN
                n -= HIFN_MAX_SEGLEN
            chunks.append((a, n))
        if not chunks:
            chunks = [(segs[0][0] if segs else self.resbuf, 0)]
        nseg = len(chunks)
        rs = self.ring_size
        if nseg > min(rs["s"], rs["d"]):
            if bounce:
                k.free(bounce[0])
            return EINVAL                     # can never fit the rings
        rings = self.rings
        if self.quiesced or not rings["c"].room(1) or not rings["r"].room(1) \
                or not rings["s"].room(nseg) or not rings["d"].room(nseg):
            if bounce:
                k.free(bounce[0])
            return _FULL
        await k.charge("driver", self.c_process_seg * 2 * nseg)

        # IV (as cryptosoft's swcr_encdec)
        iv = None
        if crde is not None:
            enc = bool(crde.flags & CRD_F_ENCRYPT)
            if crde.flags & CRD_F_IV_EXPLICIT:
                iv = bytes(crde.iv[:R.IV_LENGTH])
            elif enc and not crde.flags & CRD_F_IV_PRESENT:
                iv = bytes(k.random.getrandbits(8) for _ in range(R.IV_LENGTH))
                crp.buf.write(crde.inject, iv)
            else:
                iv = crp.buf.read(crde.inject, R.IV_LENGTH)
        if bounce:
            self.counters["bounced"] += 1
            await k.charge("copy", k.copy_cost(total))
            mem.write(bounce[0], crp.buf.read(0, total))
        keys = sess.state == HS_STATE_USED
        cmd = HifnCommand(crp, ses, crde, crda, sess.mlen, nsrc=nseg, ndst=nseg,
                          bounce=bounce, keys=keys, nbytes=total)
        mac = crypt = None
        if crda is not None:
            mm = dict(alg=MacAlg.SHA1, mode=MacMode.HMAC, result=1, pos_ipsec=1,
                      trunc=sess.mlen == 12)
            mac = (mm, crda.skip, crda.len)
        if crde is not None:
            cm = dict(alg=CryptAlg.TDES if crde.alg == CRYPTO_3DES_CBC else CryptAlg.DES,
                      mode=CryptMode.CBC)
            crypt = (cm, crde.skip, crde.len)
        buf = pack_command(session=ses, slen=total, dlen=total,
                           decode=crde is not None and not crde.flags & CRD_F_ENCRYPT,
                           mac=mac, crypt=crypt,
                           mac_key=sess.mkey if keys and mac else None,
                           cipher_key=sess.ckey if keys and crypt else None, iv=iv)
        if keys:
            # the context RAM has the keys once one command carried every key
            # the session has (a MAC-only command of a cipher+MAC session
            # leaves the cipher key unsent: the next command sends keys again)
            if (crypt or not sess.cipher) and (mac or not sess.mac):
                sess.state = HS_STATE_KEY
            self.counters["keys_sent"] += 1

        # result, destination, source descriptors, then the command: the chip
        # polls the command ring and finds the rest ready
        resi = rings["r"].index
        mem.write(self._result(resi), pack(Result, base=dict(session=RES_UNWRITTEN)))
        cmdaddr = self.cmdbuf + rings["c"].index * HIFN_CMD_SLOT
        mem.write(cmdaddr, buf)
        self._handover("hifn-cmdbuf", cmdaddr, len(buf))
        # the result takes its DONE interrupt; the others mask theirs
        rings["r"].post(self._result(resi), R.MAX_RESULT, last=True, maskdoneirq=False)
        for i, (a, n) in enumerate(chunks):
            rings["d"].post(a, n, last=i == nseg - 1)
        for i, (a, n) in enumerate(chunks):
            rings["s"].post(a, n, last=i == nseg - 1)
        rings["c"].post(cmdaddr, len(buf), last=True)
        cmd.resi = resi
        self.inflight.append(cmd)
        self.wd.arm()
        # enable the rings the chip is not polling yet
        ena = 0
        for r in "csrd":
            if not rings[r].busy:
                rings[r].busy = True
                ena |= _ring_ctrl(r, RingCtrl.ENA)
        if ena:
            self.counters["ring_enables"] += 1
            await self.regs.write(DMA_CSR, ena)
        return 0

    def _result(self, i: int) -> int:
        """Bus address of result buffer ``i`` (one per result ring slot)."""
        return self.resbuf + i * R.MAX_RESULT

    # ------------------------------------------------------------ interrupt
    async def intr(self) -> bool:
        """hifn_intr."""
        csr = await self.regs.read(DMA_CSR)
        if csr == ALL_ONES:
            # the card does not decode: quiesce it, the watchdog recovers it now
            if await self.gone():
                return True
            self.counters["stray"] += 1
            return False
        if not csr & self.dmaier:
            self.counters["stray"] += 1
            return False
        self.counters["interrupts"] += 1
        await self.kernel.charge("driver", self.c_intr)
        await self.regs.write(DMA_CSR, csr & self.dmaier & R.DMACSR_STATUS)
        if csr & DMA_CSR.mask("engine"):
            puisr = await self.regs.read(PUISR)
            await self.regs.write(PUISR, puisr)
            if puisr & PUISR.mask("dstover"):
                self.counters["dstover"] += 1
        if csr & R.DMACSR_ABORTS:
            self.counters["aborts"] += 1
            await self._recover(EIO, f"abort (csr {csr:#010x})")
            return True
        await self._walk_results()
        await self._kick()
        return True

    def _written(self, cmd: HifnCommand) -> bool:
        """Did the chip write this command's result (descriptor released and
        the result buffer's session field overwritten)?"""
        if self.rings["r"].control(cmd.resi)["valid"]:
            return False
        res = unpack(BaseResult, self.memory.read(self._result(cmd.resi), size(BaseResult)))
        return res["session"] != RES_UNWRITTEN

    async def _walk_results(self, anywhere: bool = False) -> None:
        """Complete written results in ring order up to the first that is not,
        or (``anywhere``, once the chip is stopped) every written one."""
        for cmd in list(self.inflight):
            if not self._written(cmd):
                if anywhere:
                    continue
                break
            self.inflight.remove(cmd)
            self.wd.progress()
            await self._callback(cmd)

    async def _callback(self, cmd: HifnCommand, salvage: bool = False) -> None:
        """hifn_callback: result flags → errno, MAC to the buffer, bounce back, done."""
        k, mem = self.kernel, self.memory
        await k.charge("driver", self.c_callback)
        self._reclaim(cmd)
        crp = cmd.crp
        res = unpack_result(mem.read(self._result(cmd.resi), R.MAX_RESULT))
        err = 0
        if res["flags"] & (R.RES_CMDINVAL | R.RES_DATAERR):
            err = EINVAL
        elif res["flags"] & R.BASE_RES_DSTOVERRUN:
            err = EIO
        sess = self.sessions[cmd.session]
        if err and cmd.keys and sess.state == HS_STATE_KEY:
            sess.state = HS_STATE_USED    # the keys it carried never reached the context RAM
        if not err:
            if cmd.bounce:
                kaddr, n = cmd.bounce
                await k.charge("copy", k.copy_cost(n))
                crp.buf.write(0, mem.read(kaddr, n))
            if cmd.crda is not None:
                crp.buf.write(cmd.crda.inject, res["mac"][:cmd.mlen])
        if cmd.bounce:
            k.free(cmd.bounce[0])
        self.counters["results"] += 1
        if err:
            self.counters["errors"] += 1
        crp.etype = err
        self.crypto.done(crp)

    def _reclaim(self, cmd: HifnCommand) -> None:
        for r, n in (("c", 1), ("r", 1), ("s", cmd.nsrc), ("d", cmd.ndst)):
            self.rings[r].reclaim(n)

    async def _kick(self) -> None:
        """Move queued requests onto the rings while they fit."""
        while self.queue:
            crp = self.queue[0]
            ses = self._session(crp.sid & SID_LOCAL_MASK)
            if ses is None or self._check(crp, ses):
                self.queue.popleft()
                crp.etype = ENOENT if ses is None else EINVAL
                self.crypto.done(crp)
                continue
            err = await self._submit(crp, ses)
            if err == _FULL:
                break
            self.queue.popleft()
            if err:
                crp.etype = err
                self.crypto.done(crp)

    # ------------------------------------------------------------ watchdog and recovery
    def _idle(self) -> bool:
        return not self.inflight and not self.queue

    async def _rings_off(self) -> None:
        """hifn_tick: stop the chip polling rings with nothing on them."""
        k = self.kernel
        s = k.splraise()
        try:
            dis = 0
            for r in "csrd":
                if self.rings[r].busy:
                    self.rings[r].busy = False
                    dis |= _ring_ctrl(r, RingCtrl.DIS)
            if dis and not self.inflight and not self.quiesced:
                await self.regs.write(DMA_CSR, dis)
        finally:
            k.splx(s)

    async def _recover(self, err: int, why: str) -> None:
        """Stop the chip, complete the results it wrote, fail the other
        commands with ``err``, restart it (keys re-sent) and submit the queue.
        A request fails only once the chip can no longer touch its buffers."""
        k = self.kernel
        self.counters["recoveries"] += 1
        await k.charge("driver", self.c_abort)
        k.printf(f"{self.name}: {why}: resetting")
        await self.stop()
        await self._walk_results(anywhere=True)
        pending, self.inflight = self.inflight, deque()
        for cmd in pending:
            self._fail(cmd, err)
        # the context RAM is no longer trusted: keys go again with the next command
        for sess in self.sessions:
            if sess.state == HS_STATE_KEY:
                sess.state = HS_STATE_USED
        if not await self._restart():
            self.counters["offline"] += 1
            k.printf(f"{self.name}: device still not responding: failing queued requests")
            while self.queue:
                crp = self.queue.popleft()
                crp.etype = err
                self.crypto.done(crp)
            return
        await self._kick()

    def _fail(self, cmd: HifnCommand, err: int) -> None:
        self._reclaim(cmd)
        if cmd.bounce:
            self.kernel.free(cmd.bounce[0])
        self.counters["failed"] += 1
        self.counters["results"] += 1
        self.counters["errors"] += 1
        cmd.crp.etype = err
        self.crypto.done(cmd.crp)

    async def _restart(self) -> bool:
        """Reset with decoders on and mastering off, then restore the command
        register, rings and DMA registers. False: the chip does not respond."""
        if not await self.reenable():
            return False
        self.init_dma()
        await self.init_registers()
        return True


async def attach(pa: PciAttachArgs, **options: Any) -> Optional[HifnSoftc]:
    """``hifn_attach``: autoconf's entry for a device in :data:`MATCH`."""
    sc = HifnSoftc(pa, **options)
    if not await sc.attach():
        return None
    return sc

