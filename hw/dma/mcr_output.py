"""The record engine's output sequencer: engine output → output chain, then the MAC.

From ``start`` it drops the engine's words before the cipher region
(``drop_words``; all of them without a cipher, ``cipher_on`` low), hands the
rest to a :class:`~hw.dma.mcr_pack.ParticlePacker` particle by particle of
the output chain (a :class:`~hw.dma.mcr_chain.ChainWalker` on ``chain``),
then the 12-byte MAC (from ``mac``, first byte in the top bits, once
``result_valid``) to the address in ``next`` of the particle where the output
ended. An output chain that ends early drops the rest (``output_error``:
ERR_OUTPUT), as does a missing MAC buffer; a refused chain (a zero-length
particle while bytes are owed, or over MAX_PARTICLES) drops the rest and
the MAC (``chain_error`` at the particle). ``finish`` holds until the
record sequencer moves to the next packet (``packet_next``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.ubsecreg import MAC_BYTES
from ..crypto.bytestream import WordLayout
from .mcr_chain import ChainSignature
from .mcr_common import RequestSignature
from .mcr_pack import ParticlePacker

__all__ = ["OutputSequencer", "OutState"]


class OutState(enum.Enum, shape=3):
    IDLE = 0
    SETUP = 1        # start a particle of the output chain
    DATA = 2         # the packer fills the particle
    CHAIN = 3        # the walker fetches the next particle
    DISCARD = 4      # output chain exhausted: drop the rest
    MAC_SETUP = 5
    FINISH = 6


class OutputSequencer(wiring.Component):
    def __init__(self, cw: int, chunk: int):
        self.packer = ParticlePacker(cw, chunk)
        super().__init__({
            "start": In(1),
            "cipher_on": In(1),
            "mac_on": In(1),
            "out_len": In(16),            # bytes of the cipher region (TLS: and the tail)
            "drop_words": In(16),         # engine words before it
            "eo": In(stream.Signature(WordLayout)),
            "result_valid": In(1),
            "mac": In(160),
            "chain": In(ChainSignature),
            "wdata": Out(stream.Signature(32)),
            "req": Out(RequestSignature(cw)),
            "halted": In(1),
            "packet_next": In(1),
            "finish": Out(1),
            "chain_error": Out(1),        # pulse, with chain_addr
            "chain_addr": Out(32),
            "output_error": Out(1),       # pulse: ERR_OUTPUT
            "state": Out(OutState),
            "idle": Out(1),               # IDLE and the packer holds nothing
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.packer = pk = self.packer
        wiring.connect(m, pk.wdata, wiring.flipped(self.wdata))
        wiring.connect(m, pk.req, wiring.flipped(self.req))
        m.d.comb += pk.halted.eq(self.halted)
        c, ost, halted = self.chain, self.state, self.halted
        out_rem = Signal(16)           # output bytes not yet given a particle
        drop_w = Signal(16)            # engine words still to drop (prefix)
        drop_all = Signal()
        mac_phase = Signal()
        mac_k = Signal(2)              # MAC words given to the packer
        out_mac = Signal()             # this packet writes a MAC

        # packer load: from the engine (after the dropped prefix) or the MAC
        eo = self.eo
        mword = Signal(32)
        with m.Switch(mac_k):
            for k in range(MAC_BYTES // 4):
                with m.Case(k):
                    m.d.comb += mword.eq(Cat(*(self.mac[8 * (19 - j):8 * (20 - j)]
                                               for j in range(4 * k, 4 * k + 4))))
        with m.If(drop_all | (drop_w != 0)):
            # the unchanged prefix (or everything, without 3DES) is not written
            m.d.comb += eo.ready.eq(~halted)
            with m.If(eo.valid & (drop_w != 0) & ~halted):
                m.d.sync += drop_w.eq(drop_w - 1)
        with m.Elif(~mac_phase):
            m.d.comb += eo.ready.eq(pk.need & ~halted)
            with m.If(eo.valid & eo.ready):
                m.d.comb += [pk.load.eq(1), pk.load_data.eq(eo.payload.data),
                             pk.load_be.eq(eo.payload.be)]
        with m.If(mac_phase & pk.need & (mac_k != MAC_BYTES // 4) & self.result_valid):
            m.d.comb += [pk.load.eq(1), pk.load_data.eq(mword), pk.load_be.eq(0xF)]
            m.d.sync += mac_k.eq(mac_k + 1)

        def drop_rest():
            """No particle for the rest of the output: drop it."""
            m.d.comb += [pk.drop.eq(1), pk.drop_n.eq(out_rem)]
            m.d.sync += [out_rem.eq(0), ost.eq(OutState.DISCARD)]

        def refuse(addr):
            """Refuse the output chain at ``addr``: drop the rest and the MAC."""
            m.d.comb += [self.chain_error.eq(1), self.chain_addr.eq(addr)]
            drop_rest()
            m.d.sync += out_mac.eq(0)

        def particle(addr, n):
            m.d.comb += [pk.set.eq(1), pk.set_addr.eq(addr), pk.set_n.eq(n)]

        n_out = Signal(16)
        m.d.comb += [n_out.eq(Mux(c.len < out_rem, c.len, out_rem)),
                     self.finish.eq(ost == OutState.FINISH),
                     self.idle.eq((ost == OutState.IDLE) & ~self.start & pk.idle)]
        with m.Switch(ost):
            with m.Case(OutState.IDLE):
                with m.If(self.start):
                    m.d.comb += [c.start.eq(1), pk.start.eq(1)]
                    m.d.sync += [out_rem.eq(Mux(self.cipher_on, self.out_len, 0)),
                                 drop_w.eq(Mux(self.cipher_on, self.drop_words, 0)),
                                 drop_all.eq(~self.cipher_on), out_mac.eq(self.mac_on),
                                 mac_phase.eq(0), mac_k.eq(0), ost.eq(OutState.SETUP)]
            with m.Case(OutState.SETUP):
                # a particle just became current (the first, or a fetched one)
                with m.If(out_rem == 0):
                    m.d.sync += ost.eq(OutState.MAC_SETUP)
                with m.Elif(c.len == 0):
                    refuse(c.at)
                with m.Else():
                    particle(c.addr, n_out)
                    m.d.comb += [c.take.eq(1), c.take_n.eq(n_out)]
                    m.d.sync += [out_rem.eq(out_rem - n_out), ost.eq(OutState.DATA)]
            with m.Case(OutState.DATA):
                with m.If(pk.done):
                    with m.If(mac_phase):
                        m.d.sync += ost.eq(OutState.FINISH)
                    with m.Elif(out_rem == 0):
                        m.d.sync += ost.eq(OutState.MAC_SETUP)
                    with m.Else():          # used up, output remains: next particle
                        m.d.comb += c.advance.eq(1)
                        with m.If(c.end):
                            drop_rest()
                            m.d.comb += self.output_error.eq(1)
                        with m.Elif(c.refused):
                            refuse(c.next)
                        with m.Else():
                            m.d.sync += ost.eq(OutState.CHAIN)
            with m.Case(OutState.CHAIN):
                with m.If(c.loaded):
                    m.d.sync += ost.eq(OutState.SETUP)
            with m.Case(OutState.DISCARD):
                with m.If(pk.left == 0):
                    m.d.sync += ost.eq(OutState.MAC_SETUP)
            with m.Case(OutState.MAC_SETUP):
                with m.If(~out_mac):
                    m.d.sync += ost.eq(OutState.FINISH)
                with m.Elif(c.next == 0):
                    m.d.comb += self.output_error.eq(1)
                    m.d.sync += ost.eq(OutState.FINISH)
                with m.Else():
                    particle(c.next, MAC_BYTES)
                    m.d.sync += [mac_phase.eq(1), ost.eq(OutState.DATA)]
            with m.Case(OutState.FINISH):
                with m.If(self.packet_next):
                    m.d.sync += ost.eq(OutState.IDLE)
        return m
