"""MAC stage of the transform engine: SHA-1 (FIPS 180-4) or HMAC-SHA1
(RFC 2104) of a byte stream, around :class:`~hw.crypto.sha1.SHA1Core`.

Ports
-----
* ``start``: begin a request; ``mode`` (:class:`~hw.crypto.command.Mac`),
  ``length`` (bytes in the MAC region), ``trunc``, ``key`` (raw HMAC key,
  zero padded to 64 bytes, first byte in the top bits), ``inner`` and
  ``outer`` (HMAC midstates) are sampled in that clock.
* ``abort``: the request turned out invalid: stop (state OFF) and never
  start the core.
* ``i``: In(byte stream) — the MAC region's bytes; ``ready`` while the
  64-byte block buffer has room (or empties in that clock).
* ``digest``: the MAC (160 bits, first byte in the top bits; with ``trunc``
  the first 12 bytes, the rest zero — RFC 2104 §5, HMAC-SHA1-96).
* ``done``: nothing left to compute (OFF or DONE, last result written).
* ``state``: :class:`MacState`.

With HMAC_KEY the stage first compresses ``key ^ ipad`` and ``key ^ opad``
(RFC 2104 §2) to get the midstates, as the Hifn does from the raw key; with
HMAC_STATE it starts from the given ones, as the BCM5820 is given them. The
block buffer fills while the core compresses the previous block (the core
copies its block at start). Padding (FIPS 180-4 §5.1.1) and the outer hash
block are formed in front of the core.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .bytestream import ByteSignature
from .command import LEN_BITS, Mac
from .sha1 import SHA1Core, sha1_iv_int

__all__ = ["MacStage", "MacState", "Sha1Padder", "IPAD", "OPAD", "SHA1_BLOCK"]


class MacState(enum.IntEnum, shape=3):
    OFF = 0        # no MAC in this request / finished
    KEY_IPAD = 1   # compress(IV, key ^ ipad)
    KEY_OPAD = 2   # compress(IV, key ^ opad)
    DATA = 3       # absorbing the MAC region
    PAD2 = 4       # second padding block (length did not fit)
    OUTER = 5      # compress(outer, inner digest || padding)
    WAIT = 6       # last compression running
    DONE = 7


IPAD = int("36" * 64, 16)   # RFC 2104 §2: ipad = 0x36 repeated B=64 times
OPAD = int("5c" * 64, 16)   # RFC 2104 §2: opad = 0x5c repeated B=64 times
SHA1_BLOCK = 64             # FIPS 180-4: 512-bit blocks
SHA1_LEN_AT = 56            # FIPS 180-4 §5.1.1: the 64-bit length fills bytes 56..63
HMAC_OUTER_BITS = (64 + 20) * 8  # outer hash input: K^opad (64 B) + digest (20 B)
HMAC_96_BITS = 96           # RFC 2104 §5 / RFC 2404: HMAC-SHA1-96 keeps 12 bytes


class Sha1Padder(wiring.Component):
    """SHA-1 padding of a partial block (FIPS 180-4 §5.1.1): bytes below
    ``count`` kept, 0x80 at ``count``, zeros after, and the 64-bit message
    bit length in bytes 56..63 when ``count`` < 56 (otherwise the length goes
    in a second block). A module of its own so that Amaranth's pysim, which
    re-evaluates a module's combinational logic whenever one of its inputs
    changes, runs these 64 byte muxes only when the block buffer changes;
    and only while ``active`` (the clock the padded block is taken), so
    Verilator, which evaluates all logic every clock except the branches of
    a process whose condition is false, skips them otherwise."""

    def __init__(self):
        super().__init__({"buf": In(512), "count": In(7), "bitlen": In(64),
                          "active": In(1), "block": Out(512)})

    def elaborate(self, platform):
        m = Module()
        bi = self.count
        with m.If(self.active):            # 0 otherwise: evaluated only when used
            for j in range(SHA1_BLOCK):
                sl = slice(8 * (63 - j), 8 * (64 - j))
                val = Mux(bi > j, self.buf[sl], Mux(bi == j, 0x80, 0))
                if j >= SHA1_LEN_AT:
                    val = Mux(bi < SHA1_LEN_AT, self.bitlen[8 * (63 - j):8 * (64 - j)], val)
                m.d.comb += self.block[sl].eq(val)
        return m


class MacStage(wiring.Component):
    """SHA-1 / HMAC-SHA1 of a byte stream (module docstring)."""

    def __init__(self, sha_rounds=1):
        self.sha_rounds = sha_rounds
        self._sha = SHA1Core(sha_rounds)
        super().__init__({
            "start": In(1),
            "mode": In(Mac),
            "length": In(LEN_BITS),
            "trunc": In(1),
            "key": In(512),
            "inner": In(160),
            "outer": In(160),
            "abort": In(1),
            "i": In(ByteSignature),
            "digest": Out(160),
            "done": Out(1),
            "state": Out(MacState),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sha = sha = self._sha
        m.submodules.padder = padder = Sha1Padder()
        mst = self.state
        hmac = Signal()
        mac_len = Signal(LEN_BITS)
        trunc = Signal()
        # key and outer without reset (docs/crypto.md, Simulation cost): each
        # request writes them before they are read (key at start; outer at
        # start with HMAC_STATE, by the K^opad compression with HMAC_KEY)
        key = Signal(512, reset_less=True)
        mbuf = Signal(512)             # byte j at bits [8*(63-j), 8*(64-j))
        bi = Signal(7)                 # bytes in mbuf (0..64)
        mcnt = Signal(LEN_BITS)        # MAC-region bytes fed so far
        h = Signal(160)                # running hash state
        outer = Signal(160, reset_less=True)  # HMAC outer midstate
        s_pending = Signal()           # a compression whose result is not yet written back
        s_dest_outer = Signal()
        wb = Signal()
        m.d.comb += wb.eq(s_pending & ~sha.busy)
        h_eff = Signal(160)
        m.d.comb += h_eff.eq(Mux(wb & ~s_dest_outer, sha.state_out, h))
        core_free = Signal()
        m.d.comb += core_free.eq(~sha.busy)

        bitlen = Signal(64)
        m.d.comb += bitlen.eq((mac_len + Mux(hmac, SHA1_BLOCK, 0)) << 3)
        m.d.comb += [padder.buf.eq(mbuf), padder.count.eq(bi), padder.bitlen.eq(bitlen)]
        pad1 = padder.block
        pad2 = Cat(bitlen, Const(0, 448))
        # HMAC outer block: inner digest || 0x80 || 0.. || 672 (RFC 2104 + FIPS 180-4).
        # From the top: digest (bytes 0..19), 0x80 (byte 20), zeros, length.
        outer_blk = Cat(Const(HMAC_OUTER_BITS, 64), Const(0, 280),
                        Const(0x80, 8), h_eff)

        issue_data = Signal()
        issue_pad1 = Signal()
        all_fed = Signal()
        m.d.comb += all_fed.eq(mcnt == mac_len)
        m.d.comb += [
            issue_data.eq((mst == MacState.DATA) & (bi == SHA1_BLOCK) & core_free),
            issue_pad1.eq((mst == MacState.DATA) & all_fed & (bi != SHA1_BLOCK) &
                          core_free),
        ]
        m.d.comb += padder.active.eq(issue_pad1)
        sha_start = Signal()
        blk = Signal(512)
        st_in = Signal(160)
        with m.Switch(mst):
            with m.Case(MacState.KEY_IPAD):
                m.d.comb += [sha_start.eq(core_free), blk.eq(key ^ IPAD),
                             st_in.eq(sha1_iv_int())]
                with m.If(core_free):
                    m.d.sync += [mst.eq(MacState.KEY_OPAD), s_dest_outer.eq(0)]
            with m.Case(MacState.KEY_OPAD):
                m.d.comb += [sha_start.eq(core_free), blk.eq(key ^ OPAD),
                             st_in.eq(sha1_iv_int())]
                with m.If(core_free):
                    m.d.sync += [mst.eq(MacState.DATA), s_dest_outer.eq(1)]
            with m.Case(MacState.DATA):
                m.d.comb += [sha_start.eq(issue_data | issue_pad1),
                             blk.eq(Mux(issue_data, mbuf, pad1)),
                             st_in.eq(h_eff)]
                with m.If(issue_data | issue_pad1):
                    m.d.sync += s_dest_outer.eq(0)
                with m.If(issue_pad1):
                    with m.If(bi >= SHA1_LEN_AT):
                        m.d.sync += mst.eq(MacState.PAD2)
                    with m.Elif(hmac):
                        m.d.sync += mst.eq(MacState.OUTER)
                    with m.Else():
                        m.d.sync += mst.eq(MacState.WAIT)
            with m.Case(MacState.PAD2):
                m.d.comb += [sha_start.eq(core_free), blk.eq(pad2), st_in.eq(h_eff)]
                with m.If(core_free):
                    m.d.sync += [mst.eq(Mux(hmac, MacState.OUTER, MacState.WAIT)),
                                 s_dest_outer.eq(0)]
            with m.Case(MacState.OUTER):
                m.d.comb += [sha_start.eq(core_free), blk.eq(outer_blk),
                             st_in.eq(outer)]
                with m.If(core_free):
                    m.d.sync += [mst.eq(MacState.WAIT), s_dest_outer.eq(0)]
            with m.Case(MacState.WAIT):
                with m.If(wb):
                    m.d.sync += mst.eq(MacState.DONE)
        with m.If(self.abort & (mst != MacState.OFF)):
            m.d.sync += mst.eq(MacState.OFF)
        sha_go = Signal()              # never start the core for an invalid command
        m.d.comb += sha_go.eq(sha_start & ~self.abort)
        m.d.comb += [sha.start.eq(sha_go), sha.block.eq(blk), sha.state_in.eq(st_in)]
        with m.If(wb):
            with m.If(s_dest_outer):
                m.d.sync += outer.eq(sha.state_out)
            with m.Else():
                m.d.sync += h.eq(sha.state_out)
        with m.If(sha_go):
            m.d.sync += s_pending.eq(1)
        with m.Elif(wb):
            m.d.sync += s_pending.eq(0)

        # Feeding the block buffer.
        push = Signal()
        m.d.comb += [
            self.i.ready.eq(((mst == MacState.KEY_IPAD) | (mst == MacState.KEY_OPAD) |
                             (mst == MacState.DATA)) & ((bi != SHA1_BLOCK) | issue_data)),
            push.eq(self.i.valid & self.i.ready),
        ]
        wp = Signal(7)
        m.d.comb += wp.eq(Mux(issue_data, 0, bi))
        with m.If(push):
            m.d.sync += [mbuf.word_select(~wp[0:6], 8).eq(self.i.payload),
                         bi.eq(wp + 1), mcnt.eq(mcnt + 1)]
        with m.Elif(issue_data):
            m.d.sync += bi.eq(0)

        m.d.comb += [
            self.digest.eq(Mux(trunc, Cat(Const(0, 160 - HMAC_96_BITS), h[160 - HMAC_96_BITS:]),
                               h)),
            self.done.eq(((mst == MacState.OFF) | (mst == MacState.DONE)) & ~s_pending),
        ]
        with m.If(self.start):
            m.d.sync += [
                hmac.eq((self.mode == Mac.HMAC_KEY) | (self.mode == Mac.HMAC_STATE)),
                mac_len.eq(self.length), trunc.eq(self.trunc), key.eq(self.key),
                bi.eq(0), mcnt.eq(0), s_pending.eq(0),
            ]
            with m.Switch(self.mode):
                with m.Case(Mac.SHA1):
                    m.d.sync += [h.eq(sha1_iv_int()), mst.eq(MacState.DATA)]
                with m.Case(Mac.HMAC_KEY):
                    m.d.sync += mst.eq(MacState.KEY_IPAD)
                with m.Case(Mac.HMAC_STATE):
                    m.d.sync += [h.eq(self.inner), outer.eq(self.outer),
                                 mst.eq(MacState.DATA)]
                with m.Default():
                    m.d.sync += mst.eq(MacState.OFF)
        return m
