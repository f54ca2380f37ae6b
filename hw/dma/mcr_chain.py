"""A particle-chain walker: the current particle of an input or output chain.

The record engine has two, one per chain of the packet. The walker holds the
current particle (``struct ubsec_pktbuf``: addr, next, len); its first one
is loaded from the record's packet words (``packet``, at dwords
``first_word`` ..), each further one is fetched from ``next`` by the walker
itself (a 3-dword read, tag ``dest``; ``fetched`` marks its last word).

Its user (the input streamer or the output sequencer) sees the particle on
``chain`` and

* pulses ``start`` when a packet starts (the record's particle is the first;
  ``at`` is ``first_at``, its bus address);
* ``take`` s ``take_n`` bytes (``addr`` and ``len`` move on);
* raises ``advance`` when the particle is used up and the chain still owes
  bytes. In that clock ``end`` says the chain ends (``next`` = 0) and
  ``refused`` that it already has ``MAX_PARTICLES`` (ubsecvar.h
  UBS_MAX_SCATTER) particles, so the next one (at ``next``) is not walked;
  otherwise the walker fetches the next particle and pulses ``loaded`` when
  it is current (``empty``: its length is 0; ``at``: its bus address).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..cards.ubsecreg import MAX_PARTICLES, PktBuf
from .mcr_common import (Dest, PKTBUF_WORDS, RequestSignature, WordBusSignature,
                         dword_of, in_word)

__all__ = ["ChainWalker", "ChainSignature", "ChainState"]


class ChainState(enum.Enum, shape=2):
    HOLD = 0          # the current particle is the user's
    DESC_RD = 1       # fetch of the next particle: request
    DESC_WAIT = 2     # ... its words arriving


#: the walker's side of a chain (the user has it flipped)
ChainSignature = wiring.Signature({
    "start": In(1),
    "take": In(1),
    "take_n": In(16),
    "advance": In(1),
    "addr": Out(32),
    "next": Out(32),
    "len": Out(16),
    "at": Out(32),
    "end": Out(1),
    "refused": Out(1),
    "loaded": Out(1),
    "empty": Out(1),
})

A_ADDR = dword_of(PktBuf, "addr")
A_NEXT = dword_of(PktBuf, "next")
A_LEN = dword_of(PktBuf, "len")


class ChainWalker(wiring.Component):
    def __init__(self, cw: int, dest: Dest, first_word: int):
        self.dest = dest
        self.first_word = first_word
        super().__init__({
            "chain": Out(ChainSignature),
            "packet": In(WordBusSignature(4)),
            "fetched": In(1),
            "first_at": In(32),
            "req": Out(RequestSignature(cw)),
            "parts": Out(range(MAX_PARTICLES + 1)),   # particles of the chain so far
            "state": Out(ChainState),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.chain
        parts = self.parts
        fetched_at = Signal(32)        # bus address of the last particle fetched
        w = self.packet.word
        with m.If(self.packet.valid):
            with m.Switch(self.packet.index):
                with m.Case(self.first_word + A_ADDR):
                    m.d.sync += c.addr.eq(w)
                with m.Case(self.first_word + A_NEXT):
                    m.d.sync += c.next.eq(w)
                with m.Case(self.first_word + A_LEN):
                    m.d.sync += c.len.eq(in_word(w, PktBuf, "len"))
        with m.If(c.take):
            m.d.sync += [c.addr.eq(c.addr + c.take_n), c.len.eq(c.len - c.take_n)]
        with m.If(c.start):
            m.d.sync += parts.eq(1)
        m.d.comb += [
            c.at.eq(Mux(c.start | (parts == 1), self.first_at, fetched_at)),
            c.end.eq(c.next == 0),
            c.refused.eq((c.next != 0) & (parts == MAX_PARTICLES)),
        ]
        r = self.req.payload
        with m.Switch(self.state):
            with m.Case(ChainState.HOLD):
                with m.If(c.advance & (c.next != 0) & (parts != MAX_PARTICLES)):
                    m.d.sync += [parts.eq(parts + 1), self.state.eq(ChainState.DESC_RD)]
            with m.Case(ChainState.DESC_RD):
                m.d.comb += [self.req.valid.eq(1), r.read.eq(1), r.addr.eq(c.next),
                             r.count.eq(PKTBUF_WORDS), r.dest.eq(self.dest)]
                with m.If(self.req.ready):
                    m.d.sync += [fetched_at.eq(c.next), self.state.eq(ChainState.DESC_WAIT)]
            with m.Case(ChainState.DESC_WAIT):
                with m.If(self.fetched):
                    m.d.comb += [c.loaded.eq(1),
                                 c.empty.eq(in_word(w, PktBuf, "len") == 0)]
                    m.d.sync += self.state.eq(ChainState.HOLD)
        return m
