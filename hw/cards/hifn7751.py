"""Hifn 7751-like crypto card: polled descriptor rings, on-card key cache.

Facts from OpenBSD's sys/dev/pci/hifn7751reg.h / hifn7751.c of the era. The card
is a PCI target (two 4 KiB memory BARs), a bus master (one
:class:`~hw.pci.initiator.PciInitiator`), a :class:`~hw.dma.rings.RingEngine`
for the four rings, the shared :class:`~hw.crypto.TransformEngine` at the
Hifn's parameters and a context RAM holding each session's keys.

IDs: vendor 13a3, device 0005, class 0x100000 (PCI code and ID assignment
spec: encryption controller, network and computing), revision 1.

Registers (32-bit, byte offsets)
--------------------------------
BAR0, processing unit:

====  ========  ==============================================================
0x00  PUDATA    reads 0 (slave-mode data port, not modelled)
0x04  PUCTRL    bit 0 RESET (write 1: reset the card, reads 0), bit 1 DMAENA
                (the processing unit takes commands only while set)
0x08  PUISR     CMDINVAL 8000, DATAERR 4000, DSTOVER 0200; write 1 to clear
0x0c  PUCNFG    read/write; bits 15:13 read the context RAM size:
                sessions = 16 << PUCNFG[15:13] (model's encoding)
0x10  PUIER     enables for PUISR (DMA_CSR bit 0 ENGINE = PUISR & PUIER)
0x14  PUSTAT    15:8 enable level: 0x30 locked (LZS only), 0x10 DES,
                0x11 DES/3DES/SHA1; 7:0 revision
0x18  FIFOSTAT  reads 0
0x1c  FIFOCNFG  accepted, ignored
====  ========  ==============================================================

BAR1, DMA unit:

====  ==========  ============================================================
0x0c  CRAR        command ring address  (writing one sets the chip's position
0x1c  SRAR        source ring address    in that ring back to its start)
0x2c  RRAR        result ring address
0x3c  DRAR        destination ring address
0x40  DMA_CSR     per ring r (0 cmd, 1 src, 2 res, 3 dst) at bit 8r: 7:6
                  control (write 10 enable, 01 disable, 00 no change; reads 10
                  while enabled), 5 ABORT, 4 DONE, 3 LAST, 2 WAIT, 1 OVER
                  (res/dst); bit 0 ENGINE. Status bits are write-1-to-clear.
0x44  DMA_IER     interrupt enables, same bit positions
0x48  DMA_CNFG    0x01 MSTRESET#, 0x02 DMARESET# (the card is held in reset
                  while either is 0; both are 0 after power-up), 0x04 MODE,
                  0x10 LAST, 0x700 POLL SCALAR, 0x800 UNLOCK, 0xff0000 POLL
                  FREQUENCY, 0x10000000 big-endian (not modelled: always LE)
0x98  REVID       revision (1)
0xf4  SECRET1     reads 0
0xfc  SECRET2     unlock: with DMA_CNFG.UNLOCK set, writing UNLOCK_KEY raises
                  the enable level to the card's grade (the real handshake
                  walks a 13-step signature sequence; simplified as allowed)
====  ==========  ============================================================

Polling: the chip re-reads an invalid descriptor every
``max(1, POLL FREQUENCY) * 256 << POLL SCALAR`` bus clocks (model's
definition; OpenBSD's values 1 and 0 give 256 clocks, 7.7 µs at 33 MHz).

Command buffer (little-endian 16-bit fields, hifn7751reg.h)
-----------------------------------------------------------
``base {masks, session_num, total_source_count, total_dest_count}``, then
``[comp]`` (refused: CMDINVAL), ``[MAC cmd]``, ``[crypt cmd]`` (each
``{masks, header_skip, source_count, reserved}``), then ``[MAC key 64 B]``
(MAC NEW_KEY), ``[cipher key 24 B 3DES / 8 B DES]`` (crypt NEW_KEY),
``[IV 8 B]`` (crypt NEW_IV). Bits 17:16 of the counts: base session_num
15:14 (source) / 13:12 (dest), MAC/crypt masks 15:14. session_num 11:0 is
the session (context RAM index).

Keys given with NEW_KEY are stored in the session's context; a command
without them uses the stored ones. Without NEW_IV the IV is the session's
CBC chain (the last ciphertext block of its previous command). Supported:
DES/3DES CBC, HMAC-SHA1 (raw key, the chip forms the pads) and SHA-1, in the
IPsec orders (encrypt then MAC; DECODE: MAC then decrypt), TRUNC = 12-byte
MAC. Anything else (ECB, RC4, MD5, compression, a locked level, a session
beyond the RAM, a malformed buffer, a MAC or crypt region — header_skip +
source_count — ending past the total source count) is CMDINVAL: the chip
has no data phase (it reads no data and runs no engine), releases the
packet's destination and source descriptors up to the LAST of each, and
writes the result (CMDINVAL, destination count 0). The same happens when the
LAST source segment ends before the total source count (counts with bits
17:16 set by a garbled session word, say): the engine run is dropped there
(a partial output may already be in the destination) and the result is
CMDINVAL, so no command waits for source data the rings do not promise.
The total destination count is not used (no compression: the output is as
long as the input); a destination chain shorter than that is DSTOVERRUN.

Result buffer: ``{flags, session, src_cnt, dst_cnt}`` (8 B), then with MAC
RESULT ``{mac flags, reserved}`` (4 B) + 20 MAC bytes (32 B in all). flags:
DSTOVERRUN 0200, 15:14 / 13:12 count bits 17:16, and two extensions: 0001
CMDINVAL, 0002 DATAERR (engine length error, a cipher length not a
multiple of 8, or a non-final segment that is misaligned or not a multiple
of 4 bytes — the driver bounces those, as hifn's does).

Per packet the chip: fetches the command descriptor, reads the command,
releases the descriptor; fetches the result, destination and source
descriptors; streams source data through the engine into the destination
segments (reads and writes interleaved in bursts of ``BURST`` dwords),
releasing each source/destination descriptor when done with it and walking
to the LAST one; writes the result and releases its descriptor, which sets
R_DONE: one interrupt per result. A master or target abort on any DMA, a
DMA refused because Bus Master Enable is clear (PCI 2.3 §6.2.2), or a JUMP
descriptor reached right after a JUMP (:mod:`hw.dma.rings`) sets that ring's
ABORT bit and halts the chip until reset.
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const, ResetInserter
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory

from ..crypto.engine import Cipher, Mac, Order, TransformEngine
from ..crypto.params import CARD_ENGINE_PARAMS
from ..dma.rings import (RingEngine, DescriptorControl, RING_CMD, RING_SRC, RING_RES,
                         RING_DST)
from .slot import CardSignature, connect_slot
from ..pci.bus import Cmd
from ..pci.initiator import PciInitiator, Status
from ..pci.target import PciTarget, BarSpec, merge_bytes, \
    STATUS_RX_MASTER_ABORT, STATUS_RX_TARGET_ABORT

__all__ = ["Hifn7751", "VENDOR_ID", "DEVICE_ID", "REG0", "REG1", "UNLOCK_KEY",
           "BaseCommand", "AlgCommand", "BaseResult", "engine_params_for",
           "R_DSTOVERRUN", "R_CMDINVAL", "R_DATAERR"]

VENDOR_ID = 0x13A3          # Hifn (OpenBSD sys/dev/pci/pcidevs)
DEVICE_ID = 0x0005
CLASS_CODE = 0x100000       # encryption controller (PCI code and ID assignment)
REVISION = 1

REG0 = dict(PUDATA=0x00, PUCTRL=0x04, PUISR=0x08, PUCNFG=0x0C, PUIER=0x10,
            PUSTAT=0x14, FIFOSTAT=0x18, FIFOCNFG=0x1C)           # hifn7751reg.h
REG1 = dict(CRAR=0x0C, SRAR=0x1C, RRAR=0x2C, DRAR=0x3C, DMA_CSR=0x40, DMA_IER=0x44,
            DMA_CNFG=0x48, REVID=0x98, SECRET1=0xF4, SECRET2=0xFC)  # hifn7751reg.h
#: value written to SECRET2 (with DMA_CNFG.UNLOCK) to unlock (model's choice)
UNLOCK_KEY = 0x13A3_7751

PUCTRL_RESET, PUCTRL_DMAENA = 0x01, 0x02
PUISR_CMDINVAL, PUISR_DATAERR, PUISR_DSTOVER = 0x8000, 0x4000, 0x0200
CNFG_MSTRESET, CNFG_DMARESET, CNFG_UNLOCK = 0x01, 0x02, 0x800
ENA_LEVEL = {0: 0x30, 1: 0x10, 2: 0x11}    # PUSTAT 15:8 (hifn7751reg.h)

# base command masks / MAC / crypt masks (hifn7751reg.h)
B_COMP, B_PAD, B_MAC, B_CRYPT, B_DECODE = 0x0100, 0x0200, 0x0400, 0x0800, 0x2000
M_ALG_MD5, M_MODE, M_MODE_HASH, M_TRUNC, M_RESULT, M_NEW_KEY = \
    0x0001, 0x000C, 0x0008, 0x0010, 0x0020, 0x0800
C_ALG, C_MODE, C_MODE_CBC, C_NEW_KEY, C_NEW_IV = 0x0003, 0x0018, 0x0008, 0x0800, 0x1000
R_DSTOVERRUN, R_CMDINVAL, R_DATAERR = 0x0200, 0x0001, 0x0002

#: dwords per DMA burst of packet data; initiator FIFO depth (dwords); output FIFO
BURST = 16
DMA_DEPTH = 32
OUT_DEPTH = 64
#: engine-internal buffering, in dwords, kept free in the output FIFO per read
SLACK = 8
#: longest command buffer: base + MAC + crypt + MAC key + 3DES key + IV = 120 B
CMD_MAX_WORDS = 32


class BaseCommand(data.Struct):
    """First 8 bytes of a command buffer, as two little-endian dwords."""
    masks: 16
    session: 12
    dst_hi: 2          # total_dest_count 17:16
    src_hi: 2          # total_source_count 17:16
    src_count: 16
    dst_count: 16


class AlgCommand(data.Struct):
    """MAC or crypt command (8 bytes)."""
    masks: 14
    count_hi: 2        # source_count 17:16
    header_skip: 16
    source_count: 16
    reserved: 16


class BaseResult(data.Struct):
    flags: 16
    session: 16
    src_count: 16
    dst_count: 16


def engine_params_for(clock_mhz):
    """(des_rounds, sha_rounds, tls_orders) keeping the 7751's rate at ``clock_mhz``.

    The parameters in ``CARD_ENGINE_PARAMS`` are for the chip's 33 MHz
    (a 32-bit/33 MHz device, OCF paper §5.4); on a faster bus the rounds per cycle scale down."""
    p = CARD_ENGINE_PARAMS["hifn7751"]
    des = max(1, round(p.des_rounds * p.clock_mhz / clock_mhz))
    sha = max(1, round(p.sha_rounds * p.clock_mhz / clock_mhz))
    while 16 % des:
        des -= 1
    while 80 % sha:
        sha -= 1
    return des, sha, p.tls_orders


def _bswap(w):
    """A little-endian dword → the big-endian integer of its 4 bytes."""
    return Cat(w[24:32], w[16:24], w[8:16], w[0:8])


# card FSM states (integers; ``state`` in VCDs)
(S_RESET, S_IDLE, S_CMD_FETCH, S_CMD_ISSUE, S_CMD_PARSE, S_CMD_WAIT, S_CMD_REL,
 S_CTX, S_CTX2, S_RES_FETCH, S_DST_FETCH, S_SRC_FETCH, S_ENG, S_STREAM,
 S_WPUSH, S_WISSUE, S_WWAIT, S_RISSUE, S_RWAIT, S_SREL, S_DREL,
 S_RES_PUSH, S_RES_ISSUE, S_RES_WAIT, S_RES_REL, S_HALT) = range(26)
# command-buffer sections, in buffer order
P_BASE, P_COMP, P_MAC, P_CRYPT, P_MKEY, P_CKEY, P_IV, P_END = range(8)


class Hifn7751(wiring.Component):
    def __init__(self, clock_mhz: int = 33, sessions: int = 2048, grade: int = 2):
        if sessions not in [16 << k for k in range(8)]:
            raise ValueError("sessions must be 16 << k, k = 0..7 (up to 2048, hifn7751var.h)")
        if grade not in (0, 1, 2):
            raise ValueError("grade: 0 locked, 1 DES, 2 DES/3DES/SHA1")
        self.clock_mhz = clock_mhz
        self.sessions = sessions
        self.grade = grade
        super().__init__(CardSignature)
        self.target = PciTarget(vendor_id=VENDOR_ID, device_id=DEVICE_ID,
                                class_code=CLASS_CODE, revision=REVISION, int_pin=1,
                                bars=[BarSpec(4096), BarSpec(4096)])
        self.initiator = PciInitiator(depth=DMA_DEPTH)
        self.rings = RingEngine()
        des, sha, tls = engine_params_for(clock_mhz)
        self.engine = TransformEngine(des_rounds=des, sha_rounds=sha, tls_orders=tls)
        self.state = Signal(5)

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = self.initiator
        m.submodules.rings = rings = self.rings
        connect_slot(m, self, tgt, ini)
        state = self.state

        # ---- datapath reset: card reset or halt -------------------------
        card_reset = Signal()
        dp_reset = Signal()
        pkt_abort = Signal()            # drop the packet's engine run and output
        m.d.comb += dp_reset.eq(card_reset | (state == S_RESET) | (state == S_HALT) | pkt_abort)
        eng = ResetInserter(dp_reset)(self.engine)
        m.submodules.engine = eng
        outf = ResetInserter(dp_reset)(fifo.SyncFIFOBuffered(width=32, depth=OUT_DEPTH))
        m.submodules.outf = outf
        m.d.comb += ini.flush.eq(((state == S_RESET) | (state == S_HALT)) & ~ini.busy)

        # ---- context RAM: keys (and CBC chain) per session --------------
        n_ses = self.sessions
        m.submodules.ctx_ckey = ctx_ckey = Memory(shape=192, depth=n_ses, init=[])
        m.submodules.ctx_mkey = ctx_mkey = Memory(shape=512, depth=n_ses, init=[])
        m.submodules.ctx_iv = ctx_iv = Memory(shape=64, depth=n_ses, init=[])
        rd_ckey, wr_ckey = ctx_ckey.read_port(), ctx_ckey.write_port()
        rd_mkey, wr_mkey = ctx_mkey.read_port(), ctx_mkey.write_port()
        rd_iv, wr_iv = ctx_iv.read_port(), ctx_iv.write_port()

        # ---- registers ---------------------------------------------------
        puctrl_dmaena = Signal()
        puisr = Signal(16)
        puier = Signal(16)
        pucnfg = Signal(16)
        csr = Signal(32)                 # DMA_CSR status bits (not ctrl, not ENGINE)
        ier = Signal(32)
        cnfg = Signal(32)
        ring_en = Signal(4)
        level = Signal(2)                # enable level: 0 locked, 1 DES, 2 3DES
        size_code = (n_ses // 16).bit_length() - 1
        status_mask = 0
        for r in range(4):
            status_mask |= 0b111100 << (8 * r)           # abort, done, last, wait
        status_mask |= (1 << 17) | (1 << 25)             # res/dst OVER
        csr_set = Signal(32)
        csr_clr = Signal(32)
        puisr_set = Signal(16)
        puisr_clr = Signal(16)
        m.d.sync += [csr.eq((csr & ~csr_clr) | csr_set),
                     puisr.eq((puisr & ~puisr_clr) | puisr_set)]
        engine_irq = Signal()
        m.d.comb += engine_irq.eq((puisr & puier) != 0)
        csr_read = Signal(32)
        ctrl_bits = Cat(*[Cat(Const(0, 6), Const(0, 1), ring_en[r]) for r in range(4)])
        m.d.comb += csr_read.eq(csr | ctrl_bits | engine_irq)
        irq = Signal()
        m.d.comb += [irq.eq(((csr & ier & status_mask) != 0) | (ier[0] & engine_irq)),
                     self.inta.eq(irq & ~tgt.command[10]), tgt.int_status.eq(irq)]
        # poll period: max(1, freq) * 256 << scalar clocks
        freq = cnfg[16:24]
        m.d.comb += rings.poll_period.eq(Cat(Const(0, 8), Mux(freq == 0, 1, freq))
                                         << cnfg[8:11])
        m.d.comb += rings.enable.eq(ring_en)
        pu_reset = Signal()
        m.d.comb += card_reset.eq(~cnfg[0] | ~cnfg[1] | pu_reset)

        port = tgt.port
        m.d.comb += [port.cmd_ready.eq(1), port.retry.eq(0), port.abort.eq(0)]
        reg = Signal(7)
        m.d.comb += reg.eq(Cat(port.cmd.addr[2:8], port.cmd.bar[0]))
        rdata = Signal(32)

        def R0(name):
            return REG0[name] >> 2

        def R1(name):
            return 64 | (REG1[name] >> 2)

        level8 = Signal(8)
        with m.Switch(level):
            for k, v in ENA_LEVEL.items():
                with m.Case(k):
                    m.d.comb += level8.eq(v)
        with m.Switch(reg):
            with m.Case(R0("PUCTRL")):  m.d.comb += rdata.eq(puctrl_dmaena << 1)
            with m.Case(R0("PUISR")):   m.d.comb += rdata.eq(puisr)
            with m.Case(R0("PUCNFG")):  m.d.comb += rdata.eq(Cat(pucnfg[0:13], Const(size_code, 3)))
            with m.Case(R0("PUIER")):   m.d.comb += rdata.eq(puier)
            with m.Case(R0("PUSTAT")):  m.d.comb += rdata.eq(Cat(Const(REVISION, 8), level8))
            for r, name in enumerate(("CRAR", "SRAR", "RRAR", "DRAR")):
                with m.Case(R1(name)):  m.d.comb += rdata.eq(rings.base[r])
            with m.Case(R1("DMA_CSR")): m.d.comb += rdata.eq(csr_read)
            with m.Case(R1("DMA_IER")): m.d.comb += rdata.eq(ier)
            with m.Case(R1("DMA_CNFG")): m.d.comb += rdata.eq(cnfg)
            with m.Case(R1("REVID")):   m.d.comb += rdata.eq(REVISION)
        rsp = Signal()
        rsp_data = Signal(32)
        m.d.sync += [rsp.eq(port.cmd_valid & ~port.cmd.write), rsp_data.eq(rdata)]
        m.d.comb += [port.rsp_valid.eq(rsp), port.rsp_data.eq(rsp_data)]
        with m.If(port.cmd_valid & port.cmd.write):
            be = port.cmd.be
            wd = Signal(32)
            m.d.comb += wd.eq(port.cmd.data & Cat(*(be[k].replicate(8) for k in range(4))))
            with m.Switch(reg):
                with m.Case(R0("PUCTRL")):
                    m.d.comb += pu_reset.eq(wd[0])
                    with m.If(be[0]):
                        m.d.sync += puctrl_dmaena.eq(wd[1])
                with m.Case(R0("PUISR")):
                    m.d.comb += puisr_clr.eq(wd[0:16])
                with m.Case(R0("PUCNFG")):
                    m.d.sync += pucnfg.eq(merge_bytes(pucnfg, wd[0:16], be[0:2]))
                with m.Case(R0("PUIER")):
                    m.d.sync += puier.eq(merge_bytes(puier, wd[0:16], be[0:2]))
                for r, name in enumerate(("CRAR", "SRAR", "RRAR", "DRAR")):
                    with m.Case(R1(name)):
                        m.d.comb += [rings.base_we.eq(1 << r),
                                     rings.base_wdata.eq(merge_bytes(rings.base[r], wd, be))]
                with m.Case(R1("DMA_CSR")):
                    m.d.comb += csr_clr.eq(wd & status_mask)
                    for r in range(4):
                        ctl = wd[8 * r + 6:8 * r + 8]
                        with m.If(ctl == 2):
                            m.d.sync += ring_en[r].eq(1)
                        with m.Elif(ctl == 1):
                            m.d.sync += ring_en[r].eq(0)
                with m.Case(R1("DMA_IER")):
                    m.d.sync += ier.eq(merge_bytes(ier, wd, be))
                with m.Case(R1("DMA_CNFG")):
                    m.d.sync += cnfg.eq(merge_bytes(cnfg, wd, be))
                with m.Case(R1("SECRET2")):
                    with m.If(cnfg[11] & (wd == UNLOCK_KEY)):
                        m.d.sync += level.eq(self.grade)

        # ---- per-packet state --------------------------------------------
        cmd_l = Signal(32)
        cmd_addr = Signal(32)
        cmd_words = Signal(6)
        base_w = Signal(64)
        mac_w = Signal(64)
        cry_w = Signal(64)
        bc = BaseCommand(base_w)
        mc = AlgCommand(mac_w)
        cc = AlgCommand(cry_w)
        ckey = Signal(192)
        mkey = Signal(512)
        iv = Signal(64)
        psec = Signal(3)
        pcnt = Signal(4)
        cmd_bad = Signal()
        res_l = Signal(32)
        res_addr = Signal(32)
        src_l = Signal(32)
        src_addr = Signal(32)
        src_words = Signal(15)
        dst_l = Signal(32)
        dst_addr = Signal(32)
        dst_left = Signal(17)
        have_src = Signal()
        have_dst = Signal()
        src_exhausted = Signal()
        dst_exhausted = Signal()
        drain = Signal()                 # no data phase: walk both chains to LAST
        short_src = Signal()             # the LAST source segment came before the count
        started = Signal()
        src_pending = Signal(range(DMA_DEPTH + 1))
        fed = Signal(19)
        issued = Signal(19)
        obytes = Signal(19)
        dataerr = Signal()
        dstover = Signal()
        wr_n = Signal(range(BURST + 1))
        wr_bytes = Signal(7)
        mv = Signal(range(BURST + 1))
        rd_n = Signal(range(BURST + 1))
        ri = Signal(4)
        req_sent = Signal()
        dover_set = Signal()

        length = Signal(18)
        m.d.comb += length.eq(Cat(bc.src_count, bc.src_hi))
        has_mac = bc.masks[10]
        has_cry = bc.masks[11]
        decode = bc.masks[13]
        new_mkey = Signal()
        new_ckey = Signal()
        new_iv = Signal()
        tdes = Signal()
        m.d.comb += [new_mkey.eq(has_mac & mc.masks[11]),
                     new_ckey.eq(has_cry & cc.masks[11]),
                     new_iv.eq(has_cry & cc.masks[12]),
                     tdes.eq(cc.masks[0:2] == 1)]
        mac_result = Signal()
        m.d.comb += mac_result.eq(has_mac & mc.masks[5])

        # the command's validity (beyond parsing): algorithms, modes, level, session
        unsupported = Signal()
        m.d.comb += unsupported.eq(
            bc.masks[8] |                                           # compression
            (has_cry & ((cc.masks[0:2] > 1) | (cc.masks[3:5] != 1))) |  # RC4 / not CBC
            (has_cry & (level < Mux(tdes, 2, 1))) |
            (has_mac & (mc.masks[0] | (mc.masks[2:4] == 1) | (mc.masks[2:4] == 3))) |
            (has_mac & (level < 2)) |
            (bc.session >= n_ses))

        # regions past the total source count (hifn7751reg.h: header_skip +
        # source_count of the MAC / crypt command lie within the packet)
        overrun = Signal()
        m.d.comb += overrun.eq(
            (has_cry & (cc.header_skip + Cat(cc.source_count, cc.count_hi) > length)) |
            (has_mac & (mc.header_skip + Cat(mc.source_count, mc.count_hi) > length)))
        # known from the command buffer alone: no data phase, CMDINVAL
        refused = Signal()
        m.d.comb += refused.eq(cmd_bad | unsupported | overrun)
        invalid = Signal()
        m.d.comb += invalid.eq(refused | short_src)

        # ---- engine command (from the packet registers) -----------------
        ec = eng.cmd.payload
        m.d.comb += [
            ec.cipher.eq(Mux(cmd_bad | unsupported, 3,
                             Mux(has_cry, Mux(tdes, Cipher.TDES, Cipher.DES), Cipher.NONE))),
            ec.decrypt.eq(decode),
            ec.mac.eq(Mux(has_mac, Mux(mc.masks[3], Mac.SHA1, Mac.HMAC_KEY), Mac.NONE)),
            ec.order.eq(Mux(decode, Order.MAC_FIRST, Order.CIPHER_FIRST)),
            ec.trunc.eq(mc.masks[4]),
            ec.length.eq(length),
            ec.cipher_skip.eq(cc.header_skip),
            ec.cipher_len.eq(Cat(cc.source_count, cc.count_hi)),
            ec.mac_skip.eq(mc.header_skip),
            ec.mac_len.eq(Cat(mc.source_count, mc.count_hi)),
            ec.key1.eq(Mux(tdes, ckey[128:192], ckey[0:64])),
            ec.key2.eq(ckey[64:128]),
            ec.key3.eq(ckey[0:64]),
            ec.iv.eq(iv),
            ec.mac_key.eq(mkey),
        ]
        eres = eng.result.payload
        eng_done = eng.result.valid

        # ---- engine output → output FIFO --------------------------------
        m.d.comb += [outf.w_data.eq(eng.o.payload.data), outf.w_en.eq(eng.o.valid),
                     eng.o.ready.eq(outf.w_rdy)]
        out_level = outf.level

        # ---- read data routing: source data to the feeder, the rest to FSMs
        to_feed = Signal()
        m.d.comb += to_feed.eq(src_pending != 0)
        rem = Signal(19)
        need = Signal()
        m.d.comb += [need.eq(fed < length), rem.eq(length - fed)]
        rd_take = Signal()
        m.d.comb += rd_take.eq(ini.rdata.valid & ini.rdata.ready)
        pend_inc = Signal(range(BURST + 1))
        m.d.sync += src_pending.eq(src_pending + pend_inc - (rd_take & to_feed))
        short = Signal()                 # source chain ended (LAST) short of the count
        m.d.comb += short.eq(started & src_exhausted & ~to_feed & need)
        ei = eng.i.payload
        with m.If(to_feed):
            with m.If(need):
                m.d.comb += [eng.i.valid.eq(ini.rdata.valid), ei.data.eq(ini.rdata.payload),
                             ei.be.eq(Mux(rem >= 4, 0xF, Mux(rem[0:2] == 1, 0x1,
                                                             Mux(rem[0:2] == 2, 0x3, 0x7)))),
                             ei.last.eq(rem <= 4), ini.rdata.ready.eq(eng.i.ready)]
                with m.If(rd_take):
                    m.d.sync += fed.eq(Mux(rem <= 4, length, fed + 4))
            with m.Else():
                m.d.comb += ini.rdata.ready.eq(1)         # beyond the packet: dropped
        with m.Else():
            m.d.comb += [rings.dma_rdata.valid.eq(ini.rdata.valid),
                         rings.dma_rdata.payload.eq(ini.rdata.payload),
                         ini.rdata.ready.eq(Mux(state == S_CMD_PARSE, 1,
                                                rings.dma_rdata.ready))]

        # ---- initiator command / write data: ring engine or card --------
        icmd = ini.cmd.payload
        with m.If(rings.busy):
            m.d.comb += [ini.cmd.valid.eq(rings.dma_cmd.valid),
                         ini.cmd.payload.eq(rings.dma_cmd.payload),
                         rings.dma_cmd.ready.eq(ini.cmd.ready),
                         ini.wdata.valid.eq(rings.dma_wdata.valid),
                         ini.wdata.payload.eq(rings.dma_wdata.payload),
                         rings.dma_wdata.ready.eq(ini.wdata.ready)]
        m.d.comb += [rings.dma_done.eq(ini.done), rings.dma_status.eq(ini.done_status)]
        ok = ini.done_status == Status.OK

        def issue(addr, count, code, last_be=0xF):
            m.d.comb += [ini.cmd.valid.eq(1), icmd.addr.eq(addr), icmd.count.eq(count),
                         icmd.code.eq(code), icmd.first_be.eq(0xF), icmd.last_be.eq(last_be)]

        # ring requests: one at a time, answered by a ``rsp_valid`` pulse
        def ring_op(ring, release=False, l=0):
            m.d.comb += [rings.req_valid.eq(~req_sent), rings.req_ring.eq(ring),
                         rings.req_release.eq(release), rings.req_l.eq(l)]
            with m.If(rings.req_valid & rings.req_ready):
                m.d.sync += req_sent.eq(1)
            with m.If(rings.rsp_valid):
                m.d.sync += req_sent.eq(0)
            return rings.rsp_valid & ~rings.rsp_error

        # ---- the packet FSM ---------------------------------------------
        dst_words = Signal(16)
        m.d.comb += dst_words.eq((dst_left + 3) >> 2)
        wn = Signal(range(BURST + 1))
        wn0 = Signal(range(BURST + 1))
        m.d.comb += [wn0.eq(Mux(out_level > BURST, BURST, out_level)),
                     wn.eq(Mux(wn0 > dst_words, dst_words, wn0))]
        wb = Signal(19)
        m.d.comb += wb.eq(Mux((wn << 2) < dst_left, wn << 2, dst_left))
        wbytes = Signal(19)
        m.d.comb += wbytes.eq(Mux(wb < obytes, wb, obytes))
        write_ok = Signal()
        m.d.comb += write_ok.eq(have_dst & (dst_left != 0) & (out_level != 0) &
                                ((wn == BURST) | (wn == dst_words) | eng_done |
                                 ((out_level << 2) >= obytes)))
        rn = Signal(range(BURST + 1))
        m.d.comb += rn.eq(Mux(src_words > BURST, BURST, src_words))
        room = Signal()
        m.d.comb += room.eq((src_pending + rn <= DMA_DEPTH) &
                            (out_level + src_pending + rn + SLACK <= OUT_DEPTH))
        finish = Signal()
        m.d.comb += finish.eq(src_exhausted & ~to_feed & eng_done & (out_level == 0))

        # session number as the context RAM address
        ses = bc.session[0:(n_ses - 1).bit_length()]
        m.d.comb += [rd_ckey.addr.eq(ses), rd_mkey.addr.eq(ses), rd_iv.addr.eq(ses),
                     wr_ckey.addr.eq(ses), wr_mkey.addr.eq(ses), wr_iv.addr.eq(ses),
                     wr_ckey.data.eq(ckey), wr_mkey.data.eq(mkey), wr_iv.data.eq(eres.iv)]

        sl = DescriptorControl(src_l)
        dl = DescriptorControl(dst_l)
        rsp_d = rings.rsp
        with m.Switch(state):
            with m.Case(S_RESET):
                with m.If(~card_reset & ~ini.busy):
                    m.d.sync += state.eq(S_IDLE)
            with m.Case(S_IDLE):
                m.d.sync += [started.eq(0), have_src.eq(0), have_dst.eq(0),
                             src_exhausted.eq(0), dst_exhausted.eq(0), drain.eq(0),
                             short_src.eq(0), dstover.eq(0), dataerr.eq(0),
                             cmd_bad.eq(0), fed.eq(0), issued.eq(0), base_w.eq(0),
                             mac_w.eq(0), cry_w.eq(0), psec.eq(P_BASE), pcnt.eq(0)]
                with m.If(puctrl_dmaena & ring_en[RING_CMD]):
                    m.d.sync += state.eq(S_CMD_FETCH)
            with m.Case(S_CMD_FETCH):
                with m.If(ring_op(RING_CMD)):
                    ln = rsp_d.l.length
                    m.d.sync += [cmd_l.eq(rsp_d.l), cmd_addr.eq(rsp_d.p & ~3),
                                 cmd_words.eq((ln + 3) >> 2)]
                    with m.If((ln == 0) | (ln > 4 * CMD_MAX_WORDS) | (rsp_d.p[0:2] != 0)):
                        m.d.sync += [cmd_bad.eq(1), state.eq(S_CMD_REL)]
                    with m.Else():
                        m.d.sync += state.eq(S_CMD_ISSUE)
            with m.Case(S_CMD_ISSUE):
                issue(cmd_addr, cmd_words, Cmd.MEM_READ_MULT)
                with m.If(ini.cmd.ready):
                    m.d.sync += state.eq(S_CMD_PARSE)
            with m.Case(S_CMD_PARSE):
                w = ini.rdata.payload
                with m.If(ini.rdata.valid):
                    self._parse(m, w, psec, pcnt, base_w, mac_w, cry_w, ckey, mkey, iv,
                                cmd_bad, bc, mc, cc, has_mac, has_cry, new_mkey,
                                new_ckey, new_iv, tdes)
                    m.d.sync += cmd_words.eq(cmd_words - 1)
                    with m.If(cmd_words == 1):
                        m.d.sync += state.eq(S_CMD_WAIT)
            with m.Case(S_CMD_WAIT):
                with m.If(~ini.busy):
                    with m.If(psec != P_END):
                        m.d.sync += cmd_bad.eq(1)          # truncated command
                    m.d.sync += state.eq(S_CMD_REL)
            with m.Case(S_CMD_REL):
                with m.If(ring_op(RING_CMD, release=True, l=cmd_l)):
                    m.d.sync += state.eq(S_CTX)
            with m.Case(S_CTX):
                # keys given now go to the context; the others come from it
                valid_cmd = ~refused
                m.d.comb += [rd_ckey.en.eq(1), rd_mkey.en.eq(1), rd_iv.en.eq(1),
                             wr_ckey.en.eq(valid_cmd & new_ckey),
                             wr_mkey.en.eq(valid_cmd & new_mkey)]
                m.d.sync += state.eq(S_CTX2)
            with m.Case(S_CTX2):
                with m.If(~new_ckey):
                    m.d.sync += ckey.eq(rd_ckey.data)
                with m.If(~new_mkey):
                    m.d.sync += mkey.eq(rd_mkey.data)
                with m.If(~new_iv):
                    m.d.sync += iv.eq(rd_iv.data)
                m.d.sync += [state.eq(S_RES_FETCH), obytes.eq(length), drain.eq(refused)]
            with m.Case(S_RES_FETCH):
                with m.If(ring_op(RING_RES)):
                    m.d.sync += [res_l.eq(rsp_d.l), res_addr.eq(rsp_d.p & ~3),
                                 state.eq(S_DST_FETCH)]
                    with m.If(rsp_d.p[0:2] != 0):
                        m.d.sync += dataerr.eq(1)
            with m.Case(S_DST_FETCH):
                with m.If(ring_op(RING_DST)):
                    m.d.sync += [dst_l.eq(rsp_d.l), dst_addr.eq(rsp_d.p & ~3),
                                 dst_left.eq(rsp_d.l.length), have_dst.eq(1),
                                 state.eq(Mux(started | drain, S_STREAM, S_SRC_FETCH))]
                    with m.If(rsp_d.p[0:2] != 0):
                        m.d.sync += dataerr.eq(1)
            with m.Case(S_SRC_FETCH):
                with m.If(ring_op(RING_SRC)):
                    ln = rsp_d.l.length
                    m.d.sync += [src_l.eq(rsp_d.l), src_addr.eq(rsp_d.p & ~3),
                                 src_words.eq((ln + 3) >> 2), have_src.eq(1),
                                 state.eq(Mux(started | drain, S_STREAM, S_ENG))]
                    with m.If((rsp_d.p[0:2] != 0) | ((ln[0:2] != 0) & ~rsp_d.l.last)):
                        m.d.sync += dataerr.eq(1)
            with m.Case(S_ENG):
                m.d.comb += eng.cmd.valid.eq(1)
                with m.If(eng.cmd.ready):
                    m.d.sync += [started.eq(1), state.eq(S_STREAM)]
            with m.Case(S_STREAM):
                with m.If(drain):
                    self._drain(m, state, ri, have_src, have_dst, src_exhausted,
                                dst_exhausted)
                with m.Elif(short):
                    # no source data left for the count: end the engine's run now
                    # (not one zero byte per clock up to 2^18) and drain
                    m.d.comb += pkt_abort.eq(1)
                    m.d.sync += [short_src.eq(1), drain.eq(1)]
                with m.Elif(~have_dst & (out_level != 0)):
                    # no destination left for the output: overrun, drop it
                    m.d.comb += outf.r_en.eq(1)
                    m.d.sync += dstover.eq(1)
                with m.Elif(write_ok):
                    m.d.sync += [wr_n.eq(wn), mv.eq(wn), wr_bytes.eq(wbytes),
                                 state.eq(S_WPUSH)]
                    with m.If((wbytes[0:2] != 0) & (wbytes != obytes)):
                        m.d.sync += dataerr.eq(1)      # a segment ends inside a dword
                with m.Elif(have_dst & (dst_left == 0)):
                    m.d.sync += state.eq(S_DREL)
                with m.Elif(have_src & (src_words != 0) & (issued >= length)):
                    m.d.sync += src_words.eq(0)        # not needed: skip the read
                with m.Elif(have_src & (src_words != 0) & room):
                    m.d.sync += [rd_n.eq(rn), state.eq(S_RISSUE)]
                with m.Elif(have_src & (src_words == 0)):
                    m.d.sync += state.eq(S_SREL)
                with m.Elif(finish):
                    m.d.sync += [state.eq(Mux(have_dst, S_DREL, S_RES_PUSH)), ri.eq(0)]
            with m.Case(S_WPUSH):
                m.d.comb += [ini.wdata.valid.eq(outf.r_rdy), ini.wdata.payload.eq(outf.r_data),
                             outf.r_en.eq(ini.wdata.ready)]
                with m.If(outf.r_rdy & ini.wdata.ready):
                    m.d.sync += mv.eq(mv - 1)
                    with m.If(mv == 1):
                        m.d.sync += state.eq(S_WISSUE)
            with m.Case(S_WISSUE):
                lb = wr_bytes[0:2]
                issue(dst_addr, wr_n, Cmd.MEM_WRITE,
                      Mux(lb == 0, 0xF, Mux(lb == 1, 0x1, Mux(lb == 2, 0x3, 0x7))))
                with m.If(ini.cmd.ready):
                    m.d.sync += state.eq(S_WWAIT)
            with m.Case(S_WWAIT):
                with m.If(ini.done & ok):
                    m.d.sync += [dst_addr.eq(dst_addr + (wr_n << 2)),
                                 dst_left.eq(dst_left - wr_bytes),
                                 obytes.eq(obytes - wr_bytes), state.eq(S_STREAM)]
            with m.Case(S_RISSUE):
                issue(src_addr, rd_n, Cmd.MEM_READ_MULT)
                with m.If(ini.cmd.ready):
                    m.d.comb += pend_inc.eq(rd_n)
                    m.d.sync += state.eq(S_RWAIT)
            with m.Case(S_RWAIT):
                with m.If(ini.done & ok):
                    m.d.sync += [src_addr.eq(src_addr + (rd_n << 2)),
                                 src_words.eq(src_words - rd_n),
                                 issued.eq(issued + (rd_n << 2)), state.eq(S_STREAM)]
            with m.Case(S_SREL):
                with m.If(ring_op(RING_SRC, release=True, l=src_l)):
                    m.d.sync += have_src.eq(0)
                    with m.If(sl.last):
                        m.d.sync += [src_exhausted.eq(1), state.eq(S_STREAM)]
                    with m.Else():
                        m.d.sync += state.eq(S_SRC_FETCH)
            with m.Case(S_DREL):
                with m.If(ring_op(RING_DST, release=True, l=dst_l)):
                    m.d.sync += have_dst.eq(0)
                    with m.If(dl.last):
                        m.d.sync += [dst_exhausted.eq(1), state.eq(S_STREAM)]
                    with m.Else():
                        m.d.sync += state.eq(S_DST_FETCH)
            with m.Case(S_RES_PUSH):
                st = eres.status
                inval = invalid | st.unsupported
                derr = dataerr | st.cipher_len | st.region | st.length
                wrote = Signal(18)
                m.d.comb += wrote.eq(length - obytes)
                flags = Cat(inval, derr, Const(0, 7), dstover, Const(0, 2),
                            wrote[16:18], length[16:18])
                word = Signal(32)
                mac = eres.mac
                with m.Switch(ri):
                    with m.Case(0): m.d.comb += word.eq(Cat(flags, bc.session, Const(0, 4)))
                    with m.Case(1): m.d.comb += word.eq(Cat(length[0:16], wrote[0:16]))
                    with m.Case(2): m.d.comb += word.eq(0)
                    for j in range(5):
                        with m.Case(3 + j):
                            m.d.comb += word.eq(_bswap(mac[160 - 32 * (j + 1):160 - 32 * j]))
                nres = Mux(mac_result, 8, 2)
                m.d.comb += [ini.wdata.valid.eq(1), ini.wdata.payload.eq(word)]
                with m.If(ini.wdata.ready):
                    m.d.sync += ri.eq(ri + 1)
                    with m.If(ri == nres - 1):
                        m.d.sync += state.eq(S_RES_ISSUE)
                        m.d.comb += puisr_set.eq(Mux(inval, PUISR_CMDINVAL, 0) |
                                                 Mux(derr, PUISR_DATAERR, 0) |
                                                 Mux(dstover, PUISR_DSTOVER, 0))
                        m.d.comb += dover_set.eq(dstover)
            with m.Case(S_RES_ISSUE):
                issue(res_addr, Mux(mac_result, 8, 2), Cmd.MEM_WRITE)
                with m.If(ini.cmd.ready):
                    m.d.sync += state.eq(S_RES_WAIT)
            with m.Case(S_RES_WAIT):
                with m.If(ini.done & ok):
                    m.d.sync += state.eq(S_RES_REL)
            with m.Case(S_RES_REL):
                with m.If(ring_op(RING_RES, release=True, l=res_l)):
                    m.d.comb += [eng.result.ready.eq(1),
                                 wr_iv.en.eq(has_cry & ~invalid)]
                    m.d.sync += state.eq(S_IDLE)
            with m.Case(S_HALT):
                pass

        # ---- DMA_CSR status from the rings ------------------------------
        ring_bits = 0
        for r in range(4):
            ring_bits = ring_bits | (rings.done[r] << (8 * r + 4)) \
                | (rings.last[r] << (8 * r + 3)) | (rings.wait[r] << (8 * r + 2))
        abort_bits = Signal(32)
        dma_ring = Signal(2)
        with m.Switch(state):
            with m.Case(S_CMD_ISSUE, S_CMD_PARSE, S_CMD_WAIT):
                m.d.comb += dma_ring.eq(RING_CMD)
            with m.Case(S_WPUSH, S_WISSUE, S_WWAIT):
                m.d.comb += dma_ring.eq(RING_DST)
            with m.Case(S_RES_PUSH, S_RES_ISSUE, S_RES_WAIT):
                m.d.comb += dma_ring.eq(RING_RES)
            with m.Default():
                m.d.comb += dma_ring.eq(RING_SRC)
        err_ring = Mux(rings.busy, rings.ring, dma_ring)
        dma_error = Signal()             # a bus error, or a ring the chip cannot walk
        m.d.comb += dma_error.eq(((ini.done & ~ok) | (rings.rsp_valid & rings.rsp_error))
                                 & (state != S_RESET) & (state != S_HALT))
        with m.If(dma_error):
            m.d.comb += abort_bits.eq(Const(1, 32) << Cat(Const(5, 3), err_ring))
            m.d.sync += state.eq(S_HALT)
        m.d.comb += csr_set.eq(ring_bits | abort_bits | (dover_set << 25))   # D_OVER
        m.d.comb += rings.reset.eq(card_reset | (state == S_HALT) | (state == S_RESET))

        with m.If(ini.done & (ini.done_status == Status.MASTER_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_MASTER_ABORT)
        with m.If(ini.done & (ini.done_status == Status.TARGET_ABORT)):
            m.d.comb += tgt.set_status.eq(STATUS_RX_TARGET_ABORT)

        # ---- reset --------------------------------------------------------
        with m.If(card_reset):
            m.d.sync += [state.eq(S_RESET), csr.eq(0), ring_en.eq(0), puisr.eq(0),
                         src_pending.eq(0), req_sent.eq(0), puctrl_dmaena.eq(0)]
        with m.If(state == S_HALT):
            m.d.sync += [src_pending.eq(0), req_sent.eq(0)]
        return m

    @staticmethod
    def _drain(m, state, ri, have_src, have_dst, src_exhausted, dst_exhausted):
        """A packet without a data phase: release its destination and source
        descriptors up to the LAST of each, then write the result."""
        with m.If(have_dst):
            m.d.sync += state.eq(S_DREL)
        with m.Elif(have_src):
            m.d.sync += state.eq(S_SREL)
        with m.Elif(~dst_exhausted):
            m.d.sync += state.eq(S_DST_FETCH)
        with m.Elif(~src_exhausted):
            m.d.sync += state.eq(S_SRC_FETCH)
        with m.Else():
            m.d.sync += [state.eq(S_RES_PUSH), ri.eq(0)]

    @staticmethod
    def _parse(m, w, psec, pcnt, base_w, mac_w, cry_w, ckey, mkey, iv, cmd_bad,
               bc, mc, cc, has_mac, has_cry, new_mkey, new_ckey, new_iv, tdes):
        """One command-buffer dword into the packet registers."""
        # the word index within the section; the last one moves to the next section
        bm = Signal(16)
        mm = Signal(16)
        cm = Signal(16)
        m.d.comb += [bm.eq(bc.masks), mm.eq(mc.masks), cm.eq(cc.masks)]
        sec_len = Signal(5)
        with m.Switch(psec):
            with m.Case(P_MKEY): m.d.comb += sec_len.eq(16)
            with m.Case(P_CKEY): m.d.comb += sec_len.eq(Mux(tdes, 6, 2))
            with m.Default():    m.d.comb += sec_len.eq(2)
        present = Signal(8)
        m.d.comb += present.eq(Cat(Const(1, 1), bm[8], bm[10], bm[11],
                                   bm[10] & mm[11], bm[11] & cm[11], bm[11] & cm[12],
                                   Const(1, 1)))
        nxt = Signal(3)
        m.d.comb += nxt.eq(P_END)
        for s in reversed(range(1, 8)):
            with m.If((psec < s) & present[s]):
                m.d.comb += nxt.eq(s)
        with m.Switch(psec):
            with m.Case(P_BASE):
                with m.If(pcnt == 0):
                    m.d.sync += base_w[0:32].eq(w)
                with m.Else():
                    m.d.sync += base_w[32:64].eq(w)
            with m.Case(P_MAC):
                with m.If(pcnt == 0):
                    m.d.sync += mac_w[0:32].eq(w)
                with m.Else():
                    m.d.sync += mac_w[32:64].eq(w)
            with m.Case(P_CRYPT):
                with m.If(pcnt == 0):
                    m.d.sync += cry_w[0:32].eq(w)
                with m.Else():
                    m.d.sync += cry_w[32:64].eq(w)
            with m.Case(P_MKEY):
                m.d.sync += mkey.eq(Cat(_bswap(w), mkey[0:480]))
            with m.Case(P_CKEY):
                m.d.sync += ckey.eq(Cat(_bswap(w), ckey[0:160]))
            with m.Case(P_IV):
                m.d.sync += iv.eq(Cat(_bswap(w), iv[0:32]))
            with m.Case(P_END):
                m.d.sync += cmd_bad.eq(1)                 # longer than its sections
        with m.If(psec != P_END):
            with m.If(pcnt == sec_len - 1):
                m.d.sync += [psec.eq(nxt), pcnt.eq(0)]
            with m.Else():
                m.d.sync += pcnt.eq(pcnt + 1)
