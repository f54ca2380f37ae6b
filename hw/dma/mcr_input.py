"""The record engine's input streamer: input chain → data reads.

From ``start`` it reads ``pktlen`` bytes through the input chain (a
:class:`~hw.dma.mcr_chain.ChainWalker` on ``chain``) in reads of at most
``chunk`` dwords, each only when the data FIFO has room for it
(``data_out``, ``reserve``); the read holding the packet's final byte is
tagged so the engine sees ``last``. A chain that ends early (``next`` = 0)
ends the input with an end mark (``term``) after every read under way, so
the engine reports the short packet; a chain the card refuses (a
zero-length particle while bytes are owed, or over MAX_PARTICLES) does the
same and reports ``chain_error`` at the particle's bus address.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .mcr_chain import ChainSignature
from .mcr_common import Dest, RequestSignature, end_be, low_be

__all__ = ["InputStreamer", "InState"]


class InState(enum.Enum, shape=2):
    IDLE = 0
    RUN = 1           # data reads from the current particle
    CHAIN = 2         # the walker fetches the next particle
    TERM = 3          # end the input early: the end mark after the reads under way


class InputStreamer(wiring.Component):
    def __init__(self, cw: int, chunk: int, data_depth: int):
        self.cw = cw
        self.chunk = chunk
        self.data_depth = data_depth
        super().__init__({
            "start": In(1),
            "pktlen": In(16),
            "chain": In(ChainSignature),
            "req": Out(RequestSignature(cw)),
            "data_out": In(range(data_depth + 1)),
            "reserve": Out(range(chunk + 1)),
            "reads_pending": In(1),
            "term": Out(1),
            "halted": In(1),
            "chain_error": Out(1),        # pulse, with chain_addr
            "chain_addr": Out(32),
            "state": Out(InState),
        })

    def elaborate(self, platform):
        m = Module()
        CH = self.chunk
        c = self.chain
        st = self.state
        rem = Signal(16)               # bytes of the packet not yet read
        lane = c.addr[0:2]
        n = Signal(16)
        m.d.comb += n.eq(Mux(c.len < rem, c.len, rem))
        span_dw = Signal(17)
        m.d.comb += span_dw.eq((lane + n + 3) >> 2)
        count = Signal(self.cw)
        m.d.comb += count.eq(Mux(span_dw > CH, CH, span_dw))
        nbytes = Signal(16)
        m.d.comb += nbytes.eq(Mux(span_dw > CH, (CH * 4) - lane, n))

        def refuse(addr):
            m.d.comb += [self.chain_error.eq(1), self.chain_addr.eq(addr)]
            m.d.sync += st.eq(InState.TERM)

        r = self.req.payload
        with m.Switch(st):
            with m.Case(InState.IDLE):
                with m.If(self.start):
                    m.d.comb += c.start.eq(1)
                    m.d.sync += [rem.eq(self.pktlen), st.eq(InState.RUN)]
                    with m.If(c.len == 0):
                        refuse(c.at)
            with m.Case(InState.RUN):
                with m.If(rem == 0):
                    m.d.sync += st.eq(InState.IDLE)
                with m.Elif(c.len == 0):
                    m.d.comb += c.advance.eq(1)
                    with m.If(c.end):
                        m.d.sync += st.eq(InState.TERM)          # chain too short
                    with m.Elif(c.refused):
                        refuse(c.next)
                    with m.Else():
                        m.d.sync += st.eq(InState.CHAIN)
                with m.Else():
                    m.d.comb += [
                        self.req.valid.eq(self.data_out + count <= self.data_depth),
                        r.read.eq(1), r.addr.eq(c.addr), r.count.eq(count),
                        r.dest.eq(Dest.DATA), r.first_be.eq(low_be(lane)),
                        r.last_be.eq(end_be((lane + nbytes)[0:2])),
                        r.tag_last.eq(nbytes == rem),
                    ]
                    with m.If(self.req.ready):
                        m.d.comb += [self.reserve.eq(count), c.take.eq(1),
                                     c.take_n.eq(nbytes)]
                        m.d.sync += rem.eq(rem - nbytes)
            with m.Case(InState.CHAIN):
                with m.If(c.loaded):
                    m.d.sync += st.eq(InState.RUN)
                    with m.If(c.empty):
                        refuse(c.at)
            with m.Case(InState.TERM):
                # after every read under way (its data must precede the end mark)
                with m.If(~self.reads_pending & (self.data_out < self.data_depth)
                          & ~self.halted):
                    m.d.comb += [self.term.eq(1), self.reserve.eq(1)]
                    m.d.sync += [rem.eq(0), st.eq(InState.IDLE)]
        return m
