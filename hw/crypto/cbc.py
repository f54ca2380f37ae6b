"""Cipher stage of the transform engine: DES / 3DES-EDE in CBC mode
(SP 800-38A §6.2) on a byte stream, around :class:`~hw.crypto.des.DESCore`.

Ports
-----
* ``start``: begin a request; ``cipher``, ``decrypt``, ``key1..3`` and
  ``iv`` are sampled in that clock (the keys as the DES core's registered
  key schedule) and held for the request.
* ``enable``: blocks may be started (the engine's RUN state).
* ``i``: In(byte stream) — the cipher region's input bytes, 8 per block;
  ``ready`` while the 8-byte input buffer has room.
* ``o``: Out(byte stream) — the transformed bytes, in order.
* ``chain``: the CBC chaining value: ``iv`` at start, then the last
  ciphertext block (encrypt: last output block; decrypt: last input block).
* ``idle``: no block in the core or in the output buffer.

The input buffer refills while the core computes the previous block, and
the output buffer drains while it computes the next: a block is started as
soon as 8 bytes are in and the previous result has been captured (its
output buffer empty or emptying in that clock).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bytestream import ByteSignature
from .command import Cipher
from .des import DESCore

__all__ = ["CipherStage", "DES_BLOCK"]

DES_BLOCK = 8            # FIPS 46-3: 64-bit blocks


class CipherStage(wiring.Component):
    """DES/3DES-CBC on a byte stream (module docstring)."""

    def __init__(self, des_rounds=1):
        self.des_rounds = des_rounds
        self._des = DESCore(des_rounds)
        super().__init__({
            "start": In(1),
            "cipher": In(Cipher),
            "decrypt": In(1),
            "key1": In(64),
            "key2": In(64),
            "key3": In(64),
            "iv": In(64),
            "enable": In(1),
            "i": In(ByteSignature),
            "o": Out(ByteSignature),
            "chain": Out(64),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.des = des = self._des
        dec = Signal()

        in_buf = Signal(8 * DES_BLOCK)     # first byte in the top bits once full
        in_cnt = Signal(range(DES_BLOCK + 1))
        in_saved = Signal(8 * DES_BLOCK)   # ciphertext of the block in the core (decrypt)
        out_buf = Signal(8 * DES_BLOCK)
        out_cnt = Signal(range(DES_BLOCK + 1))
        chain = self.chain
        pending = Signal()                 # a started block not yet captured

        take_in = Signal()
        take_out = Signal()
        m.d.comb += [
            self.i.ready.eq(in_cnt < DES_BLOCK),
            take_in.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(out_cnt != 0),
            self.o.payload.eq(out_buf[56:64]),
            take_out.eq(self.o.valid & self.o.ready),
            self.idle.eq(~pending & (out_cnt == 0)),
        ]
        with m.If(take_in):
            m.d.sync += [in_buf.eq(Cat(self.i.payload, in_buf[0:56])),
                         in_cnt.eq(in_cnt + 1)]

        capture = Signal()
        m.d.comb += capture.eq(pending & ~des.busy &
                               ((out_cnt == 0) | ((out_cnt == 1) & take_out)))
        new_chain = Signal(64)
        m.d.comb += new_chain.eq(Mux(dec, in_saved, des.block_out))
        chain_eff = Signal(64)
        m.d.comb += chain_eff.eq(Mux(capture, new_chain, chain))
        des_start = Signal()
        m.d.comb += des_start.eq(self.enable & (in_cnt == DES_BLOCK) & ~des.busy &
                                 (~pending | capture))
        m.d.comb += [
            des.start.eq(des_start),
            # the key schedule is registered in the clock the request starts
            des.load.eq(self.start),
            des.decrypt.eq(self.decrypt),
            des.triple.eq(self.cipher == Cipher.TDES),
            des.key1.eq(self.key1),
            des.key2.eq(self.key2),
            des.key3.eq(self.key3),
            des.block_in.eq(Mux(dec, in_buf, in_buf ^ chain_eff)),
        ]
        with m.If(des_start):
            m.d.sync += [in_saved.eq(in_buf), in_cnt.eq(0), pending.eq(1)]
        with m.Elif(capture):
            m.d.sync += pending.eq(0)
        with m.If(capture):
            m.d.sync += [
                out_buf.eq(Mux(dec, des.block_out ^ chain, des.block_out)),
                out_cnt.eq(DES_BLOCK),
                chain.eq(new_chain),
            ]
        with m.Elif(take_out):
            m.d.sync += [out_buf.eq(out_buf << 8), out_cnt.eq(out_cnt - 1)]

        with m.If(self.start):
            m.d.sync += [
                dec.eq(self.decrypt),
                in_cnt.eq(0), out_cnt.eq(0), pending.eq(0), chain.eq(self.iv),
            ]
        return m
