"""Fault campaign: every fault kind on both cards, with 10–40 requests in flight.

Each scenario boots a fresh one-card machine, starts ``depth`` processes
doing /dev/crypto 3DES + HMAC-SHA1 (one request in flight each), injects one
fault (``ocfsim.faults``) at a simulated time after the first request and
accounts for every request (``ocfsim.workloads.devcrypto``): dispatched,
verified against ``cryptography``, failed with an errno, never completed.
After the fault window a probe batch on fresh sessions shows whether the
card serves again. Every fault here is transient (a window that closes, or
one corrupted structure), so the target is 0 lost requests, the card serving
after every scenario and no kernel catch-all. A wrong result fails a
scenario, except under random garbage: bytes that still form a valid
command (another key, a DONE flag already set) are a silent corruption no
card or driver can detect, so there it is counted and shown, not failed.

Exit status 0 only when that holds for every scenario (and each fault was
really injected). Cells are independent and run in parallel processes.

Usage: python -m bench.faults [--cards bcm5820,hifn7751] [--kinds reset,...]
       [--quick] [-j N | --dask ADDR] [--backend verilator|pysim] [--timeout-us US] [--json]
       (also ``ocfsim bench faults``)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Optional, Sequence

from ocfsim.faults import KINDS, check_cards, parse_fault
from ocfsim.machines import crypto_machine
from ocfsim.report import table
from ocfsim.sweep import CellError, Sweep, from_args as sweep_from_args, report_failure, where_text

__all__ = ["scenarios", "run_cell", "run_campaign", "format_table", "main", "FAULTS"]

#: card → fault name → SPEC template ({t} = injection time). Durations (a
#: choice of the campaign): 60 µs outages and 100–200 µs DRAM storms span
#: several 256-byte requests on either card; a 1 ms retry storm outlasts the
#: initiators' RETRY_LIMIT (hw/pci/initiator.py), so the cards give up. Pokes: ubsec CTRL = 0 (interrupt
#: enables off), hifn DMA_IER = 0 (ubsecreg.h, hifn7751reg.h offsets).
FAULTS = {
    "bcm5820": {
        "reset": "reset@{t}", "poke": "poke@{t}:bar=0,reg=0x4,value=0",
        "bme-off": "bme-off@{t}+60us", "mse-off": "mse-off@{t}+60us",
        "lost-irq": "lost-irq@{t}", "dram-retry": "dram-retry@{t}+100us:every=1",
        "dram-retry-long": "dram-retry@{t}+1ms:every=1",
        "dram-latency": "dram-latency@{t}+200us", "target-abort": "target-abort@{t}+100us",
        "master-abort": "master-abort@{t}", "zero-particle": "zero-particle@{t}", "garbage-mcr": "garbage@{t}:kind=mcr",
        "garbage-ctx": "garbage@{t}:kind=ctx",
    },
    "hifn7751": {
        "reset": "reset@{t}", "rings-off": "rings-off@{t}",
        "poke": "poke@{t}:bar=1,reg=0x44,value=0",
        "bme-off": "bme-off@{t}+60us", "mse-off": "mse-off@{t}+60us",
        "lost-irq": "lost-irq@{t}", "dram-retry": "dram-retry@{t}+100us:every=1",
        "dram-retry-long": "dram-retry@{t}+1ms:every=1",
        "dram-latency": "dram-latency@{t}+200us", "target-abort": "target-abort@{t}+100us",
        "master-abort": "master-abort@{t}", "res-novalid": "res-novalid@{t}", "bad-session": "bad-session@{t}",
        "garbage-cmdbuf": "garbage@{t}:kind=hifn-cmdbuf",
    },
}
#: (injection time, requests in flight): early with a shallow queue, mid-run,
#: and late with the deepest queue of the brief's 10–40 range
VARIANTS = (("30us", 10), ("60us", 20), ("120us", 40))
#: requests per process (the probe batch comes on top); bytes per request
OPS_PER_PROC, SIZE = 3, 256
#: driver module of each card (its watchdog constants bound the wait below)
DRIVER = {"bcm5820": "drivers.ubsec", "hifn7751": "drivers.hifn"}


def timeout_us(card: str, depth: int) -> float:
    """Simulated µs after the fault window before a request counts as lost:
    twice the driver's own watchdog bound with every process's request
    outstanding (a stall, then a reset and the requeued work), plus 1 ms."""
    import importlib
    from drivers.pci import watchdog_bound
    bound_ps = watchdog_bound(depth * SIZE, importlib.import_module(DRIVER[card]).DATASHEET_MBPS)
    return 2 * bound_ps / 1e6 + 1000.0


def scenarios(cards=tuple(FAULTS), kinds=None, quick: bool = False) -> list[dict]:
    """The campaign's cells: one per card × fault × variant."""
    out = []
    for card in cards:
        for name, template in FAULTS[card].items():
            for t, depth in VARIANTS[:1] if quick else VARIANTS:
                spec = template.format(t=t)
                fault = parse_fault(spec)
                if kinds and name not in kinds and fault.kind not in kinds:
                    continue
                check_cards([fault], [card])
                out.append({"scenario": f"{name}@{t}", "card": card, "fault": spec,
                            "depth": depth})
    return out


def run_cell(cell: dict, backend: str = "verilator", timeout: float | None = None) -> dict:
    """Run one scenario; the row (never raises: an error is a failed row)."""
    from sim.experiment import run
    t0 = time.perf_counter()
    timeout = timeout or timeout_us(cell["card"], cell["depth"])
    row = dict(cell, backend=backend, timeout_us=timeout, ref_lost=0, ref_served_after=True,
               ref_catchalls=0)
    try:
        r = run(crypto_machine([cell["card"]]), "ocfsim.workloads.devcrypto:devcrypto",
                {"alg": "3des-sha1", "size": SIZE, "ops": OPS_PER_PROC * cell["depth"],
                 "threads": cell["depth"], "faults": [cell["fault"]],
                 "timeout_us": timeout}, backend=backend)
    except Exception as exc:                     # noqa: BLE001 — a cell's failure is its row
        row.update(ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                   wall_s=time.perf_counter() - t0)
        return row
    f, req = r["faults"], r["requests"]
    row.update(run_ok=bool(r["ok"]), dispatched=req["dispatched"], verified=req["ok"],
               wrong=req["wrong"], errno=req["errno"], errno_total=req["errno_total"],
               lost=req["lost"], served_after=f["served_after"], recovery_us=f["recovery_us"],
               injected=f["injected"], catchalls=r["kernel_catchalls"],
               checker=r["checker"], log=f["log"], wall_s=time.perf_counter() - t0)
    row["ok"] = passed(row)
    return row


def passed(row: dict) -> bool:
    """The campaign's verdict on a row (see the module docstring)."""
    undetectable = row["fault"].startswith("garbage@")
    return (row["injected"] and row["lost"] == 0 and row["served_after"]
            and row["catchalls"] == 0 and not row["checker"]
            and (row["wrong"] == 0 or undetectable))


def run_campaign(cells: list[dict], backend: str = "verilator", sweep: Sweep | None = None,
                 timeout: float | None = None, progress=None) -> dict:
    """Every scenario of ``cells``, each an independent cell of ``sweep``
    (``ocfsim.sweep.Sweep``; default: one after the other in this process)."""
    sweep = sweep or Sweep()
    t0 = time.perf_counter()
    rows = sweep.map(run_cell, [(c, backend, timeout) for c in cells], progress)
    return {"bench": "faults", "backend": backend, **sweep.describe(), "rows": rows,
            "summary": summarise(rows), "wall_s": time.perf_counter() - t0}


def summarise(rows: list[dict]) -> dict:
    return {
        "scenarios": len(rows),
        "passed": sum(1 for r in rows if r["ok"]),
        "dispatched": sum(r.get("dispatched", 0) for r in rows),
        "verified": sum(r.get("verified", 0) for r in rows),
        "errno": sum(r.get("errno_total", 0) for r in rows),
        "wrong": sum(r.get("wrong", 0) for r in rows),
        "wrong_outside_garbage": sum(r.get("wrong", 0) for r in rows
                                     if not r["fault"].startswith("garbage@")),
        "lost": sum(r.get("lost", 0) for r in rows),
        "not_serving_after": sum(1 for r in rows if not r.get("served_after")),
        "catchalls": sum(r.get("catchalls", 0) for r in rows),
        "errors": sum(1 for r in rows if "error" in r),
        "ok": bool(rows) and all(r["ok"] for r in rows),
    }


def format_table(result: dict) -> str:
    rows = []
    for r in result["rows"]:
        rec = r.get("recovery_us")
        errs = ",".join(f"{k}:{v}" for k, v in r.get("errno", {}).items()) or "0"
        rows.append([r["scenario"], r["card"], r["depth"], r.get("dispatched", "-"),
                     r.get("verified", "-"), r.get("wrong", "-"), errs, r.get("lost", "-"),
                     "yes" if r.get("served_after") else "NO",
                     "-" if rec is None else f"{rec:.0f}",
                     "ok" if r["ok"] else ("ERROR " + r["error"] if "error" in r else "FAIL")])
    s = result["summary"]
    lines = [table(["scenario", "card", "in flight", "dispatched", "ok", "wrong", "errno", "lost",
                    "served after", "recovery µs", "verdict"], rows),
             f"faults: {s['passed']}/{s['scenarios']} scenarios passed; {s['dispatched']} "
             f"requests dispatched, {s['verified']} verified, {s['wrong']} wrong "
             f"({s['wrong_outside_garbage']} outside random garbage), {s['errno']} errno, "
             f"{s['lost']} lost; card not serving after {s['not_serving_after']}; "
             f"{s['catchalls']} kernel catch-alls ({result['backend']}, "
             f"{where_text(result)}, {result['wall_s']:.0f} s)"]
    return "\n".join(lines)


def build_parser():
    """The benchmark's options (``ocfsim bench faults``)."""
    from ocfsim.cli import Parser, int_range, name_list, sweep_options
    from sim.experiment import BACKENDS
    names = sorted({n for table_ in FAULTS.values() for n in table_} | set(KINDS))
    ap = Parser(prog="ocfsim bench faults", description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=name_list(tuple(FAULTS)), default=list(FAULTS),
                    help="card kinds, comma-separated")
    ap.add_argument("--kinds", type=name_list(tuple(names)), default=None,
                    help="fault kinds to run, comma-separated (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="one variant per fault (30 µs, 10 in flight) instead of three")
    sweep_options(ap)
    ap.add_argument("--backend", choices=BACKENDS, default="verilator", help="simulator")
    ap.add_argument("--timeout-us", type=int_range(100, 1_000_000), default=None,
                    help="simulated µs after the fault window before requests count as lost "
                         "(default: twice the driver's watchdog bound for the depth, + 1 ms)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    cells = scenarios(args.cards, args.kinds, args.quick)
    if not cells:
        print("ocfsim bench faults: error: no scenario matches --cards and --kinds",
              file=sys.stderr)
        return 2

    def tick(row):
        if not args.json:
            print(f"  {row['scenario']:<24} {row['card']:<9} "
                  f"{'ok' if row['ok'] else 'FAIL'}", file=sys.stderr)
    try:
        with sweep_from_args(ap, args) as sweep:
            result = run_campaign(cells, args.backend, sweep, args.timeout_us, tick)
    except CellError as exc:
        return report_failure(ap.prog, exc)
    print(json.dumps(result, default=str) if args.json else format_table(result))
    return 0 if result["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
