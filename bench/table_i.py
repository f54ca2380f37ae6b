"""The socket-crypto paper's Table I, EVP and /dev/crypto rows: seconds to
encrypt and send a 100 MB file over TCP through the gigabit NIC.

Burnside and Keromytis, "Accelerating Application-Level Security Protocols"
(socket-crypto paper), §IV-C and Table I: two 1.4 GHz Pentium III, a
BCM5820 and the gigabit NIC on each machine's 64-bit/66 MHz bus, a 100 MB
file encrypted and sent in writes of 4088, 8176 and 16352 bytes (footnote
2: multiples of OpenBSD's 4088-byte write quantum), by OpenSSL EVP in user
space or through /dev/crypto. Each cell here is ``ocfsim.workloads.net``
(``ocfsim net``) on the BCM5820 + NIC machine with the default P3 profile;
the in-kernel SO_CRYPT row is not here.

Steady state and extrapolation. A cell simulates ``--warmup-mb`` MiB of
warm-up (TCP's handshake, slow start with a one-segment initial window and
the first delayed ACK at a 200 ms tick; the 16 KB window is open after a
dozen segments, well inside the default 0.25 MiB) and then ``--mb`` MiB
past it, and measures the delivery rate over those: seconds for 100 MiB =
the warm-up's simulated time + the rest of the 100 MiB at the steady rate
(``extrapolated``: true). ``steady_spread`` is the difference between the
rates of the two halves of the measured part, relative to the rate: a small
one says the part measured was steady. ``--mb 100`` simulates the whole
file (``extrapolated``: false; the warm-up is then part of it).

Calibration: the EVP per-byte cost (``evp.byte`` in
sim/profiles/p3-1400-openbsd.toml) was calibrated on one cell, EVP at 8176
bytes (:data:`CALIBRATED`); every other cell, and every /dev/crypto cell, is
a prediction.

Usage: python -m bench.table_i [--methods evp,devcrypto] [--sizes 4088,8176,16352]
       [--mb MIB] [--warmup-mb MIB] [--backend verilator|pysim] [-j N | --dask ADDR]
       [--json]   (also ``ocfsim bench table-i``)
"""

from __future__ import annotations

import sys
import time

from ocfsim.sweep import Sweep, where_text
from ocfsim.workloads.net import MB, WRITE_QUANTUM, net_machine
from sim.experiment import run

__all__ = ["run_bench", "format_table", "main", "PAPER", "CALIBRATED", "METHODS", "SIZES"]

#: socket paper footnote 2: multiples of the 4088-byte write quantum
SIZES = (WRITE_QUANTUM, 2 * WRITE_QUANTUM, 4 * WRITE_QUANTUM)
#: method name in the rows → the workload's ``encrypt``
METHODS = {"evp": "evp", "/dev/crypto": "devcrypto"}
#: socket paper Table I, seconds for the 100 MB file
PAPER = {
    "evp": dict(zip(SIZES, (32.79, 31.84, 32.38))),
    "/dev/crypto": dict(zip(SIZES, (4.13, 4.23, 4.72))),
}
#: the cell the EVP cost was calibrated on (there the model matches by construction)
CALIBRATED = {("evp", 2 * WRITE_QUANTUM)}
#: the file of the paper: 100 MB (read as MiB, as 72,416 full segments carry it)
FILE_MB = 100


def one_cell(method: str, size: int, mb: float, warmup_mb: float, backend: str,
             seed: int = 1) -> dict:
    whole = mb >= FILE_MB
    nbytes = FILE_MB * MB if whole else int((mb + warmup_mb) * MB)
    nbytes -= nbytes % 8
    warmup = 0 if whole else int(warmup_mb * MB)
    t0 = time.perf_counter()
    r = run(net_machine("bcm5820"), "ocfsim.workloads.net:net",
            {"nbytes": nbytes, "write_size": size, "encrypt": METHODS[method],
             "seed": seed, "warmup_bytes": warmup, "timeout_s": 600.0}, backend=backend)
    file_bytes = FILE_MB * MB
    if whole:
        seconds = r["sim_time_s"]
        spread = None
    else:
        rate = r["steady_mbps"] * 1e6 / 8 if r["steady_mbps"] else None
        seconds = (r["warmup_s"] + (file_bytes - r["warmup_bytes"]) / rate) if rate else None
        spread = r.get("steady_spread")
    ref = PAPER[method][size] if size in PAPER[method] else None
    row = {"method": method, "size": size, "seconds": seconds, "ref_seconds": ref,
           "error": (seconds - ref) / ref if ref and seconds else None,
           "mbps": 8 * file_bytes / seconds / 1e6 if seconds else None,
           "mb_simulated": r["bytes"] / MB, "extrapolated": not whole,
           "warmup_s": r["warmup_s"], "steady_spread": spread,
           "calibrated": (method, size) in CALIBRATED,
           "cpu_busy": r.get("steady_cpu_busy", r["cpu_busy"]),
           "cpu_by_kind": r.get("steady_cpu_by_kind", r["cpu_by_kind"]),
           "interrupts_per_s": r.get("steady_interrupts_per_s", r["interrupts_per_s"]), "pci_utilisation": r["pci_utilisation"],
           "wire_utilisation": r["wire_utilisation"]["tx"],
           "retransmissions": r["tcp"]["rexmttimeo"] + r["tcp"]["fastrexmt"],
           "ok": r["ok"], "backend": backend, "sim_time_s": r["sim_time_s"],
           "wall_s": time.perf_counter() - t0,
           "wall_s_per_mb": r["_wall_s"] / (r["bytes"] / MB)}
    return row


def run_bench(methods=tuple(METHODS), sizes=SIZES, mb=1.0, warmup_mb=0.25,
              backend="verilator", progress=None, seed=1, sweep=None) -> dict:
    sweep = sweep or Sweep()
    t0 = time.perf_counter()
    rows = sweep.map(one_cell, [(m, s, mb, warmup_mb, backend, seed)
                                for m in methods for s in sizes], progress)
    return {"bench": "table-i", "backend": backend, "seed": seed, "mb": mb,
            "warmup_mb": warmup_mb, **sweep.describe(), "wall_s": time.perf_counter() - t0,
            "rows": rows}


def format_table(result: dict) -> str:
    from ocfsim.report import table
    rows = []
    for r in result["rows"]:
        f = (lambda v, fmt: fmt.format(v) if v is not None else "-")
        rows.append([r["method"], r["size"], f(r["seconds"], "{:.2f}"),
                     f(r["ref_seconds"], "{:.2f}"),
                     f(100 * r["error"] if r["error"] is not None else None, "{:+.0f} %"),
                     f(r["mbps"], "{:.1f}"), f"{100 * r['cpu_busy']:.0f}",
                     f"{100 * r['wire_utilisation']:.0f}",
                     f"{r['mb_simulated']:.2f}" + (" (extrap.)" if r["extrapolated"] else ""),
                     "calibrated" if r["calibrated"] else "predicted",
                     "ok" if r["ok"] else "FAIL"])
    text = table(["method", "write B", "s/100MB", "paper", "error", "Mbit/s", "CPU %",
                  "wire %", "MiB simulated", "", "verified"], rows)
    text += ("\nCPU %: busy share after the warm-up (the whole run with --mb 100); wire %: "
             "host → partner over the whole run")
    text += (f"\nbackend {result['backend']}, {where_text(result)}, wall {result['wall_s']:.0f} s;"
             f" paper: socket-crypto paper Table I; 100 MB = 100 MiB; extrapolated cells: "
             f"{result['warmup_mb']} MiB warm-up + {result['mb']} MiB at the steady rate "
             "(see the module docstring)")
    return text


def build_parser():
    from ocfsim.cli import Parser, int_list, int_range, name_list, out_options, sweep_options
    from sim.experiment import BACKENDS

    def mib(text):
        import argparse
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
        if not 0.0625 <= v <= FILE_MB:
            raise argparse.ArgumentTypeError(f"{v} is outside 0.0625..{FILE_MB} MiB")
        return v
    p = Parser(prog="ocfsim bench table-i", description=__doc__.split("\n")[0])
    p.add_argument("--methods", type=name_list(("evp", "devcrypto")), default="evp,devcrypto",
                   help="rows: evp (user space), devcrypto (/dev/crypto on the BCM5820)")
    p.add_argument("--sizes", type=int_list(8, 1 << 18, 8, "the 8-byte 3DES block"),
                   default=",".join(map(str, SIZES)), help="write sizes in bytes")
    p.add_argument("--mb", type=mib, default=1.0,
                   help="MiB simulated past the warm-up per cell (100: the whole file, "
                        "no extrapolation)")
    p.add_argument("--warmup-mb", type=mib, default=0.25,
                   help="MiB of warm-up before the steady rate is measured")
    p.add_argument("--backend", default="verilator", choices=BACKENDS, help="simulator")
    p.add_argument("--seed", type=int_range(0, 2**64 - 1), default=1,
                   help="seed of the random file, keys and IVs")
    sweep_options(p)
    out_options(p, "nothing else")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def main(argv=None) -> int:
    from ocfsim.cli import print_result
    from ocfsim.sweep import CellError, from_args as sweep_from_args, report_failure
    p = build_parser()
    args = p.parse_args(argv)
    methods = ["/dev/crypto" if m == "devcrypto" else m for m in args.methods]
    progress = None if args.json else (lambda r: print(
        f"  {r['method']:12} {r['size']:6} B: {r['seconds'] or float('nan'):7.2f} s per 100 MB",
        file=sys.stderr))
    try:
        with sweep_from_args(p, args) as sweep:
            result = run_bench(methods, args.sizes, args.mb, args.warmup_mb, args.backend,
                               progress, seed=args.seed, sweep=sweep)
    except CellError as exc:
        return report_failure(p.prog, exc)
    print_result(p, argv, args, "table-i", result, format_table, args.seed)
    return 0 if all(r["ok"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
