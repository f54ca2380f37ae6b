"""The ``ocfsim`` command line.

Conventions for every subcommand: human output with units on the terminal;
``--json`` prints exactly one JSON object on stdout and nothing else there;
exit status 0 only when every verification passed; a bad argument prints one
line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main"]


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_range(lo, hi, what):
    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be in {lo}..{hi}, not {value}")
        return value
    return parse


def _vcd_path(text):
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    return text


def _emit(args, result: dict, human) -> int:
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print("\n".join(human(result)))
    return 0 if result.get("ok", True) else 1


# --------------------------------------------------------------------- lspci
def cmd_lspci(args) -> int:
    from sim.experiment import run
    from .machines import dma_machine
    t0 = time.perf_counter()
    r = run(dma_machine(args.cards), "ocfsim.workloads.dma:lspci", backend=args.backend)
    result = {"ok": True, "devices": r["devices"], "backend": args.backend,
              "wall_s": time.perf_counter() - t0}

    def human(res):
        lines = []
        for d in res["devices"]:
            irq = "none" if d["irq"] is None else "INT" + "ABCD"[d["irq"]]
            lines.append(f"00:{d['slot']:02x}.0 class {d['class']:06x}: "
                         f"{d['vendor']:04x}:{d['device']:04x} (rev {d['revision']:02x}) "
                         f"IRQ {irq}")
            for b in d["bars"]:
                kind = "prefetchable" if b["prefetchable"] else "non-prefetchable"
                lines.append(f"\tBAR{b['index']}: memory at {b['addr']:08x} "
                             f"(32-bit, {kind}) [size={b['size'] // 1024}K]")
        return lines or ["no devices"]
    return _emit(args, result, human)


# ----------------------------------------------------------------------- dma
def cmd_dma(args) -> int:
    from sim.experiment import run
    from .machines import dma_machine
    from .report import bus_lines, si_time
    spec = dma_machine(args.cards, clock_mhz=args.clock)
    t0 = time.perf_counter()
    r = run(spec, "ocfsim.workloads.dma:dma_copy",
            {"nbytes": args.bytes, "burst": args.burst}, backend=args.backend, vcd=args.vcd)
    wall_total = time.perf_counter() - t0
    sim_s = r["sim_time_s"]
    result = {
        "ok": bool(r["ok"]), "backend": args.backend, "cards": r["cards"],
        "bytes": r["bytes"], "burst": args.burst, "clock_mhz": args.clock,
        "sim_cycles": r["_cycles"], "dma_cycles": r["sim_cycles"], "sim_time_s": sim_s,
        "mbps": 8 * r["bytes"] / sim_s / 1e6 if sim_s else 0.0,
        "ref_pci_peak_mbps": 32 * args.clock,      # 32-bit bus, one dword per clock
        "wall_s": r["_wall_s"], "wall_total_s": wall_total,
        "cycles_per_s": r["_cycles"] / r["_wall_s"] if r["_wall_s"] else 0.0,
        "pci_utilisation": r["pci_utilisation"], "breakdown": r["breakdown"],
        "by_master": r["by_master"], "interrupts": r["interrupts"],
        "per_card": r["per_card"], "checker": r["checker"],
        "vcd": args.vcd,
    }

    def human(res):
        verdict = "byte-exact" if res["ok"] else "FAILED"
        lines = [f"ocfsim dma: {res['cards']} card(s) x {args.bytes} B, burst {args.burst} dwords, "
                 f"32-bit/{args.clock} MHz PCI, backend {args.backend}",
                 f"  verified         {res['bytes']} bytes moved, {verdict}",
                 f"  simulated time   {si_time(res['sim_time_s'])} "
                 f"({res['dma_cycles']} bus cycles for the copy, {res['sim_cycles']} in all)",
                 f"  throughput       {res['mbps']:.1f} Mbit/s "
                 f"(PCI peak {res['ref_pci_peak_mbps']:.0f} Mbit/s; each byte crosses the bus twice)"]
        lines += bus_lines(res)
        lines.append(f"  simulation speed {res['cycles_per_s']:.0f} bus cycles/s "
                     f"(wall {res['wall_s']:.2f} s simulating, {res['wall_total_s']:.2f} s in all)")
        if res["vcd"]:
            lines.append(f"  waveform         {res['vcd']}")
        for c in res["per_card"]:
            if not c["ok"]:
                lines.append(f"  slot {c['slot']}: copy failed {c}")
        if res["checker"]:
            lines.append(f"  PCI checker: {', '.join(res['checker'])}")
        return lines
    return _emit(args, result, human)


# ----------------------------------------------------------------------- run
def cmd_run(args) -> int:
    from sim.experiment import run
    from .machines import crypto_kinds, crypto_machine
    from .report import bus_lines, si_time
    try:
        kinds = crypto_kinds(args.card or ["bcm5820"], args.cards)
    except ValueError as exc:
        raise UsageError(str(exc))
    spec = crypto_machine(kinds, args.clock)
    t0 = time.perf_counter()
    r = run(spec, "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": args.alg, "size": args.size, "ops": args.ops, "threads": args.threads,
             "profile": args.profile, "allow_soft": not kinds, "decrypt": args.decrypt,
             "progress": not args.json},
            backend=args.backend, vcd=args.vcd)
    result = {k: v for k, v in r.items() if not k.startswith("_")}
    result.update(card=",".join(kinds) or "soft", cards=len(kinds), backend=args.backend,
                  clock_mhz=spec.clock_mhz, sim_cycles=r["_cycles"], wall_s=r["_wall_s"],
                  wall_total_s=time.perf_counter() - t0,
                  cycles_per_s=r["_cycles"] / r["_wall_s"] if r["_wall_s"] else 0.0,
                  vcd=args.vcd, gtkw=r.get("_gtkw"))

    def human(res):
        verdict = "every output matches cryptography" if res["ok"] else "FAILED"
        lines = [f"ocfsim run: {res['threads']} process(es) x {res['ops']} /dev/crypto "
                 f"{res['alg']} ops of {res['size']} B; cards: {res['card']} "
                 f"(32-bit/{res['clock_mhz']} MHz PCI), profile {res['profile']}, "
                 f"backend {res['backend']}",
                 f"  verified         {res['ops']} operations, {verdict}",
                 f"  throughput       {res['mbps']:.2f} Mbit/s, {res['ops_per_s']:.0f} ops/s "
                 f"over {si_time(res['sim_time_s'])} simulated"]
        if res["latency_mean_s"] is not None:
            lines.append(f"  latency          mean {si_time(res['latency_mean_s'])}, "
                         f"p99 {si_time(res['latency_p99_s'])}")
        lines.append(f"  interrupts       {res['interrupts']} ({res['interrupts_per_s']:.0f}/s)")
        lines.append(f"  CPU busy         {100 * res['cpu_busy']:.1f} %: " + ", ".join(
            f"{k} {100 * v:.1f} %" for k, v in res["cpu_by_kind"].items() if k != "idle"))
        lines += bus_lines(res)
        lines.append(f"  simulation speed {res['cycles_per_s']:.0f} bus cycles/s "
                     f"(wall {res['wall_s']:.2f} s simulating, {res['wall_total_s']:.2f} s in all)")
        if res["vcd"]:
            lines.append(f"  waveform         {res['vcd']}"
                         + (f" (GTKWave: gtkwave {res['gtkw']})" if res.get("gtkw") else ""))
        for f in res["failures"]:
            lines.append(f"  failure: {f}")
        if res["errnos"]:
            lines.append(f"  errors: errno {res['errnos']}")
        if res["checker"]:
            lines.append(f"  PCI checker: {', '.join(res['checker'])}")
        return lines
    return _emit(args, result, human)


# --------------------------------------------------------------------- bench
def cmd_bench(args) -> int:
    import importlib
    module = importlib.import_module(f"bench.{BENCHES[args.name]}")
    return module.main(args.rest + (["--json"] if args.json else []))


BENCHES = {"pci": "pci_bandwidth", "cores": "crypto_cores", "null": "null", "fig1": "fig1",
           "speed": "speed"}


def build_parser() -> argparse.ArgumentParser:
    from sim.experiment import BACKENDS
    from .machines import MAX_CARDS, CRYPTO_KINDS
    p = _Parser(prog="ocfsim", description="Cycle-accurate PCI crypto-offload machine and OCF.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, vcd=True):
        sp.add_argument("--backend", choices=BACKENDS, default="pysim",
                        help="simulator: pysim (pure Python, default) or verilator")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        if vcd:
            sp.add_argument("--vcd", type=_vcd_path, metavar="FILE",
                            help="write a VCD waveform of the whole run")

    sp = sub.add_parser("lspci", help="list the devices of a machine, like lspci")
    sp.add_argument("--cards", type=_int_range(1, MAX_CARDS, "--cards"), default=2)
    common(sp, vcd=False)
    sp.set_defaults(func=cmd_lspci)

    sp = sub.add_parser("dma", help="K DMA test cards copy host memory at once, verified")
    sp.add_argument("--bytes", type=_int_range(1, 1 << 20, "--bytes"), required=True,
                    help="bytes each card copies (1..1048576)")
    sp.add_argument("--cards", type=_int_range(1, MAX_CARDS, "--cards"), default=1)
    sp.add_argument("--burst", type=_int_range(1, 256, "--burst"), default=256,
                    help="dwords per DMA burst (1..256)")
    sp.add_argument("--clock", type=int, choices=(33, 66), default=33, help="bus MHz")
    common(sp)
    sp.set_defaults(func=cmd_dma)

    sp = sub.add_parser("run", help="processes doing /dev/crypto on crypto cards, verified")
    sp.add_argument("--card", action="append", choices=CRYPTO_KINDS + ("mixed", "soft"),
                    help="card kind (repeat for a mix; 'mixed' alternates both kinds; "
                         "'soft' uses no card, only the software driver); default bcm5820")
    sp.add_argument("--cards", type=_int_range(1, MAX_CARDS, "--cards"), default=1,
                    help="number of cards of the one --card kind")
    sp.add_argument("--alg", choices=("3des", "3des-sha1", "des", "null"), default="3des")
    sp.add_argument("--size", type=_int_range(8, 262136, "--size"), default=1024,
                    help="bytes per operation (a multiple of 8 for the ciphers)")
    sp.add_argument("--ops", type=_int_range(1, 1_000_000, "--ops"), default=32,
                    help="operations in all, shared among the processes")
    sp.add_argument("--threads", type=_int_range(1, 256, "--threads"), default=1,
                    help="processes issuing requests")
    sp.add_argument("--decrypt", action="store_true", help="decrypt instead of encrypt")
    sp.add_argument("--profile", default="p3-1400-openbsd", help="host profile (sim/profiles)")
    sp.add_argument("--clock", type=int, choices=(33, 66), default=None,
                    help="bus MHz (default: 66 with a 5820, else 33)")
    common(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("bench", help="benchmarks (pci, cores, null, fig1, speed); see bench/")
    sp.add_argument("name", choices=sorted(BENCHES))
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark")
    sp.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "dma" and args.bytes * args.cards * 2 > (3 << 20):
        parser.exit(2, "ocfsim: error: --bytes x --cards needs more than the 4 MiB host DRAM\n")
    if getattr(args, "command", None) == "run":
        problem = _check_run(args)
        if problem:
            parser.exit(2, f"ocfsim run: error: {problem}\n")
    try:
        return args.func(args)
    except UsageError as exc:
        parser.exit(2, f"ocfsim {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        return 130


def _check_run(args) -> str | None:
    from sim.kernel.profile import load_profile
    if args.alg != "null" and args.size % 8:
        return f"--size {args.size} is not a multiple of the 8-byte cipher block"
    if args.threads > args.ops:
        return f"--threads {args.threads} exceeds --ops {args.ops}"
    try:
        load_profile(args.profile)
    except Exception as exc:                       # unknown name or bad file
        return f"--profile {args.profile!r}: {str(exc).splitlines()[0]}"
    if args.size * args.threads * 4 > (3 << 20):
        return "--size x --threads needs more than the 4 MiB host DRAM"
    return None


if __name__ == "__main__":
    sys.exit(main())
