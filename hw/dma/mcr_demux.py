"""The record engine's read demultiplexer: read data → where its tag says.

Each read's words arrive in order on ``rdata`` while its tag is at the head
of ``tag``. Data words (:attr:`Dest.DATA`) go with their byte enables (first
and last word of the read) and the packet's final-word mark into the data
FIFO, whose output ``data`` feeds the transform engine; ``term`` pushes an
end mark instead (a short input chain). Descriptor words go out on
``packet`` (index = dword of "header + packet": the record's header and
first packet, a further packet, or a further particle at its place in the
packet) or ``context`` (index = dword of the context), and ``desc_end``
marks the last word of a descriptor read, with ``desc_dest``.

``data_out`` counts data words commanded (``reserve``, by the input
streamer) and not yet taken by the engine, so data reads are only issued
when the FIFO has room for them and read data never waits.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..crypto.bytestream import WordLayout
from .mcr_common import Dest, P_IPKT, P_OPKT, WordBusSignature, tag_layout

__all__ = ["ReadDemux"]


class ReadDemux(wiring.Component):
    def __init__(self, cw: int, chunk: int, data_depth: int):
        self.cw = cw
        self.data_depth = data_depth
        super().__init__({
            "tag": In(stream.Signature(tag_layout(cw))),
            "rdata": In(stream.Signature(32)),
            "data": Out(stream.Signature(WordLayout)),
            "term": In(1),
            "reserve": In(range(chunk + 1)),
            "data_out": Out(range(data_depth + 1)),
            "reads_pending": Out(1),      # read data still to come or arriving
            "packet": Out(WordBusSignature(4)),
            "context": Out(WordBusSignature(5)),
            "desc_end": Out(1),
            "desc_dest": Out(Dest),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dfifo = dfifo = fifo.SyncFIFOBuffered(
            width=WordLayout.size, depth=self.data_depth)
        t = self.tag.payload
        widx = Signal(self.cw)
        rd = self.rdata
        m.d.comb += rd.ready.eq(self.tag.valid)
        rword = Signal()
        m.d.comb += rword.eq(rd.valid & rd.ready)
        final_word = Signal()
        m.d.comb += final_word.eq(widx == t.count - 1)
        with m.If(rword):
            with m.If(final_word):
                m.d.sync += widx.eq(0)
                m.d.comb += self.tag.ready.eq(1)
            with m.Else():
                m.d.sync += widx.eq(widx + 1)

        # data words → data FIFO → engine
        push = Signal()
        m.d.comb += push.eq(rword & (t.dest == Dest.DATA))
        be_first = Mux(widx == 0, t.first_be, 0xF)
        be_last = Mux(final_word, t.last_be, 0xF)
        with m.If(push):
            m.d.comb += [dfifo.w_en.eq(1),
                         dfifo.w_data.eq(Cat(rd.payload, be_first & be_last,
                                             t.last & final_word))]
        with m.Elif(self.term):
            m.d.comb += [dfifo.w_en.eq(1), dfifo.w_data.eq(Cat(Const(0, 36), Const(1, 1)))]
        m.d.comb += [self.data.payload.eq(dfifo.r_data), self.data.valid.eq(dfifo.r_rdy),
                     dfifo.r_en.eq(self.data.ready),
                     self.reads_pending.eq(push | self.tag.valid)]
        m.d.sync += self.data_out.eq(self.data_out + self.reserve
                                     - (self.data.valid & self.data.ready))

        # descriptor words: packet and particle words share one index space
        ctl = Signal()
        m.d.comb += [ctl.eq(rword & (t.dest != Dest.DATA)),
                     self.desc_end.eq(ctl & final_word), self.desc_dest.eq(t.dest)]
        pidx = Signal(4)
        with m.Switch(t.dest):
            with m.Case(Dest.PKT0):
                m.d.comb += pidx.eq(widx)
            with m.Case(Dest.PKT1):
                m.d.comb += pidx.eq(widx + 1)
            with m.Case(Dest.IN):
                m.d.comb += pidx.eq(widx + P_IPKT)
            with m.Case(Dest.OUT):
                m.d.comb += pidx.eq(widx + P_OPKT)
        m.d.comb += [
            self.packet.valid.eq(ctl & (t.dest != Dest.CTX)), self.packet.index.eq(pidx),
            self.packet.word.eq(rd.payload),
            self.context.valid.eq(ctl & (t.dest == Dest.CTX)), self.context.index.eq(widx),
            self.context.word.eq(rd.payload),
        ]
        return m
