"""Word streams to byte streams and back: the two ends of a byte datapath.

Both components carry one request of ``length`` bytes at a time between a
``start`` pulse and the next one, and move at most one byte per clock.

Words (:data:`WordLayout`) are PCI-style little-endian: byte k of the
packet sits in lane ``k % 4`` (``data[8k+7:8k]``), ``be`` marks the valid
lanes, ``last`` marks the request's final word. Bytes are
``stream.Signature(8)`` streams (:data:`ByteSignature`); a byte moves when
``valid & ready``.

:class:`WordUnpacker` — words with byte enables → one byte per clock
  * ``i``: In(stream of WordLayout). Enabled lanes are taken in lane order,
    disabled lanes skipped, so any first/last word alignment (and holes)
    is fine. A word is taken once its bytes are used up, and only while
    bytes of the request remain beyond those it holds.
  * ``o``: Out(byte stream). ``valid`` only while ``enable`` is high and
    ``pos < length``. When ``last`` came early the missing bytes are given
    as zeros (and ``length_error`` is set).
  * ``start``: begin a request (``pos`` = 0, nothing held). ``length``: the
    request's byte count, held stable until the next ``start``.
    ``enable``: bytes may be offered / words taken.
  * ``pos``: bytes given so far. ``length_error``: the words did not match
    ``length`` — ``last`` came early, or (for a non-empty request) the word
    holding the final byte lacked ``last`` or held more bytes (dropped).
    Meaningful once ``pos == length``.

:class:`BytePacker` — bytes → words packed from lane 0
  * ``i``: In(byte stream); ``ready`` while the output word register is
    free (or ``drop``).
  * ``o``: Out(stream of WordLayout): a word is offered after its 4th byte
    or the request's final byte (``pos == length - 1``), with ``be`` for
    the lanes written and ``last`` on the final word.
  * ``start``: begin a request (``pos`` = 0, lane 0). ``length``: as above.
    ``drop``: take bytes (advancing ``pos``) without outputting them.
  * ``pos``: bytes taken so far.

Neither has a combinational path from its own ``ready`` to its own
``valid``; ``WordUnpacker.i.ready`` depends on ``o.ready`` (a word is taken
in the clock its last held byte leaves) and ``BytePacker.i.ready`` on
``o.ready``.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WordLayout", "ByteSignature", "WordUnpacker", "BytePacker", "LANES"]

LANES = 4   # a 32-bit PCI data word has 4 byte lanes (PCI 2.3 §2.2.3, C/BE[3::0]#)

WordLayout = data.StructLayout({
    "data": 8 * LANES,
    "be": LANES,
    "last": 1,
})

ByteSignature = stream.Signature(8)


class WordUnpacker(wiring.Component):
    """Words with byte enables → one byte per clock (module docstring)."""

    def __init__(self, len_bits):
        self.len_bits = len_bits
        super().__init__({
            "i": In(stream.Signature(WordLayout)),
            "o": Out(ByteSignature),
            "start": In(1),
            "enable": In(1),
            "length": In(len_bits),
            "pos": Out(len_bits),
            "length_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        word = Signal(8 * LANES)
        be = Signal(LANES)             # lanes of `word` not yet given
        eos = Signal()                 # the word with `last` has been loaded
        early = Signal()               # a zero byte was given for a missing one
        pos = self.pos

        low = Signal(LANES)            # lowest enabled lane, one-hot
        m.d.comb += low.eq(be & (~be + 1))
        byte = Signal(8)
        with m.Switch(low):
            for lane in range(LANES):
                with m.Case(1 << lane):
                    m.d.comb += byte.eq(word[8 * lane:8 * lane + 8])
        count = Signal(3)
        m.d.comb += count.eq(sum(be[lane] for lane in range(LANES)))
        single = Signal()              # the held byte is the word's last one
        m.d.comb += single.eq((be & ~low) == 0)
        fill = Signal()                # `last` came early: zero fill
        more = Signal()
        need_more = Signal()
        m.d.comb += [
            fill.eq((be == 0) & eos),
            more.eq(pos < self.length),
            need_more.eq(pos + count < self.length),
        ]
        take = Signal()
        m.d.comb += [
            self.o.valid.eq(self.enable & more & ((be != 0) | eos)),
            self.o.payload.eq(Mux(be != 0, byte, 0)),
            take.eq(self.o.valid & self.o.ready),
            self.i.ready.eq(self.enable & ~eos & need_more &
                            ((be == 0) | (take & single))),
            self.length_error.eq(early | ((self.length != 0) & (~eos | (be != 0)))),
        ]

        with m.If(take):
            m.d.sync += pos.eq(pos + 1)
            with m.If(fill):
                m.d.sync += early.eq(1)
            with m.Else():
                m.d.sync += be.eq(be & ~low)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [word.eq(self.i.payload.data),
                         be.eq(self.i.payload.be),
                         eos.eq(self.i.payload.last)]
        with m.If(self.start):
            m.d.sync += [pos.eq(0), be.eq(0), eos.eq(0), early.eq(0)]
        return m


class BytePacker(wiring.Component):
    """Bytes → words packed from lane 0 (module docstring)."""

    def __init__(self, len_bits):
        self.len_bits = len_bits
        super().__init__({
            "i": In(ByteSignature),
            "o": Out(stream.Signature(WordLayout)),
            "start": In(1),
            "drop": In(1),
            "length": In(len_bits),
            "pos": Out(len_bits),
        })

    def elaborate(self, platform):
        m = Module()
        word = Signal(8 * LANES)
        be = Signal(LANES)
        last = Signal()
        full = Signal()                # a word is offered on `o`
        lane = Signal(range(LANES))
        pos = self.pos
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.data.eq(word),
            self.o.payload.be.eq(be),
            self.o.payload.last.eq(last),
            self.i.ready.eq(self.drop | ~full | self.o.ready),
        ]
        with m.If(self.o.ready):
            m.d.sync += full.eq(0)

        final = Signal()
        m.d.comb += final.eq(pos == self.length - 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += pos.eq(pos + 1)
            with m.If(~self.drop):
                with m.Switch(lane):
                    for n in range(LANES):
                        with m.Case(n):
                            if n == 0:      # a new word: the other lanes clear
                                m.d.sync += [word.eq(self.i.payload), be.eq(1)]
                            else:
                                m.d.sync += [word[8 * n:8 * n + 8].eq(self.i.payload),
                                             be[n].eq(1)]
                with m.If((lane == LANES - 1) | final):
                    m.d.sync += [full.eq(1), last.eq(final), lane.eq(0)]
                with m.Else():
                    m.d.sync += lane.eq(lane + 1)
        with m.If(self.start):
            m.d.sync += [pos.eq(0), lane.eq(0)]
        return m
