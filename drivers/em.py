"""em: driver for the 82544GC-class gigabit NIC (OpenBSD ``sys/dev/pci/if_em.c``
of 2003, rev 1.17, itself FreeBSD's if_em.c 1.26; defaults from ``if_em.h``).

Talks to the card only through its registers (:mod:`hw.cards.em8254xreg`
through :class:`drivers.bus_space.BusSpace`), its descriptor rings in DMA
memory (packed with :mod:`hw.structs`) and its interrupt.

* attach (``em_attach``, ``em_hardware_init``): CTRL.RST and wait for it to
  clear; the station address from EEPROM words 0-2 through EERD, the EEPROM
  checksum over words 0..0x3F (``em_validate_eeprom_checksum``: EEPROM_SUM)
  — a bad one fails the attach; RAL0/RAH0; the statistics cleared by reading
  them (``em_clear_hw_cntrs``); link up with CTRL.SLU (there is no PHY to
  negotiate with); 256 transmit and 256 receive descriptors (EM_MAX_TXD,
  EM_MAX_RXD); transmit: TDBAL/TDLEN, TDH = TDT = 0, TIPG for copper
  (IPGT 8, IPGR1 8, IPGR2 6: if_em_hw.h DEFAULT_82543_TIPG_*), TIDV, TADV,
  TCTL = EN | PSP | CT 0x10 | COLD 0x40 (full duplex); receive: RCTL = 0,
  RDTR = RDTR delay | FPD, RADV, ITR, 2048-byte buffers each 2 bytes in
  (ETHER_ALIGN, so the IP header is aligned), RDH = 0, RDT = n - 1, RCTL =
  EN | BAM | RDMTS 1/2 | SZ_2048 (LBM_MAC with ``loopback``); IMS =
  IMS_ENABLE_MASK.
  Defaults (if_em.h): TIDV 64, TADV 64, RDTR 0, RADV 64 (1.024 us units),
  ITR = 10^9 / (8000 × 256) = 488 (MAX_INTS_PER_SEC 8000 in 256 ns units).
  The 82540's registers (ITR, TADV, RADV) are written although the identity
  is an 82544, whose em attach would skip them (``mac_type >= em_82540``):
  the model has them (docs/em8254x.md).
* ``em_start(frames)``: frames (bytes, or a list of segments = an mbuf
  chain) go on the send queue (``if_snd``, IFQ_MAXLEN 50; full → ENOBUFS,
  the frame dropped). Per packet (``em_encap``): with EM_TX_CLEANUP_THRESHOLD
  (n/8) or fewer free descriptors, clean first; still not enough for its
  segments → IFF_OACTIVE and it stays queued. One descriptor per segment
  (cmd IFCS | RS, IDE with TIDV ≠ 0; EOP on the last), TDT written once per
  packet.
* interrupt (``em_intr``): ICR read (0: not ours); LSC / RXSEQ: link state
  from STATUS.LU; then up to EM_MAX_INTR (3) rounds of receive and
  transmit cleanup; ``em_start`` again if packets wait.
* receive (``em_process_receive_interrupts``): while DD: the buffer's bytes
  (a frame may span buffers; on EOP the 4 FCS bytes are cut off), the
  buffer handed back (status 0), RDT = that descriptor; the frame goes to
  the ``receive`` callback (``ether_input``).
* transmit cleanup (``em_clean_transmit_interrupts``): from the oldest used
  descriptor while DD: free its buffer; IFF_OACTIVE off once a packet fits.

CPU costs are ``driver`` work, from the host profile's ``[em]`` table
(:data:`COST_KEYS`; cycles, so a faster profile scales them): ``encap`` per
packet and ``segment`` per further descriptor in ``em_start``/``em_encap``,
``txclean`` per descriptor freed by the transmit cleanup, ``rxframe`` per frame
handed up and ``refill`` per receive buffer given back to the card
(``em_get_buf``), ``intr`` per ``em_intr`` entry.
"""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any, Callable, Optional

from drivers.pci import ALL_ONES, PciAttachArgs
from hw.cards import em8254xreg as E
from hw.cards.em8254xreg import (CTRL, EERD, ICR, IMC, IMS, ITR, RAH0, RAL0, RCTL, RDBAH,
                                 RDBAL, RDH, RDLEN, RDT, RDTR, RADV, STATUS, TADV, TCTL, TDBAH,
                                 TDBAL, TDH, TDLEN, TDT, TIDV, TIPG, RxDesc, TxDesc,
                                 DESC_BYTES, STATISTICS)
from hw.structs import pack, unpack
from sim.kernel.errno import EINVAL, ENOBUFS

__all__ = ["MATCH", "attach", "Em", "NTXD", "NRXD", "COST_KEYS"]

MATCH = {(E.VENDOR_ID, E.DEVICE_ID): "Intel 82544GC Gigabit Ethernet"}

#: if_em.h EM_MAX_TXD / EM_MAX_RXD (defaults of the era: 256 each)
NTXD = NRXD = 256
#: if_em.h EM_TX_CLEANUP_THRESHOLD: clean when this few descriptors are free
TX_CLEANUP_THRESHOLD = NTXD // 8
#: if_em.h EM_MAX_SCATTER: segments (descriptors) per packet
MAX_SCATTER = 32
#: if_em.h EM_MAX_INTR: receive/transmit cleanup rounds per interrupt
MAX_INTR = 3
#: sys/net/if.h IFQ_MAXLEN: the send queue's length
IFQ_MAXLEN = 50
#: MCLBYTES, and ETHER_ALIGN (if_em.c em_get_buf: m_adj(mp, ETHER_ALIGN))
RX_BUFFER = 2048
ETHER_ALIGN = 2
#: sys/netinet/if_ether.h: header, CRC, largest frame without the CRC
ETHER_HDR_LEN, ETHER_CRC_LEN, ETHER_MAX_FRAME = 14, 4, 1514
#: if_em.h defaults: EM_TIDV, EM_TADV, EM_RDTR, EM_RADV (1.024 us units)
TIDV_DEFAULT, TADV_DEFAULT, RDTR_DEFAULT, RADV_DEFAULT = 64, 64, 0, 64
#: if_em.h MAX_INTS_PER_SEC 8000; DEFAULT_ITR = 10^9 / (MAX_INTS_PER_SEC * 256)
ITR_DEFAULT = 1_000_000_000 // (8000 * 256)
#: if_em_hw.h DEFAULT_82543_TIPG_IPGT_COPPER, _IPGR1, _IPGR2
TIPG_COPPER = TIPG.bits(ipgt=8, ipgr1=8, ipgr2=6)
#: if_em.h E1000_COLLISION_THRESHOLD, E1000_FDX_COLLISION_DISTANCE
COLLISION_THRESHOLD, FDX_COLLISION_DISTANCE = 0x10, 0x40
#: polls of CTRL while RST clears (model's choice; em waits 5 ms without looking)
RESET_POLLS = 100

#: the driver's CPU costs: keys of the host profile's ``[em]`` table
#: (sim/profiles/*.toml gives each one's source)
COST_KEYS = ("encap", "segment", "txclean", "rxframe", "refill", "intr")


class Em:
    """The softc (``struct em_softc``)."""

    driver = "em"

    def __init__(self, pa: PciAttachArgs, *, loopback: bool = False,
                 receive: Optional[Callable[[bytes], Any]] = None, ntxd: int = NTXD,
                 nrxd: int = NRXD, itr: int = ITR_DEFAULT, tidv: int = TIDV_DEFAULT,
                 tadv: int = TADV_DEFAULT, rdtr: int = RDTR_DEFAULT, radv: int = RADV_DEFAULT):
        for name, v in (("ntxd", ntxd), ("nrxd", nrxd)):
            if not isinstance(v, int) or v < 8 or v % E.DESC_MULTIPLE or v > 4096:
                raise ValueError(f"em: {name} must be a multiple of 8 in 8..4096, not {v!r}")
        for name, v in (("itr", itr), ("tidv", tidv), ("tadv", tadv), ("rdtr", rdtr),
                        ("radv", radv)):
            if not isinstance(v, int) or not 0 <= v <= ITR.interval.mask:
                raise ValueError(f"em: {name} must be 0..65535, not {v!r}")
        self.pa, self.dev, self.kernel = pa, pa.dev, pa.kernel
        self.unit = pa.unit
        self.name = f"em{pa.unit}"
        self.regs = pa.map(0)
        self.loopback = bool(loopback)
        self.receive = receive
        self.ntxd, self.nrxd = ntxd, nrxd
        self.itr, self.tidv, self.tadv, self.rdtr, self.radv = itr, tidv, tadv, rdtr, radv
        p = self.kernel.profile
        missing = [f"em.{k}" for k in COST_KEYS if not p.has(f"em.{k}")]
        if missing:
            raise ValueError(f"host profile {p.name!r} lacks {', '.join(missing)} "
                             "(the em driver's [em] costs; see sim/profiles/p3-1400-openbsd.toml)")
        self.c = {k: p.cost(f"em.{k}") for k in COST_KEYS}
        self.mac = b""
        self.link_active = False
        self.snd: deque = deque()          # if_snd
        self.oactive = False               # IFF_OACTIVE
        self.tx_bufs: list = [None] * ntxd  # per descriptor: buffer address (freed on DD)
        self.tx_next = self.tx_oldest = 0
        self.tx_avail = ntxd
        self.rx_next = 0
        self.rx_partial = b""
        self.ih = None
        self.counters = dict(opackets=0, ipackets=0, oerrors=0, snd_drops=0, oactive=0,
                             interrupts=0, claimed=0, txclean=0, link_changes=0, ierrors=0,
                             txdesc=0, rxdesc=0)
        self.txd_cmd = {"ifcs": 1, "rs": 1, "ide": int(tidv > 0)}

    # -------------------------------------------------------------- attach
    async def reset(self) -> bool:
        """``em_reset_hw``: CTRL.RST, then wait for it to clear."""
        ctrl = await self.regs.read(CTRL)
        if ctrl == ALL_ONES:
            return False
        await self.regs.write(IMC, IMC.mask())
        await self.regs.write(CTRL, ctrl | CTRL.rst.mask)
        for _ in range(RESET_POLLS):
            if not await self.regs.read(CTRL) & CTRL.rst.mask:
                await self.regs.write(IMC, IMC.mask())
                return True
        return False

    async def read_eeprom(self, word: int) -> int:
        """``em_read_eeprom`` of one word through EERD (START, wait for DONE)."""
        await self.regs.write(EERD, EERD.bits(start=1, addr=word))
        for _ in range(RESET_POLLS):
            v = await self.regs.read(EERD)
            if v & EERD.done.mask:
                return EERD.data.get(v)
        raise TimeoutError(f"{self.name}: EEPROM word {word:#x} not read")

    async def attach(self) -> bool:
        if not await self.reset():
            self.kernel.printf(f"{self.name}: reset failed")
            return False
        words = [await self.read_eeprom(a) for a in range(E.EEPROM_CHECKSUM_REG + 1)]
        if sum(words) % (1 << EERD.data.width) != E.EEPROM_SUM:
            self.kernel.printf(f"{self.name}: the EEPROM checksum is not valid")
            return False
        self.mac = b"".join(w.to_bytes(2, "little") for w in words[:3])
        await self.regs.write(RAL0, int.from_bytes(self.mac[:4], "little"))
        await self.regs.write(RAH0, int.from_bytes(self.mac[4:], "little") | RAH0.av.mask)
        for reg in STATISTICS:                       # em_clear_hw_cntrs
            await self.regs.read(reg)
        await self.regs.write(CTRL, CTRL.bits(slu=1, fd=1, asde=1))
        await self.check_link()
        if not await self._init_tx() or not await self._init_rx():
            self.kernel.printf(f"{self.name}: no DMA memory for the rings")
            return False
        self.ih = self.pa.intr_establish(self.intr, self.name)
        await self.regs.write(IMS, E.IMS_ENABLE_MASK)
        self.kernel.printf(f"{self.name} at pci0 dev {self.dev.slot}: "
                           f"{MATCH.get((self.dev.vendor, self.dev.device), self.dev.name)}, "
                           f"address {self.mac.hex(':')}, irq line {self.dev.irq}")
        return True

    async def _init_tx(self) -> bool:
        """``em_setup_transmit_structures`` + ``em_initialize_transmit_unit``."""
        n = self.ntxd
        self.txring = self.pa.dma_alloc(n * DESC_BYTES, E.RING_ALIGN)
        if self.txring is None:
            return False
        self.pa.memory.write(self.txring, bytes(n * DESC_BYTES))
        r = self.regs
        for reg, v in ((TDBAL, self.txring), (TDBAH, 0), (TDLEN, n * DESC_BYTES), (TDH, 0),
                       (TDT, 0), (TIPG, TIPG_COPPER), (TIDV, self.tidv), (TADV, self.tadv),
                       (TCTL, TCTL.bits(en=1, psp=1, ct=COLLISION_THRESHOLD,
                                        cold=FDX_COLLISION_DISTANCE))):
            await r.write(reg, v)
        return True

    async def _init_rx(self) -> bool:
        """``em_setup_receive_structures`` + ``em_initialize_receive_unit``."""
        n = self.nrxd
        r = self.regs
        await r.write(RCTL, 0)
        await r.write(RDTR, RDTR.bits(delay=self.rdtr, fpd=1))
        await r.write(RADV, self.radv)
        await r.write(ITR, self.itr)
        self.rxring = self.pa.dma_alloc(n * DESC_BYTES, E.RING_ALIGN)
        if self.rxring is None:
            return False
        self.rx_bufs = []
        mem = self.pa.memory
        for i in range(n):
            b = self.pa.dma_alloc(RX_BUFFER + ETHER_ALIGN, 4)
            if b is None:
                return False
            self.rx_bufs.append(b + ETHER_ALIGN)
            mem.write(self.rxring + i * DESC_BYTES, pack(RxDesc, addr=b + ETHER_ALIGN))
        for reg, v in ((RDBAL, self.rxring), (RDBAH, 0), (RDLEN, n * DESC_BYTES), (RDH, 0),
                       (RDT, n - 1)):
            await r.write(reg, v)
        await r.write(RCTL, RCTL.bits(en=1, bam=1, rdmts=E.RDMTS_HALF, bsize=0,
                                      lbm=E.LBM_MAC if self.loopback else E.LBM_NONE))
        return True

    async def check_link(self) -> None:
        """``em_check_for_link`` / ``em_print_link_status``: STATUS.LU."""
        up = bool(await self.regs.read(STATUS) & STATUS.lu.mask)
        if up != self.link_active:
            self.link_active = up
            self.counters["link_changes"] += 1
            self.kernel.printf(f"{self.name}: link {'up, 1000 Mbps full duplex' if up else 'down'}")

    # -------------------------------------------------------------- transmit
    async def em_start(self, frames) -> int:
        """``if_start``: queue ``frames`` (bytes or lists of segments) and put
        what fits on the ring. 0, ENOBUFS (the send queue was full: the rest
        dropped) or EINVAL (a frame of a bad size; nothing queued)."""
        pkts = []
        for f in frames:
            segs = [bytes(f)] if isinstance(f, (bytes, bytearray, memoryview)) else \
                [bytes(s) for s in f]
            total = sum(len(s) for s in segs)
            if not ETHER_HDR_LEN <= total <= ETHER_MAX_FRAME or not segs or \
                    any(not s for s in segs) or len(segs) > MAX_SCATTER:
                return EINVAL
            pkts.append(segs)
        err = 0
        # splnet, as ether_output holds it around IFQ_ENQUEUE and if_start
        # (4.4BSD net/if_ethersubr.c): the interrupt handler's own em_start
        # must not take a packet from the queue while this one is placing
        # the one before it on the ring (it did: frames left out of order)
        s = self.kernel.splraise()
        try:
            for segs in pkts:
                if len(self.snd) >= IFQ_MAXLEN:
                    self.counters["snd_drops"] += 1
                    err = ENOBUFS
                    continue
                self.snd.append(segs)
            await self._start()
        finally:
            self.kernel.splx(s)
        return err

    async def _start(self) -> None:
        while self.snd and not self.oactive:
            segs = self.snd[0]
            if self.tx_avail <= TX_CLEANUP_THRESHOLD:
                await self._txclean()
            if len(segs) >= self.tx_avail:          # one descriptor stays empty (head != tail)
                self.oactive = True
                self.counters["oactive"] += 1
                return
            self.snd.popleft()
            if not await self._encap(segs):
                self.counters["oerrors"] += 1

    async def _encap(self, segs) -> bool:
        """``em_encap``: one descriptor per segment, EOP on the last, one TDT write."""
        k, mem = self.kernel, self.pa.memory
        await k.charge("driver", self.c["encap"] + self.c["segment"] * (len(segs) - 1))
        addrs = []
        for s in segs:
            a = self.pa.dma_alloc(len(s), 1)
            if a is None:
                for x in addrs:
                    self.pa.dma_free(x)
                return False
            mem.write(a, s)
            addrs.append(a)
        i = self.tx_next
        for j, (a, s) in enumerate(zip(addrs, segs)):
            cmd = dict(self.txd_cmd, eop=int(j == len(segs) - 1))
            mem.write(self.txring + i * DESC_BYTES,
                      pack(TxDesc, addr=a, length=len(s), cmd=cmd))
            self.tx_bufs[i] = a
            i = (i + 1) % self.ntxd
        self.tx_next = i
        self.tx_avail -= len(segs)
        self.counters["txdesc"] += len(segs)
        await self.regs.write(TDT, i)
        self.counters["opackets"] += 1
        return True

    async def _txclean(self) -> int:
        """``em_clean_transmit_interrupts``: free descriptors the card marked DD."""
        mem, freed = self.pa.memory, 0
        while self.tx_avail < self.ntxd:
            at = self.txring + self.tx_oldest * DESC_BYTES
            if not unpack(TxDesc, mem.read(at, DESC_BYTES))["status"]["dd"]:
                break
            mem.write(at, bytes(DESC_BYTES))
            self.pa.dma_free(self.tx_bufs[self.tx_oldest])
            self.tx_bufs[self.tx_oldest] = None
            self.tx_oldest = (self.tx_oldest + 1) % self.ntxd
            self.tx_avail += 1
            freed += 1
        if freed:
            self.counters["txclean"] += freed
            await self.kernel.charge("driver", self.c["txclean"] * freed)
            self.oactive = False
        return freed

    # -------------------------------------------------------------- receive
    async def _rxeof(self) -> int:
        """``em_process_receive_interrupts``."""
        mem, n = self.pa.memory, 0
        while True:
            i = self.rx_next
            at = self.rxring + i * DESC_BYTES
            d = unpack(RxDesc, mem.read(at, DESC_BYTES))
            if not d["status"]["dd"]:
                break
            data = mem.read(self.rx_bufs[i], d["length"])
            mem.write(at, pack(RxDesc, addr=self.rx_bufs[i]))     # status 0: the card's again
            await self.kernel.charge("driver", self.c["refill"])
            await self.regs.write(RDT, i)
            self.rx_next = (i + 1) % self.nrxd
            self.counters["rxdesc"] += 1
            if d["errors"]["ce"] or d["errors"]["rxe"]:
                self.counters["ierrors"] += 1
                self.rx_partial = b""
                continue
            self.rx_partial += data
            if d["status"]["eop"]:
                frame, self.rx_partial = self.rx_partial[:-ETHER_CRC_LEN], b""
                n += 1
                self.counters["ipackets"] += 1
                await self.kernel.charge("driver", self.c["rxframe"])
                if self.receive is not None:
                    r = self.receive(frame)
                    if inspect.isawaitable(r):      # ether_input runs in the handler
                        await r
        return n

    # -------------------------------------------------------------- interrupt
    async def intr(self) -> bool:
        """``em_intr``."""
        self.counters["interrupts"] += 1
        icr = await self.regs.read(ICR)
        if icr == 0 or icr == ALL_ONES:
            return False
        self.counters["claimed"] += 1
        await self.kernel.charge("driver", self.c["intr"])
        if icr & (E.ICR_RXSEQ | E.ICR_LSC):
            await self.check_link()
        for _ in range(MAX_INTR):
            await self._rxeof()
            await self._txclean()
        if self.snd:
            await self._start()
        return True

    def stats(self) -> dict:
        return dict(self.counters, tx_avail=self.tx_avail, snd=len(self.snd),
                    link=self.link_active)


async def attach(pa: PciAttachArgs, **options: Any) -> Optional[Em]:
    """``em_attach``: autoconf's entry for a device in :data:`MATCH`."""
    sc = Em(pa, **options)
    return sc if await sc.attach() else None
