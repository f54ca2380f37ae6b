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

Key schedule: PC-1 of a key gives C0/D0; the subkey of round *i* is PC-2
of C0/D0 rotated left by the cumulative shift count of round *i* (FIPS 46-3
key schedule); decryption uses the subkeys in reverse order. All of it is
wiring, registered once per key load (``load``): the subkeys of every pass
in the order that pass uses them, so while blocks are computed each step
only selects its subkeys, and no schedule logic runs at all. A load costs no
clock: the caller loads in the clock its request starts, and the first
block can only start once 8 bytes have arrived.

Cost: Verilator evaluates a design's combinational logic every clock and
Amaranth's pysim whenever an input of a module changes, except the part of
a process behind a condition that is false. So the round logic (``_DESRounds``),
the step's subkey selection (``_DESSchedule``) and IP only run while a block
is computed (``start`` or ``busy``), the schedule and FP only in the clock
they are registered. The split into modules keeps pysim from re-running the
rounds for every byte loaded.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DESCore", "key_schedule", "pass_schedules", "des_cycles_per_block",
           "DES_ROUNDS_CHOICES",
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
    """The cipher function f(R, K) of FIPS 46-3 (p. 13) as logic in ``m``:
    P of the S-box outputs, the S-boxes reading E(R) ^ K (p. 13-15).

    E is wiring: S-box k reads FIPS bits 4k .. 4k + 5 of R, cyclically
    (bit 32 before bit 1, bit 1 after bit 32), so each S-box input is one
    slice of ``Cat(r[31], r, r[0])``. Only the S-box outputs are a named
    signal: Amaranth's pysim evaluates a module from the values of the
    previous delta cycle and re-runs all of it whenever one of its signals
    changes, so every named step of a chain costs a run of the module."""
    wrap = Cat(r[31], r, r[0])            # FIPS bits 32, 1, ..., 32, 1 from the top
    s = Signal(32, name=f"{name}_s")
    for k in range(8):                    # S1 reads FIPS bits 1..6 (MSB end)
        six = wrap[28 - 4 * k:34 - 4 * k] ^ subkey[42 - 6 * k:48 - 6 * k]
        nib = s[28 - 4 * k:32 - 4 * k]    # S1 output in the top nibble
        with m.Switch(six):
            for v, out in enumerate(_SBOX_LUTS[k]):
                with m.Case(v):
                    m.d.comb += nib.eq(out)
    return _perm(s, P, 32)


def _perm_bits(bits, table):
    """:func:`_perm` on a list of source bits (index 0 = Amaranth bit 0)."""
    width = len(bits)
    return [bits[width - table[i]] for i in reversed(range(len(table)))]


def key_schedule(key):
    """The 16 subkeys of ``key`` (FIPS 46-3 key schedule): PC-2 of C0/D0 =
    PC-1(key) rotated left by the cumulative shift count of each round.
    Pure wiring: each subkey bit is one bit of ``key`` (PC-1, the rotations
    and PC-2 composed here), so pysim compiles one slice per bit."""
    cd = _perm_bits(list(range(64)), PC1)        # C = top 28 bits, D = low 28 bits
    subkeys = []
    for n in CUM_SHIFTS:
        c, d = cd[0:28], cd[28:56]
        rot = c[-n:] + c[:-n] + d[-n:] + d[:-n]  # rotate_left(n) of each half
        subkeys.append(Cat(*(key[i] for i in _perm_bits(rot, PC2))))
    return subkeys


def pass_schedules(key1, key2, key3, decrypt, triple):
    """Subkeys of each pass in the order the pass uses them (EDE, FIPS 46-3
    annex / SP 800-67): 3DES encrypt E(K1) D(K2) E(K3), decrypt D(K3) E(K2)
    D(K1); single DES one pass with K1. Decryption takes a key's subkeys in
    reverse. Python values (for ``decrypt``/``triple``) choose the case."""
    ks = [key_schedule(k) for k in (key1, key2, key3)]
    keys = ((2, 1, 0) if decrypt else (0, 1, 2)) if triple else (0,)
    out = []
    for p, k in enumerate(keys):
        reverse = bool(decrypt) ^ (p == 1)
        out.append(ks[k][::-1] if reverse else ks[k])
    return out


class DESCore(wiring.Component):
    """Iterative DES / 3DES-EDE block core (ECB on one block; CBC chaining is
    done by the caller).

    Ports:
      * ``load``: ``key1``..``key3``, ``decrypt`` and ``triple`` are sampled
        in this clock and the key schedule of every pass is registered (the
        FIPS 46-3 schedule of each key, in the order its pass uses it), so no
        schedule logic runs while blocks are computed. ``start`` may follow
        from the next clock on; a new ``load`` only while ``busy`` is low.
      * ``start``: begin a block (only when ``busy`` is low) on ``block_in``
        (sampled in that cycle) with the loaded keys.
      * ``busy``: rounds still to compute. The result appears on
        ``block_out`` in the first cycle ``busy`` is low after a ``start``
        and stays there until the next block's last round.
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
            "load": In(1),
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
        triple = Signal()          # of the loaded keys

        active = Signal()
        m.d.comb += active.eq(self.start | self.busy)
        step_e = Signal.like(step)
        pass_e = Signal.like(pas)
        m.d.comb += [step_e.eq(Mux(self.start, 0, step)), pass_e.eq(Mux(self.start, 0, pas))]

        m.submodules.schedule = ks = _DESSchedule(rpc)
        m.d.comb += [
            ks.load.eq(self.load), ks.decrypt.eq(self.decrypt), ks.triple.eq(self.triple),
            ks.key1.eq(self.key1), ks.key2.eq(self.key2), ks.key3.eq(self.key3),
            ks.active.eq(active), ks.step.eq(step_e), ks.pass_.eq(pass_e),
        ]
        with m.If(self.load):
            m.d.sync += triple.eq(self.triple)

        # The rounds start from IP(block_in) in the start clock (IP is
        # wiring, evaluated only then), else from the registers.
        m.submodules.rounds = rnd = _DESRounds(rpc)
        with m.If(self.start):
            ipb = _perm(self.block_in, IP, 64)
            m.d.comb += [rnd.l_in.eq(ipb[32:64]), rnd.r_in.eq(ipb[0:32])]
        with m.Else():
            m.d.comb += [rnd.l_in.eq(lreg), rnd.r_in.eq(rreg)]
        m.d.comb += [rnd.active.eq(active), rnd.subkeys.eq(ks.subkeys)]
        left, right = rnd.l_out, rnd.r_out

        last_step = step_e == steps - 1
        last_pass = Mux(triple, pass_e == 2, pass_e == 0)
        with m.If(active):
            with m.If(last_step):
                # End of a pass: swap (R16 L16); FP/IP between passes cancel.
                m.d.sync += [lreg.eq(right), rreg.eq(left), step.eq(0)]
                with m.If(last_pass):
                    # FP of the preoutput (R16 L16) (FIPS 46-3 p. 10), wiring
                    m.d.sync += [self.busy.eq(0), pas.eq(0),
                                 self.block_out.eq(_perm(Cat(left, right), FP, 64))]
                with m.Else():
                    m.d.sync += [self.busy.eq(1), pas.eq(pass_e + 1)]
            with m.Else():
                m.d.sync += [lreg.eq(left), rreg.eq(right),
                             step.eq(step_e + 1), pas.eq(pass_e),
                             self.busy.eq(1)]
        return m


class _DESSchedule(wiring.Component):
    """The registered key schedule: at ``load``, every pass's 16 subkeys in
    the order the pass uses them (:func:`pass_schedules`, pure wiring of the
    keys, evaluated only in that clock); while ``active``, the ``rpc``
    subkeys of this step (``pass_``, ``step``), one register slice."""

    def __init__(self, rpc):
        self.rpc = rpc
        steps = DES_ROUNDS // rpc
        super().__init__({
            "load": In(1), "decrypt": In(1), "triple": In(1),
            "key1": In(64), "key2": In(64), "key3": In(64),
            "active": In(1), "step": In(range(steps)), "pass_": In(2),
            "subkeys": Out(48 * rpc),
        })

    def elaborate(self, platform):
        m = Module()
        rpc = self.rpc
        steps = DES_ROUNDS // rpc
        width = 48 * DES_ROUNDS                  # one pass
        # pass p at [p*width, (p+1)*width). Without reset: its next-state
        # logic then reads no reset, which Verilator would otherwise evaluate
        # on every input change too (twice a clock), not only after the clock
        # edge. Nothing reads it before a load: every request loads its keys
        # before its first block (``load`` is the CBC core's ``start``).
        sched = Signal(3 * width, reset_less=True)
        with m.If(self.load):
            with m.Switch(Cat(self.decrypt, self.triple)):
                for code in range(4):
                    dec, tri = code & 1, code >> 1
                    with m.Case(code):
                        passes = pass_schedules(self.key1, self.key2, self.key3, dec, tri)
                        m.d.sync += sched[:width * len(passes)].eq(
                            Cat(*(k for p in passes for k in p)))
        step_bits = len(self.step)
        with m.If(self.active):
            with m.Switch(Cat(self.step, self.pass_)):
                for p in range(3):
                    for st in range(steps):
                        lo = p * width + st * rpc * 48
                        with m.Case(st | p << step_bits):
                            m.d.comb += self.subkeys.eq(sched[lo:lo + 48 * rpc])
        return m


class _DESRounds(wiring.Component):
    """``rpc`` Feistel rounds (FIPS 46-3 p. 10): L' = R, R' = L ^ f(R, K).
    Evaluated only while ``active`` (the outputs are 0 otherwise)."""

    def __init__(self, rpc):
        self.rpc = rpc
        super().__init__({"active": In(1), "l_in": In(32), "r_in": In(32),
                          "subkeys": In(48 * rpc), "l_out": Out(32), "r_out": Out(32)})

    def elaborate(self, platform):
        m = Module()
        left, right = self.l_in, self.r_in
        with m.If(self.active):
            for j in range(self.rpc):
                kj = self.subkeys[48 * j:48 * (j + 1)]
                nr = Signal(32, name=f"r_{j}")
                m.d.comb += nr.eq(left ^ _f(m, right, kj, f"f{j}"))
                left, right = right, nr
            m.d.comb += [self.l_out.eq(left), self.r_out.eq(right)]
        return m
