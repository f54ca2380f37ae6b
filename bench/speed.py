"""Simulation speed: bus cycles per wall second per machine, workload and backend.

For each standard machine (``ocfsim.machines``: one DMA test card, one
BCM5820, one Hifn 7751; and ``net``, the BCM5820 and the em NIC of ``ocfsim
net``) and the workloads that fit it — idle (nothing but the clock), a 1 MiB
DMA copy, 16 KB /dev/crypto requests from four processes, 64-byte requests
from four processes, and ``net``: a process sending 256 KiB over TCP through
the NIC to the link partner (ocfsim/workloads/net.py, 4088-byte writes, no
encryption) — each backend runs the same experiment
(pysim a shortened one: it is ~100x slower) and the row gives the bus cycles
simulated per wall second of simulating, and the per-run fixed cost (wall
time of the whole run minus the simulating: finding or building the model,
process start-up, boot of the simulator).

``verilator`` is the direct backend (:mod:`sim.verilator.direct`, the one
``--backend verilator`` runs); ``cocotb`` the same model under the cocotb
bench (``sim.experiment.COCOTB``), for the before/after.

The ``raw`` rows are the ceiling: the Verilator run is recorded (every input
write and DRAM backdoor write with its cycle; the ``verilator`` row is that
recording run) and replayed by a C++ main built from the very same Verilog
with a free-running clock (:mod:`sim.verilator.raw`), which must end with
every output port, monitor counters included, and all of host DRAM as the
recorded run did. ``ratio_to_raw`` is a row's speed over the raw speed of the
same machine and workload; raw rows also give ``ratio_to_dma_raw``, the raw
speed over the DMA machine's raw speed on the same workload.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ocfsim.machines import crypto_machine, dma_machine
from ocfsim.workloads.net import net_machine

__all__ = ["run_bench", "idle", "MACHINES", "WORKLOADS", "BACKENDS", "DEFAULT_BACKENDS"]

MACHINES = {
    "dma": lambda: dma_machine(1),
    "bcm5820": lambda: crypto_machine(["bcm5820"]),
    "hifn7751": lambda: crypto_machine(["hifn7751"]),
    "net": lambda: net_machine("bcm5820"),
}

#: cipher per card, as in the papers' measurements: the 5820 with
#: HMAC-SHA1 (OCF paper Table 2), the 7751 3DES alone (Table 1)
ALG = {"bcm5820": "3des-sha1", "hifn7751": "3des"}

#: workload → (machines it runs on, entry, args per backend). Sizes are the
#: model's choice: long enough on Verilator for start-up to be a small share
#: of the simulating; pysim runs a few requests so a row takes well under a
#: minute.
WORKLOADS = {
    "idle": (("dma", "bcm5820", "hifn7751"), "bench.speed:idle",
             {"verilator": {"cycles": 2_000_000}, "pysim": {"cycles": 5_000}}),
    "dma": (("dma",), "ocfsim.workloads.dma:dma_copy",
            {"verilator": {"nbytes": 1 << 20}, "pysim": {"nbytes": 4096}}),
    "crypto16k": (tuple(ALG), "ocfsim.workloads.devcrypto:devcrypto",
                  {"verilator": {"size": 16384, "ops": 32, "threads": 4},
                   "pysim": {"size": 16384, "ops": 1, "threads": 1}}),
    "crypto64": (tuple(ALG), "ocfsim.workloads.devcrypto:devcrypto",
                 {"verilator": {"size": 64, "ops": 200, "threads": 4},
                  "pysim": {"size": 64, "ops": 8, "threads": 4}}),
    # 256 KiB: past TCP's start-up into the steady stream (slow start opens
    # the 16 KB window within the first ~30 KB); pysim one byte (boot, the
    # handshake, one segment and the close: at ~200 cycles/s a KiB more
    # costs minutes and says nothing new about the speed)
    "net": (("net",), "ocfsim.workloads.net:net",
            {"verilator": {"nbytes": 256 << 10}, "pysim": {"nbytes": 1}}),
}

BACKENDS = ("pysim", "cocotb", "verilator", "raw")

#: the rows printed unless --backends says otherwise
DEFAULT_BACKENDS = ("pysim", "verilator", "raw")

#: bench backend name → ``sim.experiment.run`` backend name
RUN_BACKEND = {"pysim": "pysim", "cocotb": "verilator-cocotb", "verilator": "verilator"}


async def idle(host, cycles: int) -> dict:
    """Nothing but the clock: no host event for ``cycles`` bus cycles."""
    await host.sleep(cycles * host.period_ps)
    return {"ok": not host.checker_errors()}


def _args(machine: str, workload: str, backend: str) -> dict:
    args = dict(WORKLOADS[workload][2]["pysim" if backend == "pysim" else "verilator"])
    if workload.startswith("crypto"):
        args["alg"] = ALG[machine]
    return args


def _row(machine, workload, backend, ok, cycles, wall, fixed, wakeups=None, skip=False,
         skipped=None, lazy=False) -> dict:
    # sim_cycles as in every bench's rows (README, JSON conventions);
    # wakeups: backend steps the host made (sim.host.Host.wakeups), None for raw;
    # skip: exact idle skipping on; skipped_share: the clocks it skipped;
    # lazy: the lazy RTL on (docs/simulation.md; a raw row replays a run made so)
    return {"machine": machine, "workload": workload, "backend": backend, "ok": ok,
            "skip": skip, "lazy": lazy, "sim_cycles": cycles, "wall_s": wall, "fixed_s": fixed,
            "cycles_per_s": cycles / wall if wall else 0.0, "ratio_to_raw": None,
            "wakeups": wakeups,
            "skipped_share": skipped / cycles if skipped is not None and cycles else None}


@contextlib.contextmanager
def _switch(name: str, on: bool):
    """A host switch (``$OCFSIM_SKIP``, ``$OCFSIM_LAZY``) on or off for the
    runs inside (the Verilator child process inherits it)."""
    before = os.environ.get(name)
    os.environ[name] = "1" if on else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def _skipping(on: bool):
    """Exact idle skipping on or off for the runs inside."""
    from sim.host import SKIP_ENV
    return _switch(SKIP_ENV, on)


def _lazy(on: bool):
    """The lazy RTL on or off for the runs inside."""
    from sim.host import LAZY_ENV
    return _switch(LAZY_ENV, on)


def measure(machine: str, workload: str, backend: str, record: str | None = None,
            skip: bool = False, lazy: bool = False) -> dict:
    """One row: run the workload once; cycles per wall second and fixed cost."""
    from sim.experiment import run
    entry = WORKLOADS[workload][1]
    t0 = time.perf_counter()
    with _skipping(skip), _lazy(lazy):
        r = run(MACHINES[machine](), entry, _args(machine, workload, backend),
                backend=RUN_BACKEND[backend], record=record)
    total = time.perf_counter() - t0
    speed = r.get("_speed", {})
    return _row(machine, workload, backend, bool(r.get("ok")), r["_cycles"], r["_wall_s"],
                total - r["_wall_s"], speed.get("wakeups", {}).get("steps"), skip,
                speed.get("skipped"), lazy)


def measure_raw(machine: str, workload: str, skip: bool = False,
                lazy: bool = False) -> list[dict]:
    """The recorded Verilator row and the raw harness's replay of it (the
    harness skipping idle clocks when the recorded run did)."""
    from sim.experiment import direct_build
    from sim.verilator.raw import ReplayMismatch, raw_harness, replay
    spec = MACHINES[machine]()
    with tempfile.TemporaryDirectory(prefix="ocfsim-speed-") as tmp:
        record = str(Path(tmp) / "run.rec")
        row = measure(machine, workload, "verilator", record=record, skip=skip, lazy=lazy)
        t0 = time.perf_counter()
        exe = raw_harness(direct_build(spec), spec.ports())
        try:
            r, ok = replay(exe, Path(record), skip=skip), True
        except ReplayMismatch as exc:
            print(f"ocfsim bench speed: {machine}/{workload}: {exc}", file=sys.stderr)
            r, ok = {"cycles": 0, "wall_s": 0.0}, False
        fixed = time.perf_counter() - t0 - r["wall_s"]
    return [row, _row(machine, workload, "raw", ok, r["cycles"], r["wall_s"], fixed,
                      skip=skip, lazy=lazy)]


def cells(machines, workloads, backends) -> list[tuple[str, str, str]]:
    """(machine, workload, backend) of every row, workloads only where they fit."""
    return [(m, w, b) for m in machines for w in workloads for b in backends
            if m in WORKLOADS[w][0]]


#: --skip and --lazy choices → the settings each cell runs with
SKIP_CHOICES = {"off": (False,), "on": (True,), "both": (False, True)}
LAZY_CHOICES = SKIP_CHOICES


def run_bench(machines=tuple(MACHINES), workloads=tuple(WORKLOADS), backends=DEFAULT_BACKENDS,
              progress=None, skip: str = "off", lazy: str = "off") -> dict:
    """Every row; a ``raw`` cell runs Verilator with a record (its row is kept
    only if ``verilator`` was asked for), then the replay. ``skip``: exact
    idle skipping ``off``, ``on`` or ``both`` (each cell twice); ``lazy``:
    the lazy RTL, the same way (with both, each cell up to four times)."""
    rows = []
    settings = [(s, z) for s in SKIP_CHOICES[skip] for z in LAZY_CHOICES[lazy]]
    for machine, workload, backend in cells(machines, workloads, backends):
        if backend == "verilator" and "raw" in backends:
            continue                                   # made by the raw cell
        for on, lz in settings:
            new = (measure_raw(machine, workload, on, lz) if backend == "raw"
                   else [measure(machine, workload, backend, skip=on, lazy=lz)])
            new = [r for r in new if r["backend"] in backends]
            rows += new
            for r in new:
                if progress:
                    progress(r)
    _ratios(rows)
    return {"bench": "speed", "rows": rows}


def _ratios(rows: list[dict]) -> None:
    """Fill ``ratio_to_raw`` and, on raw rows, ``ratio_to_dma_raw`` (against
    rows with the same skip and lazy settings); with both skip settings,
    ``skip_speedup`` on the skipping rows (their speed over the same row's
    without, lazy alike); with both lazy settings, ``lazy_speedup`` on the
    lazy rows (over the same row's not lazy, skipping alike)."""
    ok = [r for r in rows if r["ok"] and r["cycles_per_s"]]
    raw = {(r["machine"], r["workload"], r["skip"], r.get("lazy", False)): r["cycles_per_s"]
           for r in ok if r["backend"] == "raw"}
    speed = {(r["machine"], r["workload"], r["backend"], r["skip"], r.get("lazy", False)):
             r["cycles_per_s"] for r in ok}
    for r in rows:
        lazy = r.get("lazy", False)
        ref = raw.get((r["machine"], r["workload"], r["skip"], lazy))
        r["ratio_to_raw"] = r["cycles_per_s"] / ref if ref else None
        if r["backend"] == "raw":
            dma = raw.get(("dma", r["workload"], r["skip"], lazy))
            r["ratio_to_dma_raw"] = r["cycles_per_s"] / dma if dma else None
        cell = (r["machine"], r["workload"], r["backend"])
        if r["skip"]:
            base = speed.get(cell + (False, lazy))
            r["skip_speedup"] = r["cycles_per_s"] / base if base else None
        if lazy:
            base = speed.get(cell + (r["skip"], False))
            r["lazy_speedup"] = r["cycles_per_s"] / base if base else None


def format_row(r: dict) -> str:
    ratio = "" if r.get("ratio_to_raw") is None else f"  {r['ratio_to_raw']:.2f} of raw"
    dma = ("" if r.get("ratio_to_dma_raw") is None
           else f"  {r['ratio_to_dma_raw']:.2f} of the DMA machine's raw")
    skip = ""
    if r.get("skip"):
        share = r.get("skipped_share")
        skip = "  skip" + ("" if share is None else f" {share:.0%} skipped")
        if r.get("skip_speedup"):
            skip += f" ({r['skip_speedup']:.1f}x)"
    if r.get("lazy"):
        skip += "  lazy" + (f" ({r['lazy_speedup']:.1f}x)" if r.get("lazy_speedup") else "")
    if r.get("wakeups") is not None:
        skip += f"  {r['wakeups']:,} steps"
    return (f"  {r['machine']:9} {r['workload']:10} {r['backend']:9} "
            f"{r['cycles_per_s']:12,.0f} cycles/s  {r['sim_cycles']:11,} cycles "
            f"in {r['wall_s']:7.2f} s, fixed cost {r['fixed_s']:5.2f} s{ratio}{dma}{skip}"
            + ("" if r["ok"] else "  FAILED"))


def format_table(result: dict) -> str:
    return "\n".join(["ocfsim bench speed: bus cycles per wall second of simulating"]
                     + [format_row(r) for r in result["rows"]])


def main(argv=None) -> int:
    from ocfsim.cli import Parser, name_list, out_options, print_result
    p = Parser(prog="ocfsim bench speed", description=__doc__.split("\n")[0])
    p.add_argument("--machines", type=name_list(tuple(MACHINES)), default=",".join(MACHINES),
                   help="standard machines, comma-separated")
    p.add_argument("--workloads", type=name_list(tuple(WORKLOADS)),
                   default=",".join(WORKLOADS), help="workloads, comma-separated")
    p.add_argument("--backends", type=name_list(BACKENDS), default=",".join(DEFAULT_BACKENDS),
                   help="backends, comma-separated")
    p.add_argument("--skip", choices=tuple(SKIP_CHOICES), default="off",
                   help="exact idle skipping: off (default; the RTL's own speed), on, or "
                        "both (each cell twice, with the speed-up)")
    p.add_argument("--lazy", choices=tuple(LAZY_CHOICES), default="off",
                   help="the lazy RTL (no step at host timers while the machine is quiet): "
                        "off (default), on, or both (each cell twice, with the speed-up)")
    out_options(p, "nothing else")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    if not cells(args.machines, args.workloads, args.backends):
        p.error("no workload of --workloads runs on --machines")
    progress = None if args.json else (lambda r: print(format_row(r), file=sys.stderr))
    result = run_bench(args.machines, args.workloads, args.backends, progress, args.skip,
                       args.lazy)
    print_result(p, argv, args, "speed", result, format_table)
    return 0 if all(r["ok"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
