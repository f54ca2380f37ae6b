"""KERNEL-NULL (OCF paper Fig. 1, §5.2): /dev/crypto throughput with the null algorithm.

Processes loop on CIOCCRYPT with CRYPTO_NULL through the software driver
(``cryptodevallowsoft`` on, as for the paper's measurement) on a machine with
no cards. Throughput counts completed requests between two completions of the
steady state. The paper gives ~420 Mbps at 1 KB and ~600 Mbps at 8 KB for one
process (OCF paper §5.2); the host profile's null-path constants are calibrated
on those two points, the other sizes and process counts are predictions.

Each row is an independent cell: ``-j N`` runs N at once in local processes,
``--dask ADDR`` on a Dask cluster (``ocfsim.sweep``).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from ocf.attach import attach
from ocf.cryptodefs import CRYPTO_NULL
from ocf.cryptodev import (CIOCCRYPT, CIOCGSESSION, COP_ENCRYPT, CRIOGET, CRYPTODEV_MAXLEN,
                           CrioGet, CryptOp, SessionOp)
from ocf.xform import ENC_XFORMS
from ocfsim.sweep import CellError, Sweep, from_args as sweep_from_args, report_failure
from sim.kernel import DEFAULT_PROFILE, Kernel
from sim.loop import SimLoop
from sim.memory import ByteMemory

SIZES = (16, 64, 256, 1024, 8192, 16384)
#: block size of the null transform, which /dev/crypto requires ``len`` to be a multiple of
NULL_BLOCK = ENC_XFORMS[CRYPTO_NULL].blocksize
#: processes per row: as many as ``ocfsim run --threads`` allows
MAX_PROCS = 256
#: OCF paper §5.2, one process
PAPER_MBPS = {(1024, 1): 420.0, (8192, 1): 600.0}


class NullBenchError(RuntimeError):
    """A /dev/crypto call of the benchmark failed (the run stops at the first)."""


def measure(size: int, nprocs: int, profile: str = DEFAULT_PROFILE,
            rounds: int = 30, warm_rounds: int = 3) -> dict:
    """One row: ``nprocs`` processes doing ``size``-byte null requests."""
    loop = SimLoop()
    kernel = Kernel(loop, ByteMemory(max(8 << 20, 4 * nprocs * size + (1 << 20))), profile)
    attach(kernel, allow_soft=True)
    stamps: list[int] = []
    warm, count = warm_rounds * nprocs, rounds * nprocs
    enough = loop.create_future("enough")
    errors: list[int] = []

    def stop(err: int) -> None:
        errors.append(err)
        if not enough.done():
            enough.set_result(None)

    async def app(p):
        err, fd = await kernel.sys_open(p, "/dev/crypto")
        g = CrioGet()
        err = err or await kernel.sys_ioctl(p, fd, CRIOGET, g)
        sop = SessionOp(cipher=CRYPTO_NULL)
        err = err or await kernel.sys_ioctl(p, g.fd, CIOCGSESSION, sop)
        if err:
            stop(err)
            return
        src, dst = bytes(size), bytearray(size)
        while not enough.done():
            err = await kernel.sys_ioctl(p, g.fd, CIOCCRYPT,
                                         CryptOp(ses=sop.ses, op=COP_ENCRYPT, len=size,
                                                 src=src, dst=dst))
            if err:
                stop(err)
                return
            stamps.append(loop.now)
            if len(stamps) >= warm + count + 1 and not enough.done():
                enough.set_result(None)

    procs = [kernel.fork(f"null{i}", app) for i in range(nprocs)]

    async def main():
        await enough
        for p in procs:
            await p.task

    loop.run(main())
    if errors:
        raise NullBenchError(f"errno {errors[0]} from /dev/crypto at {size} B, "
                             f"{nprocs} process(es)")
    t0, t1 = stamps[warm], stamps[warm + count]
    secs = (t1 - t0) / 1e12
    ops = count / secs
    mbps = ops * size * 8 / 1e6
    row = {"size": size, "threads": nprocs, "mbps": round(mbps, 2), "ops_per_s": round(ops, 1)}
    ref = PAPER_MBPS.get((size, nprocs))
    if ref is not None:
        row["ref_mbps"] = ref
        row["error"] = round((mbps - ref) / ref, 4)
    acct = kernel.accounting()
    busy = sum(v for k, v in acct.items() if k != "idle")
    row["cpu_busy"] = round(busy / max(1, loop.now), 4)
    return row


def run(sizes: Sequence[int] = SIZES, procs: Sequence[int] = (1, 8),
        profile: str = DEFAULT_PROFILE, sweep: Sweep | None = None) -> dict:
    """``{"bench": "null", "profile": ..., "rows": [...]}``; rows per (procs, size),
    each an independent cell of ``sweep`` (default: one after the other here)."""
    sweep = sweep or Sweep()
    rows = sweep.map(measure, [(s, n, profile) for n in procs for s in sizes])
    return {"bench": "null", "profile": profile, **sweep.describe(), "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"KERNEL-NULL /dev/crypto throughput (profile {result.get('profile', '?')})",
             f"{'threads':>7} {'size':>6} {'Mbps':>9} {'ops/s':>10} {'paper':>7} {'error':>7}"]
    for r in result["rows"]:
        ref = f"{r['ref_mbps']:.0f}" if "ref_mbps" in r else "-"
        err = f"{r['error'] * 100:+.1f}%" if "error" in r else "-"
        lines.append(f"{r['threads']:>7} {r['size']:>6} {r['mbps']:>9.2f} {r['ops_per_s']:>10.0f} "
                     f"{ref:>7} {err:>7}")
    lines.append("note: the profile's null-path constants were calibrated on the paper's "
                 "1 KB and 8 KB points, so those two errors show the fit, not a prediction; "
                 "the other sizes and the multi-process rows are predictions.")
    return "\n".join(lines)


def build_parser():
    """The benchmark's options (``ocfsim bench null``)."""
    from ocfsim.cli import Parser, int_list, out_options, profile_arg, sweep_options
    ap = Parser(prog="ocfsim bench null", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    type=int_list(1, CRYPTODEV_MAXLEN, NULL_BLOCK,
                                  f"the null transform's {NULL_BLOCK}-byte block"),
                    help="request sizes in bytes, comma-separated")
    ap.add_argument("--procs", type=int_list(1, MAX_PROCS), default="1,8",
                    help="numbers of processes, comma-separated")
    ap.add_argument("--profile", type=profile_arg, default=DEFAULT_PROFILE,
                    help="host profile: a name in sim/profiles or a .toml file")
    sweep_options(ap)
    out_options(ap, "nothing else")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ocfsim.cli import print_result
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        with sweep_from_args(ap, args) as sweep:
            result = run(args.sizes, args.procs, args.profile, sweep)
    except CellError as exc:
        if not isinstance(exc.error, NullBenchError):
            return report_failure(ap.prog, exc)
        print(f"{ap.prog}: {exc.error}", file=sys.stderr)
        return 1
    print_result(ap, argv, args, "null", result, format_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
