"""Byte packer: beats of 1..4 bytes in, beats of 4 bytes out (fewer only at
the end of a packet).

Input and output beats are :data:`Lanes`: ``data`` (byte 0 in bits 7:0),
``n`` (bytes in the low lanes, 1..4), ``last`` (the packet ends with this
beat) and ``flag`` (a per-packet bit carried from the input's last beat to
the output's). The packer keeps up to eight bytes; it takes a beat whenever
the bytes left after this clock's output leave room for four, so a packed
stream passes at one beat per clock.
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Lanes", "BytePacker", "lane_mask"]

Lanes = data.StructLayout({"data": 32, "n": 3, "last": 1, "flag": 1})


def lane_mask(n):
    """The bits of the low ``n`` (0..4) bytes."""
    return Mux(n >= 4, 0xFFFF_FFFF, Mux(n == 3, 0x00FF_FFFF,
                                        Mux(n == 2, 0x0000_FFFF, Mux(n == 1, 0xFF, 0))))


class BytePacker(wiring.Component):
    i: In(stream.Signature(Lanes))
    o: Out(stream.Signature(Lanes))
    busy: Out(1)

    def elaborate(self, platform):
        m = Module()
        acc = Signal(64)
        cnt = Signal(range(9))
        pend = Signal()                   # the packet's last beat is in, flush it
        flag = Signal()
        o, i = self.o, self.i

        out_n = Signal(3)
        m.d.comb += [
            out_n.eq(Mux(cnt >= 4, 4, cnt)),
            o.valid.eq((cnt >= 4) | (pend & (cnt != 0))),
            o.payload.data.eq(acc[0:32]), o.payload.n.eq(out_n),
            o.payload.last.eq(pend & (cnt <= 4)), o.payload.flag.eq(flag),
            self.busy.eq((cnt != 0) | pend),
        ]
        fire_out = o.valid & o.ready
        cnt_a = Signal(range(9))
        acc_a = Signal(64)
        pend_a = Signal()
        m.d.comb += [cnt_a.eq(cnt - Mux(fire_out, out_n, 0)),
                     acc_a.eq(Mux(fire_out, acc >> 32, acc)),
                     pend_a.eq(pend & ~(fire_out & o.payload.last)),
                     i.ready.eq(~pend_a & (cnt_a <= 4))]
        fire_in = i.valid & i.ready
        word = i.payload.data & lane_mask(i.payload.n)
        m.d.sync += [acc.eq(acc_a), cnt.eq(cnt_a), pend.eq(pend_a)]
        with m.If(fire_in):
            m.d.sync += [cnt.eq(cnt_a + i.payload.n),
                         pend.eq(i.payload.last)]
            with m.Switch(cnt_a):
                for k in range(5):
                    with m.Case(k):
                        m.d.sync += acc.eq(acc_a | (word << (8 * k)))
            with m.If(i.payload.last):
                m.d.sync += flag.eq(i.payload.flag)
        return m
