"""The record engine's context registers: a packet's ``struct
ubsec_pktctx_long`` as its words arrive (``context``: dword index, word).

Key and IV words hold four bytes each as a big-endian integer (ubsec.c:
``ntohl`` then ``htole32``), so each 64-bit DES key or IV is (first word
<< 32 | second word); the HMAC midstates are H0..H4 with H0 in the top bits,
as the transform engine takes them (:mod:`hw.crypto.command`).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..cards.ubsecreg import ContextLong, PktCtxFlags
from .mcr_common import C_FLAGS, C_INNER, C_IV, C_KEY, C_OUTER, WordBusSignature, in_word

__all__ = ["ContextRegisters", "ContextSignature"]

#: the loaded context, as its users see it
ContextSignature = wiring.Signature({
    "flags": Out(PktCtxFlags),
    "offset": Out(16),                  # cipher start, in dwords
    "key1": Out(64), "key2": Out(64), "key3": Out(64),
    "iv": Out(64),
    "inner": Out(160),
    "outer": Out(160),
})


class ContextRegisters(wiring.Component):
    context: In(WordBusSignature(5))
    regs: Out(ContextSignature)

    def elaborate(self, platform):
        m = Module()
        w = self.context.word
        r = self.regs
        with m.If(self.context.valid):
            with m.Switch(self.context.index):
                with m.Case(C_FLAGS):
                    m.d.sync += [r.flags.eq(in_word(w, ContextLong, "flags")),
                                 r.offset.eq(in_word(w, ContextLong, "offset"))]
                for j, reg in enumerate((r.key1, r.key2, r.key3)):
                    with m.Case(C_KEY + 2 * j):
                        m.d.sync += reg[32:64].eq(w)
                    with m.Case(C_KEY + 2 * j + 1):
                        m.d.sync += reg[0:32].eq(w)
                with m.Case(C_IV):
                    m.d.sync += r.iv[32:64].eq(w)
                with m.Case(C_IV + 1):
                    m.d.sync += r.iv[0:32].eq(w)
                for j in range(5):
                    with m.Case(C_INNER + j):
                        m.d.sync += r.inner[32 * (4 - j):32 * (5 - j)].eq(w)
                    with m.Case(C_OUTER + j):
                        m.d.sync += r.outer[32 * (4 - j):32 * (5 - j)].eq(w)
        return m
