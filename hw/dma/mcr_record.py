"""The record engine's record sequencer: MCR1 queue, records, packets, completion.

It takes a record address from the MCR1 queue, reads the header with the
first packet (later packets one by one), then each packet's context
(:class:`~hw.dma.mcr_context.ContextRegisters` on ``ctx``), checks the
packet, gives the transform engine its command (``cmd``) and pulses
``start`` for the input and output sides; once both are done and the
engine's result is in, the next packet. After the last one it writes the
record's flags (DONE unless a chain was refused; ERROR and the code of the
last error) and pulses ``record_done`` — or, for a refused chain, raises
``chain_halt`` at the offending particle (``chain_addr``) for the issuer to
report as a DMA error.

With the model's TLS flag (``PktCtxFlags.tls``, docs/bcm5820.md) the packet
is one TLS 1.0 record: the engine MACs bytes [lead, pktlen) (pseudo-header
and data), encrypts the data from ``offset`` x 4 and, after it, the 20-byte
MAC and ``pad_len`` + 1 padding bytes (RFC 2246 §6.2.3.2), so the output is
``pktlen - offset x 4 + 21 + pad_len`` bytes.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.ubsecreg import (CTX_LONG_BYTES, ERR_CHAIN, ERR_CONTEXT, ERR_INPUT, ERR_LENGTH,
                              ERR_OUTPUT, MAX_PKTLEN, TLS_MAC_BYTES,
                              MCR_ADD_BYTES, MCR_BYTES, McrFlags, McrHeader, McrPacket,
                              byte_offset)
from ..crypto.command import Cipher, CommandLayout, Mac, Order, ResultLayout
from ..pci.initiator import Status
from .mcr_common import (Dest, P_CTXP, P_HDR, P_PKTLEN, RequestSignature, WordBusSignature,
                         in_word)
from .mcr_context import ContextSignature

__all__ = ["RecordSequencer", "MainState"]

#: byte enables of the record's flags (bytes 2..3 of its first dword)
FLAGS_BE = 0b11 << byte_offset(McrHeader, "flags")


class MainState(enum.Enum, shape=4):
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


class RecordSequencer(wiring.Component):
    def __init__(self, cw: int, mcr1_depth: int):
        self.mcr1_depth = mcr1_depth
        super().__init__({
            "mcr1_push": In(1), "mcr1_addr": In(32), "mcr1_full": Out(1),
            "busy": Out(1), "record_done": Out(1),
            "records": Out(32), "packets": Out(32),
            "req": Out(RequestSignature(cw)),
            "wdata": Out(stream.Signature(32)),
            "ini_done": In(1), "ini_done_status": In(2),
            "packet": In(WordBusSignature(4)),
            "desc_end": In(1),
            "ctx": In(ContextSignature),
            "cmd": Out(stream.Signature(CommandLayout)),
            "result": In(stream.Signature(ResultLayout)),
            "start": Out(1),              # pulse: the engine took the command
            "packet_at": Out(32),         # bus address of the packet's McrPacket
            "pktlen": Out(16), "out_len": Out(16),
            "cipher_on": Out(1), "mac_on": Out(1),
            "in_idle": In(1), "out_finish": In(1),
            "in_error": In(1), "in_error_addr": In(32),
            "out_error": In(1), "out_error_addr": In(32), "out_short": In(1),
            "halted": In(1), "dma_error": In(1),
            "chain_halt": Out(1), "chain_addr": Out(32),
            "state": Out(MainState),
            "idle": Out(1),               # IDLE, MCR1 queue empty, nothing pushed
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mcr1q = q = fifo.SyncFIFO(width=32, depth=self.mcr1_depth)
        m.d.comb += [q.w_en.eq(self.mcr1_push), q.w_data.eq(self.mcr1_addr),
                     self.mcr1_full.eq(~q.w_rdy)]
        mcr_addr = Signal(32)
        pkt_addr = Signal(32)          # address of the next packet's McrPacket
        hdr = Signal(McrHeader)
        pkt_idx = Signal(16)
        ctxp = Signal(32)
        pktlen = self.pktlen
        rec_err = Signal()
        err_code = Signal(8)
        chain_err = Signal()           # this record met a chain error (ERR_CHAIN)
        ecmd = Signal(CommandLayout)   # the command fields (the keys: ``ctx``)
        mst = self.state
        ctx = self.ctx
        halted = self.halted

        w = self.packet.word
        with m.If(self.packet.valid):
            with m.Switch(self.packet.index):
                with m.Case(P_HDR):
                    m.d.sync += hdr.eq(w)
                with m.Case(P_CTXP):
                    m.d.sync += ctxp.eq(w)
                with m.Case(P_PKTLEN):
                    m.d.sync += pktlen.eq(in_word(w, McrPacket, "pktlen"))

        skip, bad_ctx, bad_len, mskip = self._packet_checks(m, pktlen)
        cipher_on, inbound, tls = ctx.flags.enc_3des, ctx.flags.inbound, ctx.flags.tls
        m.d.comb += [
            self.packet_at.eq(pkt_addr - MCR_ADD_BYTES),
            self.busy.eq((mst != MainState.IDLE) | q.r_rdy),
            self.idle.eq((mst == MainState.IDLE) & ~q.r_rdy & ~self.mcr1_push),
        ]
        p = self.cmd.payload
        m.d.comb += [p.eq(ecmd), p.key1.eq(ctx.key1), p.key2.eq(ctx.key2),
                     p.key3.eq(ctx.key3), p.iv.eq(ctx.iv), p.inner.eq(ctx.inner),
                     p.outer.eq(ctx.outer)]

        r = self.req.payload
        ok = self.ini_done & (self.ini_done_status == Status.OK)
        with m.Switch(mst):
            with m.Case(MainState.IDLE):
                with m.If(q.r_rdy & ~halted):
                    m.d.comb += q.r_en.eq(1)
                    m.d.sync += [mcr_addr.eq(q.r_data), pkt_addr.eq(q.r_data + MCR_BYTES),
                                 pkt_idx.eq(0), rec_err.eq(0), err_code.eq(0),
                                 chain_err.eq(0), mst.eq(MainState.PKT_RD)]
            with m.Case(MainState.PKT_RD):
                first = pkt_idx == 0
                m.d.comb += [self.req.valid.eq(1), r.read.eq(1),
                             r.addr.eq(Mux(first, mcr_addr, pkt_addr)),
                             r.count.eq(Mux(first, MCR_BYTES // 4, MCR_ADD_BYTES // 4)),
                             r.dest.eq(Mux(first, Dest.PKT0, Dest.PKT1))]
                with m.If(self.req.ready):
                    m.d.sync += mst.eq(MainState.PKT_WAIT)
                    with m.If(~first):
                        m.d.sync += pkt_addr.eq(pkt_addr + MCR_ADD_BYTES)
            with m.Case(MainState.PKT_WAIT):
                with m.If(self.desc_end):
                    m.d.sync += mst.eq(MainState.CTX_RD)
                    # pkts is loaded by now (header is the first word of packet 0)
                    with m.If((pkt_idx == 0) & (hdr.pkts == 0)):
                        m.d.sync += mst.eq(MainState.DONE_DATA)
            with m.Case(MainState.CTX_RD):
                m.d.comb += [self.req.valid.eq(1), r.read.eq(1), r.addr.eq(ctxp),
                             r.count.eq(CTX_LONG_BYTES // 4), r.dest.eq(Dest.CTX)]
                with m.If(self.req.ready):
                    m.d.sync += mst.eq(MainState.CTX_WAIT)
            with m.Case(MainState.CTX_WAIT):
                with m.If(self.desc_end):
                    m.d.sync += mst.eq(MainState.CHECK)
            with m.Case(MainState.CHECK):
                with m.If(bad_ctx | bad_len):
                    m.d.sync += [rec_err.eq(1), err_code.eq(Mux(bad_ctx, ERR_CONTEXT, ERR_LENGTH)),
                                 mst.eq(MainState.NEXT)]
                with m.Else():
                    m.d.sync += [
                        ecmd.cipher.eq(Mux(cipher_on, Cipher.TDES, Cipher.NONE)),
                        ecmd.decrypt.eq(inbound),
                        ecmd.mac.eq(Mux(self.mac_on, Mac.HMAC_STATE, Mac.NONE)),
                        ecmd.order.eq(Mux(inbound | tls, Order.MAC_FIRST,
                                          Order.CIPHER_FIRST)),
                        ecmd.trunc.eq(~tls),          # TLS: the full HMAC-SHA1
                        ecmd.length.eq(pktlen),
                        ecmd.cipher_skip.eq(skip),
                        ecmd.cipher_len.eq(pktlen - skip),
                        ecmd.mac_skip.eq(mskip),
                        ecmd.mac_len.eq(pktlen - mskip),
                        ecmd.mac_append.eq(tls),
                        ecmd.pad_len.eq(ctx.flags.pad_len),
                        mst.eq(MainState.START),
                    ]
            with m.Case(MainState.START):
                m.d.comb += self.cmd.valid.eq(~halted)
                with m.If(self.cmd.ready & ~halted):
                    m.d.comb += self.start.eq(1)
                    m.d.sync += mst.eq(MainState.RUN)
            with m.Case(MainState.RUN):
                with m.If(self.out_finish & self.result.valid & self.in_idle):
                    m.d.comb += self.result.ready.eq(1)
                    with m.If(self.result.payload.status.length):
                        m.d.sync += [rec_err.eq(1), err_code.eq(ERR_INPUT)]
                    m.d.sync += mst.eq(MainState.NEXT)
            with m.Case(MainState.NEXT):
                m.d.sync += [pkt_idx.eq(pkt_idx + 1), self.packets.eq(self.packets + 1)]
                with m.If((pkt_idx + 1 < hdr.pkts) & ~chain_err):
                    m.d.sync += mst.eq(MainState.PKT_RD)
                with m.Else():
                    m.d.sync += mst.eq(MainState.DONE_DATA)
            with m.Case(MainState.DONE_DATA):
                flags = Signal(McrFlags)
                m.d.comb += [flags.done.eq(~chain_err), flags.error.eq(rec_err),
                             flags.reserved.eq(hdr.flags.reserved),
                             flags.code.eq(Mux(chain_err, ERR_CHAIN,
                                               Mux(rec_err, err_code, hdr.flags.code))),
                             self.wdata.valid.eq(1),
                             self.wdata.payload.eq(Cat(hdr.pkts, flags))]
                with m.If(self.wdata.ready):
                    m.d.sync += mst.eq(MainState.DONE_CMD)
            with m.Case(MainState.DONE_CMD):
                m.d.comb += [self.req.valid.eq(1), r.read.eq(0), r.addr.eq(mcr_addr),
                             r.count.eq(1), r.first_be.eq(FLAGS_BE), r.last_be.eq(FLAGS_BE)]
                with m.If(self.req.ready):
                    m.d.sync += mst.eq(MainState.DONE_WAIT)
            with m.Case(MainState.DONE_WAIT):
                with m.If(ok & chain_err):
                    m.d.comb += self.chain_halt.eq(1)
                with m.Elif(ok):
                    m.d.comb += self.record_done.eq(1)
                    m.d.sync += [mst.eq(MainState.IDLE), self.records.eq(self.records + 1)]
        with m.If(self.dma_error):
            m.d.sync += mst.eq(MainState.HALT)

        self._side_errors(m, chain_err, rec_err, err_code)
        return m

    def _packet_checks(self, m, pktlen):
        """The packet's checks on the loaded context: (skip, bad_ctx, bad_len, mskip)."""
        ctx = self.ctx
        skip = Signal(18)
        cipher_on, inbound, tls = ctx.flags.enc_3des, ctx.flags.inbound, ctx.flags.tls
        # MD5 or both MAC bits; TLS only as 3DES + SHA-1 outbound
        bad_ctx = ctx.flags.auth_md5 | (tls & (~cipher_on | ~ctx.flags.auth_sha1 | inbound))
        bad_len = Signal()
        tail = Signal(9)               # TLS: MAC + padding after the data
        clen = Signal(17)              # bytes through the cipher (and out)
        mskip = Signal(2)              # MAC start: the lead-in (TLS) or 0
        m.d.comb += [
            skip.eq(ctx.offset << 2),
            self.cipher_on.eq(cipher_on),
            self.mac_on.eq(ctx.flags.auth_sha1 & ~ctx.flags.auth_md5),
            tail.eq(Mux(tls, TLS_MAC_BYTES + ctx.flags.pad_len + 1, 0)),
            clen.eq(pktlen - skip + tail),
            mskip.eq(Mux(tls, ctx.flags.lead, 0)),
            bad_len.eq((pktlen == 0) | (skip > pktlen) |
                       (cipher_on & (clen[0:3] != 0)) |
                       (tls & ((clen > MAX_PKTLEN) | (mskip > skip)))),
            self.out_len.eq(clen),
        ]
        return skip, bad_ctx, bad_len, mskip

    def _side_errors(self, m, chain_err, rec_err, err_code):
        """Errors of the input and output sides (a refused chain: its first one)."""
        for bad, addr in ((self.in_error, self.in_error_addr),
                          (self.out_error, self.out_error_addr)):
            with m.If(bad):
                with m.If(~chain_err):
                    m.d.sync += [chain_err.eq(1), self.chain_addr.eq(addr)]
                m.d.sync += rec_err.eq(1)
        with m.If(self.out_short):
            m.d.sync += [rec_err.eq(1), err_code.eq(ERR_OUTPUT)]
