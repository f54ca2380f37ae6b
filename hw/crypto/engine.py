"""The streaming transform engine both crypto cards share (docs/crypto.md).

One request = one command (``cmd`` stream) + ``length`` bytes of data on the
``i`` word stream → the transformed bytes on the ``o`` word stream + one
``result`` record (status, MAC, last cipher block).

Conventions
-----------
* Data words are PCI-style little-endian: byte k of the packet sits in lane
  ``k % 4`` (``data[8k+7:8k]``). ``be`` marks valid lanes; lanes are taken in
  lane order, disabled lanes are skipped (so an unaligned first/last word is
  fine). ``last`` marks the final word of a request. Output words are packed
  from lane 0, ``be`` set for valid lanes, ``last`` on the final word. A
  request of ``length`` 0 has no data words.
* Keys, IV and midstates in the command are big-endian integers of the byte
  strings (``int.from_bytes(b, "big")``), the order of FIPS 46-3/180-4.
* Regions are byte offsets into the packet: cipher bytes
  [cipher_skip, cipher_skip + cipher_len), MAC bytes
  [mac_skip, mac_skip + mac_len). Bytes outside the cipher region pass
  through unchanged; regions may overlap in any way.
* Ordering (``order``): ``CIPHER_FIRST`` with encrypt = encrypt-then-MAC
  (IPsec outbound: the MAC covers the output ciphertext); ``MAC_FIRST`` with
  decrypt = MAC-then-decrypt (IPsec inbound: MAC over the input ciphertext).
  These two are what the Hifn 7751 and BCM5820 accept (hifn7751.c, ubsec.c).
  Extension (``tls_orders=True``, switchable): ``MAC_FIRST`` with encrypt =
  MAC-then-encrypt (MAC over the input plaintext, SSH order; TLS puts the
  MAC inside the encrypted record, which the caller does with a second
  request) and ``CIPHER_FIRST`` with decrypt = decrypt-then-MAC (MAC over
  the output plaintext). In short: MAC_FIRST taps the input bytes,
  CIPHER_FIRST taps the output bytes; cipher and MAC always run
  concurrently.
* MAC: ``SHA1`` plain hash of the MAC region; ``HMAC_KEY`` from a raw key of
  up to 64 bytes, zero padded to 64 (``mac_key``, first key byte in the top
  bits), the engine derives the ipad/opad midstates itself (RFC 2104; as the
  Hifn does, hifn7751.c). Longer keys must be hashed first by software,
  as RFC 2104 §2 says. ``HMAC_STATE`` from the precomputed inner and outer
  midstates (as the BCM5820 is given, ubsec.c). ``trunc`` keeps the
  first 12 bytes (RFC 2104 §5, HMAC-SHA1-96) and zeroes the rest.
* Result: ``mac`` (160 bits, first MAC byte in the top bits), ``iv`` = the
  last ciphertext block of the request (encrypt: last output block;
  decrypt: last input block), i.e. the IV that chains the next request;
  the command IV when the cipher region is empty.
* Status bits: ``cipher_len`` (cipher length not a multiple of 8),
  ``region`` (a region ends past ``length``), ``unsupported`` (reserved
  cipher code, or a TLS ordering while ``tls_orders`` is off) — any of these
  makes the command invalid: its data words are consumed and dropped (the
  same ``length``/``last`` rules as a valid request, so the stream stays in
  step), nothing is output, ``mac`` is 0 and the result carries the status.
  ``length``: the data did not match ``length`` (``last`` came early — the
  missing bytes are processed as zero — or the word holding the final byte
  lacked ``last`` or held extra bytes, which are dropped).

Datapath
--------
The engine moves one byte per cycle at each of its stages (unpacker, cipher
block buffers, MAC block buffer, packer), which is above what the chosen core
parameters need (see :mod:`hw.crypto.params`). The DES core has an 8-byte
input and an 8-byte output buffer, so loading, computing and draining
overlap; the SHA-1 core copies its block at start, so the 64-byte MAC
buffer refills while it computes. Padding, ipad/opad and the outer hash
block are formed by logic in front of the SHA-1 core.
"""

import enum as py_enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .des import DESCore
from .sha1 import SHA1Core, sha1_iv_int

__all__ = ["Cipher", "Mac", "Order", "CommandLayout", "WordLayout",
           "StatusLayout", "ResultLayout", "TransformEngine", "EngineState",
           "MacState", "LEN_BITS"]

# hifn7751reg.h: Hifn byte counts are 18 bits (bits 17:16 carried in
# session_num); the BCM5820 packet length is 16 bits (ubsecreg.h).
LEN_BITS = 18


class Cipher(enum.Enum, shape=2):
    NONE = 0
    DES = 1          # one pass with key1 (FIPS 46-3)
    TDES = 2         # 3DES-EDE with key1, key2, key3 (SP 800-67)
    # 3 is reserved → status.unsupported


class Mac(enum.Enum, shape=2):
    NONE = 0
    SHA1 = 1         # FIPS 180-4 hash of the MAC region
    HMAC_KEY = 2     # RFC 2104 from the raw key (Hifn style)
    HMAC_STATE = 3   # RFC 2104 from inner/outer midstates (BCM5820 style)


class Order(enum.Enum, shape=1):
    CIPHER_FIRST = 0  # encrypt-then-MAC / (ext.) decrypt-then-MAC
    MAC_FIRST = 1     # MAC-then-decrypt / (ext.) MAC-then-encrypt


CommandLayout = data.StructLayout({
    "cipher": Cipher,
    "decrypt": 1,
    "mac": Mac,
    "order": Order,
    "trunc": 1,                 # 1: 12-byte MAC (HMAC-SHA1-96), 0: 20 bytes
    "length": LEN_BITS,         # bytes of data in the request
    "cipher_skip": LEN_BITS,
    "cipher_len": LEN_BITS,
    "mac_skip": LEN_BITS,
    "mac_len": LEN_BITS,
    "key1": 64,
    "key2": 64,
    "key3": 64,
    "iv": 64,
    "mac_key": 512,             # raw HMAC key, zero padded to 64 bytes
    "inner": 160,               # HMAC inner midstate H0..H4
    "outer": 160,               # HMAC outer midstate
})

WordLayout = data.StructLayout({
    "data": 32,
    "be": 4,
    "last": 1,
})

StatusLayout = data.StructLayout({
    "cipher_len": 1,
    "region": 1,
    "unsupported": 1,
    "length": 1,
})

ResultLayout = data.StructLayout({
    "status": StatusLayout,
    "mac": 160,
    "iv": 64,
})


class EngineState(py_enum.IntEnum):
    IDLE = 0
    RUN = 1
    RESULT = 2


class MacState(py_enum.IntEnum):
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


class _Padder(wiring.Component):
    """SHA-1 padding of a partial block (FIPS 180-4 §5.1.1): bytes below
    ``count`` kept, 0x80 at ``count``, zeros after, and the 64-bit message
    bit length in bytes 56..63 when ``count`` < 56 (otherwise the length goes
    in a second block). A module of its own only so that Amaranth's pysim,
    which re-evaluates a module's combinational logic whenever one of its
    inputs changes, does not run these 64 byte muxes every cycle."""

    def __init__(self):
        super().__init__({"buf": In(512), "count": In(7), "bitlen": In(64),
                          "block": Out(512)})

    def elaborate(self, platform):
        m = Module()
        bi = self.count
        for j in range(SHA1_BLOCK):
            sl = slice(8 * (63 - j), 8 * (64 - j))
            val = Mux(bi > j, self.buf[sl], Mux(bi == j, 0x80, 0))
            if j >= SHA1_LEN_AT:
                val = Mux(bi < SHA1_LEN_AT, self.bitlen[8 * (63 - j):8 * (64 - j)], val)
            m.d.comb += self.block[sl].eq(val)
        return m


class TransformEngine(wiring.Component):
    """Streaming DES/3DES-CBC + SHA-1/HMAC-SHA1 engine.

    Parameters
    ----------
    des_rounds : DES rounds per cycle (1, 2, 4, 8, 16).
    sha_rounds : SHA-1 rounds per cycle (a divisor of 80).
    tls_orders : accept MAC-then-encrypt and decrypt-then-MAC (extension).

    Ports
    -----
    cmd : In(stream of CommandLayout), taken when the engine is idle.
    i : In(stream of WordLayout), the request's data.
    o : Out(stream of WordLayout), the transformed data.
    result : Out(stream of ResultLayout), one per command.
    state, mac_state : integer FSM states for VCDs (EngineState, MacState).
    in_pos, out_pos : byte positions of the input and output sides.
    """

    def __init__(self, des_rounds=1, sha_rounds=1, tls_orders=True):
        self.des_rounds = des_rounds
        self.sha_rounds = sha_rounds
        self.tls_orders = tls_orders
        self._des = DESCore(des_rounds)
        self._sha = SHA1Core(sha_rounds)
        super().__init__({
            "cmd": In(stream.Signature(CommandLayout)),
            "i": In(stream.Signature(WordLayout)),
            "o": Out(stream.Signature(WordLayout)),
            "result": Out(stream.Signature(ResultLayout)),
            "state": Out(2),
            "mac_state": Out(3),
            "in_pos": Out(LEN_BITS),
            "out_pos": Out(LEN_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.des = des = self._des
        m.submodules.sha = sha = self._sha

        c = Signal(CommandLayout)          # latched command
        state = self.state
        ipos = self.in_pos
        opos = self.out_pos

        # ---------------------------------------------------------------
        # Command checks (on the latched command; stable during RUN).
        cipher_on_raw = Signal()
        mac_on_raw = Signal()
        m.d.comb += [cipher_on_raw.eq(c.cipher != Cipher.NONE),
                     mac_on_raw.eq(c.mac != Mac.NONE)]
        cend = Signal(LEN_BITS + 1)
        mend = Signal(LEN_BITS + 1)
        m.d.comb += [cend.eq(c.cipher_skip + c.cipher_len),
                     mend.eq(c.mac_skip + c.mac_len)]
        err_cl = Signal()
        err_rg = Signal()
        err_un = Signal()
        # FIPS 46-3 / SP 800-38A: CBC works on whole 8-byte blocks.
        m.d.comb += err_cl.eq(cipher_on_raw & (c.cipher_len[0:3] != 0))
        m.d.comb += err_rg.eq((cipher_on_raw & (cend > c.length)) |
                              (mac_on_raw & (mend > c.length)))
        ext_order = cipher_on_raw & mac_on_raw & \
            ((c.order == Order.MAC_FIRST) ^ c.decrypt)
        unsup = c.cipher.as_value() == 3
        if not self.tls_orders:
            unsup = unsup | ext_order
        m.d.comb += err_un.eq(unsup)
        bad = Signal()
        m.d.comb += bad.eq(err_cl | err_rg | err_un)
        cipher_on = Signal()
        mac_on = Signal()
        tap_in = Signal()              # MAC reads input bytes (else output)
        hmac = Signal()
        dec = Signal()
        m.d.comb += [
            cipher_on.eq(cipher_on_raw & ~bad),
            mac_on.eq(mac_on_raw & ~bad),
            tap_in.eq(~cipher_on | (c.order == Order.MAC_FIRST)),
            hmac.eq((c.mac == Mac.HMAC_KEY) | (c.mac == Mac.HMAC_STATE)),
            dec.eq(c.decrypt),
        ]

        def in_cipher(p):
            return cipher_on & (p >= c.cipher_skip) & (p < cend)

        def in_mac(p):
            return mac_on & (p >= c.mac_skip) & (p < mend)

        running = Signal()
        m.d.comb += running.eq(state == EngineState.RUN)

        # ---------------------------------------------------------------
        # Unpacker: words with byte enables → one byte per cycle at ipos.
        ub_data = Signal(32)
        ub_be = Signal(4)
        eos = Signal()                 # the word with `last` has been loaded
        err_len = Signal()
        low = Signal(4)                # lowest enabled lane, one-hot
        m.d.comb += low.eq(ub_be & (~ub_be + 1))
        ub_byte = Signal(8)
        with m.Switch(low):
            for lane in range(4):
                with m.Case(1 << lane):
                    m.d.comb += ub_byte.eq(ub_data[8 * lane:8 * lane + 8])
        ub_cnt = Signal(3)
        m.d.comb += ub_cnt.eq(ub_be[0] + ub_be[1] + ub_be[2] + ub_be[3])
        ub_single = Signal()
        m.d.comb += ub_single.eq((ub_be & ~low) == 0)

        in_more = Signal()             # bytes left on the input side
        m.d.comb += in_more.eq(ipos < c.length)
        ib_valid = Signal()
        ib_byte = Signal(8)
        ib_fill = Signal()             # `last` came early: zero fill
        m.d.comb += [
            ib_fill.eq((ub_be == 0) & eos),
            ib_valid.eq(running & in_more & ((ub_be != 0) | eos)),
            ib_byte.eq(Mux(ub_be != 0, ub_byte, 0)),
        ]
        ib_take = Signal()

        need_more = Signal()
        m.d.comb += need_more.eq(ipos + ub_cnt < c.length)
        m.d.comb += self.i.ready.eq(running & ~eos & need_more &
                                    ((ub_be == 0) | (ib_take & ub_single)))
        with m.If(ib_take):
            m.d.sync += ipos.eq(ipos + 1)
            with m.If(ib_fill):
                m.d.sync += err_len.eq(1)
            with m.Else():
                m.d.sync += ub_be.eq(ub_be & ~low)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [ub_data.eq(self.i.payload.data),
                         ub_be.eq(self.i.payload.be),
                         eos.eq(self.i.payload.last)]

        # ---------------------------------------------------------------
        # MAC feed (declared early; the taps below need its ready).
        mf_ready = Signal()
        mf_push = Signal()
        mf_byte = Signal(8)

        # ---------------------------------------------------------------
        # Output packer: bytes → words.
        o_data = Signal(32)
        o_be = Signal(4)
        o_last = Signal()
        o_valid = Signal()
        o_lane = Signal(2)
        pk_ready = Signal()
        m.d.comb += [
            self.o.valid.eq(o_valid),
            self.o.payload.data.eq(o_data),
            self.o.payload.be.eq(o_be),
            self.o.payload.last.eq(o_last),
            pk_ready.eq(bad | ~o_valid | self.o.ready),
        ]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        # ---------------------------------------------------------------
        # Cipher block buffers and CBC chaining.
        cin_buf = Signal(64)
        cin_cnt = Signal(4)
        cin_saved = Signal(64)         # ciphertext of the block in the core (decrypt)
        cout_buf = Signal(64)
        cout_cnt = Signal(4)
        chain = Signal(64)
        pending = Signal()             # a started block not yet captured

        # Classification of the two positions.
        ic = Signal()
        oc = Signal()
        itap = Signal()
        otap = Signal()
        m.d.comb += [
            ic.eq(in_cipher(ipos)),
            oc.eq(in_cipher(opos)),
            itap.eq(tap_in & in_mac(ipos)),
            otap.eq(~tap_in & in_mac(opos)),
        ]

        # Output byte at opos: from the cipher output buffer or passed through.
        pt_valid = Signal()
        m.d.comb += pt_valid.eq(ib_valid & (ipos == opos) & ~oc)
        ob_byte = Signal(8)
        m.d.comb += ob_byte.eq(Mux(oc, cout_buf[56:64], ib_byte))
        ob_take_c = Signal()
        ob_take_pt = Signal()
        m.d.comb += [
            ob_take_c.eq(running & oc & (cout_cnt != 0) & pk_ready &
                         (~otap | mf_ready)),
            ob_take_pt.eq(pt_valid & pk_ready & (~otap | mf_ready) &
                          (~itap | mf_ready)),
        ]
        ob_take = Signal()
        m.d.comb += ob_take.eq(ob_take_c | ob_take_pt)
        ic_take = Signal()
        m.d.comb += ic_take.eq(ib_valid & ic & (cin_cnt < 8) & (~itap | mf_ready))
        m.d.comb += ib_take.eq(ic_take | ob_take_pt)

        # MAC tap.
        m.d.comb += [
            mf_push.eq(Mux(tap_in, ib_take & itap, ob_take & otap)),
            mf_byte.eq(Mux(tap_in, ib_byte, ob_byte)),
        ]

        # Packer write.
        final_byte = Signal()
        m.d.comb += final_byte.eq(opos == c.length - 1)
        with m.If(ob_take):
            m.d.sync += opos.eq(opos + 1)
            with m.If(~bad):
                with m.Switch(o_lane):
                    for lane in range(4):
                        with m.Case(lane):
                            if lane == 0:
                                m.d.sync += [o_data.eq(ob_byte), o_be.eq(1)]
                            else:
                                m.d.sync += [o_data[8 * lane:8 * lane + 8].eq(ob_byte),
                                             o_be[lane].eq(1)]
                with m.If((o_lane == 3) | final_byte):
                    m.d.sync += [o_valid.eq(1), o_last.eq(final_byte), o_lane.eq(0)]
                with m.Else():
                    m.d.sync += o_lane.eq(o_lane + 1)

        # Cipher input buffer.
        with m.If(ic_take):
            m.d.sync += [cin_buf.eq(Cat(ib_byte, cin_buf[0:56])),
                         cin_cnt.eq(cin_cnt + 1)]

        capture = Signal()
        m.d.comb += capture.eq(pending & ~des.busy &
                               ((cout_cnt == 0) | ((cout_cnt == 1) & ob_take_c)))
        new_chain = Signal(64)
        m.d.comb += new_chain.eq(Mux(dec, cin_saved, des.block_out))
        chain_eff = Signal(64)
        m.d.comb += chain_eff.eq(Mux(capture, new_chain, chain))
        des_start = Signal()
        m.d.comb += des_start.eq(running & (cin_cnt == 8) & ~des.busy &
                                 (~pending | capture))
        m.d.comb += [
            des.start.eq(des_start),
            des.decrypt.eq(dec),
            des.triple.eq(c.cipher == Cipher.TDES),
            des.key1.eq(c.key1),
            des.key2.eq(c.key2),
            des.key3.eq(c.key3),
            des.block_in.eq(Mux(dec, cin_buf, cin_buf ^ chain_eff)),
        ]
        with m.If(des_start):
            m.d.sync += [cin_saved.eq(cin_buf), cin_cnt.eq(0), pending.eq(1)]
        with m.Elif(capture):
            m.d.sync += pending.eq(0)
        with m.If(capture):
            m.d.sync += [
                cout_buf.eq(Mux(dec, des.block_out ^ chain, des.block_out)),
                cout_cnt.eq(8),
                chain.eq(new_chain),
            ]
        with m.Elif(ob_take_c):
            m.d.sync += [cout_buf.eq(cout_buf << 8), cout_cnt.eq(cout_cnt - 1)]

        # ---------------------------------------------------------------
        # MAC unit: 64-byte block buffer, padding, HMAC sequencing.
        mst = self.mac_state
        mbuf = Signal(512)             # byte j at bits [8*(63-j), 8*(64-j))
        bi = Signal(7)                 # bytes in mbuf (0..64)
        mcnt = Signal(LEN_BITS)        # MAC-region bytes fed so far
        h = Signal(160)                # running hash state
        outer = Signal(160)            # HMAC outer midstate
        s_pending = Signal()           # a compression whose result is not yet written back
        s_dest_outer = Signal()
        wb = Signal()
        m.d.comb += wb.eq(s_pending & ~sha.busy)
        h_eff = Signal(160)
        m.d.comb += h_eff.eq(Mux(wb & ~s_dest_outer, sha.state_out, h))
        core_free = Signal()
        m.d.comb += core_free.eq(~sha.busy)

        bitlen = Signal(64)
        m.d.comb += bitlen.eq((c.mac_len + Mux(hmac, SHA1_BLOCK, 0)) << 3)

        # Padded final block (FIPS 180-4 §5.1.1), in its own module (see
        # _Padder) so pysim only evaluates it when the MAC buffer changes.
        m.submodules.padder = padder = _Padder()
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
        m.d.comb += all_fed.eq(mcnt == c.mac_len)
        m.d.comb += [
            issue_data.eq((mst == MacState.DATA) & (bi == SHA1_BLOCK) & core_free),
            issue_pad1.eq((mst == MacState.DATA) & all_fed & (bi != SHA1_BLOCK) &
                          core_free),
        ]
        sha_start = Signal()
        blk = Signal(512)
        st_in = Signal(160)
        with m.Switch(mst):
            with m.Case(MacState.KEY_IPAD):
                m.d.comb += [sha_start.eq(core_free), blk.eq(c.mac_key ^ IPAD),
                             st_in.eq(sha1_iv_int())]
                with m.If(core_free):
                    m.d.sync += [mst.eq(MacState.KEY_OPAD), s_dest_outer.eq(0)]
            with m.Case(MacState.KEY_OPAD):
                m.d.comb += [sha_start.eq(core_free), blk.eq(c.mac_key ^ OPAD),
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
        sha_go = Signal()              # never start the core for an invalid command
        m.d.comb += sha_go.eq(sha_start & ~bad)
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
        m.d.comb += mf_ready.eq(((mst == MacState.KEY_IPAD) | (mst == MacState.KEY_OPAD) |
                                 (mst == MacState.DATA)) &
                                ((bi != SHA1_BLOCK) | issue_data))
        wp = Signal(7)
        m.d.comb += wp.eq(Mux(issue_data, 0, bi))
        with m.If(mf_push):
            m.d.sync += [mbuf.word_select(~wp[0:6], 8).eq(mf_byte),
                         bi.eq(wp + 1), mcnt.eq(mcnt + 1)]
        with m.Elif(issue_data):
            m.d.sync += bi.eq(0)

        # ---------------------------------------------------------------
        # Request sequencing.
        m.d.comb += self.cmd.ready.eq(state == EngineState.IDLE)
        res = self.result.payload
        mac_out = Signal(160)
        m.d.comb += mac_out.eq(Mux(c.trunc, Cat(Const(0, 64), h[64:160]), h))
        m.d.comb += [
            self.result.valid.eq(state == EngineState.RESULT),
            res.status.cipher_len.eq(err_cl),
            res.status.region.eq(err_rg),
            res.status.unsupported.eq(err_un),
            res.status.length.eq(err_len |
                                 ((c.length != 0) & (~eos | (ub_be != 0)))),
            res.mac.eq(Mux(mac_on, mac_out, 0)),
            res.iv.eq(chain),
        ]

        with m.Switch(state):
            with m.Case(EngineState.IDLE):
                with m.If(self.cmd.valid):
                    p = self.cmd.payload
                    m.d.sync += [
                        c.eq(p), state.eq(EngineState.RUN),
                        ipos.eq(0), opos.eq(0), ub_be.eq(0), eos.eq(0),
                        err_len.eq(0), o_lane.eq(0), cin_cnt.eq(0),
                        cout_cnt.eq(0), pending.eq(0), chain.eq(p.iv),
                        bi.eq(0), mcnt.eq(0), s_pending.eq(0),
                    ]
                    with m.Switch(p.mac):
                        with m.Case(Mac.SHA1):
                            m.d.sync += [h.eq(sha1_iv_int()), mst.eq(MacState.DATA)]
                        with m.Case(Mac.HMAC_KEY):
                            m.d.sync += mst.eq(MacState.KEY_IPAD)
                        with m.Case(Mac.HMAC_STATE):
                            m.d.sync += [h.eq(p.inner), outer.eq(p.outer),
                                         mst.eq(MacState.DATA)]
                        with m.Default():
                            m.d.sync += mst.eq(MacState.OFF)
            with m.Case(EngineState.RUN):
                with m.If(bad & (mst != MacState.OFF)):
                    m.d.sync += mst.eq(MacState.OFF)
                done = (ipos == c.length) & (opos == c.length) & ~o_valid & \
                    ~pending & (cout_cnt == 0) & \
                    ((mst == MacState.OFF) | (mst == MacState.DONE)) & ~s_pending
                with m.If(done):
                    m.d.sync += state.eq(EngineState.RESULT)
            with m.Case(EngineState.RESULT):
                with m.If(self.result.ready):
                    m.d.sync += state.eq(EngineState.IDLE)
        return m
