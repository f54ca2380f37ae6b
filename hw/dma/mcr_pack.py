"""The record engine's particle packer: bytes → dword writes of one particle.

A serializer gives the bytes of a loaded word (``load``: ``load_data`` and
the lanes ``load_be``) lowest enabled lane first; ``need`` says a word may
be loaded this clock (the held one is used up or leaves now). The packer
places each byte at its lane in the particle (``set``: ``set_n`` bytes at
bus address ``set_addr``, any byte alignment) and pushes a dword on
``wdata`` when it is full or holds the particle's final byte; the writer
commands those dwords (``req``, bursts of at most ``chunk``) once they are
all in the initiator's FIFO, with byte enables for a partial first and last
dword. ``drop`` discards ``drop_n`` bytes instead (an output chain that is
used up or refused). ``left``: bytes still to place; ``done``: the particle
is placed and commanded.

The transform engine's :class:`hw.crypto.bytestream.BytePacker` packs from
lane 0 only; a particle starts at any lane and ends a word at its own end,
so this packer has its own realigner.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .mcr_common import RequestSignature, end_be, low_be

__all__ = ["ParticlePacker"]


class ParticlePacker(wiring.Component):
    def __init__(self, cw: int, chunk: int):
        self.cw = cw
        self.chunk = chunk
        super().__init__({
            "load": In(1),
            "load_data": In(32),
            "load_be": In(4),
            "need": Out(1),
            "set": In(1),
            "set_addr": In(32),
            "set_n": In(16),
            "drop": In(1),
            "drop_n": In(16),
            "start": In(1),               # a packet starts: nothing is being dropped
            "left": Out(16),
            "done": Out(1),
            "idle": Out(1),               # nothing held, placed, dropped or to command
            "wdata": Out(stream.Signature(32)),
            "req": Out(RequestSignature(cw)),
            "halted": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        CH = self.chunk
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
        p_left = self.left             # bytes to pack into the current particle
        p_lane = Signal(2)
        p_data = Signal(32)
        discard = Signal()
        # writer
        w_addr = Signal(32)            # dword address of the next write
        w_left = Signal(16)            # dwords of the particle not yet commanded
        w_first = Signal()
        w_fbe = Signal(4)
        w_lbe = Signal(4)
        wr_avail = Signal(12)          # packed dwords not yet commanded
        wr_dec = Signal(range(CH + 1))

        flush = Signal()
        m.d.comb += flush.eq((p_lane == 3) | (p_left == 1))
        take = Signal()
        m.d.comb += take.eq((s_be != 0) & (p_left != 0) &
                            (discard | ~flush | self.wdata.ready) & ~self.halted)
        merged = Signal(32)
        for ln in range(4):
            m.d.comb += merged[8 * ln:8 * ln + 8].eq(
                Mux(p_lane == ln, s_byte, p_data[8 * ln:8 * ln + 8]))
        push = Signal()
        m.d.comb += push.eq(take & flush & ~discard)
        with m.If(push):
            m.d.comb += [self.wdata.valid.eq(1), self.wdata.payload.eq(merged)]
        with m.If(take):
            m.d.sync += [p_data.eq(merged), p_lane.eq(p_lane + 1), p_left.eq(p_left - 1)]
        m.d.sync += wr_avail.eq(wr_avail + push - wr_dec)

        m.d.comb += self.need.eq((s_be == 0) | (take & s_single))
        with m.If(take):
            m.d.sync += s_be.eq(s_be & ~s_low)
        with m.If(self.load):
            m.d.sync += [s_data.eq(self.load_data), s_be.eq(self.load_be)]

        # write commands for the current particle
        c_w = Signal(self.cw)
        m.d.comb += c_w.eq(Mux(w_left > CH, CH, w_left))
        r = self.req.payload
        with m.If(w_left != 0):
            m.d.comb += [
                self.req.valid.eq(wr_avail >= c_w), r.read.eq(0),
                r.addr.eq(w_addr), r.count.eq(c_w),
                r.first_be.eq(Mux(w_first, w_fbe, 0xF)),
                r.last_be.eq(Mux(c_w == w_left, w_lbe, 0xF)),
            ]
            with m.If(self.req.ready):
                m.d.comb += wr_dec.eq(c_w)
                m.d.sync += [w_addr.eq(w_addr + (c_w << 2)), w_left.eq(w_left - c_w),
                             w_first.eq(0)]
        m.d.comb += [self.done.eq((p_left == 0) & (w_left == 0)),
                     self.idle.eq((s_be == 0) & (p_left == 0) & (w_left == 0) & ~discard)]

        with m.If(self.set):
            ln = self.set_addr[0:2]
            n = self.set_n
            m.d.sync += [p_left.eq(n), p_lane.eq(ln),
                         w_addr.eq(Cat(Const(0, 2), self.set_addr[2:])),
                         w_left.eq((ln + n + 3) >> 2), w_first.eq(1),
                         w_fbe.eq(low_be(ln)), w_lbe.eq(end_be((ln + n)[0:2]))]
        with m.If(self.drop):
            m.d.sync += [discard.eq(1), p_left.eq(self.drop_n)]
        with m.If(discard & (p_left == 0)):
            m.d.sync += discard.eq(0)
        with m.If(self.start):
            m.d.sync += discard.eq(0)
        return m
