"""Crypto core throughput (issue 3): cycles per block of the DES/3DES and
SHA-1 cores for each rounds-per-cycle setting, measured in simulation; Mbps
at 33 and 66 MHz; the engine parameters chosen per card with the engine's
measured long-packet throughput next to the datasheet rate (REFERENCE §1);
and simulated cycles per wall-clock second of each core per backend.

    python -m bench.crypto_cores [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

from amaranth.sim import Simulator

from hw.crypto.des import DES_ROUNDS_CHOICES, DESCore
from hw.crypto.engine import Cipher, Mac
from hw.crypto.harness import run_engine
from hw.crypto.params import CARD_ENGINE_PARAMS, mbps
from hw.crypto.sha1 import SHA_ROUNDS_CHOICES, SHA1Core

__all__ = ["run", "format_table", "main"]

BLOCKS = 6              # blocks per core measurement
ENGINE_BYTES = 1024     # packet for the engine measurement (long-packet regime)


def _measure_core(dut, setup, blocks):
    """Run ``blocks`` back-to-back blocks; (cycles per block, cycles/s)."""
    res = {}

    async def tb(ctx):
        setup(ctx)
        total = 0
        t0 = time.perf_counter()
        for _ in range(blocks):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            n = 1
            while ctx.get(dut.busy):
                await ctx.tick()
                n += 1
            total += n
        res["wall"] = time.perf_counter() - t0
        res["cycles"] = total

    sim = Simulator(dut)
    sim.add_clock(1 / 33e6)
    sim.add_testbench(tb)
    sim.run()
    return res["cycles"] / blocks, res["cycles"] / res["wall"]


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
            cpb, cps = _measure_core(dut, setup, blocks)
            rows.append(dict(alg="3DES" if triple else "DES", backend=backend,
                             rounds_per_cycle=rpc, block_bytes=8, cycles_per_block=cpb,
                             mbps_33=mbps(cpb, 8, 33), mbps_66=mbps(cpb, 8, 66),
                             ref_mbps=None, cycles_per_s=cps))
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
        cpb, cps = _measure_core(dut, setup, blocks)
        rows.append(dict(alg="SHA1", backend=backend, rounds_per_cycle=rpc,
                         block_bytes=64, cycles_per_block=cpb,
                         mbps_33=mbps(cpb, 64, 33), mbps_66=mbps(cpb, 64, 66),
                         ref_mbps=None, cycles_per_s=cps))
    return rows


def _engine_rows(backend, nbytes):
    rows = []
    rng = random.Random(3)
    data = rng.randbytes(nbytes)
    keys = dict(key1=rng.getrandbits(64), key2=rng.getrandbits(64), key3=rng.getrandbits(64))
    for card, p in CARD_ENGINE_PARAMS.items():
        mac = p.ref_what != "3DES"
        cmd = dict(cipher=Cipher.TDES, length=nbytes, cipher_len=nbytes, iv=1, **keys)
        if mac:   # BCM5820 style: precomputed midstates, 12-byte MAC (REFERENCE §4)
            cmd.update(mac=Mac.HMAC_STATE, mac_len=nbytes, trunc=1,
                       inner=rng.getrandbits(160), outer=rng.getrandbits(160))
        t0 = time.perf_counter()
        r = run_engine([(cmd, data)], **p.engine_kwargs())[0]
        wall = time.perf_counter() - t0
        cpb = r.cycles * 8 / nbytes
        rows.append(dict(alg=f"engine {card} {p.ref_what} {nbytes}B", backend=backend,
                         rounds_per_cycle=f"des {p.des_rounds}/sha {p.sha_rounds}",
                         block_bytes=8, cycles_per_block=cpb,
                         mbps_33=mbps(cpb, 8, 33), mbps_66=mbps(cpb, 8, 66),
                         clock_mhz=p.clock_mhz,
                         mbps_card=mbps(cpb, 8, p.clock_mhz), ref_mbps=p.ref_mbps,
                         meets_ref=mbps(cpb, 8, p.clock_mhz) >= p.ref_mbps,
                         cycles_per_s=r.cycles / wall))
    return rows


def run(backends=("pysim",), quick=False) -> dict:
    rows = []
    notes = []
    for backend in backends:
        if backend != "pysim":
            notes.append(f"backend {backend!r}: not measured yet (needs a Verilator "
                         "free-running core bench; see the issue 3 report)")
            continue
        blocks = 2 if quick else BLOCKS
        rows += _des_rows(backend, blocks)
        rows += _sha_rows(backend, blocks)
        rows += _engine_rows(backend, 256 if quick else ENGINE_BYTES)
    chosen = {card: dict(p.engine_kwargs(), clock_mhz=p.clock_mhz, ref_mbps=p.ref_mbps,
                         ref_what=p.ref_what, model_mbps=p.model_mbps(p.ref_what != "3DES"))
              for card, p in CARD_ENGINE_PARAMS.items()}
    return {"bench": "cores", "rows": rows, "chosen": chosen, "notes": notes}


def format_table(result) -> str:
    hdr = f"{'alg':<34} {'backend':<8} {'r/cyc':>12} {'cyc/blk':>8} {'Mbps@33':>8} " \
          f"{'Mbps@66':>8} {'ref':>6} {'cycles/s':>9}"
    lines = [hdr, "-" * len(hdr)]
    for r in result["rows"]:
        ref = f"{r['ref_mbps']:.0f}" if r.get("ref_mbps") else ""
        lines.append(f"{r['alg']:<34} {r['backend']:<8} {str(r['rounds_per_cycle']):>12} "
                     f"{r['cycles_per_block']:>8.2f} {r['mbps_33']:>8.1f} {r['mbps_66']:>8.1f} "
                     f"{ref:>6} {r['cycles_per_s']:>9.0f}")
    lines.append("")
    lines.append("Chosen engine parameters (hw.crypto.CARD_ENGINE_PARAMS):")
    for card, c in result["chosen"].items():
        meas = [r for r in result["rows"] if r["alg"].startswith(f"engine {card}")]
        m = f", measured {meas[0]['mbps_card']:.1f} Mbps" if meas else ""
        lines.append(f"  {card}: des_rounds={c['des_rounds']} sha_rounds={c['sha_rounds']} "
                     f"@ {c['clock_mhz']:.0f} MHz → model {c['model_mbps']:.1f} Mbps{m} "
                     f"{c['ref_what']} (datasheet {c['ref_mbps']:.0f} Mbps)")
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="crypto_cores", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--quick", action="store_true", help="fewer blocks, shorter packets")
    ap.add_argument("--backend", action="append", choices=["pysim", "verilator"])
    a = ap.parse_args(argv)
    res = run(tuple(a.backend or ["pysim"]), quick=a.quick)
    print(json.dumps(res, indent=2) if a.json else format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
