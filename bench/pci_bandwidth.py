"""PCI DMA throughput and bus efficiency against burst length and masters.

Each point runs the DMA test cards (``ocfsim dma``) and reads the figures off
the bus monitor: copy throughput, the cards' data-cycle efficiency (data
clocks over the clocks they held the bus) and overall PCI utilisation.
References, from the cost model of PCI 2.3 bus timing (docs/sources.md): a
write burst of D phases costs D + 2 clocks (address, turnaround), a read
burst 3 + R + D clocks with host latency R; at 32-bit/33 MHz, 16-phase writes
are ~89 % efficient and 64-phase writes ~97 %. The copy does one read and
one write burst per chunk, so the reference efficiency is 2D / (2D + 5 + R).

With ``--bridge`` (the default) it also measures what a PCI-PCI bridge
costs on the simulated bus (:func:`bridge_cost`: a CPU read and a DMA copy
by a card on bus 0 and by one behind a bridge), beside the OCF paper's "2-cycle
latency on each PCI transaction" (§5.4).

Usage: python -m bench.pci_bandwidth [--backends pysim,verilator] [--bytes N]
       [--bursts 1,4,16,64,256] [--masters 1,2,3] [--plot FILE] [--no-bridge]
       [-j N | --dask ADDR] [--json]   (also ``ocfsim bench pci``)

The sweep's points are independent cells: ``-j N`` runs N at once in local
processes, ``--dask ADDR`` on a Dask cluster (``ocfsim.sweep``). The speed
comparison (``--speed``) is always timed alone, in this process.
"""

from __future__ import annotations

import argparse
import sys
import time

from sim.experiment import run
from ocfsim.machines import dma_machine
from ocfsim.sweep import Sweep, where_text

__all__ = ["run_bench", "format_table", "plot", "backends_agree", "main", "bridge_cost",
           "format_bridge",
           "bridge_machine", "BRIDGE_PAPER_CLOCKS"]

#: the OCF paper (§5.4) on its quad-7751 card: the on-card PCI bridge adds
#: "a 2-cycle latency on each PCI transaction"
BRIDGE_PAPER_CLOCKS = 2

#: host DRAM read latency R in the reference model: our DRAM target answers
#: with medium DEVSEL# and one clock of memory latency (hw/pci/host_bridge.py)
REF_READ_LATENCY = 2
PCI_PEAK_MBPS = {33: 1056.0, 66: 2112.0}     # 32-bit: 4 B x clock (PCI 2.3 ch. 1)


def ref_efficiency(burst: int, r: int = REF_READ_LATENCY) -> float:
    return 2 * burst / (2 * burst + 5 + r)


def one_point(backend: str, nbytes: int, burst: int, masters: int, clock: int = 33,
              seed: int = 1) -> dict:
    t0 = time.perf_counter()
    r = run(dma_machine(masters, clock_mhz=clock), "ocfsim.workloads.dma:dma_copy",
            {"nbytes": nbytes, "burst": burst, "seed": seed}, backend=backend)
    cards = {k: v for k, v in r["by_master"].items() if k.startswith("slot")}
    data = sum(v["data"] for v in cards.values())
    held = sum(sum(v.values()) for v in cards.values())
    sim_s = r["sim_time_s"]
    return {
        "backend": backend, "size": nbytes, "burst": burst, "masters": masters,
        "ok": r["ok"], "mbps": 8 * r["bytes"] / sim_s / 1e6,
        "efficiency": data / held if held else 0.0,
        "ref_efficiency": ref_efficiency(burst),
        "pci_utilisation": r["pci_utilisation"],
        "ref_pci_peak_mbps": PCI_PEAK_MBPS[clock],
        "sim_cycles": r["_cycles"], "cycles_per_s": r["_cycles"] / r["_wall_s"],
        "wall_s": time.perf_counter() - t0,
    }


#: the backend speed comparison: ``ocfsim dma --bytes 65536`` on each backend
SPEED_BYTES = 65536
#: the project's target for that comparison (docs/architecture.md: Verilator
#: 300–800x pysim on the same RTL; the project asks for at least 50x)
REF_SPEEDUP = 50


def run_bench(backends=("pysim",), nbytes=4096, bursts=(1, 4, 16, 64, 256),
              masters=(1, 2, 3), progress=None, speed=None, seed=1, sweep=None,
              bridge=True) -> dict:
    """Sweep; with both backends (or ``speed=True``) also time a 64 KiB copy on each.

    The sweep's points are independent cells of ``sweep`` (``ocfsim.sweep.Sweep``;
    default: one after the other here); the speed rows are timed one at a
    time in this process, never beside other work of the benchmark.
    """
    sweep = sweep or Sweep()
    cells = [(backend, nbytes, b, m, 33, seed) for backend in backends
             for m in masters for b in bursts]
    rows = sweep.map(one_point, cells, progress)
    for row in rows:
        row["kind"] = "sweep"
    if speed is None:
        speed = len(set(backends)) > 1
    if speed:
        for backend in backends:
            row = one_point(backend, SPEED_BYTES, 256, 1, seed=seed)
            row["kind"] = "speed"
            rows.append(row)
            if progress:
                progress(row)
        by = {r["backend"]: r["cycles_per_s"] for r in rows if r["kind"] == "speed"}
        if "pysim" in by and "verilator" in by:
            for r in rows:
                if r["kind"] == "speed" and r["backend"] == "verilator":
                    r["speedup"] = by["verilator"] / by["pysim"]
                    r["ref_speedup"] = REF_SPEEDUP
    result = {"bench": "pci", "seed": seed, **sweep.describe(), "rows": rows}
    if bridge:
        b = run(bridge_machine(), "bench.pci_bandwidth:bridge_cost", {}, backend=backends[0])
        result["bridge"] = {k: v for k, v in b.items() if not k.startswith("_")}
        result["bridge"]["backend"] = backends[0]
    return result


def bridge_machine(clock: int = 33):
    """A DMA test card on bus 0 (slot 1) and one behind a PCI-PCI bridge
    (slot 2, secondary device 0): the same work done direct and bridged."""
    from hw.machine import CardSpec, MachineSpec
    return MachineSpec(clock_mhz=clock, dram_bytes=1 << 20, cards=[
        CardSpec("dmatest", 1, {"depth": 256}),
        CardSpec("ppb", 2, {"cards": [{"kind": "dmatest", "slot": 0,
                                       "params": {"depth": 256}}]})])


async def bridge_cost(host, nbytes: int = 1024, burst: int = 16) -> dict:
    """Experiment entry on :func:`bridge_machine`: per card (direct, then
    bridged) the clocks of a one-dword CPU read of its ID register, and of
    a DMA copy of ``nbytes`` (``burst``-dword read and write bursts; from the
    start write to the completion interrupt), with the card's transactions
    (address phases the monitor counted) and bytes checked."""
    from drivers.pci import enumerate_bus
    from ocfsim.workloads.dma import REG, ST_DONE
    devs = [d for d in await enumerate_bus(host) if d.vendor == 0x0CF5]
    mem, loop = host.memory, host.loop
    waiting = {}

    def on_irq(line, asserted):
        fut = waiting.get(line)
        if asserted and fut is not None and not fut.done():
            fut.set_result(None)
    host.on_interrupt(on_irq)
    out = {}
    for d, where in zip(devs, ("direct", "bridged")):
        base = d.bar(0).addr
        c0 = host.cycle
        ident = await host.mmio_read(base + REG["ID"])
        read_clocks = host.cycle - c0
        src, dst = mem.alloc(nbytes), mem.alloc(nbytes)
        payload = bytes((i * 7 + len(out)) & 0xFF for i in range(nbytes))
        mem.write(src, payload)
        mem.write(dst, bytes(nbytes))
        for reg, value in (("SRC", src), ("DST", dst), ("LEN", nbytes), ("BURST", burst),
                           ("INTEN", 1)):
            await host.mmio_write(base + REG[reg], value)
        await host.mmio_read(base + REG["BURST"])           # the writes are in
        before = host.bus_stats()
        fut = waiting[d.irq] = loop.create_future(f"{where} copy")
        c0 = host.cycle
        await host.mmio_write(base + REG["CTRL"], 1)
        await fut
        copy_clocks = host.cycle - c0
        stats = host.bus_stats_since(before)
        seg = stats["segments"][d.bus]
        name = ("slot1" if d.bus == 0 else "slot2_0") + ".master"
        status = await host.mmio_read(base + REG["STATUS"])
        await host.mmio_write(base + REG["STATUS"], ST_DONE)
        out[where] = {"bus": d.bus, "cpu_read_clocks": read_clocks,
                      "copy_clocks": copy_clocks,
                      "transactions": seg["by_master"][name]["address"],
                      "ok": ident == 0x0CF5D0A1 and bool(status & ST_DONE)
                      and mem.read(dst, nbytes) == payload}
    direct, bridged = out["direct"], out["bridged"]
    return {"ok": direct["ok"] and bridged["ok"] and not host.checker_errors(),
            "nbytes": nbytes, "burst": burst, **out,
            "cpu_read_extra": bridged["cpu_read_clocks"] - direct["cpu_read_clocks"],
            "copy_extra_per_transaction":
                (bridged["copy_clocks"] - direct["copy_clocks"]) / direct["transactions"],
            "paper_clocks": BRIDGE_PAPER_CLOCKS}


def format_bridge(b: dict) -> str:
    d, r = b["direct"], b["bridged"]
    return (f"\nPCI-PCI bridge, measured on the bus ({b['backend']}, {b['nbytes']} B DMA copy, "
            f"{b['burst']}-dword bursts):"
            f"\n  CPU read, one dword:  {d['cpu_read_clocks']} clocks direct, "
            f"{r['cpu_read_clocks']} through the bridge (+{b['cpu_read_extra']})"
            f"\n  card DMA copy:        {d['copy_clocks']} clocks direct "
            f"({d['transactions']} transactions), {r['copy_clocks']} behind the bridge "
            f"({r['transactions']}): +{b['copy_extra_per_transaction']:.1f} clocks per "
            f"transaction"
            f"\n  the OCF paper (§5.4): \"a {b['paper_clocks']}-cycle latency on each PCI "
            f"transaction\"" + ("" if b["ok"] else "\n  FAILED: a copy or a read was wrong"))


def format_table(result: dict) -> str:
    from ocfsim.report import table
    sweep = [r for r in result["rows"] if r.get("kind", "sweep") == "sweep"]
    rows = [[r["backend"], r["masters"], r["burst"], r["size"], f"{r['mbps']:.1f}",
             f"{100 * r['efficiency']:.1f}", f"{100 * r['ref_efficiency']:.1f}",
             f"{100 * r['pci_utilisation']:.1f}", f"{r['cycles_per_s']:.0f}",
             "ok" if r["ok"] else "FAIL"] for r in sweep]
    text = table(["backend", "masters", "burst(dw)", "bytes/card", "Mbit/s",
                  "eff %", "ref eff %", "PCI util %", "cycles/s", "verified"], rows)
    text += (f"\nPCI peak at 32-bit/33 MHz: {PCI_PEAK_MBPS[33]:.0f} Mbit/s; "
             f"sweep {where_text(result)}")
    if "bridge" in result:
        text += format_bridge(result["bridge"])
    speed = [r for r in result["rows"] if r.get("kind") == "speed"]
    for r in speed:
        text += (f"\nspeed, dma --bytes {r['size']}: {r['backend']:9} {r['cycles_per_s']:10.0f} "
                 f"bus cycles/s ({r['sim_cycles']} cycles, {r['wall_s']:.1f} s wall incl. build)")
        if "speedup" in r:
            text += (f"\n  verilator / pysim = x{r['speedup']:.0f} "
                     f"(target >= x{r['ref_speedup']})")
    return text


def backends_agree(result: dict) -> bool:
    """True when two or more backends ran the same sweep points and every
    point gave the same bus cycles and bus figures on each."""
    sweep = [r for r in result["rows"] if r.get("kind", "sweep") == "sweep"]
    backends = sorted({r["backend"] for r in sweep})
    if len(backends) < 2:
        return False
    by = {}
    for r in sweep:
        by.setdefault((r["masters"], r["burst"], r["size"]), {})[r["backend"]] = \
            (r["sim_cycles"], r["efficiency"], r["pci_utilisation"], r["mbps"])
    return all(len(v) == len(backends) and len(set(v.values())) == 1 for v in by.values())


def plot(result: dict, logy: bool = False):
    """The efficiency plot of a ``run_bench`` result, as a matplotlib Figure
    (the caller saves or shows it)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sweep = [r for r in result["rows"] if r.get("kind", "sweep") == "sweep"]
    keys = sorted({(r["backend"], r["masters"]) for r in sweep})
    for backend, m in keys:
        pts = [r for r in sweep if (r["backend"], r["masters"]) == (backend, m)]
        style = dict(marker="o", markersize=10, markerfacecolor="none", linestyle=":") \
            if backend == "pysim" else dict(marker="x", markersize=6)
        ax.plot([r["burst"] for r in pts], [100 * r["efficiency"] for r in pts],
                label=f"{m} master(s), {backend}", **style)
    bursts = sorted({r["burst"] for r in sweep})
    # markers too, so a sweep of one burst length still shows the reference
    ax.plot(bursts, [100 * ref_efficiency(b) for b in bursts], "k--", marker="D",
            markerfacecolor="none", markersize=7,
            label=f"app-note model 2D/(2D+5+R), R = {REF_READ_LATENCY} clocks")
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("burst length (dwords)")
    ax.set_ylabel("data-cycle efficiency of the DMA masters (%)")
    backends = sorted({r["backend"] for r in sweep})
    if backends_agree(result):
        note = f"{' and '.join(backends)} agree cycle for cycle"
    elif len(backends) > 1:
        note = f"{' and '.join(backends)} DIFFER"
    else:
        note = f"{backends[0] if backends else 'no'} backend"
    ax.set_title(f"PCI 32-bit/33 MHz DMA efficiency ({note})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


#: the plot written when no --plot is given (and the run does not print JSON)
PLOT = "build/pci_bandwidth.png"


def build_parser():
    """The benchmark's options (``ocfsim bench pci``)."""
    from ocfsim.cli import (Parser, int_list, int_range, name_list, out_options, plot_options,
                            sweep_options)
    from ocfsim.machines import MAX_CARDS
    from sim.experiment import BACKENDS
    p = Parser(prog="ocfsim bench pci", description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="pysim", type=name_list(BACKENDS),
                   help="simulators, comma-separated")
    p.add_argument("--bytes", type=int_range(4, 1 << 20), default=4096,
                   help="bytes copied per card")
    p.add_argument("--bursts", type=int_list(1, 256), default="1,4,16,64,256",
                   help="burst lengths in dwords, comma-separated")
    p.add_argument("--masters", type=int_list(1, MAX_CARDS), default="1,2,3",
                   help="numbers of DMA cards competing for the bus, comma-separated")
    plot_options(p, PLOT)
    p.add_argument("--speed", action=argparse.BooleanOptionalAction, default=None,
                   help="also time `dma --bytes 65536` per backend "
                        "(when not given: on when both backends run)")
    p.add_argument("--bridge", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure a PCI-PCI bridge's cost on the bus (a CPU read "
                        "and a DMA copy, direct and behind the bridge; on by default)")
    p.add_argument("--seed", type=int_range(0, 2**64 - 1), default=1,
                   help="seed of the copied data")
    sweep_options(p)
    out_options(p, "the plot (pci_bandwidth.png)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def main(argv=None) -> int:
    from ocfsim.cli import plot_path, print_result, save_plot
    from ocfsim.sweep import CellError, from_args as sweep_from_args, report_failure
    p = build_parser()
    args = p.parse_args(argv)
    plot_file = plot_path(p, args, PLOT)
    progress = None if args.json else (lambda r: print(
        f"  {r['backend']:9} masters={r['masters']} burst={r['burst']:3}: "
        f"{r['mbps']:7.1f} Mbit/s, eff {100 * r['efficiency']:.1f} %", file=sys.stderr))
    try:
        with sweep_from_args(p, args) as sweep:
            result = run_bench(args.backends, args.bytes, args.bursts, args.masters, progress,
                               speed=args.speed, seed=args.seed, sweep=sweep,
                               bridge=args.bridge)
    except CellError as exc:
        return report_failure(p.prog, exc)
    if plot_file:
        save_plot(args, plot(result, logy=args.logy), plot_file)
        result["plot"] = plot_file
    print_result(p, argv, args, "pci", result, format_table, args.seed)
    return 0 if all(r["ok"] for r in result["rows"]) and result.get("bridge", {}).get(
        "ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
