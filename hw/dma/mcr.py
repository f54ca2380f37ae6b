"""Broadcom-style command-record (MCR) engine: the datapath of the BCM5820-like card.

The driver writes the bus address of a *master command record* to MCR1; the
engine fetches the record, and for every packet in it fetches the packet's
context, streams the input particle chain through the transform engine,
writes the output through the output particle chain, writes the MAC, and
finally sets DONE in the record and reports ``record_done``. Formats follow
OpenBSD's ``sys/dev/pci/ubsecreg.h``; every multi-byte field is
little-endian in host memory (the driver sets neither BE32 nor BE64).

Memory formats (byte offsets; ``lib.data`` layouts below, whose bit ``8k``
is byte ``k`` of the structure in memory)::

    MCR (36 B, +32 B per further packet)       particle (12 B, "pktbuf")
    00 u16 pkts     02 u16 flags               00 u32 addr   (any byte alignment)
    per packet i at 04 + 32*i:                 04 u32 next   (0 ends the chain)
      +00 u32 context pointer                  08 u32 len    (bits 15:0 used)
      +04 input particle (12 B)
      +10 u16 reserved  +12 u16 packet length
      +14 output particle (12 B)

    flags: DONE 0001 (set by the card), ERROR 0002, error code ff00.

    context, 5820 "long" form (80 B, dword aligned)
    00 u16 len (80)   02 u16 type (0 = IPsec)   04 u16 flags   06 u16 offset
    08 u32 deskey[6]  20 u32 iv[2]  28 u32 hminner[5]  3c u32 hmouter[5]

    context flags: 3DES 8000, INBOUND 4000, SHA1 2000, MD5 1000.

Key, IV and midstate words (the mapping the driver must match): each u32
word holds four bytes of the key/IV in *big-endian* order as an integer,
stored little-endian in memory, as OpenBSD's ubsec does with ``ntohl`` then
``htole32``: key bytes k0 k1 k2 k3 → word ``k0<<24 | k1<<16 | k2<<8 | k3`` →
memory bytes k3 k2 k1 k0. ``deskey[0..1]`` is key 1, ``[2..3]`` key 2,
``[4..5]`` key 3 (single DES: the same key three times, as the 5820 does,
OCF paper §5.2). ``hminner[j]``/``hmouter[j]`` are the SHA-1 chaining
values H0..H4 after one block of key^ipad / key^opad (RFC 2104), as integers.

Packet semantics (a reading of ubsec.c's ``ubsec_process``):

* The input chain supplies ``packet length`` bytes starting at the MAC
  start; the MAC (HMAC-SHA1 with the context's midstates, 12 bytes, RFC 2404)
  covers all of them; the cipher (3DES-EDE CBC) covers the bytes from
  ``offset * 4`` to the end, so cipher and MAC end at the same byte.
  Outbound: encrypt then MAC the ciphertext; INBOUND: MAC the ciphertext
  then decrypt (IPsec orders).
* Only the cipher region is written to the output chain (the bytes before
  it are not changed by the card); without 3DES no data is written at all.
* The MAC (12 bytes) goes to the address in the ``next`` field of the
  output particle where the output ended (of the first output particle
  when there is no output), as ubsec.c chains its MAC buffer.
* A chain longer than needed is used only as far as needed. Particles may
  start at any byte address.

Per-packet errors (record flags ERROR plus a code in bits 15:8; the record
still completes and the other packets are processed):
``ERR_CONTEXT`` 01 MD5 or both MAC bits (this card has no MD5);
``ERR_LENGTH`` 02 packet length 0, offset past the end, or a cipher region
not a multiple of 8; ``ERR_INPUT`` 03 input chain shorter than the packet
(missing bytes processed as zeros); ``ERR_OUTPUT`` 04 output chain shorter
than the output (the rest is dropped) or no MAC buffer (``next`` = 0).

Chain errors (``ERR_CHAIN`` 05): a particle of length 0 that the card reaches
while the chain still owes bytes, or a chain of more than ``MAX_PARTICLES``
(64, OpenBSD ubsecvar.h ``UBS_MAX_SCATTER``, the driver's scatter/gather
depth) particles. ubsec.c never hands such a chain over (it skips segments
consumed by the skip instead of emitting them, and its only zero-length
particle is a MAC-only packet's output particle, whose ``next`` is the MAC
buffer and which carries no data), so the card does not walk it: the packet's
input ends there (as for a short chain) or the rest of its output and its MAC
are dropped, the record ends with that packet, and its flags get ERROR and
code 05 but *not* DONE; then the engine reports a DMA error as below (ERR =
the bus address of the offending particle, READ) and halts. A self-linked or
cyclic chain is thus a bounded walk, never a loop.

DMA errors (master or target abort on any access): the engine pulses
``dma_error`` with the failing dword address and direction, flushes the
initiator FIFOs and halts until reset. The card resets it (CTRL RESET).

Structure: one main FSM (record, packet, context, completion), an input
FSM (input chain → data FIFO → transform engine) and an output FSM
(transform engine → byte realigner → output chain, then the MAC), sharing
the initiator through a fixed-priority issuer (main > output > input). Read
returns are routed by a tag FIFO; data reads are only issued when the data
FIFO has room for them, so read data never blocks and descriptor fetches
always return, whatever the transform engine is doing.
"""



import enum as py_enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..crypto.engine import Cipher, Mac, Order, TransformEngine
from ..pci.bus import Cmd
from ..pci.initiator import InitiatorCommand, Status

from ..cards.ubsecreg import (ContextLong, McrPacket, CTX_LONG_BYTES, MCR_ADD_BYTES,
                              MAC_BYTES, MAX_PARTICLES, ERR_CONTEXT, ERR_LENGTH, ERR_INPUT,
                              ERR_OUTPUT, ERR_CHAIN)

__all__ = ["McrEngine", "MainState", "InState", "OutState"]


def _dw(layout, *path):
    """Dword index of a field in a layout (fields used here are dword aligned
    or sit in one dword)."""
    off = 0
    shape = layout
    for p in path:
        f = data.Layout.cast(shape)[p]
        off += f.offset
        shape = f.shape
    return off // 32


# dword indices within "header + packet" (index 0 = header, 1.. = McrPacket)
P_HDR = 0
P_CTXP = 1 + _dw(McrPacket, "ctxp")
P_IADDR = 1 + _dw(McrPacket, "ipkt", "addr")
P_INEXT = 1 + _dw(McrPacket, "ipkt", "next")
P_ILEN = 1 + _dw(McrPacket, "ipkt", "len")
P_PKTLEN = 1 + _dw(McrPacket, "pktlen")
P_OADDR = 1 + _dw(McrPacket, "opkt", "addr")
P_ONEXT = 1 + _dw(McrPacket, "opkt", "next")
P_OLEN = 1 + _dw(McrPacket, "opkt", "len")
C_FLAGS = _dw(ContextLong, "flags")
C_KEY = _dw(ContextLong, "deskey")
C_IV = _dw(ContextLong, "iv")
C_INNER = _dw(ContextLong, "hminner")
C_OUTER = _dw(ContextLong, "hmouter")
assert (P_IADDR, P_OADDR, C_KEY, C_IV, C_INNER, C_OUTER) == (2, 6, 2, 8, 10, 15)

# read destinations (tag FIFO)
D_DATA, D_PKT0, D_PKT1, D_CTX, D_IN, D_OUT = range(6)


class MainState(py_enum.IntEnum):
    IDLE = 0
    PKT_RD = 1
    PKT_WAIT = 2
    CTX_RD = 3
    CTX_WAIT = 4
    CHECK = 5
    START = 6
    RUN = 7
    NEXT = 8
    DONE_DATA = 9
    DONE_CMD = 10
    DONE_WAIT = 11
    HALT = 12


class InState(py_enum.IntEnum):
    IDLE = 0
    RUN = 1
    DESC_RD = 2
    DESC_WAIT = 3
    TERM = 4


class OutState(py_enum.IntEnum):
    IDLE = 0
    SETUP = 1        # start a particle of the output chain
    DATA = 2         # pack bytes, issue writes for the current particle
    DESC_RD = 3
    DESC_WAIT = 4
    DISCARD = 5      # output chain exhausted: drop the rest
    MAC_SETUP = 6
    FINISH = 7


def _low_be(lane):
    """Byte enables of lanes >= lane (1 = enabled)."""
    return Mux(lane == 0, 0xF, Mux(lane == 1, 0xE, Mux(lane == 2, 0xC, 0x8)))


def _end_be(end_lane):
    """Byte enables of lanes below end_lane (0 = all four)."""
    return Mux(end_lane == 0, 0xF, Mux(end_lane == 1, 0x1, Mux(end_lane == 2, 0x3, 0x7)))


class McrEngine(wiring.Component):
    """See module docstring.

    Parameters
    ----------
    engine_params : keyword arguments of :class:`TransformEngine`.
    chunk : dwords per data read/write command (≤ the initiator FIFO depth).
    data_depth : dwords of the input data FIFO (≥ chunk).
    mcr1_depth : MCR1 address queue entries (records accepted while one runs).
    """

    def __init__(self, engine_params: dict, chunk: int = 32, data_depth: int = 64,
                 mcr1_depth: int = 2):
        if not 1 <= chunk <= data_depth:
            raise ValueError("need 1 <= chunk <= data_depth")
        self.chunk = chunk
        self.data_depth = data_depth
        self.mcr1_depth = mcr1_depth
        self.engine = TransformEngine(**engine_params)
        super().__init__({
            "ini_cmd": Out(stream.Signature(InitiatorCommand)),
            "ini_wdata": Out(stream.Signature(32)),
            "ini_rdata": In(stream.Signature(32)),
            "ini_done": In(1),
            "ini_done_status": In(2),
            "ini_done_count": In(16),
            "ini_flush": Out(1),
            "mcr1_push": In(1),
            "mcr1_addr": In(32),
            "mcr1_full": Out(1),
            "busy": Out(1),
            "record_done": Out(1),        # pulse: a record's DONE flag is in memory
            "dma_error": Out(1),          # pulse
            "err_addr": Out(32),
            "err_read": Out(1),
            "halted": Out(1),
            # integer FSM states for VCDs
            "main_state": Out(4),
            "in_state": Out(3),
            "out_state": Out(3),
            "records": Out(32),           # records completed since reset
            "packets": Out(32),           # packets processed since reset
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self.engine
        CH = self.chunk
        cw = max(CH, 20, 9).bit_length() + 1          # width of a command's count

        # ---------------------------------------------------------------
        # MCR1 address queue
        m.submodules.mcr1q = q = fifo.SyncFIFO(width=32, depth=self.mcr1_depth)
        m.d.comb += [q.w_en.eq(self.mcr1_push), q.w_data.eq(self.mcr1_addr),
                     self.mcr1_full.eq(~q.w_rdy)]

        # ---------------------------------------------------------------
        # Issuer: requests from the three FSMs → initiator commands
        class Req:
            def __init__(self, name):
                self.valid = Signal(name=f"{name}_req")
                self.addr = Signal(32, name=f"{name}_addr")
                self.count = Signal(cw, name=f"{name}_count")
                self.read = Signal(name=f"{name}_read")
                self.dest = Signal(3, name=f"{name}_dest")
                self.first_be = Signal(4, name=f"{name}_fbe")
                self.last_be = Signal(4, name=f"{name}_lbe")
                self.tag_last = Signal(name=f"{name}_tlast")   # data: final word of packet
                self.gnt = Signal(name=f"{name}_gnt")

        r_main, r_out, r_in = Req("m"), Req("o"), Req("i")
        m.submodules.tags = tags = fifo.SyncFIFO(width=3 + cw + 4 + 4 + 1, depth=4)
        halted = Signal()
        last_addr = Signal(32)
        last_read = Signal()
        cmd = self.ini_cmd.payload
        sel = Signal(2)          # 0 none, 1 main, 2 out, 3 in
        with m.If(r_main.valid):
            m.d.comb += sel.eq(1)
        with m.Elif(r_out.valid):
            m.d.comb += sel.eq(2)
        with m.Elif(r_in.valid):
            m.d.comb += sel.eq(3)
        for k, r in ((1, r_main), (2, r_out), (3, r_in)):
            with m.If(sel == k):
                ok = ~halted & (~r.read | tags.w_rdy)
                m.d.comb += [
                    self.ini_cmd.valid.eq(ok),
                    cmd.addr.eq(Cat(Const(0, 2), r.addr[2:])),
                    cmd.count.eq(r.count),
                    cmd.code.eq(Mux(r.read, Cmd.MEM_READ_MULT, Cmd.MEM_WRITE)),
                    cmd.first_be.eq(Mux(r.read, 0xF, r.first_be)),
                    cmd.last_be.eq(Mux(r.read, 0xF, r.last_be)),
                    tags.w_data.eq(Cat(r.dest, r.count, r.first_be, r.last_be, r.tag_last)),
                    r.gnt.eq(ok & self.ini_cmd.ready),
                ]
        issued = Signal()
        m.d.comb += issued.eq(self.ini_cmd.valid & self.ini_cmd.ready)
        m.d.comb += tags.w_en.eq(issued & (cmd.code == Cmd.MEM_READ_MULT))
        with m.If(issued):
            m.d.sync += [last_addr.eq(cmd.addr), last_read.eq(cmd.code == Cmd.MEM_READ_MULT)]

        # DMA errors
        m.d.comb += self.halted.eq(halted)
        bus_error = Signal()
        chain_halt = Signal()          # a chain error's record is written back: halt
        chain_addr = Signal(32)        # bus address of the offending particle
        m.d.comb += bus_error.eq(self.ini_done & (self.ini_done_status != Status.OK))
        with m.If((bus_error | chain_halt) & ~halted):
            m.d.sync += halted.eq(1)
            m.d.comb += [self.dma_error.eq(1), self.ini_flush.eq(bus_error),
                         self.err_addr.eq(Mux(bus_error,
                                              last_addr + (self.ini_done_count << 2),
                                              chain_addr)),
                         self.err_read.eq(bus_error & last_read | chain_halt)]

        # ---------------------------------------------------------------
        # Read demux: rdata → data FIFO (engine input) or descriptor registers
        m.submodules.dfifo = dfifo = fifo.SyncFIFOBuffered(width=32 + 4 + 1,
                                                           depth=self.data_depth)
        t_dest = tags.r_data[0:3]
        t_count = tags.r_data[3:3 + cw]
        t_fbe = tags.r_data[3 + cw:7 + cw]
        t_lbe = tags.r_data[7 + cw:11 + cw]
        t_last = tags.r_data[11 + cw]
        widx = Signal(cw)
        rd = self.ini_rdata
        m.d.comb += rd.ready.eq(tags.r_rdy)
        rword = Signal()
        m.d.comb += rword.eq(rd.valid & rd.ready)
        final_word = Signal()
        m.d.comb += final_word.eq(widx == t_count - 1)
        with m.If(rword):
            with m.If(final_word):
                m.d.sync += widx.eq(0)
                m.d.comb += tags.r_en.eq(1)
            with m.Else():
                m.d.sync += widx.eq(widx + 1)
        demux_push = Signal()
        m.d.comb += demux_push.eq(rword & (t_dest == D_DATA))
        be_first = Mux(widx == 0, t_fbe, 0xF)
        be_last = Mux(final_word, t_lbe, 0xF)
        term_push = Signal()                  # input FSM: early `last` (short chain)
        with m.If(demux_push):
            m.d.comb += [dfifo.w_en.eq(1),
                         dfifo.w_data.eq(Cat(rd.payload, be_first & be_last,
                                             t_last & final_word))]
        with m.Elif(term_push):
            m.d.comb += [dfifo.w_en.eq(1), dfifo.w_data.eq(Cat(Const(0, 36), Const(1, 1)))]
        m.d.comb += [eng.i.payload.data.eq(dfifo.r_data[0:32]),
                     eng.i.payload.be.eq(dfifo.r_data[32:36]),
                     eng.i.payload.last.eq(dfifo.r_data[36]),
                     eng.i.valid.eq(dfifo.r_rdy),
                     dfifo.r_en.eq(eng.i.ready)]
        # data words commanded (or pushed) and not yet taken by the engine
        data_out = Signal(range(self.data_depth + 1))
        data_add = Signal(range(CH + 1))
        m.d.sync += data_out.eq(data_out + data_add - (eng.i.valid & eng.i.ready))

        ctl = Signal()          # a descriptor word arrives
        m.d.comb += ctl.eq(rword & (t_dest != D_DATA))
        ctl_end = Signal()      # ... and it is the last of its read
        m.d.comb += ctl_end.eq(ctl & final_word)
        w = rd.payload

        # ---------------------------------------------------------------
        # Record / packet registers
        mcr_addr = Signal(32)
        pkt_addr = Signal(32)          # address of the next packet's 8 dwords
        hdr = Signal(32)               # pkts | flags << 16
        pkts = hdr[0:16]
        pkt_idx = Signal(16)
        ctxp = Signal(32)
        pktlen = Signal(16)
        in_addr, in_next, in_len = Signal(32), Signal(32), Signal(16)
        out_addr, out_next, out_len = Signal(32), Signal(32), Signal(16)
        cflags = Signal(16)
        coff = Signal(16)
        rec_err = Signal()
        err_code = Signal(8)
        chain_err = Signal()           # this record met a chain error (ERR_CHAIN)
        in_parts = Signal(range(MAX_PARTICLES + 1))     # particles of the chain so far
        out_parts = Signal(range(MAX_PARTICLES + 1))
        ecmd = Signal(eng.cmd.payload.shape())

        # descriptor loads: packet / particle words share one index space
        pidx = Signal(4)
        with m.Switch(t_dest):
            with m.Case(D_PKT0):
                m.d.comb += pidx.eq(widx)
            with m.Case(D_PKT1):
                m.d.comb += pidx.eq(widx + 1)
            with m.Case(D_IN):
                m.d.comb += pidx.eq(widx + P_IADDR)
            with m.Case(D_OUT):
                m.d.comb += pidx.eq(widx + P_OADDR)
        with m.If(ctl & (t_dest != D_CTX)):
            with m.Switch(pidx):
                with m.Case(P_HDR):    m.d.sync += hdr.eq(w)
                with m.Case(P_CTXP):   m.d.sync += ctxp.eq(w)
                with m.Case(P_IADDR):  m.d.sync += in_addr.eq(w)
                with m.Case(P_INEXT):  m.d.sync += in_next.eq(w)
                with m.Case(P_ILEN):   m.d.sync += in_len.eq(w[0:16])
                with m.Case(P_PKTLEN): m.d.sync += pktlen.eq(w[16:32])
                with m.Case(P_OADDR):  m.d.sync += out_addr.eq(w)
                with m.Case(P_ONEXT):  m.d.sync += out_next.eq(w)
                with m.Case(P_OLEN):   m.d.sync += out_len.eq(w[0:16])
        with m.If(ctl & (t_dest == D_CTX)):
            with m.Switch(widx):
                with m.Case(C_FLAGS):
                    m.d.sync += [cflags.eq(w[0:16]), coff.eq(w[16:32])]
                # each 64-bit key/IV is (first word << 32 | second word)
                for j, fld in enumerate(("key1", "key2", "key3", "iv")):
                    base = C_KEY + 2 * j if fld != "iv" else C_IV
                    with m.Case(base):
                        m.d.sync += getattr(ecmd, fld)[32:64].eq(w)
                    with m.Case(base + 1):
                        m.d.sync += getattr(ecmd, fld)[0:32].eq(w)
                # midstates: H0 in the top bits
                for j in range(5):
                    with m.Case(C_INNER + j):
                        m.d.sync += ecmd.inner[32 * (4 - j):32 * (5 - j)].eq(w)
                    with m.Case(C_OUTER + j):
                        m.d.sync += ecmd.outer[32 * (4 - j):32 * (5 - j)].eq(w)

        # ---------------------------------------------------------------
        # Packet checks (on the loaded context)
        skip = Signal(18)
        m.d.comb += skip.eq(coff << 2)
        cipher_on = cflags[15]
        inbound = cflags[14]
        auth = cflags[12:14]
        mac_on = Signal()
        m.d.comb += mac_on.eq(auth == 0b10)
        bad_ctx = Signal()
        bad_len = Signal()
        m.d.comb += [
            bad_ctx.eq(auth[0]),                                   # MD5 or both bits
            bad_len.eq((pktlen == 0) | (skip > pktlen) |
                       (cipher_on & ((pktlen - skip)[0:3] != 0))),
        ]

        # ---------------------------------------------------------------
        # FSM state registers
        mst = self.main_state
        ist = self.in_state
        ost = self.out_state
        m.d.comb += self.busy.eq((mst != MainState.IDLE) | q.r_rdy)
        out_finish = Signal()
        m.d.comb += out_finish.eq(ost == OutState.FINISH)
        start_io = Signal()            # pulse: engine command taken

        # ---------------------------------------------------------------
        # Main FSM
        m.d.comb += eng.cmd.payload.eq(ecmd)
        with m.Switch(mst):
            with m.Case(MainState.IDLE):
                with m.If(q.r_rdy & ~halted):
                    m.d.comb += q.r_en.eq(1)
                    m.d.sync += [mcr_addr.eq(q.r_data), pkt_addr.eq(q.r_data + 4 + 32),
                                 pkt_idx.eq(0), rec_err.eq(0), err_code.eq(0),
                                 chain_err.eq(0), mst.eq(MainState.PKT_RD)]
            with m.Case(MainState.PKT_RD):
                first = pkt_idx == 0
                m.d.comb += [r_main.valid.eq(1), r_main.read.eq(1),
                             r_main.addr.eq(Mux(first, mcr_addr, pkt_addr)),
                             r_main.count.eq(Mux(first, 9, 8)),
                             r_main.dest.eq(Mux(first, D_PKT0, D_PKT1))]
                with m.If(r_main.gnt):
                    m.d.sync += mst.eq(MainState.PKT_WAIT)
                    with m.If(~first):
                        m.d.sync += pkt_addr.eq(pkt_addr + 32)
            with m.Case(MainState.PKT_WAIT):
                with m.If(ctl_end):
                    m.d.sync += mst.eq(MainState.CTX_RD)
                    # pkts is loaded by now (header is the first word of packet 0)
                    with m.If((pkt_idx == 0) & (pkts == 0)):
                        m.d.sync += mst.eq(MainState.DONE_DATA)
            with m.Case(MainState.CTX_RD):
                m.d.comb += [r_main.valid.eq(1), r_main.read.eq(1), r_main.addr.eq(ctxp),
                             r_main.count.eq(CTX_LONG_BYTES // 4), r_main.dest.eq(D_CTX)]
                with m.If(r_main.gnt):
                    m.d.sync += mst.eq(MainState.CTX_WAIT)
            with m.Case(MainState.CTX_WAIT):
                with m.If(ctl_end):
                    m.d.sync += mst.eq(MainState.CHECK)
            with m.Case(MainState.CHECK):
                with m.If(bad_ctx | bad_len):
                    m.d.sync += [rec_err.eq(1), err_code.eq(Mux(bad_ctx, ERR_CONTEXT, ERR_LENGTH)),
                                 mst.eq(MainState.NEXT)]
                with m.Else():
                    m.d.sync += [
                        ecmd.cipher.eq(Mux(cipher_on, Cipher.TDES, Cipher.NONE)),
                        ecmd.decrypt.eq(inbound),
                        ecmd.mac.eq(Mux(mac_on, Mac.HMAC_STATE, Mac.NONE)),
                        ecmd.order.eq(Mux(inbound, Order.MAC_FIRST, Order.CIPHER_FIRST)),
                        ecmd.trunc.eq(1),
                        ecmd.length.eq(pktlen),
                        ecmd.cipher_skip.eq(skip),
                        ecmd.cipher_len.eq(pktlen - skip),
                        ecmd.mac_skip.eq(0),
                        ecmd.mac_len.eq(pktlen),
                        mst.eq(MainState.START),
                    ]
            with m.Case(MainState.START):
                m.d.comb += eng.cmd.valid.eq(~halted)
                with m.If(eng.cmd.ready & ~halted):
                    m.d.comb += start_io.eq(1)
                    m.d.sync += mst.eq(MainState.RUN)
            with m.Case(MainState.RUN):
                with m.If(out_finish & eng.result.valid & (ist == InState.IDLE)):
                    m.d.comb += eng.result.ready.eq(1)
                    with m.If(eng.result.payload.status.length):
                        m.d.sync += [rec_err.eq(1), err_code.eq(ERR_INPUT)]
                    m.d.sync += mst.eq(MainState.NEXT)
            with m.Case(MainState.NEXT):
                m.d.sync += [pkt_idx.eq(pkt_idx + 1), self.packets.eq(self.packets + 1)]
                with m.If((pkt_idx + 1 < pkts) & ~chain_err):
                    m.d.sync += mst.eq(MainState.PKT_RD)
                with m.Else():
                    m.d.sync += mst.eq(MainState.DONE_DATA)
            with m.Case(MainState.DONE_DATA):
                new_flags = Cat(~chain_err, rec_err, hdr[18:24],
                                Mux(chain_err, ERR_CHAIN, Mux(rec_err, err_code, hdr[24:32])))
                m.d.comb += [self.ini_wdata.valid.eq(1),
                             self.ini_wdata.payload.eq(Cat(pkts, new_flags))]
                with m.If(self.ini_wdata.ready):
                    m.d.sync += mst.eq(MainState.DONE_CMD)
            with m.Case(MainState.DONE_CMD):
                # flags are bytes 2..3 of the record's first dword
                m.d.comb += [r_main.valid.eq(1), r_main.read.eq(0), r_main.addr.eq(mcr_addr),
                             r_main.count.eq(1), r_main.first_be.eq(0b1100),
                             r_main.last_be.eq(0b1100)]
                with m.If(r_main.gnt):
                    m.d.sync += mst.eq(MainState.DONE_WAIT)
            with m.Case(MainState.DONE_WAIT):
                with m.If(self.ini_done & (self.ini_done_status == Status.OK) & chain_err):
                    m.d.comb += chain_halt.eq(1)
                with m.Elif(self.ini_done & (self.ini_done_status == Status.OK)):
                    m.d.comb += self.record_done.eq(1)
                    m.d.sync += [mst.eq(MainState.IDLE), self.records.eq(self.records + 1)]
        with m.If(self.dma_error):
            m.d.sync += mst.eq(MainState.HALT)

        def chain_error(addr):
            """Flag the record's (first) chain error, at the particle at ``addr``."""
            with m.If(~chain_err):
                m.d.sync += [chain_err.eq(1), chain_addr.eq(addr)]
            m.d.sync += rec_err.eq(1)

        # the particles inside the packet's 32 bytes (pkt_addr is 32 past them)
        in_first = pkt_addr - MCR_ADD_BYTES + 4 * _dw(McrPacket, "ipkt")
        out_first = pkt_addr - MCR_ADD_BYTES + 4 * _dw(McrPacket, "opkt")
        in_at = Signal(32)             # bus address of the input particle being read
        out_at = Signal(32)

        # ---------------------------------------------------------------
        # Input FSM: input chain → data FIFO
        in_rem = Signal(16)
        lane = in_addr[0:2]
        n_in = Signal(16)
        m.d.comb += n_in.eq(Mux(in_len < in_rem, in_len, in_rem))
        span_dw = Signal(17)
        m.d.comb += span_dw.eq((lane + n_in + 3) >> 2)
        c_in = Signal(cw)
        m.d.comb += c_in.eq(Mux(span_dw > CH, CH, span_dw))
        bytes_in = Signal(16)
        m.d.comb += bytes_in.eq(Mux(span_dw > CH, (CH * 4) - lane, n_in))
        with m.Switch(ist):
            with m.Case(InState.IDLE):
                with m.If(start_io):
                    m.d.sync += [in_rem.eq(pktlen), in_parts.eq(1), ist.eq(InState.RUN)]
                    with m.If(in_len == 0):
                        chain_error(in_first)
                        m.d.sync += ist.eq(InState.TERM)
            with m.Case(InState.RUN):
                with m.If(in_rem == 0):
                    m.d.sync += ist.eq(InState.IDLE)
                with m.Elif(in_len == 0):
                    with m.If(in_next == 0):
                        m.d.sync += ist.eq(InState.TERM)          # chain too short
                    with m.Elif(in_parts == MAX_PARTICLES):
                        chain_error(in_next)
                        m.d.sync += ist.eq(InState.TERM)
                    with m.Else():
                        m.d.sync += [in_parts.eq(in_parts + 1), ist.eq(InState.DESC_RD)]
                with m.Else():
                    m.d.comb += [
                        r_in.valid.eq(data_out + c_in <= self.data_depth),
                        r_in.read.eq(1), r_in.addr.eq(in_addr), r_in.count.eq(c_in),
                        r_in.dest.eq(D_DATA), r_in.first_be.eq(_low_be(lane)),
                        r_in.last_be.eq(_end_be((lane + bytes_in)[0:2])),
                        r_in.tag_last.eq(bytes_in == in_rem),
                    ]
                    with m.If(r_in.gnt):
                        m.d.comb += data_add.eq(c_in)
                        m.d.sync += [in_addr.eq(in_addr + bytes_in),
                                     in_len.eq(in_len - bytes_in),
                                     in_rem.eq(in_rem - bytes_in)]
            with m.Case(InState.DESC_RD):
                m.d.comb += [r_in.valid.eq(1), r_in.read.eq(1), r_in.addr.eq(in_next),
                             r_in.count.eq(3), r_in.dest.eq(D_IN)]
                with m.If(r_in.gnt):
                    m.d.sync += [in_at.eq(in_next), ist.eq(InState.DESC_WAIT)]
            with m.Case(InState.DESC_WAIT):
                with m.If(ctl_end & (t_dest == D_IN)):
                    m.d.sync += ist.eq(InState.RUN)
                    with m.If(w[0:16] == 0):           # the particle's len word
                        chain_error(in_at)
                        m.d.sync += ist.eq(InState.TERM)
            with m.Case(InState.TERM):
                # after every read under way (its data must precede the end mark)
                with m.If(~demux_push & ~tags.r_rdy & (data_out < self.data_depth)
                          & ~halted):
                    m.d.comb += [term_push.eq(1), data_add.eq(1)]
                    m.d.sync += [in_rem.eq(0), ist.eq(InState.IDLE)]

        # ---------------------------------------------------------------
        # Output FSM: engine output → serializer → packer → output chain; MAC
        out_rem = Signal(16)           # output bytes not yet given a particle
        drop_w = Signal(16)            # engine words still to drop (prefix)
        drop_all = Signal()
        mac_phase = Signal()
        mac_k = Signal(2)              # MAC words fed to the serializer
        out_mac = Signal()             # this packet writes a MAC
        # serializer: one word, bytes out lowest enabled lane first
        s_data = Signal(32)
        s_be = Signal(4)
        s_low = Signal(4)
        m.d.comb += s_low.eq(s_be & (~s_be + 1))
        s_byte = Signal(8)
        with m.Switch(s_low):
            for ln in range(4):
                with m.Case(1 << ln):
                    m.d.comb += s_byte.eq(s_data[8 * ln:8 * ln + 8])
        s_single = Signal()
        m.d.comb += s_single.eq((s_be & ~s_low) == 0)
        # packer
        p_left = Signal(16)            # bytes to pack into the current particle
        p_lane = Signal(2)
        p_data = Signal(32)
        discard = Signal()
        # writer
        w_addr = Signal(32)            # dword address of the next write
        w_left = Signal(16)            # dwords of the particle not yet commanded
        w_first = Signal()
        w_fbe = Signal(4)
        w_lbe = Signal(4)
        wr_avail = Signal(12)   # packed dwords not yet commanded
        wr_dec = Signal(range(CH + 1))

        pk_flush = Signal()
        m.d.comb += pk_flush.eq((p_lane == 3) | (p_left == 1))
        pk_take = Signal()
        m.d.comb += pk_take.eq((s_be != 0) & (p_left != 0) &
                               (discard | ~pk_flush | self.ini_wdata.ready) & ~halted)
        merged = Signal(32)
        for ln in range(4):
            m.d.comb += merged[8 * ln:8 * ln + 8].eq(
                Mux(p_lane == ln, s_byte, p_data[8 * ln:8 * ln + 8]))
        pk_push = Signal()
        m.d.comb += pk_push.eq(pk_take & pk_flush & ~discard)
        with m.If(pk_push):
            m.d.comb += [self.ini_wdata.valid.eq(1), self.ini_wdata.payload.eq(merged)]
        with m.If(pk_take):
            m.d.sync += [p_data.eq(merged), p_lane.eq(p_lane + 1), p_left.eq(p_left - 1)]
        m.d.sync += wr_avail.eq(wr_avail + pk_push - wr_dec)

        # serializer load: from the engine (after the dropped prefix) or the MAC
        s_need = Signal()
        m.d.comb += s_need.eq((s_be == 0) | (pk_take & s_single))
        with m.If(pk_take):
            m.d.sync += s_be.eq(s_be & ~s_low)
        eo = eng.o
        dropping = Signal()
        m.d.comb += dropping.eq(drop_all | (drop_w != 0))
        mac = eng.result.payload.mac              # first MAC byte in the top bits
        mword = Signal(32)
        with m.Switch(mac_k):
            for k in range(3):
                with m.Case(k):
                    m.d.comb += mword.eq(Cat(*(mac[8 * (19 - j):8 * (20 - j)]
                                               for j in range(4 * k, 4 * k + 4))))
        with m.If(dropping):
            # the unchanged prefix (or everything, without 3DES) is not written
            m.d.comb += eo.ready.eq(~halted)
            with m.If(eo.valid & (drop_w != 0) & ~halted):
                m.d.sync += drop_w.eq(drop_w - 1)
        with m.Elif(~mac_phase):
            m.d.comb += eo.ready.eq(s_need & ~halted)
            with m.If(eo.valid & eo.ready):
                m.d.sync += [s_data.eq(eo.payload.data), s_be.eq(eo.payload.be)]
        with m.If(mac_phase & s_need & (mac_k != 3) & eng.result.valid):
            m.d.sync += [s_data.eq(mword), s_be.eq(0xF), mac_k.eq(mac_k + 1)]

        # write commands for the current particle
        c_w = Signal(cw)
        m.d.comb += c_w.eq(Mux(w_left > CH, CH, w_left))
        with m.If(w_left != 0):
            m.d.comb += [
                r_out.valid.eq(wr_avail >= c_w), r_out.read.eq(0),
                r_out.addr.eq(w_addr), r_out.count.eq(c_w),
                r_out.first_be.eq(Mux(w_first, w_fbe, 0xF)),
                r_out.last_be.eq(Mux(c_w == w_left, w_lbe, 0xF)),
            ]
            with m.If(r_out.gnt):
                m.d.comb += wr_dec.eq(c_w)
                m.d.sync += [w_addr.eq(w_addr + (c_w << 2)), w_left.eq(w_left - c_w),
                             w_first.eq(0)]

        def set_particle(addr, n):
            """Load packer and writer for ``n`` (≥ 1) bytes at ``addr``."""
            ln = addr[0:2]
            m.d.sync += [p_left.eq(n), p_lane.eq(ln),
                         w_addr.eq(Cat(Const(0, 2), addr[2:])),
                         w_left.eq((ln + n + 3) >> 2), w_first.eq(1),
                         w_fbe.eq(_low_be(ln)), w_lbe.eq(_end_be((ln + n)[0:2]))]

        def drop_rest():
            """No particle for the rest of the output: drop it."""
            m.d.sync += [discard.eq(1), p_left.eq(out_rem), out_rem.eq(0),
                         ost.eq(OutState.DISCARD)]

        def out_chain_error(addr):
            """Refuse the output chain at ``addr``: drop the rest and the MAC."""
            chain_error(addr)
            drop_rest()
            m.d.sync += out_mac.eq(0)

        def walk_output():
            """The current output particle is used up and output remains."""
            with m.If(out_next == 0):
                drop_rest()
                m.d.sync += [rec_err.eq(1), err_code.eq(ERR_OUTPUT)]
            with m.Elif(out_parts == MAX_PARTICLES):
                out_chain_error(out_next)
            with m.Else():
                m.d.sync += [out_parts.eq(out_parts + 1), ost.eq(OutState.DESC_RD)]

        n_out = Signal(16)
        m.d.comb += n_out.eq(Mux(out_len < out_rem, out_len, out_rem))
        particle_done = (p_left == 0) & (w_left == 0)
        with m.Switch(ost):
            with m.Case(OutState.IDLE):
                with m.If(start_io):
                    m.d.sync += [out_rem.eq(Mux(cipher_on, pktlen - skip, 0)),
                                 drop_w.eq(Mux(cipher_on, coff, 0)),
                                 drop_all.eq(~cipher_on), out_mac.eq(mac_on),
                                 mac_phase.eq(0), mac_k.eq(0), discard.eq(0),
                                 out_parts.eq(1), ost.eq(OutState.SETUP)]
            with m.Case(OutState.SETUP):
                # a particle just loaded (the first, or after DESC_WAIT)
                with m.If(out_rem == 0):
                    m.d.sync += ost.eq(OutState.MAC_SETUP)
                with m.Elif(out_len == 0):
                    out_chain_error(Mux(out_parts == 1, out_first, out_at))
                with m.Else():
                    set_particle(out_addr, n_out)
                    m.d.sync += [out_rem.eq(out_rem - n_out), out_len.eq(out_len - n_out),
                                 ost.eq(OutState.DATA)]
            with m.Case(OutState.DATA):
                with m.If(particle_done):
                    with m.If(mac_phase):
                        m.d.sync += ost.eq(OutState.FINISH)
                    with m.Elif(out_rem == 0):
                        m.d.sync += ost.eq(OutState.MAC_SETUP)
                    with m.Else():
                        walk_output()
            with m.Case(OutState.DESC_RD):
                m.d.comb += [r_out.valid.eq(1), r_out.read.eq(1), r_out.addr.eq(out_next),
                             r_out.count.eq(3), r_out.dest.eq(D_OUT)]
                with m.If(r_out.gnt):
                    m.d.sync += [out_at.eq(out_next), ost.eq(OutState.DESC_WAIT)]
            with m.Case(OutState.DESC_WAIT):
                with m.If(ctl_end & (t_dest == D_OUT)):
                    m.d.sync += ost.eq(OutState.SETUP)
            with m.Case(OutState.DISCARD):
                with m.If(p_left == 0):
                    m.d.sync += [discard.eq(0), ost.eq(OutState.MAC_SETUP)]
            with m.Case(OutState.MAC_SETUP):
                with m.If(~out_mac):
                    m.d.sync += ost.eq(OutState.FINISH)
                with m.Elif(out_next == 0):
                    m.d.sync += [rec_err.eq(1), err_code.eq(ERR_OUTPUT),
                                 ost.eq(OutState.FINISH)]
                with m.Else():
                    set_particle(out_next, MAC_BYTES)
                    m.d.sync += [mac_phase.eq(1), ost.eq(OutState.DATA)]
            with m.Case(OutState.FINISH):
                with m.If(mst == MainState.NEXT):
                    m.d.sync += ost.eq(OutState.IDLE)
        return m
