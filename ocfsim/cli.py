"""The ``ocfsim`` command line.

Conventions for every subcommand: human output with units on the terminal;
``--json`` prints exactly one JSON object on stdout and nothing else there;
exit status 0 only when every verification passed. A bad argument, or a
combination the drivers and /dev/crypto would refuse, prints one line on
stderr, exits with status 2 and creates nothing on disk: output files are
checked while the arguments are parsed and their folders are created only
when the run starts.

The argument types and the one-line parser here are shared with the
benchmarks in ``bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from . import layout_conflicts

__all__ = ["main", "Parser", "UsageError", "int_range", "int_list", "name_list",
           "output_file", "unwritable", "plot_options", "plot_path", "save_plot", "profile_arg",
           "make_parent", "version", "provenance", "command_line", "out_folder", "out_options",
           "write_outputs", "print_result", "dask_address", "sweep_options"]


class UsageError(Exception):
    """A combination of arguments refused after parsing: one line, exit status 2."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default; flags and options whose help text says
    what happens when they are absent (default None) show none."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, exit status 2, and every default in ``--help``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


# ------------------------------------------------------------ argument types
def int_range(lo: int, hi: int, multiple: int = 1, unit: str = ""):
    """argparse type: an integer (decimal or 0x...) in ``lo..hi``, a multiple of
    ``multiple`` (``unit`` names what it is a multiple of, e.g. a cipher block)."""
    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        if value % multiple:
            raise argparse.ArgumentTypeError(
                f"{value} is not a multiple of {unit or multiple}")
        return value
    return parse


def int_list(lo: int, hi: int, multiple: int = 1, unit: str = ""):
    """argparse type: comma-separated integers, each as ``int_range`` takes it."""
    one = int_range(lo, hi, multiple, unit)

    def parse(text):
        return tuple(one(x.strip()) for x in text.split(","))
    return parse


def name_list(choices):
    """argparse type: comma-separated names, each one of ``choices``."""
    def parse(text):
        names = [x.strip() for x in text.split(",")]
        bad = [n for n in names if n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"{bad[0]!r} is not one of {', '.join(choices)} (comma-separated)")
        return names
    return parse


def output_file(text: str) -> str:
    """argparse type: a file the command may write, checked without creating anything."""
    problem = unwritable(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def unwritable(path: str) -> str | None:
    """Why ``path`` cannot be created or overwritten as a regular file, or None.

    Missing folders are allowed when the nearest existing one is a directory
    we may create entries in; that is probed with a temporary folder that is
    removed at once, so nothing is left behind (a permission check alone
    misleads for root, read-only mounts and /proc).
    """
    if not path:
        return "an empty path names no file"
    if path.endswith(os.sep):
        return f"{path} names a folder, not a file"
    full = os.path.abspath(path)
    if os.path.isdir(full):
        return f"{path} is a directory"
    if os.path.lexists(full):
        if not os.path.isfile(full):
            return f"{path} is not a regular file"
        return None if os.access(full, os.W_OK) else f"{path} is not writable"
    return _folder_problem(os.path.dirname(full), path)


def _folder_problem(folder: str, path: str) -> str | None:
    """Why ``path`` cannot be made in ``folder`` (created if missing), or None."""
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"cannot create {path}: {existing} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ocfsim-probe-", dir=existing))
    except OSError as exc:
        return f"cannot create {path}: {existing}: {exc.strerror}"
    return None


def out_folder(text: str) -> str:
    """argparse type: a folder for a command's outputs (``--out``), checked
    without creating anything."""
    problem = "an empty path names no folder" if not text else \
        _folder_problem(os.path.abspath(text), text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def out_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--out DIR``: the command's JSON result, CSV of its rows and ``what``, together."""
    parser.add_argument("--out", type=out_folder, metavar="DIR",
                        help=f"write NAME.json (the JSON result), NAME.csv (its rows, if "
                             f"any) and {what} into DIR")


#: schemes of a Dask scheduler reached over the network (distributed.comm)
DASK_SCHEMES = ("tcp", "tls", "ws", "wss")


def dask_address(text: str) -> str:
    """argparse type: a Dask scheduler address, ``[SCHEME://]HOST:PORT`` with
    a scheme of :data:`DASK_SCHEMES` (default tcp), checked for form while
    parsing; whether it answers is checked when the run starts
    (``ocfsim.sweep.from_args``)."""
    scheme, sep, location = text.partition("://")
    if not sep:
        scheme, location = "tcp", text
    host, colon, port = location.strip("/").rpartition(":")
    host = host.strip("[]")
    if scheme not in DASK_SCHEMES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: scheme {scheme!r} is not one of {', '.join(DASK_SCHEMES)}")
    if not colon or not host or any(c.isspace() for c in host) \
            or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT "
                                         f"(e.g. tcp://10.0.0.5:8786)")
    return text


def sweep_options(parser: argparse.ArgumentParser) -> None:
    """``-j N`` and ``--dask ADDR``: where a benchmark's independent cells run
    (``ocfsim.sweep``)."""
    from .sweep import default_jobs
    parser.add_argument("-j", "--jobs", type=int_range(1, 256), default=default_jobs(),
                        help="cells run at once in local processes (1: in this process)")
    parser.add_argument("--dask", type=dask_address, metavar="ADDR",
                        help="run the cells on the Dask scheduler at ADDR "
                             "(tcp://HOST:PORT) instead of local processes")


def print_result(parser, argv, args, name: str, result: dict, table, seed=None) -> None:
    """A benchmark's ending: provenance into ``result``, the ``--out`` files,
    then the JSON object, or the table (``table(result)``) and where files went."""
    result["provenance"] = provenance(command_line(parser, argv), seed)
    written = write_outputs(args.out, name, result) if args.out else []
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(table(result))
    if result.get("plot"):
        print(f"plot: {result['plot']}")
    if written:
        print(f"outputs: {', '.join(written)}")


def write_outputs(folder: str, name: str, result: dict) -> list[str]:
    """``folder/name.json`` and, when the result has rows, ``folder/name.csv``."""
    import csv
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.json")
    with open(path, "w") as f:
        json.dump(result, f, default=str)
        f.write("\n")
    written = [path]
    rows = result.get("rows")
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        written.append(os.path.join(folder, f"{name}.csv"))
        with open(written[-1], "w", newline="") as f:
            out = csv.DictWriter(f, fields)
            out.writeheader()
            out.writerows({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                           for k, v in r.items()} for r in rows)
    return written


def plot_options(parser: argparse.ArgumentParser, default: str) -> None:
    """``--plot FILE`` (checked while parsing) and ``--no-plot``; see ``plot_path``."""
    parser.add_argument("--plot", type=output_file, default=None, metavar="FILE",
                        help=f"PNG plot to write; when not given: in --out's folder, "
                             f"else {default}, and none with --json")
    parser.add_argument("--no-plot", dest="plot", action="store_const", const="",
                        help="write no plot")
    parser.add_argument("--logy", action="store_true", help="logarithmic y axis on the plot")


def save_plot(args, fig, path: str) -> None:
    """Write a benchmark's Figure to ``path`` (its folder made now) with a
    non-interactive matplotlib backend, and close it; with ``--json`` say
    where on stderr (stdout carries only the JSON object)."""
    import matplotlib
    matplotlib.use("Agg")                   # the CLI writes a file; nothing is shown
    import matplotlib.pyplot as plt
    make_parent(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    if getattr(args, "json", False):
        print(f"plot: {path}", file=sys.stderr)


def plot_path(parser: argparse.ArgumentParser, args, default: str) -> str | None:
    """The plot to write, or None: ``--plot``, else in ``--out``'s folder, else
    ``default`` unless the run prints JSON (a scripted run does not overwrite
    the default plot)."""
    if args.plot is None and getattr(args, "out", None):
        return os.path.join(args.out, os.path.basename(default))
    if args.plot is None and not args.json:
        problem = unwritable(default)
        if problem:
            parser.error(f"argument --plot: {problem}")
        return default
    return args.plot or None


def make_parent(path: str | None) -> None:
    """Create the folder of an output file checked by ``output_file`` (at run start)."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def profile_arg(text: str) -> str:
    """argparse type: a host profile name, or a ``.toml`` path made absolute
    (the Verilator backend runs the host code in another folder)."""
    from sim.kernel.profile import load_profile
    if text.endswith(".toml"):
        text = os.path.abspath(text)
    try:
        load_profile(text)
    except (ValueError, TypeError, OSError) as exc:   # unknown name, unreadable or bad file
        raise argparse.ArgumentTypeError(str(exc).splitlines()[0]) from None
    return text


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError, version as dist_version
    try:
        return dist_version("ocfsim")
    except PackageNotFoundError:
        return "unknown (not installed)"


def provenance(command: list[str], seed: int | None = None) -> dict:
    """Where a JSON result came from: package version, git commit of the
    sources (None outside a checkout), the seed if any, and the command line."""
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"version": version(), "git_commit": commit, "seed": seed, "command": command}


def command_line(parser: argparse.ArgumentParser, argv) -> list[str]:
    """The command as typed: the parser's program name and its arguments."""
    return parser.prog.split() + list(sys.argv[1:] if argv is None else argv)


def _emit(args, result: dict, human) -> int:
    """Print the result (JSON with provenance, or ``human`` lines); with
    ``--out`` also write it there."""
    doc = dict(result, provenance=provenance(args.command_line, getattr(args, "seed", None)))
    written = write_outputs(args.out, args.command, doc) if args.out else []
    if args.json:
        print(json.dumps(doc, default=str))
    else:
        lines = human(result)
        if written:
            lines.append(f"  outputs          {', '.join(written)}")
        print("\n".join(lines))
    return 0 if result.get("ok", True) else 1


# --------------------------------------------------------------------- lspci
def cmd_lspci(args) -> int:
    from sim.experiment import run
    from .lspci import format_devices
    from .machines import card_kinds, machine
    if args.machine:
        spec = _standard(args, ("card", "cards"))
    else:
        spec = machine(_kinds(args.card or ["dmatest"], args.cards, card_kinds))
    t0 = time.perf_counter()
    r = run(spec, "ocfsim.lspci:lspci", {"config": args.verbose},
            backend=args.backend)
    result = {"ok": True, "devices": r["devices"], "segments": r["segments"],
              "backend": args.backend, "wall_s": time.perf_counter() - t0}
    return _emit(args, result, lambda res: format_devices(res["devices"], args.verbose,
                                                          res["segments"]))


def cards_text(res: dict) -> str:
    """``cards: bcm5820,hifn7751`` or, for a standard machine, its name and cards."""
    if not res.get("machine"):
        return f"cards: {res['card']}"
    kinds = res["card"].split(",")
    return "machine {}: {}".format(res["machine"], ", ".join(
        f"{kinds.count(k)} x {k}" for k in dict.fromkeys(kinds)))


def _standard(args, exclusive: tuple[str, ...]):
    """The standard machine ``--machine`` names; refuses the options that
    would build another one."""
    from .machines import STANDARD
    given = [f"--{o}" for o in exclusive
             if getattr(args, o) is not None and not isinstance(getattr(args, o), _Default)]
    if given:
        raise UsageError(f"--machine {args.machine} is a whole machine: drop {', '.join(given)}")
    return STANDARD[args.machine]()


class _Default(int):
    """An option's default, told apart from the same number given by the user."""


def _kinds(cards, count, expand) -> list[str]:
    if len(cards) > 1 and not isinstance(count, _Default):
        raise UsageError(f"--cards {count} applies to one --card kind; with "
                         f"{len(cards)} --card options each one names a card")
    try:
        return expand(cards, count)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# ----------------------------------------------------------------------- dma
def cmd_dma(args) -> int:
    from sim.experiment import run
    from .machines import dma_machine
    from .report import bus_lines, si_time
    if args.bytes * args.cards * 2 > (3 << 20):
        raise UsageError("--bytes x --cards needs more than the 4 MiB host DRAM")
    spec = dma_machine(args.cards, clock_mhz=args.clock)
    make_parent(args.vcd)
    t0 = time.perf_counter()
    r = run(spec, "ocfsim.workloads.dma:dma_copy",
            {"nbytes": args.bytes, "burst": args.burst, "seed": args.seed},
            backend=args.backend, vcd=_abs(args.vcd))
    wall_total = time.perf_counter() - t0
    sim_s = r["sim_time_s"]
    result = {
        "ok": bool(r["ok"]), "backend": args.backend, "cards": r["cards"],
        "bytes": r["bytes"], "burst": args.burst, "clock_mhz": args.clock,
        "bus_period_ps": spec.period_ps,
        "sim_cycles": r["_cycles"], "dma_cycles": r["sim_cycles"], "sim_time_s": sim_s,
        "mbps": 8 * r["bytes"] / sim_s / 1e6 if sim_s else 0.0,
        "ref_pci_peak_mbps": 32 * args.clock,      # 32-bit bus, one dword per clock
        "wall_s": r["_wall_s"], "wall_total_s": wall_total,
        "cycles_per_s": r["_cycles"] / r["_wall_s"] if r["_wall_s"] else 0.0,
        "pci_utilisation": r["pci_utilisation"], "breakdown": r["breakdown"],
        "by_master": r["by_master"], "interrupts": r["interrupts"],
        "per_card": r["per_card"], "checker": r["checker"],
        "seed": args.seed, "vcd": args.vcd, "gtkw": r.get("_gtkw"),
        "wakeups": r.get("_speed", {}).get("wakeups", {}),
        "skipped_share": skipped_share(r),
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
                     f"(wall {res['wall_s']:.2f} s simulating, {res['wall_total_s']:.2f} s in all"
                     f"{skip_note(res)})")
        if res["vcd"]:
            lines.append(f"  waveform         {res['vcd']}"
                         + (f" (GTKWave: gtkwave {_shown(res['gtkw'])})" if res.get("gtkw") else ""))
        for c in res["per_card"]:
            if not c["ok"]:
                lines.append(f"  slot {c['slot']}: copy failed {c}")
        if res["checker"]:
            lines.append(f"  PCI checker: {', '.join(res['checker'])}")
        return lines
    return _emit(args, result, human)


def _shown(path: str) -> str:
    """A path as the user would type it: relative when under the current folder."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _abs(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


# ----------------------------------------------------------------------- run
def cmd_run(args) -> int:
    from sim.experiment import run
    from .faults import FaultError, check_cards, parse_fault, report_lines
    from .machines import crypto_kinds, crypto_machine
    from .report import bus_lines, bus_text, si_time
    from .machines import leaf_kinds
    if args.machine:
        spec = _standard(args, ("card", "cards", "clock"))
        kinds = leaf_kinds(spec)
    else:
        kinds = _kinds(args.card or ["bcm5820"], args.cards, crypto_kinds)
        spec = crypto_machine(kinds, args.clock)
    problem = _run_problem(args, kinds)
    if problem:
        raise UsageError(problem)
    try:
        check_cards([parse_fault(f) for f in args.fault or []], kinds)
    except FaultError as exc:
        raise UsageError(str(exc))
    make_parent(args.vcd)
    t0 = time.perf_counter()
    r = run(spec, "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": args.alg, "size": args.size, "ops": args.ops * args.threads,
             "threads": args.threads, "profile": args.profile, "allow_soft": not kinds,
             "decrypt": args.decrypt, "seed": args.seed, "progress": not args.json,
             "faults": args.fault or []},
            backend=args.backend, vcd=_abs(args.vcd))
    result = {k: v for k, v in r.items() if not k.startswith("_")}
    result.update(card=",".join(kinds) or "soft", cards=len(kinds), backend=args.backend,
                  machine=args.machine, bus=bus_text(spec), bus_width=spec.bus_width,
                  ops_per_process=args.ops, seed=args.seed,
                  clock_mhz=spec.clock_mhz, bus_period_ps=spec.period_ps,
                  segment_clocks_mhz=spec.segment_clocks(),
                  sim_cycles=r["_cycles"], wall_s=r["_wall_s"],
                  wall_total_s=time.perf_counter() - t0,
                  cycles_per_s=r["_cycles"] / r["_wall_s"] if r["_wall_s"] else 0.0,
                  vcd=args.vcd, gtkw=r.get("_gtkw"),
                  wakeups=r.get("_speed", {}).get("wakeups", {}),
                  skipped_share=skipped_share(r))
    steps = result["wakeups"].get("steps")
    result["wakeups_per_op"] = steps / result["ops"] if steps and result.get("ops") else None

    def human(res):
        verdict = "every output matches cryptography" if res["ok"] else "FAILED"
        lines = [f"ocfsim run: {res['threads']} process(es) x {res['ops_per_process']} /dev/crypto "
                 f"{res['alg']} ops of {res['size']} B; {cards_text(res)} on {res['bus']}, "
                 f"profile {res['profile']}, "
                 f"backend {res['backend']}",
                 f"  verified         {res['ops']} of {res['threads'] * res['ops_per_process']} "
                 f"operations, {verdict}",
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
                     f"(wall {res['wall_s']:.2f} s simulating, {res['wall_total_s']:.2f} s in all"
                     f"{skip_note(res)})")
        if res["vcd"]:
            lines.append(f"  waveform         {res['vcd']}"
                         + (f" (GTKWave: gtkwave {_shown(res['gtkw'])})" if res.get("gtkw") else ""))
        for f in res["failures"]:
            lines.append(f"  failure: {f}")
        if res["errnos"]:
            lines.append(f"  errors: errno {res['errnos']}")
        if res["checker"]:
            lines.append(f"  PCI checker: {', '.join(res['checker'])}")
        return lines + report_lines(res)
    return _emit(args, result, human)


def _run_problem(args, kinds: list[str]) -> str | None:
    """What /dev/crypto or every driver of the machine would refuse, said before the run.

    The rules come from the tables the kernel itself uses: the transform's
    block size (``ocf/xform.py``), /dev/crypto's length limit, and the
    algorithms each card's driver registers with OCF (``machines.CARD_ALGORITHMS``).
    """
    from ocf.xform import ENC_XFORMS
    from sim.experiment import gtkw_path
    from .machines import CARD_ALGORITHMS
    from .workloads.devcrypto import ALGS
    cipher, _, mac, _ = ALGS[args.alg]
    block = ENC_XFORMS[cipher].blocksize
    if args.size % block:
        near = max(block, args.size - args.size % block)
        return (f"--size {args.size} is not a multiple of the {block}-byte block of "
                f"{args.alg}; try --size {near}")
    need = {a for a in (cipher, mac) if a}
    if kinds and not any(need <= CARD_ALGORITHMS[k] for k in kinds):
        able = sorted(n for n, (c, _, m, _) in ALGS.items()
                      if any({a for a in (c, m) if a} <= CARD_ALGORITHMS[k] for k in kinds))
        return (f"--alg {args.alg}: no driver of {', '.join(sorted(set(kinds)))} does it "
                f"(they do {', '.join(able)}); --card soft runs it on the software driver")
    if args.size * args.threads * 4 > (3 << 20):
        return "--size x --threads needs more than the 4 MiB host DRAM"
    if args.vcd and args.backend == "pysim":
        return _prefixed("--vcd", unwritable(gtkw_path(args.vcd)))
    return None


def _prefixed(option: str, problem: str | None) -> str | None:
    return f"{option}: {problem}" if problem else None


# ----------------------------------------------------------------------- net
#: most bytes ``ocfsim net`` moves in one run (the partner keeps them in memory)
NET_MAX_BYTES = 1 << 30
#: the steady figure is measured after this much (or a quarter of the file):
#: past the handshake and slow start (docs/network.md, Table I)
NET_WARMUP_BYTES = 256 << 10


def cmd_net(args) -> int:
    from sim.experiment import run
    from .report import bus_lines, si_time
    from .workloads.net import BLOCK, net_machine
    problem = _net_problem(args, BLOCK)
    if problem:
        raise UsageError(problem)
    if args.machine:
        from .machines import leaf_kinds
        spec = _standard(args, ("card",))
        args.card = next(k for k in leaf_kinds(spec) if k != "em82544")
    else:
        args.card = args.card or "bcm5820"
        spec = net_machine(args.card)
    make_parent(args.pcap)
    t0 = time.perf_counter()
    size = args.bytes or os.path.getsize(args.file)
    so = {"encrypt": "so_crypt", "framing": args.so_crypt, "mode": args.mode,
          "one_pass": args.one_pass, "record_size": args.record_size} \
        if args.so_crypt else {"encrypt": args.encrypt}
    r = run(spec, "ocfsim.workloads.net:net",
            {"nbytes": args.bytes or 0, "file": _abs(args.file), "write_size": args.write_size,
             "rx": args.rx, "profile": args.profile, "seed": args.seed,
             "warmup_bytes": min(NET_WARMUP_BYTES, size // 4), **so,
             "pcap": _abs(args.pcap), "sockbuf": args.sockbuf, **_wire_faults(args)},
            backend=args.backend, vcd=_abs(args.vcd))
    result = {k: v for k, v in r.items() if not k.startswith("_")}
    result.update(card=args.card, machine=args.machine, backend=args.backend, seed=args.seed,
                  file=args.file,
                  clock_mhz=spec.clock_mhz, bus_width=spec.bus_width,
                  bus_period_ps=spec.period_ps, sim_cycles=r["_cycles"], wall_s=r["_wall_s"],
                  wall_total_s=time.perf_counter() - t0,
                  wall_s_per_mb=r["_wall_s"] / (r["bytes"] / (1 << 20)) if r["bytes"] else None,
                  cycles_per_s=r["_cycles"] / r["_wall_s"] if r["_wall_s"] else 0.0,
                  vcd=args.vcd, skipped_share=skipped_share(r))

    def human(res):
        sc = res["so_crypt"]
        enc = {"none": "no encryption", "evp": "EVP (user-space 3DES-CBC + HMAC-SHA1)",
               "devcrypto": f"/dev/crypto 3DES-CBC + HMAC-SHA1 on the {res['card']}",
               "so_crypt": sc and (f"SO_CRYPT {sc['framing']} records (3DES-CBC + HMAC-SHA1, "
                                   f"{sc['mode']}{', one pass' if sc['one_pass'] else ''}, records of "
                                   f"at most {sc['record_size']} B) "
                                   + ("read and verified" if res["rx"] else "built")
                                   + " in the kernel")}
        what = res["file"] or f"{res['bytes']} random bytes"
        check = (", every record decoded by the partner (RFC 2246/4253 rules on cryptography/"
                 "hmac), its plaintext equal to the file" if not res["rx"] else
                 ", the plaintext read from the SO_CRYPT socket equal to the file") \
            if sc else ", decrypted and MACs checked with cryptography/hmac"
        verdict = ("byte-exact" + (check if res["encrypt"] != "none" else "")) \
            if res["ok"] else "FAILED"
        lines = [f"ocfsim net: {what} {res['direction']} over TCP through the em NIC, "
                 f"writes of {res['write_size']} B, {enc[res['encrypt']]}; "
                 + (f"machine {res['machine']}: " if res["machine"] else "")
                 + f"{res['bus_width']}-bit/{res['clock_mhz']} MHz PCI, profile {res['profile']}, "
                 f"socket buffers {res['sockbuf']} B, backend {res['backend']}",
                 f"  verified         {res['bytes']} bytes, {verdict}",
                 f"  throughput       {res['mbps']:.2f} Mbit/s over {si_time(res['sim_time_s'])} "
                 f"simulated" + (f"; {res['seconds_per_100mb']:.2f} s per 100 MB"
                                 if res["seconds_per_100mb"] else "")
                 + (f"; steady {res['steady_mbps']:.2f} Mbit/s after the first "
                    f"{res['warmup_bytes']} B (warm-up {si_time(res['warmup_s'])})"
                    if res.get("steady_mbps") and res.get("warmup_bytes") else ""),
                 f"  CPU busy         {100 * res['cpu_busy']:.1f} %: " + ", ".join(
                     f"{k} {100 * v:.1f} %" for k, v in res["cpu_by_kind"].items()
                     if k != "idle"),
                 "  interrupts/s     " + (", ".join(f"{k} {v:.0f}" for k, v in
                                                   res["interrupts_per_s"].items()) or "none"),
                 f"  wire             host → partner {100 * res['wire_utilisation']['tx']:.1f} %, "
                 f"partner → host {100 * res['wire_utilisation']['rx']:.1f} % of 1 Gbit/s; "
                 f"frames {res['frames']['tx']} / {res['frames']['rx']}; TCP retransmissions "
                 f"{res['tcp']['rexmttimeo'] + res['tcp']['fastrexmt']}"]
        if sc:
            lines.append(f"  SO_CRYPT         {sc['records']} records, "
                         f"{sc['records_per_s'] or 0:.0f} records/s, "
                         f"{sc['ocf_requests_per_record'] or 0:.2f} OCF requests per record ("
                         + (", ".join(f"{k} {v}" for k, v in res["ocf_by_driver"].items())
                            or "none") + ")")
        ev = res["fault_events"]
        if ev["tx"] or ev["rx"]:
            def kinds(events):
                from collections import Counter
                return ", ".join(f"{k} {n}" for k, n in sorted(Counter(k for _, k in events)
                                                              .items())) or "none"
            lines.append(f"  wire faults      host → partner: {kinds(ev['tx'])}; "
                         f"partner → host: {kinds(ev['rx'])}")
        lines += bus_lines(res)
        lines.append(f"  simulation speed {res['cycles_per_s']:.0f} bus cycles/s "
                     f"(wall {res['wall_s']:.2f} s simulating, {res['wall_total_s']:.2f} s in all"
                     f"{skip_note(res)})")
        if res["pcap"]:
            lines.append(f"  capture          {args.pcap} (pcap, nanosecond timestamps)")
        for e in res["errors"]:
            lines.append(f"  error: {e}")
        if res["checker"]:
            lines.append(f"  PCI checker: {', '.join(res['checker'])}")
        return lines
    return _emit(args, result, human)


def _wire_faults(args) -> dict:
    """``--drop/--reorder/--duplicate/--corrupt``: the same rates both ways
    (netinet.wire.Faults), each direction's RNG seeded from ``--seed``."""
    rates = {k: getattr(args, k) for k in ("drop", "reorder", "duplicate", "corrupt")
             if getattr(args, k)}
    if not rates:
        return {}
    return {"faults_tx": dict(rates, seed=args.seed), "faults_rx": dict(rates, seed=args.seed + 1)}


def rate(text: str) -> float:
    """argparse type: a probability in [0, 1)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not a rate in [0, 1)")
    return v


def _net_problem(args, block: int) -> str | None:
    """What ``ocfsim net`` refuses before the run, in one line."""
    from ocf.cryptodev import CRYPTODEV_MAXLEN
    from sim.experiment import gtkw_path
    if (args.bytes is None) == (args.file is None):
        return "give one of --bytes N or --file PATH"
    if args.file is not None:
        if not os.path.isfile(args.file):
            return f"--file {args.file}: not a readable regular file"
        size = os.path.getsize(args.file)
        if not 1 <= size <= NET_MAX_BYTES:
            return f"--file {args.file}: {size} bytes is outside 1..{NET_MAX_BYTES}"
        if not os.access(args.file, os.R_OK):
            return f"--file {args.file}: not readable"
    from .workloads.net import SOCKBUF_MAX, SOCKBUF_MIN
    if args.sockbuf is not None and not SOCKBUF_MIN <= args.sockbuf <= SOCKBUF_MAX:
        return (f"--sockbuf {args.sockbuf}: give {SOCKBUF_MIN}..{SOCKBUF_MAX} bytes (the send "
                "buffer's low-water mark to what sbreserve grants)")
    if args.so_crypt:
        from .workloads.net import so_crypt_record_limit
        if args.encrypt != "none":
            return f"--so-crypt and --encrypt {args.encrypt}: give one way of encrypting"
        if args.mode == "piecemeal" and args.write_size > so_crypt_record_limit(args.so_crypt):
            return (f"--piecemeal: --write-size {args.write_size} is over the "
                    f"{so_crypt_record_limit(args.so_crypt)}-byte {args.so_crypt} record "
                    "(each write is one record)")
        if args.record_size is not None and (
                args.mode == "piecemeal" or args.record_size > so_crypt_record_limit(args.so_crypt)):
            return (f"--record-size {args.record_size}: at most "
                    f"{so_crypt_record_limit(args.so_crypt)} for {args.so_crypt}, and whole "
                    "frame only (--piecemeal makes each write one record)")
    elif args.mode or args.one_pass or args.record_size is not None:
        what = args.mode or ("one-pass" if args.one_pass else "record-size")
        return f"--{what} needs --so-crypt tls1.0|ssh2|paper"
    if args.encrypt != "none" and args.write_size % block:
        near = max(block, args.write_size - args.write_size % block)
        return (f"--write-size {args.write_size} is not a multiple of the {block}-byte 3DES "
                f"block; try --write-size {near}")
    if args.encrypt == "devcrypto" and args.write_size > CRYPTODEV_MAXLEN:
        return f"--write-size {args.write_size}: /dev/crypto takes at most {CRYPTODEV_MAXLEN} bytes"
    if args.vcd and args.backend == "pysim":
        return _prefixed("--vcd", unwritable(gtkw_path(args.vcd)))
    return None


# --------------------------------------------------------------------- bench
#: ``ocfsim bench NAME`` → module in ``bench/`` with ``main(argv) -> int``
BENCHES = {"pci": "pci_bandwidth", "cores": "crypto_cores", "null": "null", "fig1": "fig1",
           "speed": "speed", "faults": "faults", "table-i": "table_i",
           "table1": "table1", "table2": "table2"}


def cmd_bench(args) -> int:
    import importlib
    module = importlib.import_module(f"bench.{BENCHES[args.name]}")
    return module.main(args.rest + (["--json"] if args.json else []))


# -------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from ocf.cryptodev import CRYPTODEV_MAXLEN
    from sim.experiment import BACKENDS
    from .faults import fault_arg
    from .machines import CARD_KINDS, CRYPTO_KINDS, MAX_CARDS
    p = Parser(prog="ocfsim", description="Cycle-accurate PCI crypto-offload machine and OCF.")
    p.add_argument("--version", action="version", version=f"ocfsim {version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def common(sp, vcd=True):
        sp.add_argument("--backend", choices=BACKENDS, default="pysim",
                        help="simulator: pysim (pure Python) or verilator (compiled, cached)")
        sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        if vcd:
            sp.add_argument("--vcd", type=output_file, metavar="FILE",
                            help="write a VCD waveform of the whole run")
        out_options(sp, "the VCD (NAME.vcd, unless --vcd names a file)" if vcd else "nothing else")

    def machine_option(sp):
        from .machines import STANDARD
        sp.add_argument("--machine", choices=sorted(STANDARD), default=None,
                        help="a standard machine instead of --card/--cards/--clock: the OCF "
                             "paper's testbed configurations (docs/tables.md)")

    def seed(sp):
        sp.add_argument("--seed", type=int_range(0, 2**64 - 1), default=1,
                        help="seed of the random data, keys and IVs")

    sp = sub.add_parser("lspci", help="list the devices of a machine, like lspci",
                        description="Enumerate a machine's bus and list each device like lspci.")
    sp.add_argument("--card", action="append", choices=CARD_KINDS + ("mixed",),
                    help="card kind (repeat for a mix; 'mixed' alternates both crypto "
                         "kinds); default: dmatest")
    sp.add_argument("--cards", type=int_range(1, MAX_CARDS), default=_Default(2),
                    help="number of cards of the one --card kind")
    machine_option(sp)
    sp.add_argument("-v", "--verbose", action="store_true",
                    help="decode each device's configuration space, like lspci -v")
    common(sp, vcd=False)
    sp.set_defaults(func=cmd_lspci)

    sp = sub.add_parser("dma", help="K DMA test cards copy host memory at once, verified",
                        description="K DMA test cards copy host memory at once, verified.")
    sp.add_argument("--bytes", type=int_range(1, 1 << 20), required=True,
                    help="bytes each card copies")
    sp.add_argument("--cards", type=int_range(1, MAX_CARDS), default=1,
                    help="DMA test cards copying at once")
    sp.add_argument("--burst", type=int_range(1, 256), default=256,
                    help="dwords per DMA burst")
    sp.add_argument("--clock", type=int, choices=(33, 66), default=33, help="bus MHz")
    seed(sp)
    common(sp)
    sp.set_defaults(func=cmd_dma)

    sp = sub.add_parser("run", help="processes doing /dev/crypto on crypto cards, verified",
                        description="Processes doing /dev/crypto on crypto cards; every "
                                    "output checked against the cryptography package.")
    sp.add_argument("--card", action="append", choices=CRYPTO_KINDS + ("mixed", "soft"),
                    help="card kind (repeat for a mix; 'mixed' alternates both kinds; "
                         "'soft' uses no card, only the software driver); default: bcm5820")
    sp.add_argument("--cards", type=int_range(1, MAX_CARDS), default=_Default(1),
                    help="number of cards of the one --card kind")
    sp.add_argument("--alg", choices=("3des", "3des-sha1", "des", "null"), default="3des",
                    help="transform of each session (3des-sha1: 3DES-CBC + HMAC-SHA1-96)")
    sp.add_argument("--size", type=int_range(1, CRYPTODEV_MAXLEN), default=1024,
                    help="bytes per operation (a multiple of the cipher's block)")
    sp.add_argument("--ops", type=int_range(1, 1_000_000), default=32,
                    help="operations per process")
    sp.add_argument("--threads", type=int_range(1, 256), default=1,
                    help="processes issuing requests")
    sp.add_argument("--decrypt", action="store_true", help="decrypt instead of encrypt")
    sp.add_argument("--fault", action="append", type=fault_arg, metavar="SPEC",
                    help="inject a fault, e.g. reset@60us or bme-off@60us+60us (repeatable; "
                         "docs/faults.md); prints the per-run fault report")
    sp.add_argument("--profile", type=profile_arg, default="p3-1400-openbsd",
                    help="host profile: a name in sim/profiles or a .toml file")
    sp.add_argument("--clock", type=int, choices=(33, 66), default=None,
                    help="bus MHz; when not given, 66 with a 5820, else 33")
    machine_option(sp)
    seed(sp)
    common(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser(
        "net", help="send a file over TCP through the simulated NIC, optionally encrypted",
        description="A process sends N bytes (or a file) over TCP through the em "
                    "gigabit NIC to the link partner (a second host with a free CPU), "
                    "optionally encrypting each write (EVP: user-space 3DES-CBC + HMAC-SHA1 "
                    "at the profile's evp cost; devcrypto: /dev/crypto on the card) or "
                    "letting the socket do it (--so-crypt: TLS 1.0, SSH2 or the paper's "
                    "records built in the kernel through OCF, decoded by the partner); the "
                    "partner's bytes are checked against the cryptography package. The "
                    "machine: the BCM5820 and the NIC on a 64-bit/66 MHz bus (the socket "
                    "paper's testbed), or the Hifn 7751 and the NIC on a 32-bit/33 MHz bus "
                    "(the 7751 is a 32-bit/33 MHz part).")
    sp.add_argument("--bytes", type=int_range(1, NET_MAX_BYTES), metavar="N",
                    help="random bytes to send (or give --file)")
    sp.add_argument("--file", metavar="PATH", help="a file to send instead of random bytes")
    sp.add_argument("--write-size", type=int_range(1, 1 << 20), default=4088, metavar="B",
                    help="bytes per write() (the socket paper used 4088, 8176, 16352); "
                         "a multiple of 8 when encrypting")
    sp.add_argument("--encrypt", choices=("none", "evp", "devcrypto"), default="none",
                    help="encrypt each write: no, in user space (EVP), or through /dev/crypto")
    sp.add_argument("--so-crypt", choices=("tls1.0", "ssh2", "paper"), metavar="FRAMING",
                    help="SO_CRYPT on the socket: the process writes plaintext and the "
                         "kernel sends tls1.0, ssh2 or paper records (3DES-CBC + HMAC-SHA1 "
                         "through OCF), which the partner decodes and checks")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--whole-frame", dest="mode", action="store_const", const="whole-frame",
                      help="SO_CRYPT: build a record once all its bytes are in the kernel "
                           "(the default)")
    mode.add_argument("--piecemeal", dest="mode", action="store_const", const="piecemeal",
                      help="SO_CRYPT: encrypt a record piece by piece as the bytes arrive "
                           "(the socket paper's prototype)")
    sp.add_argument("--one-pass", action="store_true",
                    help="SO_CRYPT: MAC and encrypt in one request on the card")
    sp.add_argument("--record-size", type=int_range(1, 32768), default=None, metavar="B",
                    help="SO_CRYPT, whole frame: the most plaintext bytes per record (a "
                         "write is cut into records of this size); default: the framing's "
                         "limit (TLS 16384, SSH 32768)")
    sp.add_argument("--card", choices=("bcm5820", "hifn7751"), default=None,
                    help="the crypto card beside the NIC (and so the bus, see above); "
                         "default bcm5820")
    from .machines import STANDARD, has_nic
    sp.add_argument("--machine", default=None,
                    choices=sorted(n for n, make in STANDARD.items() if has_nic(make())),
                    help="a standard machine with the NIC instead of --card: "
                         "s2567-5820-em-64-66 is the socket paper's (docs/network.md)")
    sp.add_argument("--sockbuf", type=int, default=None, metavar="B",
                    help="both hosts' TCP send and receive buffers (net.inet.tcp.sendspace "
                         "and recvspace), which bound the window: 2048..233016 (MCLBYTES to "
                         "what sbreserve grants); default: 16384, OpenBSD 3.x's")
    sp.add_argument("--rx", action="store_true",
                    help="the partner sends (encrypted), the process reads and decrypts "
                         "(with --so-crypt: reads plaintext from its SO_CRYPT socket)")
    sp.add_argument("--pcap", type=output_file, metavar="FILE",
                    help="write every frame of the wire to a pcap file (simulated ns)")
    for fault, what in (("drop", "lost"), ("reorder", "delivered 50 µs late"),
                        ("duplicate", "delivered twice"),
                        ("corrupt", "delivered with one bit flipped")):
        sp.add_argument(f"--{fault}", type=rate, default=0.0, metavar="RATE",
                        help=f"share of frames {what}, each direction of the wire")
    sp.add_argument("--profile", type=profile_arg, default="p3-1400-openbsd",
                    help="host profile: a name in sim/profiles or a .toml file")
    seed(sp)
    common(sp)
    sp.set_defaults(func=cmd_net)

    sp = sub.add_parser("bench", help="benchmarks (pci, cores, null, fig1, table1, table2, "
                                      "speed, faults, table-i); see bench/",
                        description="Benchmarks; `ocfsim bench NAME --help` lists the "
                                    "options of each.")
    sp.add_argument("name", choices=sorted(BENCHES), help="benchmark")
    sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark")
    sp.set_defaults(func=cmd_bench)

    from .vcd import add_parser as vcd_parser
    vcd_parser(sub)
    return p


def skipped_share(r: dict):
    """The share of a run's bus cycles that exact idle skipping skipped
    (None when the backend does not skip)."""
    skipped, cycles = r.get("_speed", {}).get("skipped"), r.get("_cycles")
    return skipped / cycles if skipped is not None and cycles else None


def skip_note(res: dict) -> str:
    share = res.get("skipped_share")
    return "" if not share else f"; {100 * share:.0f} % of cycles skipped idle"


def main(argv=None) -> int:
    parser = build_parser()
    clash = layout_conflicts()
    if clash:
        parser.exit(2, f"ocfsim: error: {clash[0]}\n")
    args = parser.parse_args(argv)
    args.command_line = command_line(parser, argv)
    if getattr(args, "out", None) and hasattr(args, "vcd") and args.vcd is None:
        args.vcd = os.path.join(args.out, f"{args.command}.vcd")
    try:
        status = args.func(args)
        sys.stdout.flush()                            # a closed pipe shows here, not at exit
        return status
    except UsageError as exc:
        parser.exit(2, f"ocfsim {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """The reader of stdout closed it (``| head``): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())             # no second error at interpreter exit
    return 128 + 13                                   # the status of a SIGPIPE death


if __name__ == "__main__":
    sys.exit(main())
