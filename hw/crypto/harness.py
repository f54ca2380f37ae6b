"""Pysim harness for :class:`~hw.crypto.engine.TransformEngine`: packs
commands, splits data into words with byte enables, drives the four streams
with optional random stalls, and returns what came out. Used by the tests
and by ``bench/crypto_cores.py``; contains no crypto (the reference model
lives in the tests)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from .engine import CommandLayout, ResultLayout, TransformEngine, WordLayout

__all__ = ["Response", "pack_command", "unpack_result", "to_words",
           "from_words", "run_engine", "CLOCK_PERIOD"]

CLOCK_PERIOD = 1 / 33e6   # 33 MHz PCI clock (PCI 2.3 §4.2.3); only labels the VCD


def _pack(layout, fields):
    raw = 0
    for name, f in layout:
        v = fields.get(name, 0)
        v = int(getattr(v, "value", v))
        if v < 0 or v >> f.width:
            raise ValueError(f"{name}={v:#x} does not fit {f.width} bits")
        raw |= v << f.offset
    return raw


def _unpack(layout, raw):
    out = {}
    for name, f in layout:
        v = (raw >> f.offset) & ((1 << f.width) - 1)
        if isinstance(f.shape, type(ResultLayout)):   # nested struct
            v = _unpack(f.shape, v)
        out[name] = v
    return out


def pack_command(**fields):
    """Raw integer of a CommandLayout record. Unknown/raw enum values are
    allowed (to build invalid commands)."""
    return _pack(CommandLayout, fields)


def unpack_result(raw):
    return _unpack(ResultLayout, raw)


@dataclass
class Response:
    out: bytes = b""
    words: list = field(default_factory=list)
    status: dict = field(default_factory=dict)
    mac: int = 0
    iv: int = 0
    cycles: int = 0            # command accepted → result valid


def to_words(data, rng=None, sparse=0.0):
    """Split ``data`` into (data, be, last) words. With ``sparse`` > 0 some
    lanes are left empty (random byte enables), as an unaligned DMA would."""
    words = []
    i = 0
    while i < len(data):
        w = be = 0
        for lane in range(4):
            if i >= len(data):
                break
            if rng is not None and sparse and rng.random() < sparse:
                continue
            w |= data[i] << (8 * lane)
            be |= 1 << lane
            i += 1
        words.append([w, be, 0])
    if words:
        words[-1][2] = 1
    return [tuple(x) for x in words]


def from_words(words):
    out = bytearray()
    for w, be, _last in words:
        for lane in range(4):
            if be >> lane & 1:
                out.append((w >> (8 * lane)) & 0xFF)
    return bytes(out)


def _word_raw(w, be, last):
    return _pack(WordLayout, {"data": w, "be": be, "last": last})


def run_engine(requests, *, des_rounds=1, sha_rounds=1, tls_orders=True, tls_onepass=False,
               in_stall=0.0, out_stall=0.0, res_stall=0.0, sparse=0.0,
               seed=0, words=None, expect_out=None, max_cycles=None,
               vcd=None, engine=None):
    """Run ``requests`` (list of (cmd_fields, data)) back to back through one
    engine and return a list of :class:`Response`.

    ``words``: optional per-request word lists (overrides the split of the
    data). ``expect_out``: per request, whether output words are expected
    (False for invalid commands and empty requests); default: any data.
    Stall probabilities apply per cycle to the input valid, output ready and
    result ready. Raises ``TimeoutError`` if not finished in ``max_cycles``.
    """
    rng = random.Random(seed)
    dut = engine or TransformEngine(des_rounds=des_rounds, sha_rounds=sha_rounds,
                                    tls_orders=tls_orders, tls_onepass=tls_onepass)
    reqs = [(dict(c), bytes(d)) for c, d in requests]
    if words is None:
        words = [to_words(d, rng, sparse) for _, d in reqs]
    if expect_out is None:
        expect_out = [len(d) > 0 for _, d in reqs]
    total = sum(len(d) for _, d in reqs)
    if max_cycles is None:
        max_cycles = 2000 + 400 * len(reqs) + total * (60 + 200 * max(in_stall, out_stall))
    resp = [Response() for _ in reqs]
    state = {"cycle": 0, "done": 0}

    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)

    async def clock_count(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1

    async def drive_cmd(ctx):
        for n, (c, _) in enumerate(reqs):
            ctx.set(dut.cmd.payload.as_value(), pack_command(**c))
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            resp[n].cycles = -state["cycle"]
            ctx.set(dut.cmd.valid, 0)
            ctx.set(dut.result.ready, 0)
            while True:
                if res_stall and rng.random() < res_stall:
                    ctx.set(dut.result.ready, 0)
                    await ctx.tick()
                    continue
                ctx.set(dut.result.ready, 1)
                *_, raw, valid = await ctx.tick().sample(dut.result.payload.as_value(),
                                                     dut.result.valid)
                if valid:
                    break
            ctx.set(dut.result.ready, 0)
            r = unpack_result(raw.value if hasattr(raw, "value") else int(raw))
            resp[n].status = r["status"]
            resp[n].mac = r["mac"]
            resp[n].iv = r["iv"]
            resp[n].cycles += state["cycle"]
            state["done"] += 1

    async def drive_in(ctx):
        for ws in words:
            for w, be, last in ws:
                while in_stall and rng.random() < in_stall:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.payload.as_value(), _word_raw(w, be, last))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def collect_out(ctx):
        for n, exp in enumerate(expect_out):
            if not exp:
                continue
            while True:
                if out_stall and rng.random() < out_stall:
                    ctx.set(dut.o.ready, 0)
                    await ctx.tick()
                    continue
                ctx.set(dut.o.ready, 1)
                *_, raw, valid = await ctx.tick().sample(dut.o.payload.as_value(), dut.o.valid)
                if valid:
                    v = raw.value if hasattr(raw, "value") else int(raw)
                    wd = (v & 0xFFFFFFFF, (v >> 32) & 0xF, (v >> 36) & 1)
                    resp[n].words.append(wd)
                    if wd[2]:
                        break
            ctx.set(dut.o.ready, 0)
            resp[n].out = from_words(resp[n].words)

    sim.add_testbench(clock_count, background=True)
    sim.add_testbench(drive_cmd)
    sim.add_testbench(drive_in, background=True)
    sim.add_testbench(collect_out, background=True)

    def loop():
        while sim.advance():
            if state["cycle"] > max_cycles:
                break
    if vcd:
        with sim.write_vcd(vcd):
            loop()
    else:
        loop()
    if state["done"] != len(reqs):
        raise TimeoutError(f"engine finished {state['done']}/{len(reqs)} requests "
                           f"in {max_cycles} cycles")
    return resp
