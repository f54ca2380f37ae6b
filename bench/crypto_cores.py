"""Crypto core throughput: cycles per block of the DES/3DES and
SHA-1 cores for each rounds-per-cycle setting, measured in simulation; Mbps
at 33 and 66 MHz; the engine parameters chosen per card with the engine's
measured long-packet throughput next to the datasheet rate (OCF paper §5.1);
and simulated cycles per wall-clock second of each core per backend.

    python -m bench.crypto_cores [--json] [--quick] [--backend pysim,verilator]

Simulation speed, per backend:

* ``pysim``: an Amaranth testbench starts each block and polls ``busy``
  every cycle (the engine row: the harness drives the four streams); that is
  how pysim is used, Python being the simulator.
* ``verilator``: a free-running build of the same RTL. A Verilog bench
  around the core generates the stimulus itself (``start`` whenever the core
  is idle, the next block from the last result; for the engine, the card's
  command on every request and an LFSR data stream, ``o``/``result`` always
  ready) and counts cycles and blocks; cocotb (clock in C++, not Python)
  only sets the constants, arms a stop cycle and times the run. So Python is
  off the per-cycle path: the figure is the Verilator model's own speed, the
  ceiling docs/architecture.md describes. The clock is generated inside the model
  (``--timing``), so a cycle costs two Verilator time steps of the cocotb
  main loop; that per-step cost, not the core's logic, sets the pace
  (measured 1-2 M cycles/s for every core and the engine alike). Builds use
  the runner's default optimisation (g++ -O2) and are cached; the first run
  compiles one model per configuration (15: ~15 s per core, ~70 s per
  engine on 2 cores; ``--quick``: the 6 the cards use). Cycles per block
  come out equal to pysim's, which checks the benches.
  The verilator rows give the ratio to the pysim row of the same core when
  both backends run (``x pysim``; in JSON also ``vs_pysim_cpu``, the ratio
  of cycles per CPU second, steadier on a loaded machine).

TLS one-pass (pysim, the BCM5820's engine, ``--tls-bytes``, default a full
16 KB record, RFC 2246 §6.2.1): engine cycles, command taken to result, of
one TLS 1.0 record (13-byte pseudo-header + data, HMAC-SHA1, 3DES-CBC)
done in one request with the one-pass extension (``mac_append``) against
the two requests an IPsec-order engine needs (the MAC over pseudo-header
and data, then 3DES over data, MAC and padding); both outputs are
compared, so the two paths are checked to give the same ciphertext.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth.sim import Simulator

from hw.crypto.des import DES_ROUNDS_CHOICES, DESCore
from hw.crypto.engine import Cipher, Mac, TransformEngine
from hw.crypto.harness import pack_command, run_engine
from hw.crypto.params import CARD_ENGINE_PARAMS, mbps
from hw.crypto.sha1 import SHA_ROUNDS_CHOICES, SHA1Core

__all__ = ["run", "format_table", "main"]

BLOCKS = 6              # blocks per core measurement
ENGINE_BYTES = 1024     # packet for the engine measurement (long-packet regime)
TLS_BYTES = 1 << 14     # a full TLS record's plaintext (RFC 2246 §6.2.1: 2^14)
TLS_HDR = 13            # seq, type, version, length: the MAC's pseudo-header (§6.2.3.1)
TLS_MAC = 20            # HMAC-SHA1


#: pysim speed measurement: after one untimed warm-up block (which pays for
#: pysim's lazy set-up), at least this many cycles or this many seconds.
PYSIM_MIN_CYCLES = 300
PYSIM_MIN_S = 0.5


def _measure_core(dut, setup, blocks):
    """Run back-to-back blocks; (cycles per block, cycles/s, cycles/CPU s).
    Cycles per block from the first ``blocks`` timed blocks; the speed from
    all timed blocks (see PYSIM_MIN_CYCLES)."""
    res = {}

    async def block(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        n = 1
        while ctx.get(dut.busy):
            await ctx.tick()
            n += 1
        return n

    async def tb(ctx):
        setup(ctx)
        if hasattr(dut, "load"):               # DES: register the key schedule
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
        await block(ctx)                       # warm-up, untimed
        total = nblocks = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while nblocks < blocks or (total < PYSIM_MIN_CYCLES and
                                   time.perf_counter() - t0 < PYSIM_MIN_S):
            total += await block(ctx)
            nblocks += 1
            if nblocks == blocks:
                res["per_block"] = total / blocks
        res["wall"] = time.perf_counter() - t0
        res["cpu"] = time.process_time() - c0
        res["cycles"] = total

    sim = Simulator(dut)
    sim.add_clock(1 / 33e6)
    sim.add_testbench(tb)
    sim.run()
    return (res["per_block"], res["cycles"] / res["wall"],
            res["cycles"] / max(res["cpu"], 1e-9))


def _des_rows(backend, blocks):
    rows = []
    for triple in (0, 1):
        for rpc in DES_ROUNDS_CHOICES:
            dut = DESCore(rpc)

            def setup(ctx, dut=dut, triple=triple):
                rng = random.Random(1)
                for p in (dut.key1, dut.key2, dut.key3, dut.block_in):
                    ctx.set(p, rng.getrandbits(64))
                ctx.set(dut.triple, triple)
            cpb, cps, cpu_cps = _measure_core(dut, setup, blocks)
            rows.append(dict(alg="3DES" if triple else "DES", backend=backend,
                             rounds_per_cycle=rpc, block_bytes=8, cycles_per_block=cpb,
                             mbps_33=mbps(cpb, 8, 33), mbps_66=mbps(cpb, 8, 66),
                             cycles_per_s=cps, cycles_per_cpu_s=cpu_cps))
    return rows


def _sha_rows(backend, blocks):
    rows = []
    for rpc in SHA_ROUNDS_CHOICES:
        if rpc > 20:
            continue            # 40/80 rounds per cycle: possible, not interesting
        dut = SHA1Core(rpc)

        def setup(ctx, dut=dut):
            rng = random.Random(2)
            ctx.set(dut.block, rng.getrandbits(512))
            ctx.set(dut.state_in, rng.getrandbits(160))
        cpb, cps, cpu_cps = _measure_core(dut, setup, blocks)
        rows.append(dict(alg="SHA1", backend=backend, rounds_per_cycle=rpc,
                         block_bytes=64, cycles_per_block=cpb,
                         mbps_33=mbps(cpb, 64, 33), mbps_66=mbps(cpb, 64, 66),
                         cycles_per_s=cps, cycles_per_cpu_s=cpu_cps))
    return rows


def _engine_rows(backend, nbytes):
    rows = []
    data = random.Random(3).randbytes(nbytes)
    for card, p in CARD_ENGINE_PARAMS.items():
        _, cmd = _engine_cmd(p, nbytes)
        # Simulated cycles per second of the run itself: the wall time of an
        # empty run (elaboration, simulator set-up) is subtracted.
        t0, c0 = time.perf_counter(), time.process_time()
        run_engine([], **p.engine_kwargs())
        t1, c1 = time.perf_counter(), time.process_time()
        r = run_engine([(cmd, data)], **p.engine_kwargs())[0]
        wall = max(1e-6, (time.perf_counter() - t1) - (t1 - t0))
        cpu = max(1e-6, (time.process_time() - c1) - (c1 - c0))
        cpb = r.cycles * 8 / nbytes
        rows.append(dict(alg=f"engine {card} {p.ref_what} {nbytes}B", backend=backend,
                         rounds_per_cycle=f"des {p.des_rounds}/sha {p.sha_rounds}",
                         block_bytes=8, cycles_per_block=cpb,
                         mbps_33=mbps(cpb, 8, 33), mbps_66=mbps(cpb, 8, 66),
                         clock_mhz=p.clock_mhz,
                         mbps=mbps(cpb, 8, p.clock_mhz), ref_mbps=p.ref_mbps,
                         meets_ref=mbps(cpb, 8, p.clock_mhz) >= p.ref_mbps,
                         cycles_per_s=r.cycles / wall, cycles_per_cpu_s=r.cycles / cpu))
    return rows


def tls_onepass_cycles(nbytes, card="bcm5820"):
    """Engine cycles of one TLS 1.0 record of ``nbytes`` in one request
    (one-pass extension) and in two (MAC, then encrypt), on ``card``'s
    engine parameters; raises if the two ciphertexts differ."""
    p = CARD_ENGINE_PARAMS[card]
    rng = random.Random(4)
    keys = dict(key1=rng.getrandbits(64), key2=rng.getrandbits(64), key3=rng.getrandbits(64),
                iv=rng.getrandbits(64))
    mid = dict(inner=rng.getrandbits(160), outer=rng.getrandbits(160))
    rec = rng.randbytes(TLS_HDR + nbytes)
    pad = -(nbytes + TLS_MAC + 1) % 8
    kw = p.engine_kwargs()
    one = run_engine([(dict(cipher=Cipher.TDES, mac=Mac.HMAC_STATE, order=1, length=len(rec),
                            cipher_skip=TLS_HDR, cipher_len=nbytes, mac_len=len(rec),
                            mac_append=1, pad_len=pad, **keys, **mid), rec)],
                     expect_out=[True], **kw)[0]
    mac = run_engine([(dict(mac=Mac.HMAC_STATE, length=len(rec), mac_len=len(rec), **mid),
                       rec)], **kw)[0]
    plain = rec[TLS_HDR:] + mac.mac.to_bytes(20, "big") + bytes([pad]) * (pad + 1)
    enc = run_engine([(dict(cipher=Cipher.TDES, length=len(plain), cipher_len=len(plain),
                            **keys), plain)], **kw)[0]
    if one.out[TLS_HDR:] != enc.out or one.iv != enc.iv:
        raise AssertionError("one-pass and two-request ciphertexts differ")
    return dict(card=card, bytes=nbytes, onepass_cycles=one.cycles,
                mac_cycles=mac.cycles, encrypt_cycles=enc.cycles,
                two_request_cycles=mac.cycles + enc.cycles,
                ratio=(mac.cycles + enc.cycles) / one.cycles,
                onepass_mbps=mbps(one.cycles, nbytes, p.clock_mhz),
                two_request_mbps=mbps(mac.cycles + enc.cycles, nbytes, p.clock_mhz))


# --------------------------------------------------------------------------
# Verilator: free-running benches (see the module docstring)

VL_PERIOD_NS = 30          # 33 MHz; only labels simulated time
VL_CALIBRATE = 20_000      # cycles of the first, sizing run
VL_TARGET_S = 0.5          # wall seconds of the measured run
VL_MAX_CYCLES = 1 << 34
VL_TOP = "cores_tb"
VL_DUT = "dut"


def _vl_bench(ports, drive, count, extra=()):
    """Verilog of the bench ``cores_tb`` around module ``dut``.

    ``ports``: the dut's ``(name, dir, width)``; ``drive``: input port →
    Verilog expression (the stimulus); every other input becomes a public
    reg cocotb sets once. ``count``: expression true in a cycle that
    completes a unit of work (a block started, a result taken). While
    ``go`` is high the bench counts ``cycles`` and ``blocks`` and toggles
    ``done`` in the cycle ``cycles == stop_at``.
    """
    decl, conn = [], []
    for name, direction, width in ports:
        rng = f"[{width - 1}:0] " if width > 1 else ""
        if direction == "in" and name not in drive:
            decl.append(f"    reg  {rng}{name} /*verilator public_flat_rw*/;")
        else:
            decl.append(f"    wire {rng}{name};")
        conn.append(f"        .{name}({name})")
    assigns = [f"    assign {name} = {expr};" for name, expr in drive.items()]
    pub = "/*verilator public_flat_rw*/"
    return "\n".join([
        "// Generated by bench/crypto_cores.py: free-running core bench",
        "`timescale 1ps/1ps",
        f"module {VL_TOP};",
        f"    reg clk {pub};",
        f"    reg rst {pub};",
        f"    reg go {pub};",
        f"    reg [63:0] stop_at {pub};",
        f"    reg [63:0] cycles {pub};",
        f"    reg [63:0] blocks {pub};",
        f"    reg done {pub};",
        *decl,
        *extra,
        *assigns,
        "    initial begin",
        "        clk = 1'b0; rst = 1'b1;",
        "        go = 1'b0; done = 1'b0; cycles = 64'd0; blocks = 64'd0;",
        "        stop_at = 64'd0;",
        "    end",
        f"    always #({VL_PERIOD_NS * 500}) clk = ~clk;   // clock inside the model",
        "    always @(posedge clk)",
        "        if (go) begin",
        "            cycles <= cycles + 64'd1;",
        f"            if ({count}) blocks <= blocks + 64'd1;",
        "            if (cycles == stop_at) done <= ~done;",
        "        end",
        f"    {VL_DUT} u_dut (",
        ",\n".join(["        .clk(clk)", "        .rst(rst)"] + conn),
        "    );",
        "endmodule",
        "",
    ])


def _vl_designs(quick):
    """[(key, component factory, drive, count, extra, settings)]; a setting is
    (row fields, {input: value}, bytes per counted unit)."""
    rng = random.Random(1)
    keys = {k: rng.getrandbits(64) for k in ("key1", "key2", "key3")}
    chosen = CARD_ENGINE_PARAMS.values()
    des_rpcs = sorted({p.des_rounds for p in chosen}) if quick else DES_ROUNDS_CHOICES
    sha_rpcs = sorted({p.sha_rounds for p in chosen}) if quick else \
        [r for r in SHA_ROUNDS_CHOICES if r <= 20]
    designs = []
    for rpc in des_rpcs:
        settings = [(dict(alg="3DES" if t else "DES", rounds_per_cycle=rpc, block_bytes=8),
                     dict(keys, triple=t, decrypt=0), 8) for t in (0, 1)]
        designs.append((f"des{rpc}", lambda rpc=rpc: DESCore(rpc),
                        {"load": "~go", "start": "go & ~busy",
                         "block_in": "block_out ^ blocks"},
                        "start", (), settings))
    for rpc in sha_rpcs:
        settings = [(dict(alg="SHA1", rounds_per_cycle=rpc, block_bytes=64), {}, 64)]
        designs.append((f"sha{rpc}", lambda rpc=rpc: SHA1Core(rpc),
                        {"start": "go & ~busy", "state_in": "state_out",
                         "block": "{state_out, state_out, state_out, blocks[31:0]}"},
                        "start", (), settings))
    for card, p in CARD_ENGINE_PARAMS.items():
        cmd, _ = _engine_cmd(p, ENGINE_BYTES)
        nwords = ENGINE_BYTES // 4
        extra = ("    reg [31:0] lfsr;", "    reg [15:0] widx;",
                 "    initial begin lfsr = 32'h1; widx = 16'd0; end",
                 "    always @(posedge clk) if (i__valid & i__ready) begin",
                 "        lfsr <= {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};",
                 f"        widx <= (widx == 16'd{nwords - 1}) ? 16'd0 : widx + 16'd1;",
                 "    end")
        drive = {"cmd__valid": "go", "i__valid": "go", "o__ready": "1'b1",
                 "result__ready": "1'b1",
                 "i__payload": f"{{widx == 16'd{nwords - 1}, 4'hf, lfsr}}"}
        settings = [(dict(alg=f"engine {card} {p.ref_what} {ENGINE_BYTES}B",
                          rounds_per_cycle=f"des {p.des_rounds}/sha {p.sha_rounds}",
                          block_bytes=8), {"cmd__payload": cmd}, ENGINE_BYTES)]
        designs.append((f"engine-{card}",
                        lambda p=p: TransformEngine(**p.engine_kwargs()),
                        drive, "result__valid", extra, settings))
    return designs


def _engine_cmd(p, nbytes, rng=None):
    """The card's benchmark request (3DES, + HMAC for the BCM5820): (raw
    command, command fields)."""
    rng = rng or random.Random(3)
    keys = dict(key1=rng.getrandbits(64), key2=rng.getrandbits(64), key3=rng.getrandbits(64))
    cmd = dict(cipher=Cipher.TDES, length=nbytes, cipher_len=nbytes, iv=1, **keys)
    if p.ref_what != "3DES":   # BCM5820 style: precomputed midstates, 12-byte MAC (ubsec.c)
        cmd.update(mac=Mac.HMAC_STATE, mac_len=nbytes, trunc=1,
                   inner=rng.getrandbits(160), outer=rng.getrandbits(160))
    return pack_command(**cmd), cmd


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send fd 1 to fd 2 (compilers, make) so ``--json`` stays one object."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _vl_build(design):
    from amaranth.back import verilog

    from sim.verilator.runner import build, machine_ports
    key, factory, drive, count, extra, _ = design
    dut = factory()
    sources = {f"{VL_DUT}.v": verilog.convert(dut, name=VL_DUT),
               f"{VL_TOP}.sv": _vl_bench(machine_ports(dut), drive, count, extra)}
    t0 = time.perf_counter()
    bdir = build(sources, VL_TOP, public=False, extra_args=("--timing",))
    return bdir, time.perf_counter() - t0


def _verilator_rows(quick):
    from sim.verilator.runner import run_cocotb
    designs = _vl_designs(quick)
    rows = []
    with _stdout_to_stderr():
        with ThreadPoolExecutor(max_workers=2) as pool:    # compile two at a time
            builds = list(pool.map(_vl_build, designs))
        for design, (bdir, build_s) in zip(designs, builds):
            settings = design[5]
            with tempfile.TemporaryDirectory(prefix="ocfsim-cores-") as tmp:
                cfg = Path(tmp, "cfg.json")
                cfg.write_text(json.dumps({"settings": [s[1] for s in settings],
                                           "result": str(Path(tmp, "out.json"))}))
                run_cocotb(bdir, VL_TOP, "bench.crypto_cores",
                           env={"OCFSIM_CORES_RUN": str(cfg)}, timeout_s=600)
                measured = json.loads(Path(tmp, "out.json").read_text())
            for (fields, _, unit_bytes), m in zip(settings, measured):
                cpb = m["cycles"] * fields["block_bytes"] / (m["blocks"] * unit_bytes)
                row = dict(fields, backend="verilator", cycles_per_block=cpb,
                           mbps_33=mbps(cpb, fields["block_bytes"], 33),
                           mbps_66=mbps(cpb, fields["block_bytes"], 66),
                           cycles_per_s=m["cycles"] / m["wall_s"],
                           cycles_per_cpu_s=m["cycles"] / max(m["cpu_s"], 1e-9),
                           sim_cycles=m["cycles"], wall_s=m["wall_s"], build_s=build_s)
                if fields["alg"].startswith("engine"):
                    p = CARD_ENGINE_PARAMS[fields["alg"].split()[1]]
                    row.update(clock_mhz=p.clock_mhz, mbps=mbps(cpb, 8, p.clock_mhz),
                               ref_mbps=p.ref_mbps,
                               meets_ref=mbps(cpb, 8, p.clock_mhz) >= p.ref_mbps)
                rows.append(row)
    return rows


if os.environ.get("OCFSIM_CORES_RUN"):
    # Inside the simulator (run_cocotb above names this module): the cocotb
    # side of the free-running bench. Python wakes only at the stop cycle.
    import cocotb
    from cocotb.triggers import FallingEdge, ValueChange

    @cocotb.test()
    async def free_run(dut):
        with open(os.environ["OCFSIM_CORES_RUN"]) as f:
            cfg = json.load(f)
        await FallingEdge(dut.clk)     # the bench's own clock; rst starts high
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        out = []
        for setting in cfg["settings"]:
            for name, value in setting.items():
                getattr(dut, name).value = value
            await FallingEdge(dut.clk)
            todo = VL_CALIBRATE
            for _ in range(2):             # sizing run, then the measured one
                c0, b0 = int(dut.cycles.value), int(dut.blocks.value)
                dut.stop_at.value = c0 + todo - 1
                dut.go.value = 1
                t0, cpu0 = time.perf_counter(), time.process_time()
                await ValueChange(dut.done)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                cycles = int(dut.cycles.value) - c0
                blocks = int(dut.blocks.value) - b0
                todo = int(min(VL_MAX_CYCLES, max(VL_CALIBRATE,
                                                  cycles * VL_TARGET_S / max(wall, 1e-6))))
            await FallingEdge(dut.clk)
            dut.go.value = 0
            await FallingEdge(dut.clk)
            out.append(dict(cycles=cycles, blocks=blocks, wall_s=wall, cpu_s=cpu))
        with open(cfg["result"], "w") as f:
            json.dump(out, f)


def _row_key(r):
    """Same core and setting on another backend (engine rows: same card)."""
    alg = " ".join(r["alg"].split()[:2]) if r["alg"].startswith("engine") else r["alg"]
    return alg, str(r["rounds_per_cycle"])


def run(backends=("pysim",), quick=False, tls_bytes=None) -> dict:
    rows = []
    notes = []
    tls = None
    for backend in backends:
        if backend == "pysim":
            blocks = 2 if quick else BLOCKS
            rows += _des_rows(backend, blocks)
            rows += _sha_rows(backend, blocks)
            rows += _engine_rows(backend, 256 if quick else ENGINE_BYTES)
            if tls_bytes != 0:
                tls = tls_onepass_cycles(tls_bytes or (256 if quick else TLS_BYTES))
        elif backend == "verilator":
            rows += _verilator_rows(quick)
            notes.append("verilator: free-running bench, stimulus generated in the "
                         "simulator, Python off the per-cycle path (g++ -O2 model)")
        else:
            raise ValueError(f"unknown backend {backend!r}")
    pysim = {_row_key(r): r["cycles_per_s"] for r in rows if r["backend"] == "pysim"}
    pysim_cpu = {_row_key(r): r["cycles_per_cpu_s"] for r in rows if r["backend"] == "pysim"}
    for r in rows:
        if r["backend"] != "pysim" and _row_key(r) in pysim:
            r["pysim_cycles_per_s"] = pysim[_row_key(r)]
            r["vs_pysim"] = r["cycles_per_s"] / pysim[_row_key(r)]
            r["vs_pysim_cpu"] = r["cycles_per_cpu_s"] / pysim_cpu[_row_key(r)]
    chosen = {card: dict(p.engine_kwargs(), clock_mhz=p.clock_mhz, ref_mbps=p.ref_mbps,
                         ref_what=p.ref_what, model_mbps=p.model_mbps(p.ref_what != "3DES"))
              for card, p in CARD_ENGINE_PARAMS.items()}
    out = {"bench": "cores", "backends": list(backends), "rows": rows, "chosen": chosen,
           "notes": notes}
    if tls is not None:
        out["tls"] = tls
    return out


def format_table(result) -> str:
    hdr = f"{'alg':<34} {'backend':<9} {'r/cyc':>12} {'cyc/blk':>8} {'Mbps@33':>8} " \
          f"{'Mbps@66':>8} {'ref':>6} {'cycles/s':>10} {'x pysim':>8}"
    lines = [hdr, "-" * len(hdr)]
    for r in result["rows"]:
        ref = f"{r['ref_mbps']:.0f}" if r.get("ref_mbps") else ""
        ratio = f"{r['vs_pysim']:.0f}x" if "vs_pysim" in r else ""
        lines.append(f"{r['alg']:<34} {r['backend']:<9} {str(r['rounds_per_cycle']):>12} "
                     f"{r['cycles_per_block']:>8.2f} {r['mbps_33']:>8.1f} {r['mbps_66']:>8.1f} "
                     f"{ref:>6} {r['cycles_per_s']:>10.0f} {ratio:>8}")
    lines.append("")
    lines.append("Chosen engine parameters (hw.crypto.CARD_ENGINE_PARAMS):")
    for card, c in result["chosen"].items():
        meas = [r for r in result["rows"] if r["alg"].startswith(f"engine {card}")
                and r.get("mbps")]
        # the longest packet measured (long-packet regime), pysim first
        meas.sort(key=lambda r: (-int(r["alg"].split()[-1].rstrip("B")), r["backend"]))
        m = f", measured {meas[0]['mbps']:.1f} Mbps ({meas[0]['alg'].split()[-1]})" \
            if meas else ""
        lines.append(f"  {card}: des_rounds={c['des_rounds']} sha_rounds={c['sha_rounds']} "
                     f"@ {c['clock_mhz']:.0f} MHz → model {c['model_mbps']:.1f} Mbps{m} "
                     f"{c['ref_what']} (datasheet {c['ref_mbps']:.0f} Mbps)")
    t = result.get("tls")
    if t:
        lines.append("")
        lines.append(f"TLS 1.0 record of {t['bytes']} B on the {t['card']} engine (pysim): "
                     f"one-pass {t['onepass_cycles']} cycles ({t['onepass_mbps']:.1f} Mbps), "
                     f"two requests {t['two_request_cycles']} (MAC {t['mac_cycles']} + "
                     f"encrypt {t['encrypt_cycles']}, {t['two_request_mbps']:.1f} Mbps): "
                     f"x{t['ratio']:.2f}")
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def build_parser():
    """The benchmark's options (``ocfsim bench cores``)."""
    from ocfsim.cli import Parser, name_list, out_options
    from sim.experiment import BACKENDS
    ap = Parser(prog="ocfsim bench cores",
                description="Cycles per block and Mbit/s of the DES/3DES and SHA-1 cores "
                            "per rounds-per-cycle setting, the cards' engines beside their "
                            "datasheet rates, and simulated cycles per second per backend.")
    out_options(ap, "nothing else")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--quick", action="store_true",
                    help="fewer blocks, shorter packets; verilator: only the cards' settings")
    ap.add_argument("--backend", action="append", type=name_list(BACKENDS),
                    metavar="pysim,verilator",
                    help="simulator(s), comma-separated or repeated; when not given: pysim")
    ap.add_argument("--tls-bytes", type=int, default=None, metavar="N",
                    help="plaintext bytes of the TLS one-pass record measured on pysim "
                         f"(default {TLS_BYTES}, --quick 256; 0: skip it)")
    return ap


def main(argv=None) -> int:
    from ocfsim.cli import print_result
    ap = build_parser()
    a = ap.parse_args(argv)
    backends = list(dict.fromkeys(b for group in (a.backend or [["pysim"]]) for b in group))
    if a.tls_bytes is not None and not 0 <= a.tls_bytes <= TLS_BYTES:
        ap.error(f"--tls-bytes must be 0..{TLS_BYTES}")
    res = run(tuple(backends), quick=a.quick, tls_bytes=a.tls_bytes)
    print_result(ap, argv, a, "cores", res, format_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
