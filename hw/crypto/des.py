"""DES / 3DES-EDE block core with the key schedule in hardware.

Bit numbering follows FIPS 46-3: bit 1 is the most significant bit of the
first byte. A 64-bit block or key is carried as ``int.from_bytes(b, "big")``,
so FIPS bit *n* of a 64-bit value is Amaranth bit ``64 - n``.

The core is a plain iterative datapath: ``rounds_per_cycle`` (1, 2, 4, 8 or
16) Feistel rounds are unrolled per clock. The first rounds are computed in
the same cycle as ``start`` (the initial permutation is wiring), so a block
costs exactly ``passes * 16 / rounds_per_cycle`` cycles, with ``passes`` = 3
for 3DES-EDE and 1 for single DES. Between the three 3DES passes FP and IP
cancel, so the halves simply carry over (swapped).

Key schedule: PC-1 of the selected key gives C0/D0; the subkey of round *i*
is PC-2 of C0/D0 rotated left by the cumulative shift count of round *i*
(FIPS 46-3 key schedule). Decryption uses the subkeys in reverse order.
All of that is combinational logic on the key inputs, so keys can change
per request with no set-up time.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DESCore", "DESKeySchedule", "des_cycles_per_block", "DES_ROUNDS_CHOICES",
           "IP", "FP", "E", "P", "PC1", "PC2", "SHIFTS", "SBOXES"]

# FIPS 46-3, "Initial Permutation IP" (p. 10).
IP = [58, 50, 42, 34, 26, 18, 10, 2,
      60, 52, 44, 36, 28, 20, 12, 4,
      62, 54, 46, 38, 30, 22, 14, 6,
      64, 56, 48, 40, 32, 24, 16, 8,
      57, 49, 41, 33, 25, 17, 9, 1,
      59, 51, 43, 35, 27, 19, 11, 3,
      61, 53, 45, 37, 29, 21, 13, 5,
      63, 55, 47, 39, 31, 23, 15, 7]

# FIPS 46-3, "Inverse Initial Permutation IP^-1" (p. 10): computed as the
# inverse of IP rather than typed, so the two cannot disagree.
FP = [0] * 64
for _i, _src in enumerate(IP):
    FP[_src - 1] = _i + 1

# FIPS 46-3, "E BIT-SELECTION TABLE" (p. 13).
E = [32, 1, 2, 3, 4, 5,
     4, 5, 6, 7, 8, 9,
     8, 9, 10, 11, 12, 13,
     12, 13, 14, 15, 16, 17,
     16, 17, 18, 19, 20, 21,
     20, 21, 22, 23, 24, 25,
     24, 25, 26, 27, 28, 29,
     28, 29, 30, 31, 32, 1]

# FIPS 46-3, permutation P (p. 15).
P = [16, 7, 20, 21, 29, 12, 28, 17,
     1, 15, 23, 26, 5, 18, 31, 10,
     2, 8, 24, 14, 32, 27, 3, 9,
     19, 13, 30, 6, 22, 11, 4, 25]

# FIPS 46-3, primitive functions S1..S8 (Appendix 1, p. 17-18):
# SBOXES[k][row][col].
SBOXES = [
    [[14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7],
     [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
     [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0],
     [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13]],
    [[15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10],
     [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
     [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15],
     [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9]],
    [[10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8],
     [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
     [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7],
     [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12]],
    [[7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15],
     [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
     [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4],
     [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14]],
    [[2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9],
     [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
     [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14],
     [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3]],
    [[12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11],
     [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
     [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6],
     [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13]],
    [[4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1],
     [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
     [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2],
     [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12]],
    [[13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7],
     [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
     [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8],
     [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11]],
]

# FIPS 46-3, "Permuted choice 1 (PC-1)" (p. 20).
PC1 = [57, 49, 41, 33, 25, 17, 9,
       1, 58, 50, 42, 34, 26, 18,
       10, 2, 59, 51, 43, 35, 27,
       19, 11, 3, 60, 52, 44, 36,
       63, 55, 47, 39, 31, 23, 15,
       7, 62, 54, 46, 38, 30, 22,
       14, 6, 61, 53, 45, 37, 29,
       21, 13, 5, 28, 20, 12, 4]

# FIPS 46-3, "Permuted choice 2 (PC-2)" (p. 21).
PC2 = [14, 17, 11, 24, 1, 5,
       3, 28, 15, 6, 21, 10,
       23, 19, 12, 4, 26, 8,
       16, 7, 27, 20, 13, 2,
       41, 52, 31, 37, 47, 55,
       30, 40, 51, 45, 33, 48,
       44, 49, 39, 56, 34, 53,
       46, 42, 50, 36, 29, 32]

# FIPS 46-3, left shifts per iteration of the key schedule (p. 20).
SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
# Cumulative rotation of C/D before round i (0-based): sum(SHIFTS[:i+1]).
CUM_SHIFTS = [sum(SHIFTS[:i + 1]) for i in range(16)]

DES_ROUNDS = 16                       # FIPS 46-3: 16 iterations
DES_ROUNDS_CHOICES = (1, 2, 4, 8, 16)  # divisors of 16 (FIPS 46-3)


def des_cycles_per_block(rounds_per_cycle, triple):
    """Cycles one 8-byte block occupies the core (3 passes for EDE)."""
    return (3 if triple else 1) * DES_ROUNDS // rounds_per_cycle


def _perm(value, table, width):
    """FIPS-style permutation: output bit i (1-based, MSB first) is input
    bit ``table[i-1]``. Pure wiring."""
    return Cat(*[value[width - table[i]] for i in reversed(range(len(table)))])


def _sbox_lut(k):
    """S-box k as a 64-entry table indexed by the raw 6-bit input b1..b6
    (row = b1 b6, column = b2..b5, FIPS 46-3 p. 17)."""
    lut = []
    for v in range(64):
        row = ((v >> 5) & 1) << 1 | (v & 1)
        col = (v >> 1) & 0xF
        lut.append(SBOXES[k][row][col])
    return lut


_SBOX_LUTS = [_sbox_lut(k) for k in range(8)]


def _f(m, r, subkey, name):
    """The cipher function f(R, K) of FIPS 46-3 (p. 13), as logic in ``m``.
    Intermediate values are named signals: it keeps the pysim netlist (and
    the VCD) small and readable."""
    x = Signal(48, name=f"{name}_ex")
    m.d.comb += x.eq(_perm(r, E, 32) ^ subkey)
    s = Signal(32, name=f"{name}_s")
    for k in range(8):                    # S1 reads FIPS bits 1..6 (MSB end)
        six = x[42 - 6 * k:48 - 6 * k]
        nib = s[28 - 4 * k:32 - 4 * k]    # S1 output in the top nibble
        with m.Switch(six):
            for v, out in enumerate(_SBOX_LUTS[k]):
                with m.Case(v):
                    m.d.comb += nib.eq(out)
    return _perm(s, P, 32)


class DESKeySchedule(wiring.Component):
    """PC-1, the C/D rotations and PC-2 for all 16 rounds of one key.

    A separate module on purpose: Amaranth's pysim re-evaluates a module's
    whole combinational logic when any of its inputs changes, and the key
    only changes between passes, so the schedule stays idle while the
    rounds run. In gates it is pure wiring plus nothing."""

    def __init__(self):
        super().__init__({"key": In(64), "subkeys": Out(48 * 16)})

    def elaborate(self, platform):
        m = Module()
        cd = Signal(56, name="pc1")       # C = top 28 bits, D = low 28 bits
        m.d.comb += cd.eq(_perm(self.key, PC1, 64))
        for i, n in enumerate(CUM_SHIFTS):
            # Every permutation reads a plain signal: pysim compiles a slice
            # of a compound expression by recomputing the whole expression.
            rot = Signal(56, name=f"cd{i + 1}")
            m.d.comb += rot.eq(Cat(cd[0:28].rotate_left(n), cd[28:56].rotate_left(n)))
            m.d.comb += self.subkeys[48 * i:48 * (i + 1)].eq(_perm(rot, PC2, 56))
        return m


class DESCore(wiring.Component):
    """Iterative DES / 3DES-EDE block core (ECB on one block; CBC chaining is
    done by the caller).

    Ports:
      * ``start``: begin a block (only when ``busy`` is low); ``block_in``,
        ``decrypt``, ``triple`` and the keys are sampled in that cycle, and
        the keys must stay stable until ``busy`` falls.
      * ``busy``: rounds still to compute. The result appears on
        ``block_out`` in the first cycle ``busy`` is low after a ``start``
        and stays there until the next ``start``.
      * ``key1``/``key2``/``key3``: EDE keys. 3DES encrypt is
        E(K3, D(K2, E(K1, x))), decrypt D(K1, E(K2, D(K3, x))) (FIPS 46-3
        annex / SP 800-67). ``triple`` = 0 runs one pass with ``key1``.
      * ``round``/``pass_``: integer state for VCDs.
    """

    def __init__(self, rounds_per_cycle=1):
        if rounds_per_cycle not in DES_ROUNDS_CHOICES:
            raise ValueError(f"rounds_per_cycle must be one of {DES_ROUNDS_CHOICES}")
        self.rounds_per_cycle = rounds_per_cycle
        super().__init__({
            "start": In(1),
            "decrypt": In(1),
            "triple": In(1),
            "key1": In(64),
            "key2": In(64),
            "key3": In(64),
            "block_in": In(64),
            "busy": Out(1),
            "block_out": Out(64),
            "round": Out(range(DES_ROUNDS // rounds_per_cycle)),
            "pass_": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        rpc = self.rounds_per_cycle
        steps = DES_ROUNDS // rpc

        lreg = Signal(32)
        rreg = Signal(32)
        step = self.round          # register: step within a pass
        pas = self.pass_           # register: 0..2

        # Effective state this cycle: the start cycle computes from IP(block_in).
        ipb = Signal(64)
        m.d.comb += ipb.eq(_perm(self.block_in, IP, 64))
        l0 = Signal(32)
        r0 = Signal(32)
        step_e = Signal.like(step)
        pass_e = Signal(2)
        m.d.comb += [
            l0.eq(Mux(self.start, ipb[32:64], lreg)),
            r0.eq(Mux(self.start, ipb[0:32], rreg)),
            step_e.eq(Mux(self.start, 0, step)),
            pass_e.eq(Mux(self.start, 0, pas)),
        ]

        # Key for this pass and its direction (EDE).
        key = Signal(64)
        with m.Switch(pass_e):
            with m.Case(0):
                m.d.comb += key.eq(Mux(self.decrypt & self.triple, self.key3, self.key1))
            with m.Case(1):
                m.d.comb += key.eq(self.key2)
            with m.Default():
                m.d.comb += key.eq(Mux(self.decrypt, self.key1, self.key3))
        dec_pass = Signal()
        m.d.comb += dec_pass.eq(self.decrypt ^ (pass_e == 1))

        m.submodules.ks = ks = DESKeySchedule()
        m.d.comb += ks.key.eq(key)
        sub = [ks.subkeys[48 * i:48 * (i + 1)] for i in range(16)]

        left, right = l0, r0
        for j in range(rpc):
            enc_k = [sub[st * rpc + j] for st in range(steps)]
            dec_k = [sub[15 - (st * rpc + j)] for st in range(steps)]
            if steps == 1:
                k = Mux(dec_pass, dec_k[0], enc_k[0])
            else:
                k = Mux(dec_pass, Array(dec_k)[step_e], Array(enc_k)[step_e])
            kj = Signal(48, name=f"subkey{j}")
            m.d.comb += kj.eq(k)
            nr = Signal(32, name=f"r_{j}")
            m.d.comb += nr.eq(left ^ _f(m, right, kj, f"f{j}"))
            left, right = right, nr

        last_step = step_e == steps - 1
        last_pass = Mux(self.triple, pass_e == 2, pass_e == 0)
        active = self.start | self.busy
        with m.If(active):
            with m.If(last_step):
                # End of a pass: swap (R16 L16); FP/IP between passes cancel.
                m.d.sync += [lreg.eq(right), rreg.eq(left), step.eq(0)]
                with m.If(last_pass):
                    m.d.sync += [self.busy.eq(0), pas.eq(0)]
                with m.Else():
                    m.d.sync += [self.busy.eq(1), pas.eq(pass_e + 1)]
            with m.Else():
                m.d.sync += [lreg.eq(left), rreg.eq(right),
                             step.eq(step_e + 1), pas.eq(pass_e),
                             self.busy.eq(1)]

        preout = Signal(64)
        m.d.comb += preout.eq(Cat(rreg, lreg))
        m.d.comb += self.block_out.eq(_perm(preout, FP, 64))
        return m
