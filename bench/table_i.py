"""The socket-crypto paper's Tables I and II: seconds to encrypt and send a
100 MB file over TCP through the gigabit NIC, by EVP, /dev/crypto and SO_CRYPT.

Burnside and Keromytis, "Accelerating Application-Level Security Protocols"
(socket-crypto paper), §IV-C and Table I: two 1.4 GHz Pentium III, a
BCM5820 and the gigabit NIC on each machine's 64-bit/66 MHz bus, a 100 MB
file encrypted and sent in writes of 4088, 8176 and 16352 bytes (footnote
2: multiples of OpenBSD's 4088-byte write quantum), by OpenSSL EVP in user
space, through /dev/crypto, or by the in-kernel SO_CRYPT prototype. Each
cell here is ``ocfsim.workloads.net`` (``ocfsim net``) on the BCM5820 + NIC
machine with the default P3 profile.

SO_CRYPT rows (``method: so_crypt``) come in variants, all with the
paper's record layout (``paper`` framing: the MAC over the data only) so
that only the processing differs: ``paper``, the prototype's piecemeal
processing (a record encrypted on the card piece by piece as the bytes
arrive, its MAC carried on the CPU), the row compared with the paper's
Table I and with Table II; and what the paper could not measure:
``whole-frame`` (a record built once all its bytes are in the kernel, MAC
then encrypt through OCF), ``one-pass`` (MAC and encryption in one request
on a card that does MAC-then-encrypt), ``chunked`` (one-pass records of
at most 4088 bytes: one card request per ``sosend`` chunk with cipher and
MAC both on the card, the request pattern of the prototype as §III
describes it, "send() passes the mbuf ... along with the cryptographic
transforms, to the OCF"; the records stay whole so the partner can check
them) and ``rx`` (the partner sends the
records, the process reads plaintext from its SO_CRYPT socket). A variant
netinet/socrypt.py cannot run yet is refused (named on --variants) or left
out (by default).

Table II: SO_CRYPT's improvement over /dev/crypto at each write size,
(t_/dev/crypto - t_SO_CRYPT) / t_/dev/crypto, from the two rows' seconds.

Steady state and extrapolation. A cell simulates ``--warmup-mb`` MiB of
warm-up (TCP's handshake, slow start from two segments, as OpenBSD's
tcp_input opens the window by one for the ACK of the SYN, and the first
delayed ACK; the 16 KB window is open after a dozen segments,
well inside the default 0.25 MiB) and then ``--mb`` MiB
past it, and measures the delivery rate over those: seconds for 100 MiB =
the warm-up's simulated time + the rest of the 100 MiB at the steady rate
(``extrapolated``: true). ``steady_spread`` is the difference between the
rates of the two halves of the measured part, relative to the rate: a small
one says the part measured was steady. ``--mb 100`` simulates the whole
file (``extrapolated``: false; the warm-up is then part of it).

Supporting numbers per row (after the warm-up; the whole run with --mb
100), scaled to the 100 MiB file: CPU seconds by kind of work
(``cpu_s_per_100mb``), OCF requests, interrupts by device, PCI data-cycle
and wire utilisation, interrupts per second.

Calibration: the EVP per-byte cost (``evp.byte`` in
sim/profiles/p3-1400-openbsd.toml) was calibrated on one cell, EVP at 8176
bytes (:data:`CALIBRATED`); every other cell, and every /dev/crypto and
SO_CRYPT cell, is a prediction.

Usage: python -m bench.table_i [--methods evp,devcrypto,so_crypt]
       [--variants paper,whole-frame,one-pass,chunked,rx] [--sizes 4088,8176,16352]
       [--mb MIB] [--warmup-mb MIB] [--backend verilator|pysim] [-j N | --dask ADDR]
       [--plot FILE | --no-plot] [--logy] [--json]   (also ``ocfsim bench table-i``)
"""

from __future__ import annotations

import sys
import time

from ocfsim.sweep import Sweep, where_text
from ocfsim.workloads.net import MB, WRITE_QUANTUM, net_machine
from sim.experiment import run

__all__ = ["run_bench", "format_table", "plot", "main", "PAPER", "PAPER_TABLE_II",
           "CALIBRATED", "METHODS", "SIZES", "VARIANTS", "table_ii"]

#: socket paper footnote 2: multiples of the 4088-byte write quantum
SIZES = (WRITE_QUANTUM, 2 * WRITE_QUANTUM, 4 * WRITE_QUANTUM)
#: method name in the rows → the workload's ``encrypt``
METHODS = {"evp": "evp", "/dev/crypto": "devcrypto", "so_crypt": "so_crypt"}
#: SO_CRYPT variant → the workload's keywords (all with the paper's framing)
VARIANTS = {
    "paper": {"framing": "paper", "mode": "piecemeal"},
    "whole-frame": {"framing": "paper", "mode": "whole-frame"},
    "one-pass": {"framing": "paper", "mode": "whole-frame", "one_pass": True},
    "chunked": {"framing": "paper", "mode": "whole-frame", "one_pass": True,
                "record_size": WRITE_QUANTUM},
    "rx": {"framing": "paper", "mode": "whole-frame", "rx": True},
}
#: socket paper Table I, seconds for the 100 MB file (the SO_CRYPT row: the
#: prototype, compared with the ``paper`` variant)
PAPER = {
    "evp": dict(zip(SIZES, (32.79, 31.84, 32.38))),
    "/dev/crypto": dict(zip(SIZES, (4.13, 4.23, 4.72))),
    ("so_crypt", "paper"): dict(zip(SIZES, (3.80, 3.97, 4.27))),
}
#: socket paper Table II: SO_CRYPT's improvement over /dev/crypto at 4, 8, 16 KB
PAPER_TABLE_II = dict(zip(SIZES, (0.08, 0.06, 0.10)))
#: the cell the EVP cost was calibrated on (there the model matches by construction)
CALIBRATED = {("evp", 2 * WRITE_QUANTUM)}
#: the file of the paper: 100 MB (read as MiB, as 72,416 full segments carry it)
FILE_MB = 100


def _per_100mb(r: dict, seconds: float | None) -> dict:
    """The run's counts scaled to the 100 MiB file: after the warm-up when
    there was one (``steady_*`` over ``steady_bytes``), else over the whole run."""
    file_bytes = FILE_MB * MB
    if r.get("steady_cpu_s") is not None and r.get("steady_bytes"):
        scale = file_bytes / r["steady_bytes"]
        cpu = {k: v * scale for k, v in r["steady_cpu_s"].items() if k != "idle"}
        ocf = r["steady_ocf_requests"].get("total", 0) * scale
        irq = {k: v * scale for k, v in r["steady_interrupts"].items()}
        return {"cpu_s_per_100mb": cpu, "ocf_requests_per_100mb": ocf,
                "interrupts_per_100mb": irq,
                "records_per_100mb": (r["steady_records"] * scale
                                      if r.get("steady_records") is not None else None),
                "pci_utilisation": r["steady_pci_utilisation"],
                "wire_utilisation": r["steady_wire_utilisation"]["rx" if r["rx"] else "tx"]}
    scale = file_bytes / r["bytes"]
    secs = r["sim_time_s"]
    so = r.get("so_crypt") or {}
    return {"cpu_s_per_100mb": {k: v * secs * scale for k, v in r["cpu_by_kind"].items()
                                if k != "idle"},
            "ocf_requests_per_100mb": r["ocf_requests"] * scale,
            "interrupts_per_100mb": {k: v * secs * scale
                                     for k, v in r["interrupts_per_s"].items()},
            "records_per_100mb": so["records"] * scale if so.get("records") else None,
            "pci_utilisation": r["pci_utilisation"],
            "wire_utilisation": r["wire_utilisation"]["rx" if r["rx"] else "tx"]}


def one_cell(method: str, variant: str | None, size: int, mb: float, warmup_mb: float,
             backend: str, seed: int = 1) -> dict:
    whole = mb >= FILE_MB
    nbytes = FILE_MB * MB if whole else int((mb + warmup_mb) * MB)
    nbytes -= nbytes % 8
    warmup = 0 if whole else int(warmup_mb * MB)
    t0 = time.perf_counter()
    extra = dict(VARIANTS[variant]) if variant else {}
    r = run(net_machine("bcm5820"), "ocfsim.workloads.net:net",
            {"nbytes": nbytes, "write_size": size, "encrypt": METHODS[method],
             "seed": seed, "warmup_bytes": warmup, "timeout_s": 600.0, **extra},
            backend=backend)
    file_bytes = FILE_MB * MB
    if whole:
        seconds = r["sim_time_s"]
        spread = None
    else:
        rate = r["steady_mbps"] * 1e6 / 8 if r["steady_mbps"] else None
        seconds = (r["warmup_s"] + (file_bytes - r["warmup_bytes"]) / rate) if rate else None
        spread = r.get("steady_spread")
    ref = PAPER.get((method, variant) if variant else method, {}).get(size)
    row = {"method": method, "variant": variant, "size": size, "seconds": seconds,
           "ref_seconds": ref,
           "error": (seconds - ref) / ref if ref and seconds else None,
           "mbps": 8 * file_bytes / seconds / 1e6 if seconds else None,
           "mb_simulated": r["bytes"] / MB, "extrapolated": not whole,
           "warmup_s": r["warmup_s"], "steady_spread": spread,
           "calibrated": (method, size) in CALIBRATED,
           "cpu_busy": r.get("steady_cpu_busy", r["cpu_busy"]),
           "cpu_by_kind": r.get("steady_cpu_by_kind", r["cpu_by_kind"]),
           "interrupts_per_s": r.get("steady_interrupts_per_s", r["interrupts_per_s"]),
           **_per_100mb(r, seconds),
           "ocf_requests_per_record": (r["so_crypt"] or {}).get("ocf_requests_per_record"),
           "retransmissions": r["tcp"]["rexmttimeo"] + r["tcp"]["fastrexmt"],
           "ok": r["ok"], "errors": r["errors"], "backend": backend,
           "sim_time_s": r["sim_time_s"], "wall_s": time.perf_counter() - t0,
           "wall_s_per_mb": r["_wall_s"] / (r["bytes"] / MB)}
    row["fixed_wall_s"] = max(0.0, row["wall_s"] - r["_wall_s"])
    return row


#: worker counts the projection prints: this machine's two cores and a
#: 16-worker Dask cluster
PROJECT_WORKERS = (2, 16)


def projection(rows: list[dict], workers=PROJECT_WORKERS) -> dict:
    """Wall time of the same cells run over the whole 100 MiB file, from
    each cell's measured rate: its fixed cost (finding the model, start-up)
    plus its wall seconds per simulated MiB times the MiB of the file and
    the warm-up; for N workers, the cells dealt longest first to the least
    loaded worker (the makespan a process pool or a Dask cluster reaches
    with one cell per task: no cell is split)."""
    cells = sorted((r["fixed_wall_s"] + r["wall_s_per_mb"] * FILE_MB for r in rows),
                   reverse=True)
    out = {"cell_wall_s": max(cells, default=0.0), "serial_s": sum(cells), "workers": {}}
    for n in workers:
        load = [0.0] * n
        for c in cells:
            load[load.index(min(load))] += c
        out["workers"][str(n)] = max(load)
    return out


def table_ii(rows: list[dict]) -> list[dict]:
    """SO_CRYPT's improvement over /dev/crypto per write size, for every
    transmit variant measured; the paper's figure beside the ``paper`` variant."""
    dev = {r["size"]: r["seconds"] for r in rows if r["method"] == "/dev/crypto"}
    out = []
    for r in rows:
        if r["method"] != "so_crypt" or r["variant"] == "rx" or not dev.get(r["size"]) \
                or not r["seconds"]:
            continue
        ref = PAPER_TABLE_II.get(r["size"]) if r["variant"] == "paper" else None
        out.append({"variant": r["variant"], "size": r["size"],
                    "improvement": (dev[r["size"]] - r["seconds"]) / dev[r["size"]],
                    "ref_improvement": ref})
    return out


def run_bench(methods=("evp", "/dev/crypto", "so_crypt"), sizes=SIZES, mb=1.0,
              warmup_mb=0.25, backend="verilator", progress=None, seed=1, sweep=None,
              variants=None) -> dict:
    sweep = sweep or Sweep()
    variants = list(VARIANTS) if variants is None else list(variants)
    cells = [(m, v, s) for m in methods for v in (variants if m == "so_crypt" else [None])
             for s in sizes]
    t0 = time.perf_counter()
    rows = sweep.map(one_cell, [(m, v, s, mb, warmup_mb, backend, seed) for m, v, s in cells],
                     progress)
    return {"bench": "table-i", "backend": backend, "seed": seed, "mb": mb,
            "warmup_mb": warmup_mb, "variants": variants,
            **sweep.describe(), "wall_s": time.perf_counter() - t0,
            "rows": rows, "table_ii": table_ii(rows), "projection": projection(rows)}


def _label(r: dict) -> str:
    return f"SO_CRYPT {r['variant']}" if r["method"] == "so_crypt" else r["method"]


def format_table(result: dict) -> str:
    from ocfsim.report import table
    f = (lambda v, fmt: fmt.format(v) if v is not None else "-")
    rows = []
    for r in result["rows"]:
        rows.append([_label(r), r["size"], f(r["seconds"], "{:.2f}"),
                     f(r["ref_seconds"], "{:.2f}"),
                     f(100 * r["error"] if r["error"] is not None else None, "{:+.0f} %"),
                     f(r["mbps"], "{:.1f}"), f"{100 * r['cpu_busy']:.0f}",
                     f"{100 * r['wire_utilisation']:.0f}",
                     f"{r['mb_simulated']:.2f}" + (" (extrap.)" if r["extrapolated"] else ""),
                     "calibrated" if r["calibrated"] else "predicted",
                     "ok" if r["ok"] else "FAIL"])
    text = "Table I: seconds to encrypt and send 100 MB\n"
    text += table(["method", "write B", "s/100MB", "paper", "error", "Mbit/s", "CPU %",
                   "wire %", "MiB simulated", "", "verified"], rows)
    if result["table_ii"]:
        text += "\n\nTable II: SO_CRYPT's improvement over /dev/crypto\n"
        text += table(["variant", "write B", "model", "paper"],
                      [[t["variant"], t["size"], f"{100 * t['improvement']:+.1f} %",
                        f(100 * t["ref_improvement"] if t["ref_improvement"] is not None
                          else None, "{:.0f} %")] for t in result["table_ii"]])
    text += "\n\nPer 100 MB (after the warm-up): CPU seconds by kind, OCF requests, interrupts\n"
    sup = []
    for r in result["rows"]:
        cpu = sorted(r["cpu_s_per_100mb"].items(), key=lambda kv: -kv[1])
        sup.append([_label(r), r["size"],
                    " ".join(f"{k} {v:.2f}" for k, v in cpu if v >= 0.005),
                    f"{r['ocf_requests_per_100mb']:.0f}",
                    f(r["ocf_requests_per_record"], "{:.2f}"),
                    " ".join(f"{k} {v:.0f}" for k, v in r["interrupts_per_100mb"].items()),
                    " ".join(f"{k} {v:.0f}" for k, v in r["interrupts_per_s"].items()),
                    f"{100 * r['pci_utilisation']:.1f}"])
    text += table(["method", "write B", "CPU s per 100 MB", "OCF req.", "req./record",
                   "interrupts", "interrupts/s", "PCI %"], sup)
    text += ("\nCPU %, interrupts/s, PCI %: after the warm-up (the whole run with --mb 100);"
             " wire %: host → partner (rx: partner → host)")
    text += (f"\nbackend {result['backend']}, {where_text(result)}, wall {result['wall_s']:.0f} s;"
             f" paper: socket-crypto paper Tables I and II; 100 MB = 100 MiB; extrapolated "
             f"cells: {result['warmup_mb']} MiB warm-up + {result['mb']} MiB at the steady rate "
             "(see the module docstring)")
    pr = result["projection"]
    text += (f"\nprojected wall time of these {len(result['rows'])} cells over the whole "
             f"{FILE_MB} MiB file, from each cell's measured wall s per simulated MiB: "
             f"{pr['serial_s'] / 3600:.1f} h on one core, " + ", ".join(
                 f"{s / 3600:.1f} h on {n} workers" for n, s in pr["workers"].items())
             + f" (the longest cell {pr['cell_wall_s'] / 3600:.1f} h)")
    return text


def plot(result: dict, logy: bool = False):
    """Table I as grouped bars (seconds per 100 MB by write size, one bar per
    method, the paper's values as hollow markers on them) and Table II beside
    it (improvement over /dev/crypto, model bars and paper markers)."""
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5),
                                 gridspec_kw={"width_ratios": [2, 1]})
    labels = list(dict.fromkeys(_label(r) for r in result["rows"]))
    sizes = sorted({r["size"] for r in result["rows"]})
    w = 0.8 / max(1, len(labels))
    colour = {}
    for i, lab in enumerate(labels):
        rs = {r["size"]: r for r in result["rows"] if _label(r) == lab}
        xs = [j + (i - (len(labels) - 1) / 2) * w for j in range(len(sizes))]
        ys = [rs[s]["seconds"] if s in rs and rs[s]["seconds"] else 0 for s in sizes]
        bars = ax.bar(xs, ys, w, label=lab)
        colour[lab] = bars.patches[0].get_facecolor() if bars.patches else None
        refs = [rs[s]["ref_seconds"] if s in rs else None for s in sizes]
        ax.plot([x for x, ref in zip(xs, refs) if ref], [ref for ref in refs if ref], "o",
                mfc="none", mec="k")
    ax.plot([], [], "o", mfc="none", mec="k", label="paper (Table I)")
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel("write size (bytes)")
    ax.set_ylabel("seconds per 100 MB")
    if logy:
        ax.set_yscale("log")
    ax.set_title("Table I: encrypt and send 100 MB")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    t2 = result["table_ii"]
    vs = list(dict.fromkeys(t["variant"] for t in t2))
    w2 = 0.8 / max(1, len(vs))
    for i, v in enumerate(vs):
        ts = {t["size"]: t for t in t2 if t["variant"] == v}
        xs = [j + (i - (len(vs) - 1) / 2) * w2 for j in range(len(sizes))]
        bx.bar(xs, [100 * ts[s]["improvement"] if s in ts else 0 for s in sizes], w2,
               label=f"SO_CRYPT {v}", color=colour.get(f"SO_CRYPT {v}"))
        refs = [(x, 100 * ts[s]["ref_improvement"]) for x, s in zip(xs, sizes)
                if s in ts and ts[s]["ref_improvement"] is not None]
        if refs:
            bx.plot([x for x, _ in refs], [y for _, y in refs], "o", mfc="none", mec="k",
                    ls="", label="paper (Table II)")
    bx.axhline(0, color="k", lw=0.5)
    bx.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    bx.set_xlabel("write size (bytes)")
    bx.set_ylabel("improvement over /dev/crypto (%)")
    bx.set_title("Table II")
    if t2:
        bx.legend(fontsize=8)
    bx.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def build_parser():
    from ocfsim.cli import (Parser, int_list, int_range, name_list, out_options,
                            plot_options, sweep_options)
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
    p.add_argument("--methods", type=name_list(("evp", "devcrypto", "so_crypt")),
                   default="evp,devcrypto,so_crypt",
                   help="rows: evp (user space), devcrypto (/dev/crypto on the BCM5820), "
                        "so_crypt (SO_CRYPT in the kernel, see --variants)")
    p.add_argument("--variants", type=name_list(tuple(VARIANTS)), default=None,
                   help="SO_CRYPT rows: paper (piecemeal, the paper's prototype), "
                        "whole-frame, one-pass, chunked, rx; default: those netinet.socrypt can run")
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
    plot_options(p, "build/table_i.png")
    sweep_options(p)
    out_options(p, "the plot (table_i.png)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def main(argv=None) -> int:
    from ocfsim.cli import plot_path, print_result, save_plot
    from ocfsim.sweep import CellError, from_args as sweep_from_args, report_failure
    p = build_parser()
    args = p.parse_args(argv)
    methods = ["/dev/crypto" if m == "devcrypto" else m for m in args.methods]
    if args.variants is not None and "so_crypt" not in methods:
        p.error("--variants needs so_crypt in --methods")
    variants = args.variants if args.variants is not None else list(VARIANTS)
    big = [z for z in args.sizes if z > 16384]       # RFC 2246 §6.2.1: 2^14 per record
    if "so_crypt" in methods and "paper" in variants and big:
        p.error(f"--sizes {big[0]}: the paper variant makes each write one record of at "
                "most 16384 bytes")
    plot_file = plot_path(p, args, "build/table_i.png")
    progress = None if args.json else (lambda r: print(
        f"  {_label(r):22} {r['size']:6} B: {r['seconds'] or float('nan'):7.2f} s per 100 MB",
        file=sys.stderr))
    try:
        with sweep_from_args(p, args) as sweep:
            result = run_bench(methods, args.sizes, args.mb, args.warmup_mb, args.backend,
                               progress, seed=args.seed, sweep=sweep, variants=args.variants)
    except CellError as exc:
        return report_failure(p.prog, exc)
    if plot_file and result["rows"]:
        save_plot(args, plot(result, logy=args.logy), plot_file)
        result["plot"] = plot_file
    print_result(p, argv, args, "table-i", result, format_table, args.seed)
    return 0 if all(r["ok"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
