"""SHA-1 compression core continuing from an arbitrary midstate (FIPS 180-4).

Values are big-endian as in FIPS 180-4: a 160-bit state is
``H0 << 128 | H1 << 96 | ... | H4`` and a 512-bit block is
``int.from_bytes(block, "big")`` (word W0 in the top 32 bits).

``rounds_per_cycle`` of the 80 rounds are unrolled per clock (any divisor of
80). As in the DES core the first rounds are computed in the ``start``
cycle, so one block costs exactly ``80 / rounds_per_cycle`` cycles. The
message schedule is a 16-word window: W[t+16] = ROTL1(W[t+13] ^ W[t+8] ^
W[t+2] ^ W[t]) (FIPS 180-4 §6.1.2 step 1, written as a sliding window).

Message padding is not done here: it is part of whatever feeds the core
(see :mod:`hw.crypto.engine`), because it depends on the message length.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SHA1Core", "SHA1_IV", "SHA1_K", "sha1_cycles_per_block",
           "SHA_ROUNDS_CHOICES"]

# FIPS 180-4 §5.3.1: initial hash value H(0).
SHA1_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
# FIPS 180-4 §4.2.1: constants K for rounds 0-19, 20-39, 40-59, 60-79.
SHA1_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)
SHA1_ROUNDS = 80                                   # FIPS 180-4 §6.1.2
SHA_ROUNDS_CHOICES = tuple(r for r in range(1, 81) if 80 % r == 0)


def sha1_iv_int():
    v = 0
    for h in SHA1_IV:
        v = (v << 32) | h
    return v


def sha1_cycles_per_block(rounds_per_cycle):
    """Cycles one 64-byte block occupies the core."""
    return SHA1_ROUNDS // rounds_per_cycle


def _rotl(x, n):
    return Cat(x[32 - n:32], x[0:32 - n])


class SHA1Core(wiring.Component):
    """Iterative SHA-1 compression function.

    * ``start``: begin a compression of ``block`` from ``state_in`` (only
      while ``busy`` is low; both are sampled in that cycle only).
    * ``busy``: rounds still to do. ``state_out`` = ``state_in`` + the
      compressed working variables (FIPS 180-4 §6.1.2 step 4) is valid from
      the first cycle ``busy`` is low after a ``start`` until the next one.
    * ``round``: cycle counter within the block (integer, for VCDs).
    """

    def __init__(self, rounds_per_cycle=1):
        if rounds_per_cycle not in SHA_ROUNDS_CHOICES:
            raise ValueError(f"rounds_per_cycle must divide 80: {SHA_ROUNDS_CHOICES}")
        self.rounds_per_cycle = rounds_per_cycle
        super().__init__({
            "start": In(1),
            "state_in": In(160),
            "block": In(512),
            "busy": Out(1),
            "state_out": Out(160),
            "round": Out(range(SHA1_ROUNDS // rounds_per_cycle)),
        })

    def elaborate(self, platform):
        m = Module()
        rpc = self.rounds_per_cycle
        steps = SHA1_ROUNDS // rpc

        regs = [Signal(32, name=n) for n in "abcde"]
        wreg = [Signal(32, name=f"w{i}") for i in range(16)]
        h0 = Signal(160)
        cyc = self.round

        def word(v, i, n):          # word i (0 = most significant) of n words
            return v[32 * (n - 1 - i):32 * (n - i)]

        # All of the round logic only runs while a block is computed (Verilator
        # and pysim skip a process's branch whose condition is false).
        active = Signal()
        m.d.comb += active.eq(self.start | self.busy)
        with m.If(active):
            # Effective inputs of this cycle (start folds the first rounds in).
            eff = [Signal(32, name=f"{n}_in") for n in "abcde"]
            for i, (e, r) in enumerate(zip(eff, regs)):
                m.d.comb += e.eq(Mux(self.start, word(self.state_in, i, 5), r))
            ext = [Signal(32, name=f"x{i}") for i in range(16)]
            for i, (x, w) in enumerate(zip(ext, wreg)):
                m.d.comb += x.eq(Mux(self.start, word(self.block, i, 16), w))
            for j in range(16, rpc + 16):
                x = Signal(32, name=f"x{j}")
                m.d.comb += x.eq(_rotl(ext[j - 3] ^ ext[j - 8] ^ ext[j - 14] ^ ext[j - 16], 1))
                ext.append(x)
            cyc_e = Signal.like(cyc)
            m.d.comb += cyc_e.eq(Mux(self.start, 0, cyc))
            h0_e = Signal(160)
            m.d.comb += h0_e.eq(Mux(self.start, self.state_in, h0))

            a, b, c, d, e = eff
            for j in range(rpc):
                # Round index t = cyc * rpc + j; pick f_t and K_t (FIPS 180-4 §4.1.1).
                ch = (b & c) | (~b & d)
                par = b ^ c ^ d
                maj = (b & c) | (b & d) | (c & d)
                f = Signal(32, name=f"f{j}")
                k = Signal(32, name=f"k{j}")
                stage_bounds = [(20 - j + rpc - 1) // rpc, (40 - j + rpc - 1) // rpc,
                                (60 - j + rpc - 1) // rpc]  # first cyc with t >= 20/40/60
                with m.If(cyc_e < stage_bounds[0]):
                    m.d.comb += [f.eq(ch), k.eq(SHA1_K[0])]
                with m.Elif(cyc_e < stage_bounds[1]):
                    m.d.comb += [f.eq(par), k.eq(SHA1_K[1])]
                with m.Elif(cyc_e < stage_bounds[2]):
                    m.d.comb += [f.eq(maj), k.eq(SHA1_K[2])]
                with m.Else():
                    m.d.comb += [f.eq(par), k.eq(SHA1_K[3])]
                t = Signal(32, name=f"t{j}")
                m.d.comb += t.eq(_rotl(a, 5) + f + e + k + ext[j])
                c30 = Signal(32, name=f"c{j}")
                m.d.comb += c30.eq(_rotl(b, 30))
                a, b, c, d, e = t, a, c30, c, d

        with m.If(active):
            m.d.sync += [r.eq(v) for r, v in zip(regs, (a, b, c, d, e))]
            m.d.sync += [w.eq(x) for w, x in zip(wreg, ext[rpc:rpc + 16])]
            m.d.sync += h0.eq(h0_e)
            with m.If(cyc_e == steps - 1):
                m.d.sync += [self.busy.eq(0), cyc.eq(0)]
                m.d.sync += self.state_out.eq(Cat(*[
                    (word(h0_e, i, 5) + v)[0:32]
                    for i, v in reversed(list(enumerate((a, b, c, d, e))))]))
            with m.Else():
                m.d.sync += [self.busy.eq(1), cyc.eq(cyc_e + 1)]
        return m
