"""A small stand-in for ``ocfsim_machine`` to test the Verilator backend alone.

Ports (flat, as the real machine's): ``attn`` (8-bit attention counter),
``cycle`` (64-bit cycle counter), and a command interface the host writes
with ``backend.set``: ``cmd_seq`` (a new value starts a command), ``cmd_op``,
``cmd_len``, ``cmd_src``, ``cmd_dst`` (word addresses). Commands:

``OP_DELAY``
    a step started when ``cmd_seq`` is written returns after exactly
    ``cmd_len + DELAY_LATENCY`` cycles, on the ``attn`` increment.
``OP_COPY``
    copy ``cmd_len`` words from ``cmd_src`` to ``cmd_dst`` through the
    ``ocfsim_dram`` instance (two cycles a word), then increment ``attn``.

Also the executor and entries that :func:`run_experiment` calls in the
simulator, with the signature of ``sim.experiment.execute``.
"""

import importlib
import time

from amaranth import Array, Cat, ClockSignal, Const, Instance, Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: Word-address width of the stub's DRAM: 2**16 words = 256 KB, room for a
#: 64 KB source and a 64 KB destination.
ADDR_W = 16
OP_DELAY, OP_COPY = 0, 1
#: Edges from writing cmd_seq to attn moving for OP_DELAY with cmd_len = 0:
#: the command is accepted at edge 1 (IDLE -> BUSY) and BUSY, finding
#: nothing left to count, increments attn at edge 2.
DELAY_LATENCY = 2


class StubMachine(wiring.Component):
    cmd_seq: In(8)
    cmd_op: In(2)
    cmd_len: In(ADDR_W + 1)
    cmd_src: In(ADDR_W)
    cmd_dst: In(ADDR_W)
    attn: Out(8)
    cycle: Out(64)
    mix: Out(32)

    def __init__(self, filler: int = 0):
        #: filler units: DES-round-like datapaths that make the model the size
        #: of a real machine for build/speed measurements (0 in the tests)
        self.filler = filler
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.cycle.eq(self.cycle + 1)
        mix = Const(0, 32)
        for i in range(self.filler):
            state = Signal(64, name=f"fill{i}", init=0x0123456789ABCDEF + i)
            sboxes = [Array(Const((j * 7 + k * 13 + i) % 16, 4) for j in range(64))
                      for k in range(8)]
            f = Cat(*(sboxes[k][state[6 * k:6 * k + 6]] for k in range(8)))
            m.d.sync += state.eq(Cat(state[32:], state[:32] ^ f.rotate_left(i % 7 + 1))
                                 + self.cycle[:64])
            mix = mix ^ state[:32]
        m.d.comb += self.mix.eq(mix)

        last = Signal(8)
        op = Signal(2)
        remaining = Signal(ADDR_W + 1)
        src = Signal(ADDR_W)
        dst = Signal(ADDR_W)
        rd_en = Signal()
        rd_data = Signal(32)
        wr_en = Signal()
        m.submodules.dram = Instance(
            "ocfsim_dram", p_ADDR_W=ADDR_W,
            i_clk=ClockSignal(), i_rd_en=rd_en, i_rd_addr=src, o_rd_data=rd_data,
            i_wr_en=wr_en, i_wr_addr=dst, i_wr_data=rd_data, i_wr_be=0b1111)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.cmd_seq != last):
                    m.d.sync += [last.eq(self.cmd_seq), op.eq(self.cmd_op),
                                 remaining.eq(self.cmd_len),
                                 src.eq(self.cmd_src), dst.eq(self.cmd_dst)]
                    m.next = "BUSY"
            with m.State("BUSY"):
                with m.If(remaining == 0):
                    m.d.sync += self.attn.eq(self.attn + 1)
                    m.next = "IDLE"
                with m.Elif(op == OP_DELAY):
                    m.d.sync += remaining.eq(remaining - 1)
                with m.Else():
                    m.d.comb += rd_en.eq(1)            # read src this edge ...
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += wr_en.eq(1)                # ... write it to dst the next
                m.d.sync += [src.eq(src + 1), dst.eq(dst + 1), remaining.eq(remaining - 1)]
                m.next = "BUSY"
        return m

def stub_design(filler: int = 0) -> tuple[str, list[tuple[str, str, int]]]:
    """(Verilog of module ``ocfsim_machine``, its flat port list)."""
    from sim.verilator.runner import machine_ports
    machine = StubMachine(filler)
    ports = machine_ports(machine)
    return verilog.convert(machine, name="ocfsim_machine"), ports


# ---------------------------------------------------------------------------
# In the simulator: the executor (same signature as sim.experiment.execute)
# and the entries it runs.
# ---------------------------------------------------------------------------

async def execute(backend, spec: dict, entry: str, args: dict) -> dict:
    module, _, func = entry.partition(":")
    fn = getattr(importlib.import_module(module), func)
    return await fn(backend, spec, **args)

async def command(backend, op: int, length: int, src: int = 0, dst: int = 0,
                  max_cycles: int | None = None) -> int:
    """Issue one command; step until attn moves; return the cycles taken."""
    backend.set("cmd_op", op)
    backend.set("cmd_len", length)
    backend.set("cmd_src", src)
    backend.set("cmd_dst", dst)
    backend.set("cmd_seq", (backend.get("cmd_seq") + 1) & 0xFF)
    attn = backend.get("attn")
    total = 0
    while backend.get("attn") == attn:
        total += await backend.step(max_cycles)
    return total

async def entry_steps(backend, spec, delays, limit):
    """Exact cycle counts: attn-terminated steps and limit-terminated steps."""
    out = {"delay": [], "limit": []}
    for d in delays:
        c0 = backend.cycle
        n = await command(backend, OP_DELAY, d)
        out["delay"].append([d, n, backend.cycle - c0])
    for n in limit:
        c0 = backend.cycle
        ran = await backend.step(n)
        out["limit"].append([n, ran, backend.cycle - c0])
    # A step that the limit cuts short while a command is pending, then the rest.
    attn0 = backend.get("attn")
    backend.set("cmd_op", OP_DELAY)
    backend.set("cmd_len", 100)
    backend.set("cmd_seq", (backend.get("cmd_seq") + 1) & 0xFF)
    first = await backend.step(50)
    rest = await backend.step(None)
    out["split"] = [first, rest, backend.get("attn") - attn0]
    return out

async def entry_dram(backend, spec, nbytes):
    """Backdoor round trip, RTL copy of backdoor data, backdoor read of the copy."""
    import os
    data = os.urandom(nbytes)
    t0 = time.perf_counter()
    backend.dram_write(0, data)
    back = backend.dram_read(0, nbytes)
    t_rt = time.perf_counter() - t0
    dst = 1 << (ADDR_W + 1)          # byte address: half way up the 256 KB DRAM
    cycles = await command(backend, OP_COPY, nbytes // 4, src=0, dst=dst // 4)
    copied = backend.dram_read(dst, nbytes)
    # Partial-word backdoor writes at odd offsets, then RTL copies them.
    backend.dram_write(5, b"\xaa\xbb\xcc")
    await command(backend, OP_COPY, 2, src=0, dst=dst // 4)
    return {"roundtrip_ok": back == data, "copy_ok": copied == data,
            "copy_cycles": cycles, "roundtrip_s": t_rt,
            "odd_ok": backend.dram_read(dst, 8) == data[:5] + b"\xaa\xbb\xcc",
            "size": backend.dram_size}

async def entry_fail(backend, spec, message):
    await backend.step(3)
    raise ValueError(message)

async def entry_env(backend, spec):
    """Is pytest's assertion rewriting in the simulator's Python: the import
    hook, and the loader of this module and of the backend's?"""
    import sys
    return {"hooks": [type(h).__name__ for h in sys.meta_path],
            "loaders": [type(sys.modules[m].__loader__).__name__
                        for m in (__name__, "sim.backend_verilator")]}

async def entry_progress(backend, spec, total):
    """Count ``total`` steps on a progress bar (sim.experiment.progress)."""
    from sim.experiment import progress
    bar = progress(total, unit="step")
    for _ in range(total):
        await backend.step(10)
        bar.update(1)
    bar.close()
    return {"relayed": bar is not None}

async def entry_bench(backend, spec, free_cycles, empty_steps):
    """Free-run speed and the cost of a step that returns at once."""
    t0, c0 = time.perf_counter(), time.process_time()
    ran = await backend.step(free_cycles)
    t_free, c_free = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    for _ in range(empty_steps):
        await backend.step(1)
    t_step = (time.perf_counter() - t0) / empty_steps
    # attn-terminated round trips (set + step + get), as the host loop does.
    t0 = time.perf_counter()
    n = 200
    for _ in range(n):
        await command(backend, OP_DELAY, 0)
    t_cmd = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        backend.get("attn")
    t_get = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for i in range(n):
        backend.set("cmd_src", i)
    t_set = (time.perf_counter() - t0) / n
    return {"free_cycles": ran, "free_s": t_free, "cycles_per_s": ran / t_free,
            "cycles_per_cpu_s": ran / c_free,
            "step1_s": t_step, "command_s": t_cmd, "get_s": t_get, "set_s": t_set}


# ---------------------------------------------------------------------------
# A standalone component for run_cocotb (the crypto-engine style of test:
# cocotb drives the clock and the ports cycle by cycle).
# ---------------------------------------------------------------------------

class Counter(wiring.Component):
    en: In(1)
    count: Out(16)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


def counter_verilog() -> str:
    return verilog.convert(Counter(), name="stub_counter")
