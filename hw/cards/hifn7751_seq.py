"""The Hifn 7751's packet sequencer: one packet at a time through the rings.

Per packet (:class:`CardState`): fetch the command descriptor, read the
command buffer (into the :class:`~hw.cards.hifn7751_cmd.CommandParser`),
release the descriptor; keys to / from the context RAM; fetch the result,
destination and source descriptors; start the engine and stream: source
reads and destination writes interleaved in bursts of ``BURST`` dwords,
each source / destination descriptor released when done with and the next
fetched up to the LAST of each; write the result and release its descriptor.
A packet the card refuses (CMDINVAL) has no data phase: its destination and
source descriptors are released up to the LAST of each and the result is
written. A DMA error (bus abort, a refused DMA, a ring the engine cannot
walk) sets that ring's ABORT bit and halts the card until reset.

The sequencer issues its own DMA (command buffer, packet data, result) on
``dma_cmd`` / ``wdata``; the card gives the initiator to the ring engine
while that is busy. Source data is taken from the initiator by the
:class:`SourceFeeder`, which hands it to the engine.
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..crypto.engine import LEN_BITS, StatusLayout, WordLayout
from ..pci.bus import Cmd
from ..pci.initiator import InitiatorCommand, Status
from . import hifn7751reg as H

__all__ = ["CardState", "PacketSequencer", "SourceFeeder", "ResultFormatter",
           "BURST", "DMA_DEPTH", "OUT_DEPTH", "SLACK", "CMD_MAX_WORDS"]

#: dwords per DMA burst of packet data; initiator FIFO depth (dwords); output FIFO
BURST = 16
DMA_DEPTH = 32
OUT_DEPTH = 64
#: engine-internal buffering, in dwords, kept free in the output FIFO per read
SLACK = 8
#: longest command buffer in dwords (hifn7751reg: MAX_COMMAND = 120 bytes)
CMD_MAX_WORDS = 32


class CardState(enum.Enum, shape=5):
    """Packet FSM states (``seq.state`` in VCDs)."""
    RESET = 0           # held in reset; leaves it when the initiator is idle
    IDLE = 1            # waits for DMAENA and an enabled command ring
    CMD_FETCH = 2       # command descriptor
    CMD_ISSUE = 3       # read the command buffer
    CMD_PARSE = 4       # ... its dwords into the parser
    CMD_WAIT = 5        # ... the read's end
    CMD_REL = 6         # release the command descriptor
    CTX = 7             # context RAM: store new keys, read the others
    CTX2 = 8            # ... take the stored ones
    RES_FETCH = 9       # result descriptor
    DST_FETCH = 10      # a destination descriptor
    SRC_FETCH = 11      # a source descriptor
    ENG = 12            # start the engine
    STREAM = 13         # choose the next step of the data phase
    WPUSH = 14          # output FIFO → initiator write FIFO
    WISSUE = 15         # write a burst to the destination
    WWAIT = 16          # ... its end
    RISSUE = 17         # read a burst of the source
    RWAIT = 18          # ... its end
    SREL = 19           # release a source descriptor
    DREL = 20           # release a destination descriptor
    RES_PUSH = 21       # result dwords → initiator write FIFO
    RES_ISSUE = 22      # write the result
    RES_WAIT = 23       # ... its end
    RES_REL = 24        # release the result descriptor: next packet
    HALT = 25           # after a DMA error, until reset


class SourceFeeder(wiring.Component):
    """Source data from the initiator into the engine: counts the source dwords
    requested but not yet taken (``pending``) and the bytes fed, gives the
    engine byte enables for the packet's last dword and drops words past the
    packet's ``length``. ``feeding``: the next read word is source data."""

    def __init__(self):
        super().__init__({
            "rdata": In(stream.Signature(32)),
            "o": Out(stream.Signature(WordLayout)),
            "length": In(LEN_BITS),
            "pend_inc": In(range(BURST + 1)),   # dwords of a source read just issued
            "clear": In(1),                     # new packet: nothing fed
            "reset": In(1),                     # nothing pending (reset, halt)
            "pending": Out(range(DMA_DEPTH + 1)),
            "feeding": Out(1),
            "need": Out(1),                     # the engine wants more bytes
        })

    def elaborate(self, platform):
        m = Module()
        pending = Signal(range(DMA_DEPTH + 1))
        fed = Signal(19)
        rem = Signal(19)
        length, need, feeding = self.length, self.need, self.feeding
        m.d.comb += [self.pending.eq(pending), feeding.eq(pending != 0),
                     need.eq(fed < length), rem.eq(length - fed)]
        take = Signal()
        m.d.comb += take.eq(self.rdata.valid & self.rdata.ready)
        m.d.sync += pending.eq(pending + self.pend_inc - (take & feeding))
        o = self.o.payload
        with m.If(feeding):
            with m.If(need):
                m.d.comb += [self.o.valid.eq(self.rdata.valid), o.data.eq(self.rdata.payload),
                             o.be.eq(Mux(rem >= 4, 0xF, Mux(rem[0:2] == 1, 0x1,
                                                            Mux(rem[0:2] == 2, 0x3, 0x7)))),
                             o.last.eq(rem <= 4), self.rdata.ready.eq(self.o.ready)]
                with m.If(take):
                    m.d.sync += fed.eq(Mux(rem <= 4, length, fed + 4))
            with m.Else():
                m.d.comb += self.rdata.ready.eq(1)          # beyond the packet: dropped
        with m.If(self.clear):
            m.d.sync += fed.eq(0)
        with m.If(self.reset):
            m.d.sync += pending.eq(0)
        return m


class ResultFormatter(wiring.Component):
    """The result buffer (:class:`~hw.cards.hifn7751reg.Result`) a dword at a
    time: ``word`` is dword ``index``."""

    def __init__(self):
        super().__init__({
            "index": In(4),
            "cmdinval": In(1),
            "dataerr": In(1),
            "dstoverrun": In(1),
            "session": In(12),
            "src_count": In(18),
            "dst_count": In(18),
            "mac": In(160),              # the engine's MAC, first byte highest
            "word": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        res = Signal(H.Result)
        f = res.base.flags
        m.d.comb += [f.cmdinval.eq(self.cmdinval), f.dataerr.eq(self.dataerr),
                     f.dstoverrun.eq(self.dstoverrun),
                     f.dst_hi.eq(self.dst_count[16:18]), f.src_hi.eq(self.src_count[16:18]),
                     res.base.session.eq(self.session),
                     res.base.src_count.eq(self.src_count[0:16]),
                     res.base.dst_count.eq(self.dst_count[0:16]),
                     # memory order: MAC byte 0 first
                     res.mac.mac.eq(Cat(*(self.mac[8 * k:8 * k + 8] for k in reversed(range(20)))))]
        words = Cat(res.as_value(), Const(0, 32 * 16 - len(res.as_value())))
        m.d.comb += self.word.eq(words.word_select(self.index, 32))
        return m


def _issue_signature():
    return stream.Signature(InitiatorCommand)


class PacketSequencer(wiring.Component):
    """The packet FSM (see the module docstring). ``state`` is a
    :class:`CardState`."""

    def __init__(self):
        super().__init__({
            # registers
            "dmaena": In(1), "ring_en": In(4), "card_reset": In(1),
            "csr_set": Out(32), "puisr_set": Out(16),
            # ring engine requests, answered by a one-clock rsp_valid
            "ring_req_valid": Out(1), "ring_req_ring": Out(2), "ring_req_release": Out(1),
            "ring_req_l": Out(32), "ring_req_ready": In(1),
            "ring_rsp_valid": In(1), "ring_rsp": In(H.Descriptor), "ring_rsp_error": In(1),
            "ring_busy": In(1), "ring_ring": In(2),
            "ring_done": In(4), "ring_last": In(4), "ring_wait": In(4),
            # the initiator
            "dma_cmd": Out(_issue_signature()),
            "wdata": Out(stream.Signature(32)),
            "rdata_valid": In(1),
            "dma_busy": In(1), "dma_done": In(1), "dma_status": In(2),
            # command parser and decoder
            "parse_clear": Out(1), "parsing": Out(1), "desc_bad": Out(1),
            "parse_finish": Out(1), "ctx_load": Out(1),
            "refused": In(1), "unsupported": In(1), "length": In(18), "has_cry": In(1),
            "mac_result": In(1), "new_ckey": In(1), "new_mkey": In(1),
            # context RAM
            "ctx_rd_en": Out(1), "ckey_we": Out(1), "mkey_we": Out(1), "iv_we": Out(1),
            # engine and its output FIFO
            "eng_cmd_valid": Out(1), "eng_cmd_ready": In(1),
            "eng_done": In(1), "eng_status": In(StatusLayout), "eng_result_ready": Out(1),
            "out_level": In(range(OUT_DEPTH + 1)), "out_rdy": In(1), "out_data": In(32),
            "out_en": Out(1),
            "pkt_abort": Out(1),             # drop the packet's engine run and output
            # source feeder
            "feed_pending": In(range(DMA_DEPTH + 1)), "feeding": In(1), "feed_need": In(1),
            "pend_inc": Out(range(BURST + 1)),
            # result formatter
            "res_index": Out(4), "res_word": In(32), "res_cmdinval": Out(1),
            "res_dataerr": Out(1), "res_dstover": Out(1), "res_dst_count": Out(18),
            "state": Out(CardState),
            "quiet": Out(1),                 # waiting on a ring fetch, nothing else moving
        })

    def elaborate(self, platform):
        m = Module()
        S = CardState
        state = self.state
        r = self._registers(m)
        # at rest only while a descriptor fetch is out to the ring engine (the
        # engine sleeping on an invalid descriptor): the FSM waits for its answer
        fetching = ((state == S.CMD_FETCH) | (state == S.RES_FETCH)
                    | (state == S.DST_FETCH) | (state == S.SRC_FETCH))
        m.d.comb += self.quiet.eq(fetching & r.req_sent & ~self.ring_rsp_valid
                                  & ~self.card_reset)

        # ---- burst sizes -------------------------------------------------
        out_level = self.out_level
        dst_words = Signal(16)
        m.d.comb += dst_words.eq((r.dst_left + 3) >> 2)
        wn = Signal(range(BURST + 1))
        wn0 = Signal(range(BURST + 1))
        m.d.comb += [wn0.eq(Mux(out_level > BURST, BURST, out_level)),
                     wn.eq(Mux(wn0 > dst_words, dst_words, wn0))]
        wb = Signal(19)
        m.d.comb += wb.eq(Mux((wn << 2) < r.dst_left, wn << 2, r.dst_left))
        wbytes = Signal(19)
        m.d.comb += wbytes.eq(Mux(wb < r.obytes, wb, r.obytes))
        write_ok = Signal()
        m.d.comb += write_ok.eq(r.have_dst & (r.dst_left != 0) & (out_level != 0) &
                                ((wn == BURST) | (wn == dst_words) | self.eng_done |
                                 ((out_level << 2) >= r.obytes)))
        rn = Signal(range(BURST + 1))
        m.d.comb += rn.eq(Mux(r.src_words > BURST, BURST, r.src_words))
        pending = self.feed_pending
        room = Signal()
        m.d.comb += room.eq((pending + rn <= DMA_DEPTH) &
                            (out_level + pending + rn + SLACK <= OUT_DEPTH))
        finish = Signal()
        m.d.comb += finish.eq(r.src_exhausted & ~self.feeding & self.eng_done & (out_level == 0))
        short = Signal()                 # source chain ended (LAST) short of the count
        m.d.comb += short.eq(r.started & r.src_exhausted & ~self.feeding & self.feed_need)
        r.burst = dict(wn=wn, wbytes=wbytes, write_ok=write_ok, rn=rn, room=room,
                       finish=finish, short=short)

        # ---- the result --------------------------------------------------
        st = self.eng_status
        invalid = Signal()
        m.d.comb += invalid.eq(self.refused | r.short_src)
        wrote = Signal(18)
        m.d.comb += wrote.eq(self.length - r.obytes)
        m.d.comb += [self.res_index.eq(r.ri), self.res_cmdinval.eq(invalid | st.unsupported),
                     self.res_dataerr.eq(r.dataerr | st.cipher_len | st.region | st.length),
                     self.res_dstover.eq(r.dstover), self.res_dst_count.eq(wrote)]
        r.invalid = invalid
        m.d.comb += self.parsing.eq(state == S.CMD_PARSE)

        with m.Switch(state):
            self._command_phase(m, r)
            self._data_phase(m, r)
            self._result_phase(m, r)

        # ---- DMA_CSR status from the rings, and DMA errors -----------------
        ring_bits = 0
        for k in range(4):
            ring_bits = (ring_bits | (self.ring_done[k] << H.csr_field(k, "done").lsb)
                         | (self.ring_last[k] << H.csr_field(k, "last").lsb)
                         | (self.ring_wait[k] << H.csr_field(k, "wait").lsb))
        abort_bits = Signal(32)
        dma_ring = Signal(2)             # the ring whose DMA the sequencer is doing
        with m.Switch(state):
            with m.Case(S.CMD_ISSUE, S.CMD_PARSE, S.CMD_WAIT):
                m.d.comb += dma_ring.eq(H.RING_CMD)
            with m.Case(S.WPUSH, S.WISSUE, S.WWAIT):
                m.d.comb += dma_ring.eq(H.RING_DST)
            with m.Case(S.RES_PUSH, S.RES_ISSUE, S.RES_WAIT):
                m.d.comb += dma_ring.eq(H.RING_RES)
            with m.Default():
                m.d.comb += dma_ring.eq(H.RING_SRC)
        err_ring = Mux(self.ring_busy, self.ring_ring, dma_ring)
        dma_error = Signal()             # a bus error, or a ring the chip cannot walk
        m.d.comb += dma_error.eq(((self.dma_done & ~r.ok) |
                                  (self.ring_rsp_valid & self.ring_rsp_error))
                                 & (state != S.RESET) & (state != S.HALT))
        with m.If(dma_error):
            # the ring's ABORT bit: bit 5 of its byte of DMA_CSR
            m.d.comb += abort_bits.eq(Const(1, 32) << Cat(Const(H.DMA_CSR.c_abort.lsb, 3),
                                                          err_ring))
            m.d.sync += state.eq(S.HALT)
        m.d.comb += self.csr_set.eq(ring_bits | abort_bits |
                                    (r.dover_set << H.DMA_CSR.d_over.lsb))

        with m.If(self.card_reset):
            m.d.sync += [state.eq(S.RESET), r.req_sent.eq(0)]
        with m.If(state == S.HALT):
            m.d.sync += r.req_sent.eq(0)
        return m

    # ------------------------------------------------------------------
    def _registers(self, m):
        """The per-packet registers, as attributes of a namespace."""
        class R:
            pass
        r = R()
        for name, width in (("cmd_l", H.DescriptorControl), ("cmd_addr", 32),
                            ("cmd_words", 6), ("res_l", H.DescriptorControl),
                            ("res_addr", 32), ("src_l", H.DescriptorControl),
                            ("src_addr", 32), ("src_words", 15),
                            ("dst_l", H.DescriptorControl), ("dst_addr", 32),
                            ("dst_left", 17), ("have_src", 1), ("have_dst", 1),
                            ("src_exhausted", 1), ("dst_exhausted", 1),
                            # drain: no data phase, walk both chains to LAST
                            ("drain", 1),
                            # short_src: the LAST source segment came before the count
                            ("short_src", 1), ("started", 1), ("issued", 19),
                            ("obytes", 19), ("dataerr", 1), ("dstover", 1),
                            ("wr_n", range(BURST + 1)), ("wr_bytes", 7),
                            ("mv", range(BURST + 1)), ("rd_n", range(BURST + 1)),
                            ("ri", 4), ("req_sent", 1), ("dover_set", 1)):
            setattr(r, name, Signal(width, name=name))
        r.ok = Signal()
        m.d.comb += r.ok.eq(self.dma_status == Status.OK)
        return r

    def _issue(self, m, addr, count, code, last_be=0xF):
        p = self.dma_cmd.payload
        m.d.comb += [self.dma_cmd.valid.eq(1), p.addr.eq(addr), p.count.eq(count),
                     p.code.eq(code), p.first_be.eq(0xF), p.last_be.eq(last_be)]

    def _ring_op(self, m, r, ring, release=False, l=0):
        """A ring request (one at a time); true in the clock it succeeds."""
        m.d.comb += [self.ring_req_valid.eq(~r.req_sent), self.ring_req_ring.eq(ring),
                     self.ring_req_release.eq(release), self.ring_req_l.eq(l)]
        with m.If(self.ring_req_valid & self.ring_req_ready):
            m.d.sync += r.req_sent.eq(1)
        with m.If(self.ring_rsp_valid):
            m.d.sync += r.req_sent.eq(0)
        return self.ring_rsp_valid & ~self.ring_rsp_error

    def _command_phase(self, m, r):
        S, state, rsp_d = CardState, self.state, self.ring_rsp
        with m.Case(S.RESET):
            with m.If(~self.card_reset & ~self.dma_busy):
                m.d.sync += state.eq(S.IDLE)
        with m.Case(S.IDLE):
            m.d.comb += self.parse_clear.eq(1)
            m.d.sync += [r.started.eq(0), r.have_src.eq(0), r.have_dst.eq(0),
                         r.src_exhausted.eq(0), r.dst_exhausted.eq(0), r.drain.eq(0),
                         r.short_src.eq(0), r.dstover.eq(0), r.dataerr.eq(0),
                         r.issued.eq(0)]
            with m.If(self.dmaena & self.ring_en[H.RING_CMD]):
                m.d.sync += state.eq(S.CMD_FETCH)
        with m.Case(S.CMD_FETCH):
            with m.If(self._ring_op(m, r, H.RING_CMD)):
                ln = rsp_d.l.length
                m.d.sync += [r.cmd_l.eq(rsp_d.l), r.cmd_addr.eq(rsp_d.p & ~3),
                             r.cmd_words.eq((ln + 3) >> 2)]
                with m.If((ln == 0) | (ln > 4 * CMD_MAX_WORDS) | (rsp_d.p[0:2] != 0)):
                    m.d.comb += self.desc_bad.eq(1)
                    m.d.sync += state.eq(S.CMD_REL)
                with m.Else():
                    m.d.sync += state.eq(S.CMD_ISSUE)
        with m.Case(S.CMD_ISSUE):
            self._issue(m, r.cmd_addr, r.cmd_words, Cmd.MEM_READ_MULT)
            with m.If(self.dma_cmd.ready):
                m.d.sync += state.eq(S.CMD_PARSE)
        with m.Case(S.CMD_PARSE):
            with m.If(self.rdata_valid):
                m.d.sync += r.cmd_words.eq(r.cmd_words - 1)
                with m.If(r.cmd_words == 1):
                    m.d.sync += state.eq(S.CMD_WAIT)
        with m.Case(S.CMD_WAIT):
            with m.If(~self.dma_busy):
                m.d.comb += self.parse_finish.eq(1)        # truncated: bad
                m.d.sync += state.eq(S.CMD_REL)
        with m.Case(S.CMD_REL):
            with m.If(self._ring_op(m, r, H.RING_CMD, release=True, l=r.cmd_l)):
                m.d.sync += state.eq(S.CTX)
        with m.Case(S.CTX):
            # keys given now go to the context; the others come from it
            valid_cmd = ~self.refused
            m.d.comb += [self.ctx_rd_en.eq(1),
                         self.ckey_we.eq(valid_cmd & self.new_ckey),
                         self.mkey_we.eq(valid_cmd & self.new_mkey)]
            m.d.sync += state.eq(S.CTX2)
        with m.Case(S.CTX2):
            m.d.comb += self.ctx_load.eq(1)
            m.d.sync += [state.eq(S.RES_FETCH), r.obytes.eq(self.length),
                         r.drain.eq(self.refused)]
        with m.Case(S.RES_FETCH):
            with m.If(self._ring_op(m, r, H.RING_RES)):
                m.d.sync += [r.res_l.eq(rsp_d.l), r.res_addr.eq(rsp_d.p & ~3),
                             state.eq(S.DST_FETCH)]
                with m.If(rsp_d.p[0:2] != 0):
                    m.d.sync += r.dataerr.eq(1)

    def _data_phase(self, m, r):
        S, state, rsp_d, b = CardState, self.state, self.ring_rsp, r.burst
        stream_or = Mux(r.started | r.drain, S.STREAM.value, S.SRC_FETCH.value)
        with m.Case(S.DST_FETCH):
            with m.If(self._ring_op(m, r, H.RING_DST)):
                m.d.sync += [r.dst_l.eq(rsp_d.l), r.dst_addr.eq(rsp_d.p & ~3),
                             r.dst_left.eq(rsp_d.l.length), r.have_dst.eq(1),
                             state.eq(stream_or)]
                with m.If(rsp_d.p[0:2] != 0):
                    m.d.sync += r.dataerr.eq(1)
        with m.Case(S.SRC_FETCH):
            with m.If(self._ring_op(m, r, H.RING_SRC)):
                ln = rsp_d.l.length
                m.d.sync += [r.src_l.eq(rsp_d.l), r.src_addr.eq(rsp_d.p & ~3),
                             r.src_words.eq((ln + 3) >> 2), r.have_src.eq(1),
                             state.eq(Mux(r.started | r.drain, S.STREAM.value, S.ENG.value))]
                with m.If((rsp_d.p[0:2] != 0) | ((ln[0:2] != 0) & ~rsp_d.l.last)):
                    m.d.sync += r.dataerr.eq(1)
        with m.Case(S.ENG):
            m.d.comb += self.eng_cmd_valid.eq(1)
            with m.If(self.eng_cmd_ready):
                m.d.sync += [r.started.eq(1), state.eq(S.STREAM)]
        with m.Case(S.STREAM):
            with m.If(r.drain):
                self._drain(m, r)
            with m.Elif(b["short"]):
                # no source data left for the count: end the engine's run now
                # (not one zero byte per clock up to 2^18) and drain
                m.d.comb += self.pkt_abort.eq(1)
                m.d.sync += [r.short_src.eq(1), r.drain.eq(1)]
            with m.Elif(~r.have_dst & (self.out_level != 0)):
                # no destination left for the output: overrun, drop it
                m.d.comb += self.out_en.eq(1)
                m.d.sync += r.dstover.eq(1)
            with m.Elif(b["write_ok"]):
                m.d.sync += [r.wr_n.eq(b["wn"]), r.mv.eq(b["wn"]), r.wr_bytes.eq(b["wbytes"]),
                             state.eq(S.WPUSH)]
                with m.If((b["wbytes"][0:2] != 0) & (b["wbytes"] != r.obytes)):
                    m.d.sync += r.dataerr.eq(1)        # a segment ends inside a dword
            with m.Elif(r.have_dst & (r.dst_left == 0)):
                m.d.sync += state.eq(S.DREL)
            with m.Elif(r.have_src & (r.src_words != 0) & (r.issued >= self.length)):
                m.d.sync += r.src_words.eq(0)          # not needed: skip the read
            with m.Elif(r.have_src & (r.src_words != 0) & b["room"]):
                m.d.sync += [r.rd_n.eq(b["rn"]), state.eq(S.RISSUE)]
            with m.Elif(r.have_src & (r.src_words == 0)):
                m.d.sync += state.eq(S.SREL)
            with m.Elif(b["finish"]):
                m.d.sync += [state.eq(Mux(r.have_dst, S.DREL.value, S.RES_PUSH.value)),
                             r.ri.eq(0)]
        with m.Case(S.WPUSH):
            m.d.comb += [self.wdata.valid.eq(self.out_rdy), self.wdata.payload.eq(self.out_data),
                         self.out_en.eq(self.wdata.ready)]
            with m.If(self.out_rdy & self.wdata.ready):
                m.d.sync += r.mv.eq(r.mv - 1)
                with m.If(r.mv == 1):
                    m.d.sync += state.eq(S.WISSUE)
        with m.Case(S.WISSUE):
            lb = r.wr_bytes[0:2]
            self._issue(m, r.dst_addr, r.wr_n, Cmd.MEM_WRITE,
                        Mux(lb == 0, 0xF, Mux(lb == 1, 0x1, Mux(lb == 2, 0x3, 0x7))))
            with m.If(self.dma_cmd.ready):
                m.d.sync += state.eq(S.WWAIT)
        with m.Case(S.WWAIT):
            with m.If(self.dma_done & r.ok):
                m.d.sync += [r.dst_addr.eq(r.dst_addr + (r.wr_n << 2)),
                             r.dst_left.eq(r.dst_left - r.wr_bytes),
                             r.obytes.eq(r.obytes - r.wr_bytes), state.eq(S.STREAM)]
        with m.Case(S.RISSUE):
            self._issue(m, r.src_addr, r.rd_n, Cmd.MEM_READ_MULT)
            with m.If(self.dma_cmd.ready):
                m.d.comb += self.pend_inc.eq(r.rd_n)
                m.d.sync += state.eq(S.RWAIT)
        with m.Case(S.RWAIT):
            with m.If(self.dma_done & r.ok):
                m.d.sync += [r.src_addr.eq(r.src_addr + (r.rd_n << 2)),
                             r.src_words.eq(r.src_words - r.rd_n),
                             r.issued.eq(r.issued + (r.rd_n << 2)), state.eq(S.STREAM)]
        with m.Case(S.SREL):
            with m.If(self._ring_op(m, r, H.RING_SRC, release=True, l=r.src_l)):
                m.d.sync += r.have_src.eq(0)
                with m.If(r.src_l.last):
                    m.d.sync += [r.src_exhausted.eq(1), state.eq(S.STREAM)]
                with m.Else():
                    m.d.sync += state.eq(S.SRC_FETCH)
        with m.Case(S.DREL):
            with m.If(self._ring_op(m, r, H.RING_DST, release=True, l=r.dst_l)):
                m.d.sync += r.have_dst.eq(0)
                with m.If(r.dst_l.last):
                    m.d.sync += [r.dst_exhausted.eq(1), state.eq(S.STREAM)]
                with m.Else():
                    m.d.sync += state.eq(S.DST_FETCH)

    def _drain(self, m, r):
        """A packet without a data phase: release its destination and source
        descriptors up to the LAST of each, then write the result."""
        S, state = CardState, self.state
        with m.If(r.have_dst):
            m.d.sync += state.eq(S.DREL)
        with m.Elif(r.have_src):
            m.d.sync += state.eq(S.SREL)
        with m.Elif(~r.dst_exhausted):
            m.d.sync += state.eq(S.DST_FETCH)
        with m.Elif(~r.src_exhausted):
            m.d.sync += state.eq(S.SRC_FETCH)
        with m.Else():
            m.d.sync += [state.eq(S.RES_PUSH), r.ri.eq(0)]

    def _result_phase(self, m, r):
        S, state = CardState, self.state
        nres = Mux(self.mac_result, 8, 2)   # dwords: base result (+ MAC result)
        with m.Case(S.RES_PUSH):
            m.d.comb += [self.wdata.valid.eq(1), self.wdata.payload.eq(self.res_word)]
            with m.If(self.wdata.ready):
                m.d.sync += r.ri.eq(r.ri + 1)
                with m.If(r.ri == nres - 1):
                    m.d.sync += state.eq(S.RES_ISSUE)
                    pu = Signal(H.PUISR.layout)
                    m.d.comb += [pu.cmdinval.eq(self.res_cmdinval),
                                 pu.dataerr.eq(self.res_dataerr),
                                 pu.dstover.eq(r.dstover),
                                 self.puisr_set.eq(pu.as_value()[0:16]),
                                 r.dover_set.eq(r.dstover)]
        with m.Case(S.RES_ISSUE):
            self._issue(m, r.res_addr, nres, Cmd.MEM_WRITE)
            with m.If(self.dma_cmd.ready):
                m.d.sync += state.eq(S.RES_WAIT)
        with m.Case(S.RES_WAIT):
            with m.If(self.dma_done & r.ok):
                m.d.sync += state.eq(S.RES_REL)
        with m.Case(S.RES_REL):
            with m.If(self._ring_op(m, r, H.RING_RES, release=True, l=r.res_l)):
                m.d.comb += [self.eng_result_ready.eq(1),
                             self.iv_we.eq(self.has_cry & ~r.invalid)]
                m.d.sync += state.eq(S.IDLE)
        with m.Case(S.HALT):
            pass
