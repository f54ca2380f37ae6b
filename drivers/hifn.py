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

import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

from ocf.cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT,
                            CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC,
                            CryptoDesc, CryptoIni, CryptoOp)
from drivers.pci import ALL_ONES, PciAttachArgs
from drivers.softc import PciCryptoSoftc
from sim.kernel.errno import EINVAL, EIO, ENOENT, ENOMEM

__all__ = ["MATCH", "attach", "HifnSoftc", "pack_command", "unpack_result", "HIFN_SID",
           "HIFN_D_CMD_RSIZE", "HIFN_D_SRC_RSIZE", "HIFN_D_DST_RSIZE", "HIFN_D_RES_RSIZE",
           "HIFN_MAX_COMMAND", "HIFN_MAX_RESULT"]

#: the devices this driver attaches to (vendor, device) → name; TODO header IDs
MATCH = {(0x13A3, 0x0005): "Hifn 7751"}

# ---------------------------------------------------------------- hifn7751reg.h
HIFN_0_PUDATA, HIFN_0_PUCTRL, HIFN_0_PUISR, HIFN_0_PUCNFG = 0x00, 0x04, 0x08, 0x0C
HIFN_0_PUIER, HIFN_0_PUSTAT, HIFN_0_FIFOSTAT, HIFN_0_FIFOCNFG = 0x10, 0x14, 0x18, 0x1C
HIFN_1_DMA_CRAR, HIFN_1_DMA_SRAR, HIFN_1_DMA_RRAR, HIFN_1_DMA_DRAR = 0x0C, 0x1C, 0x2C, 0x3C
HIFN_1_DMA_CSR, HIFN_1_DMA_IER, HIFN_1_DMA_CNFG = 0x40, 0x44, 0x48
HIFN_1_REVID, HIFN_UNLOCK_SECRET1, HIFN_UNLOCK_SECRET2 = 0x98, 0xF4, 0xFC

HIFN_PUCTRL_RESET, HIFN_PUCTRL_DMAENA = 0x01, 0x02
HIFN_PUISR_CMDINVAL, HIFN_PUISR_DATAERR, HIFN_PUISR_DSTOVER = 0x8000, 0x4000, 0x0200
HIFN_PUIER_DSTOVER = 0x0200
HIFN_PUSTAT_CHIPENA = 0xFF00
HIFN_PUSTAT_ENA_0, HIFN_PUSTAT_ENA_1, HIFN_PUSTAT_ENA_2 = 0x3000, 0x1000, 0x1100
HIFN_PUCNFG_DRAMMASK = 0xE000

HIFN_DMACNFG_BIGENDIAN = 0x1000_0000
HIFN_DMACNFG_POLLFREQ = 0x00FF_0000
HIFN_DMACNFG_UNLOCK = 0x0000_0800
HIFN_DMACNFG_POLLINVAL = 0x0000_0700
HIFN_DMACNFG_LAST = 0x0000_0010
HIFN_DMACNFG_MODE = 0x0000_0004
HIFN_DMACNFG_DMARESET = 0x0000_0002
HIFN_DMACNFG_MSTRESET = 0x0000_0001
#: OpenBSD's HIFN_POLL_FREQUENCY / HIFN_POLL_SCALAR
HIFN_POLL_FREQUENCY, HIFN_POLL_SCALAR = 0x1, 0x0
#: the model's simplified unlock handshake (hw/cards/hifn7751.py UNLOCK_KEY)
HIFN_UNLOCK_KEY = 0x13A3_7751


def _ring_bits(shift):
    return dict(CTRL_ENA=0x80 << shift, CTRL_DIS=0x40 << shift, ABORT=0x20 << shift,
                DONE=0x10 << shift, LAST=0x08 << shift, WAIT=0x04 << shift,
                OVER=0x02 << shift)


CSR_C, CSR_S, CSR_R, CSR_D = (_ring_bits(s) for s in (0, 8, 16, 24))
HIFN_DMACSR_ENGINE = 0x0000_0001
HIFN_DMACSR_ABORTS = CSR_C["ABORT"] | CSR_S["ABORT"] | CSR_R["ABORT"] | CSR_D["ABORT"]
HIFN_DMACSR_STATUS = 0
for _r in (CSR_C, CSR_S, CSR_R, CSR_D):
    HIFN_DMACSR_STATUS |= _r["ABORT"] | _r["DONE"] | _r["LAST"] | _r["WAIT"]
HIFN_DMACSR_STATUS |= CSR_R["OVER"] | CSR_D["OVER"]

HIFN_D_VALID, HIFN_D_JUMP, HIFN_D_LAST = 0x8000_0000, 0x4000_0000, 0x2000_0000
HIFN_D_OVER, HIFN_D_DESTOVER, HIFN_D_MASKDONEIRQ = 0x0800_0000, 0x0400_0000, 0x0200_0000
HIFN_D_LENGTH = 0xFFFF
HIFN_D_CMD_RSIZE, HIFN_D_SRC_RSIZE, HIFN_D_DST_RSIZE, HIFN_D_RES_RSIZE = 24, 80, 80, 24

HIFN_BASE_CMD_COMP, HIFN_BASE_CMD_PAD, HIFN_BASE_CMD_MAC = 0x0100, 0x0200, 0x0400
HIFN_BASE_CMD_CRYPT, HIFN_BASE_CMD_DECODE = 0x0800, 0x2000
HIFN_MAC_CMD_ALG_SHA1, HIFN_MAC_CMD_MODE_HMAC = 0x0000, 0x0000
HIFN_MAC_CMD_TRUNC, HIFN_MAC_CMD_RESULT = 0x0010, 0x0020
HIFN_MAC_CMD_POS_IPSEC, HIFN_MAC_CMD_NEW_KEY = 0x0200, 0x0800
HIFN_CRYPT_CMD_ALG_DES, HIFN_CRYPT_CMD_ALG_3DES = 0x0000, 0x0001
HIFN_CRYPT_CMD_MODE_CBC = 0x0008
HIFN_CRYPT_CMD_NEW_KEY, HIFN_CRYPT_CMD_NEW_IV = 0x0800, 0x1000
HIFN_BASE_RES_DSTOVERRUN = 0x0200
HIFN_RES_CMDINVAL, HIFN_RES_DATAERR = 0x0001, 0x0002     # model extensions
HIFN_MAC_KEY_LENGTH = 64
HIFN_IV_LENGTH = 8
#: base + MAC + crypt commands + MAC key + 3DES key + IV
HIFN_MAX_COMMAND = 8 + 8 + 8 + 64 + 24 + 8
HIFN_CMD_SLOT = 128
HIFN_MAX_RESULT = 32
HIFN_MAX_SEGLEN = 0xFFFC          # descriptor length is 16 bits; keep dword multiples

HS_STATE_FREE, HS_STATE_USED, HS_STATE_KEY = 0, 1, 2
#: result session field before the chip writes it (its sessions have 12 bits)
RES_UNWRITTEN = 0xFFFF
#: Hifn 7751 datasheet rate, 3DES (Hifn 7751 data sheet: 83 Mbit/s)
DATASHEET_MBPS = 83.0
_FULL = -1                        # _submit: no room on the rings now


def HIFN_SID(unit: int, session: int) -> int:
    """OCF-local session id: card << 28 | session (HIFN_SID, hifn7751var.h)."""
    return (unit << 28) | (session & 0x7FF)


def pack_command(*, session: int, slen: int, dlen: int, decode: bool = False,
                 mac: Optional[tuple[int, int, int]] = None,
                 crypt: Optional[tuple[int, int, int]] = None,
                 mac_key: Optional[bytes] = None, cipher_key: Optional[bytes] = None,
                 iv: Optional[bytes] = None) -> bytes:
    """A command buffer. ``mac``/``crypt`` = (masks, header_skip, source_count);
    the NEW_KEY/NEW_IV masks and count bits 17:16 are set here from the
    arguments given."""
    masks = (HIFN_BASE_CMD_MAC if mac else 0) | (HIFN_BASE_CMD_CRYPT if crypt else 0) \
        | (HIFN_BASE_CMD_DECODE if decode else 0)
    sesw = (session & 0xFFF) | ((slen >> 16) & 3) << 14 | ((dlen >> 16) & 3) << 12
    out = struct.pack("<HHHH", masks, sesw, slen & 0xFFFF, dlen & 0xFFFF)
    if mac:
        mm, skip, count = mac
        mm |= HIFN_MAC_CMD_NEW_KEY if mac_key is not None else 0
        mm |= ((count >> 16) & 3) << 14
        out += struct.pack("<HHHH", mm, skip, count & 0xFFFF, 0)
    if crypt:
        cm, skip, count = crypt
        cm |= HIFN_CRYPT_CMD_NEW_KEY if cipher_key is not None else 0
        cm |= HIFN_CRYPT_CMD_NEW_IV if iv is not None else 0
        cm |= ((count >> 16) & 3) << 14
        out += struct.pack("<HHHH", cm, skip, count & 0xFFFF, 0)
    if mac and mac_key is not None:
        out += bytes(mac_key).ljust(HIFN_MAC_KEY_LENGTH, b"\0")
    if crypt and cipher_key is not None:
        out += bytes(cipher_key)
    if crypt and iv is not None:
        out += bytes(iv)
    return out


def unpack_result(buf: bytes) -> dict:
    flags, session, src, dst = struct.unpack_from("<HHHH", buf, 0)
    r = {"flags": flags, "session": session & 0xFFF,
         "src_count": src | ((flags >> 14) & 3) << 16,
         "dst_count": dst | ((flags >> 12) & 3) << 16}
    if len(buf) >= 32:
        r["mac_flags"] = struct.unpack_from("<H", buf, 8)[0]
        r["mac"] = bytes(buf[12:32])
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

    def __init__(self, pa: PciAttachArgs, *, poll_freq: int = HIFN_POLL_FREQUENCY,
                 poll_scalar: int = HIFN_POLL_SCALAR, ring_sizes: Optional[dict] = None,
                 watchdog_us: Optional[float] = None):
        super().__init__(pa, watchdog_us=watchdog_us)
        self.host = pa.host
        self.bar0 = self.dev.bar(0).addr
        self.bar1 = self.dev.bar(1).addr
        self.poll_freq = poll_freq
        self.poll_scalar = poll_scalar
        #: descriptors per ring (plus the JUMP slot); smaller than OpenBSD's for tests
        self.ring_size = dict(c=HIFN_D_CMD_RSIZE, s=HIFN_D_SRC_RSIZE, r=HIFN_D_RES_RSIZE,
                              d=HIFN_D_DST_RSIZE)
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
        self.dmaier = (CSR_R["DONE"] | CSR_C["ABORT"] | CSR_S["ABORT"] | CSR_R["ABORT"]
                       | CSR_D["ABORT"] | CSR_D["OVER"] | CSR_R["OVER"] | HIFN_DMACSR_ENGINE)
        # ring state
        self.dma = 0
        self.ring_addr: dict[str, int] = {}
        self.cmdbuf = self.resbuf = 0
        self.cmdi = self.srci = self.dsti = self.resi = 0
        self.cmdu = self.srcu = self.dstu = self.resu = 0
        self.inflight: deque[HifnCommand] = deque()
        self.queue: deque[CryptoOp] = deque()
        self.busy = {"c": False, "s": False, "r": False, "d": False}
        self.counters = dict(requests=0, results=0, errors=0, interrupts=0, stray=0,
                             aborts=0, failed=0, keys_sent=0, queued=0,
                             bounced=0, dstover=0, ring_enables=0,
                             recoveries=0, gone=0, offline=0)

    # ------------------------------------------------------------ registers
    async def rd0(self, reg: int) -> int:
        return await self.host.mmio_read(self.bar0 + reg)

    async def wr0(self, reg: int, val: int) -> None:
        await self.host.mmio_write(self.bar0 + reg, val)

    async def rd1(self, reg: int) -> int:
        return await self.host.mmio_read(self.bar1 + reg)

    async def wr1(self, reg: int, val: int) -> None:
        await self.host.mmio_write(self.bar1 + reg, val)

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
        cnfg = await self.rd0(HIFN_0_PUCNFG)
        self.maxses = min(2048, 16 << ((cnfg & HIFN_PUCNFG_DRAMMASK) >> 13))
        self.sessions = [HifnSession() for _ in range(self.maxses)]
        self.init_dma()
        await self.init_registers()
        if self.dev.irq is None:
            k.printf(f"{self.name}: no interrupt line")
            return False
        self.ih = self.pa.intr_establish(self.intr, self.name)
        algs = [CRYPTO_DES_CBC]
        if self.level == HIFN_PUSTAT_ENA_2:
            algs += [CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC]
        self.register_algs(algs)
        self.start_watchdog(mbps=DATASHEET_MBPS,
                            outstanding=lambda: sum(cmd.nbytes for cmd in self.inflight),
                            collect=self._walk_results, resume=self._kick,
                            on_idle=self._rings_off)
        k.printf(f"{self.name} at pci0 dev {self.dev.slot}: {self.product}, {self.maxses} sessions, "
                 f"{'3DES' if self.level == HIFN_PUSTAT_ENA_2 else 'DES'}, irq {self.dev.irq}")
        return True

    async def reset_board(self) -> bool:
        """hifn_reset_board: hold the DMA unit and the chip in reset, release.
        Returns whether the chip came out of reset (False: it reads all ones
        or the reset bit never cleared)."""
        await self.wr1(HIFN_1_DMA_CNFG, HIFN_DMACNFG_MODE)
        await self.wr1(HIFN_1_DMA_CNFG, HIFN_DMACNFG_MSTRESET | HIFN_DMACNFG_DMARESET
                       | HIFN_DMACNFG_MODE)
        # hifn_puc_wait: the reset bit reads back clear when the unit is ready
        for _ in range(100):
            puctrl = await self.rd0(HIFN_0_PUCTRL)
            if puctrl == ALL_ONES:
                return False
            if not puctrl & HIFN_PUCTRL_RESET:
                break
        else:
            return False
        await self.wr0(HIFN_0_PUCTRL, HIFN_PUCTRL_DMAENA)
        return True

    async def enable_crypto(self) -> bool:
        """hifn_enable_crypto: unlock (simplified handshake) and read the level."""
        ena = await self.rd0(HIFN_0_PUSTAT) & HIFN_PUSTAT_CHIPENA
        if ena != HIFN_PUSTAT_ENA_2:
            await self.wr1(HIFN_1_DMA_CNFG, HIFN_DMACNFG_UNLOCK | HIFN_DMACNFG_MSTRESET
                           | HIFN_DMACNFG_DMARESET | HIFN_DMACNFG_MODE)
            await self.rd1(HIFN_UNLOCK_SECRET1)
            await self.wr1(HIFN_UNLOCK_SECRET2, HIFN_UNLOCK_KEY)
            await self.wr1(HIFN_1_DMA_CNFG, HIFN_DMACNFG_MSTRESET | HIFN_DMACNFG_DMARESET
                           | HIFN_DMACNFG_MODE)
            ena = await self.rd0(HIFN_0_PUSTAT) & HIFN_PUSTAT_CHIPENA
        self.level = ena
        return ena in (HIFN_PUSTAT_ENA_1, HIFN_PUSTAT_ENA_2)

    def init_dma(self) -> None:
        """hifn_init_dma: rings (each plus a JUMP slot), command and result buffers."""
        mem = self.memory
        sizes = self.ring_size
        if not self.dma:
            total = sum(8 * (n + 1) for n in sizes.values()) \
                + sizes["c"] * HIFN_CMD_SLOT + sizes["r"] * HIFN_MAX_RESULT
            self.dma = self.kernel.malloc(total, 64)
            if self.dma is None:
                raise MemoryError("hifn: no DMA memory for rings")
            a = self.dma
            for r in "csrd":
                self.ring_addr[r] = a
                a += 8 * (sizes[r] + 1)
            self.cmdbuf = a
            self.resbuf = a + sizes["c"] * HIFN_CMD_SLOT
        for r in "csrd":
            base = self.ring_addr[r]
            mem.write(base, bytes(8 * (sizes[r] + 1)))
            # the JUMP slot points back at the ring start; armed (VALID) on each wrap
            mem.write(base + 8 * sizes[r] + 4, struct.pack("<I", base))
        self.cmdi = self.srci = self.dsti = self.resi = 0
        self.cmdu = self.srcu = self.dstu = self.resu = 0
        self.busy = dict.fromkeys(self.busy, False)

    async def init_registers(self) -> None:
        """hifn_init_pci_registers: ring addresses, interrupt enables, DMA config."""
        await self.wr1(HIFN_1_DMA_CRAR, self.ring_addr["c"])
        await self.wr1(HIFN_1_DMA_SRAR, self.ring_addr["s"])
        await self.wr1(HIFN_1_DMA_DRAR, self.ring_addr["d"])
        await self.wr1(HIFN_1_DMA_RRAR, self.ring_addr["r"])
        # all rings disabled, stale status cleared
        await self.wr1(HIFN_1_DMA_CSR, CSR_C["CTRL_DIS"] | CSR_S["CTRL_DIS"] | CSR_R["CTRL_DIS"]
                       | CSR_D["CTRL_DIS"] | HIFN_DMACSR_STATUS)
        await self.wr0(HIFN_0_PUISR, 0xFFFF)
        await self.wr0(HIFN_0_PUIER, HIFN_PUIER_DSTOVER)
        await self.wr1(HIFN_1_DMA_IER, self.dmaier)
        await self.wr1(HIFN_1_DMA_CNFG, HIFN_DMACNFG_MSTRESET | HIFN_DMACNFG_DMARESET
                       | HIFN_DMACNFG_MODE | HIFN_DMACNFG_LAST
                       | (self.poll_freq << 16) & HIFN_DMACNFG_POLLFREQ
                       | (self.poll_scalar << 8) & HIFN_DMACNFG_POLLINVAL)
        await self.wr0(HIFN_0_PUCTRL, HIFN_PUCTRL_DMAENA)

    # ------------------------------------------------------------ sessions
    async def newsession(self, chain: list[CryptoIni]) -> tuple[int, int]:
        await self.kernel.charge("driver", self.c_newsession)
        cipher = mac = None
        for c in chain:
            if c.alg in (CRYPTO_DES_CBC, CRYPTO_3DES_CBC):
                if cipher is not None:
                    return EINVAL, 0
                need = 8 if c.alg == CRYPTO_DES_CBC else 24
                if c.alg == CRYPTO_3DES_CBC and self.level != HIFN_PUSTAT_ENA_2:
                    return EINVAL, 0
                if c.klen != need * 8 or not isinstance(c.key, (bytes, bytearray)) \
                        or len(c.key) < need:
                    return EINVAL, 0
                cipher = c
            elif c.alg == CRYPTO_SHA1_HMAC:
                if mac is not None or self.level != HIFN_PUSTAT_ENA_2:
                    return EINVAL, 0
                if type(c.klen) is not int or c.klen % 8 or not 0 <= c.klen <= 512 \
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
        if type(lid) is not int or (lid >> 28) != self.unit:
            return None
        ses = lid & 0x7FF
        if ses >= self.maxses or self.sessions[ses].state == HS_STATE_FREE:
            return None
        return ses

    async def freesession(self, lid: int) -> int:
        await self.kernel.charge("driver", self.c_freesession)
        ses = self._session(lid & 0xFFFF_FFFF if type(lid) is int else lid)
        if ses is None:
            return EINVAL
        self.sessions[ses] = HifnSession()
        return 0

    # ------------------------------------------------------------ requests
    async def process(self, crp: CryptoOp) -> int:
        """hifn_process: check the request, build the command, post descriptors."""
        k = self.kernel
        await k.charge("driver", self.c_process)
        ses = self._session(crp.sid & 0xFFFF_FFFF) if type(crp.sid) is int else None
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
            if d.skip + d.len > n or d.skip > 0xFFFF or d.len >= 1 << 18:
                return EINVAL
        if crde is not None:
            if crde.len % 8:
                return EINVAL
            if crde.flags & CRD_F_IV_EXPLICIT:
                if not isinstance(crde.iv, (bytes, bytearray)) or len(crde.iv) < 8:
                    return EINVAL
            elif crde.inject + 8 > n:
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
        if self.quiesced or self.cmdu + 1 > rs["c"] or self.resu + 1 > rs["r"] \
                or self.srcu + nseg > rs["s"] or self.dstu + nseg > rs["d"]:
            if bounce:
                k.free(bounce[0])
            return _FULL
        await k.charge("driver", self.c_process_seg * 2 * nseg)

        # IV (as cryptosoft's swcr_encdec)
        iv = None
        if crde is not None:
            enc = bool(crde.flags & CRD_F_ENCRYPT)
            if crde.flags & CRD_F_IV_EXPLICIT:
                iv = bytes(crde.iv[:8])
            elif enc and not crde.flags & CRD_F_IV_PRESENT:
                iv = bytes(k.random.getrandbits(8) for _ in range(8))
                crp.buf.write(crde.inject, iv)
            else:
                iv = crp.buf.read(crde.inject, 8)
        if bounce:
            self.counters["bounced"] += 1
            await k.charge("copy", k.copy_cost(total))
            mem.write(bounce[0], crp.buf.read(0, total))
        keys = sess.state == HS_STATE_USED
        cmd = HifnCommand(crp, ses, crde, crda, sess.mlen, nsrc=nseg, ndst=nseg,
                          bounce=bounce, keys=keys, nbytes=total)
        mac = crypt = None
        if crda is not None:
            mm = HIFN_MAC_CMD_ALG_SHA1 | HIFN_MAC_CMD_MODE_HMAC | HIFN_MAC_CMD_RESULT \
                | HIFN_MAC_CMD_POS_IPSEC | (HIFN_MAC_CMD_TRUNC if sess.mlen == 12 else 0)
            mac = (mm, crda.skip, crda.len)
        if crde is not None:
            cm = (HIFN_CRYPT_CMD_ALG_3DES if crde.alg == CRYPTO_3DES_CBC
                  else HIFN_CRYPT_CMD_ALG_DES) | HIFN_CRYPT_CMD_MODE_CBC
            crypt = (cm, crde.skip, crde.len)
        buf = pack_command(session=ses, slen=total, dlen=total,
                           decode=crde is not None and not crde.flags & CRD_F_ENCRYPT,
                           mac=mac, crypt=crypt,
                           mac_key=sess.mkey if keys and mac else None,
                           cipher_key=sess.ckey if keys and crypt else None, iv=iv)
        if keys:
            sess.state = HS_STATE_KEY
            self.counters["keys_sent"] += 1

        # result, destination, source descriptors, then the command: the chip
        # polls the command ring and finds the rest ready
        resi = self.resi
        mem.write(self.resbuf + resi * HIFN_MAX_RESULT,
                  struct.pack("<HH", 0, RES_UNWRITTEN).ljust(HIFN_MAX_RESULT, b"\0"))
        cmdaddr = self.cmdbuf + self.cmdi * HIFN_CMD_SLOT
        mem.write(cmdaddr, buf)
        self._handover("hifn-cmdbuf", cmdaddr, len(buf))
        self._post("r", self.resbuf + resi * HIFN_MAX_RESULT,
                   HIFN_MAX_RESULT | HIFN_D_VALID | HIFN_D_LAST)
        for i, (a, n) in enumerate(chunks):
            last = HIFN_D_LAST if i == nseg - 1 else 0
            self._post("d", a, n | HIFN_D_VALID | HIFN_D_MASKDONEIRQ | last)
        for i, (a, n) in enumerate(chunks):
            last = HIFN_D_LAST if i == nseg - 1 else 0
            self._post("s", a, n | HIFN_D_VALID | HIFN_D_MASKDONEIRQ | last)
        self._post("c", cmdaddr, len(buf) | HIFN_D_VALID | HIFN_D_LAST | HIFN_D_MASKDONEIRQ)
        cmd.resi = resi
        self.cmdu += 1
        self.resu += 1
        self.srcu += nseg
        self.dstu += nseg
        self.inflight.append(cmd)
        self.wd.arm()
        # enable the rings the chip is not polling yet
        ena = 0
        for r, bits in (("c", CSR_C), ("s", CSR_S), ("r", CSR_R), ("d", CSR_D)):
            if not self.busy[r]:
                self.busy[r] = True
                ena |= bits["CTRL_ENA"]
        if ena:
            self.counters["ring_enables"] += 1
            await self.wr1(HIFN_1_DMA_CSR, ena)
        return 0

    def _post(self, r: str, addr: int, l: int) -> None:
        """Write a descriptor at the ring index and advance it, wrapping by JUMP."""
        mem = self.memory
        idx = self._idx(r)
        base = self.ring_addr[r]
        mem.write(base + 8 * idx + 4, struct.pack("<I", addr))
        mem.write(base + 8 * idx, struct.pack("<I", l))
        self._handover(self._KIND[r], base + 8 * idx, 8)
        idx += 1
        if idx == self.ring_size[r]:
            mem.write(base + 8 * idx, struct.pack("<I", HIFN_D_VALID | HIFN_D_JUMP
                                                  | HIFN_D_MASKDONEIRQ))
            idx = 0
        self._set_idx(r, idx)

    _IDX = dict(c="cmdi", s="srci", r="resi", d="dsti")
    _KIND = dict(c="hifn-cmd", s="hifn-src", r="hifn-res", d="hifn-dst")

    def _idx(self, r: str) -> int:
        return getattr(self, self._IDX[r])

    def _set_idx(self, r: str, v: int) -> None:
        setattr(self, self._IDX[r], v)

    # ------------------------------------------------------------ interrupt
    async def intr(self) -> bool:
        """hifn_intr."""
        csr = await self.rd1(HIFN_1_DMA_CSR)
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
        await self.wr1(HIFN_1_DMA_CSR, csr & self.dmaier & HIFN_DMACSR_STATUS)
        if csr & HIFN_DMACSR_ENGINE:
            puisr = await self.rd0(HIFN_0_PUISR)
            await self.wr0(HIFN_0_PUISR, puisr)
            if puisr & HIFN_PUISR_DSTOVER:
                self.counters["dstover"] += 1
        if csr & HIFN_DMACSR_ABORTS:
            self.counters["aborts"] += 1
            await self._recover(EIO, f"abort (csr {csr:#010x})")
            return True
        await self._walk_results()
        await self._kick()
        return True

    def _written(self, cmd: HifnCommand) -> bool:
        """Did the chip write this command's result (descriptor released and
        the result buffer's session field overwritten)?"""
        mem = self.memory
        (l,) = struct.unpack("<I", mem.read(self.ring_addr["r"] + 8 * cmd.resi, 4))
        res = self.resbuf + cmd.resi * HIFN_MAX_RESULT
        return not l & HIFN_D_VALID and \
            struct.unpack("<H", mem.read(res + 2, 2))[0] != RES_UNWRITTEN

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
        res = unpack_result(mem.read(self.resbuf + cmd.resi * HIFN_MAX_RESULT, HIFN_MAX_RESULT))
        err = 0
        if res["flags"] & (HIFN_RES_CMDINVAL | HIFN_RES_DATAERR):
            err = EINVAL
        elif res["flags"] & HIFN_BASE_RES_DSTOVERRUN:
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
        self.cmdu -= 1
        self.resu -= 1
        self.srcu -= cmd.nsrc
        self.dstu -= cmd.ndst

    async def _kick(self) -> None:
        """Move queued requests onto the rings while they fit."""
        while self.queue:
            crp = self.queue[0]
            ses = self._session(crp.sid & 0xFFFF_FFFF)
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
            for r, bits in (("c", CSR_C), ("s", CSR_S), ("r", CSR_R), ("d", CSR_D)):
                if self.busy[r]:
                    self.busy[r] = False
                    dis |= bits["CTRL_DIS"]
            if dis and not self.inflight and not self.quiesced:
                await self.wr1(HIFN_1_DMA_CSR, dis)
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
