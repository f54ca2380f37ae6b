"""Run host software against a machine on either backend: the one front door.

An *experiment* is an ``async def entry(host, **args) -> dict`` named by
``"module:function"``, a machine description (:class:`hw.machine.MachineSpec`)
and JSON-able arguments. :func:`run` elaborates the machine and runs the
entry on the chosen backend:

- ``pysim``: in this process, under Amaranth's simulator;
- ``verilator``: the machine is exported to Verilog, compiled by Verilator
  with the direct backend's C shim (cached per user, found from the machine
  spec and the sources' contents without elaborating again), and the entry
  runs in a child process that drives the model through ctypes
  (:mod:`sim.verilator.direct`); only the JSON result comes back;
- ``verilator-cocotb`` (:data:`COCOTB`): the same machine under a cocotb
  test bench (:mod:`sim.backend_verilator`), cycle for cycle the same as
  ``verilator`` and slower; the path for users' own cocotb test benches.

With ``vcd`` the run is dumped to that file (on ``verilator`` an FST when
the name ends in ``.fst``); beside a VCD, on every backend, a GTKWave save
file (:func:`gtkw_path`, written by :mod:`sim.gtkw`) groups the bus,
arbitration, bridge and each card, names FSM states and bus commands, and
opens on the first transactions (docs/waveforms.md).

Either way the entry sees the same :class:`sim.host.Host` and returns a
JSON-able dict; :func:`run` adds ``_wall_s`` (wall time of the simulation
proper, excluding elaboration and compilation) and ``_cycles``; every
backend adds ``_speed`` (:func:`sim.backend.speed_stats`: the host's
wake-up counters). An entry
shows its progress with :func:`progress`, on either backend.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any

from hw.machine import Machine, MachineSpec

from .backend import Backend
from .host import Host

__all__ = ["run", "execute", "progress", "verilator_build", "direct_build", "export_verilog",
           "BACKENDS", "COCOTB", "resolve_entry"]

BACKENDS = ("pysim", "verilator")

#: The cocotb-driven Verilator backend, accepted by :func:`run` beside
#: :data:`BACKENDS` (the command line offers only those).
COCOTB = "verilator-cocotb"


def resolve_entry(entry: str):
    module, _, name = entry.partition(":")
    if not module or not name:
        raise ValueError(f"entry {entry!r} is not 'module:function'")
    fn = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn


async def execute(backend: Backend, spec: dict, entry: str, args: dict) -> dict:
    """Build the host on ``backend`` and run ``entry`` on it (inside the simulator)."""
    machine = MachineSpec.from_dict(spec)
    host = Host(backend, machine)
    fn = resolve_entry(entry)
    t0 = time.perf_counter()
    c0 = backend.cycle
    result = await host.loop.run_until_complete(fn(host, **args))
    if not isinstance(result, dict):
        raise TypeError(f"{entry} returned {type(result).__name__}, not a dict")
    result = dict(result)
    result["_wall_s"] = time.perf_counter() - t0
    result["_cycles"] = backend.cycle - c0
    return result


def progress(total: int, unit: str = "it"):
    """A progress bar for an entry (``update(n)``, ``close()``), or None.

    Inside the Verilator simulator the counts go to the parent, which draws
    the bar (:mod:`sim.verilator.progress`); in this process (pysim) a tqdm
    bar is drawn on stderr when it is a terminal; otherwise there is none.
    """
    from .verilator.progress import ENV, ProgressWriter, terminal_bar
    relay = os.environ.get(ENV)
    if relay:
        return ProgressWriter(relay, total, unit)
    return terminal_bar(total, unit) if sys.stderr.isatty() else None


def direct_build(spec: MachineSpec, trace: str | None = None):
    """The folder of the machine's direct Verilator build (``trace``: None,
    ``"vcd"`` or ``"fst"``), from the cache when it is there (found without
    elaborating), else exported and compiled now."""
    from .verilator.direct import cached_direct
    spec.blackbox_dram = True
    return cached_direct(spec.to_dict(), lambda: export_verilog(spec),
                         period_ps=spec.period_ps, trace=trace)


def verilator_build(spec: MachineSpec, trace: bool = False):
    """The folder of the machine's cocotb Verilator build, from the cache when
    it is there (found without elaborating), else exported and compiled now."""
    from .verilator.runner import cached_machine
    spec.blackbox_dram = True
    return cached_machine(spec.to_dict(), lambda: export_verilog(spec),
                          period_ps=spec.period_ps, trace=trace)


def export_verilog(spec: MachineSpec) -> tuple[str, list]:
    """The machine's Verilog (module ``ocfsim_machine``, host DRAM as the
    DPI-C black box) and its flat ports; elaborates the whole design.

    Without ``src`` attributes: they name each Python source by its absolute
    path and line, so with them two checkouts, or an edit that moves lines
    without changing the logic, would give different text and a new build.
    """
    from amaranth.back import verilog
    from .verilator.runner import RESET_CYCLES
    spec.blackbox_dram = True
    top = Machine(spec, reset_cycles=RESET_CYCLES)       # its own reset: no rst input
    text = verilog.convert(top, name="ocfsim_machine", emit_src=False)
    return text, spec.ports()


def gtkw_path(vcd: str) -> str:
    """GTKWave save file written beside a VCD: ``x.vcd`` → ``x.gtkw``."""
    return (vcd[:-4] if vcd.endswith(".vcd") else vcd) + ".gtkw"


def _with_save_file(result: dict, spec: MachineSpec, vcd: str | None) -> dict:
    """Write the GTKWave save file beside a VCD (not an FST, which the
    reader here cannot scan); ``_gtkw`` in the result names it."""
    if vcd and not vcd.endswith(".fst") and os.path.exists(vcd):
        from .gtkw import signal_paths, write_save
        spec = MachineSpec.from_dict(spec.to_dict())
        spec.blackbox_dram = False
        top = Machine(spec)                  # a fresh copy only for its names
        try:
            written = write_save(gtkw_path(vcd), vcd, top.vcd_traces(), signal_paths(top),
                                 period_ps=spec.period_ps)
        except (OSError, ValueError) as exc:  # the run's result still stands
            print(f"no GTKWave save file for {vcd}: {exc}", file=sys.stderr)
            return result
        result["_gtkw"] = written["gtkw"]
    return result


def run(spec: MachineSpec | dict, entry: str, args: dict | None = None, *,
        backend: str = "pysim", vcd: str | None = None,
        record: str | None = None) -> dict[str, Any]:
    """Run experiment ``entry`` on a fresh machine; return its result dict.

    ``backend`` is one of :data:`BACKENDS` or :data:`COCOTB`. ``record``
    (Verilator only) writes a record of the host's inputs there, for the raw
    harness (:mod:`sim.verilator.raw`).
    """
    spec = MachineSpec.from_dict(spec) if isinstance(spec, dict) else spec
    args = args or {}
    resolve_entry(entry)                      # fail early on a bad name
    if record is not None and backend not in ("verilator", COCOTB):
        raise ValueError("a record of the host's inputs needs a verilator backend")
    if backend == "pysim":
        from .backend_pysim import run_pysim
        spec.blackbox_dram = False
        top = Machine(spec)

        async def body(b):
            return await execute(b, spec.to_dict(), entry, args)
        result = run_pysim(top, spec.period_ps, body, vcd=vcd, gtkw=None,
                           traces=top.vcd_traces() if vcd else ())
        return _with_save_file(result, spec, vcd)
    if backend == "verilator":
        from .verilator.direct import run_direct, trace_kind_of
        bdir = direct_build(spec, trace=trace_kind_of(vcd))
        return _with_save_file(
            run_direct(bdir, spec.to_dict(), entry, args, period_ps=spec.period_ps,
                       vcd=vcd, progress=sys.stderr.isatty(), record=record,
                       ports=spec.ports()), spec, vcd)
    if backend == COCOTB:
        from .verilator.runner import run_built
        bdir = verilator_build(spec, trace=vcd is not None)
        return _with_save_file(
            run_built(bdir, spec.to_dict(), entry, args, period_ps=spec.period_ps,
                      vcd=vcd, progress=sys.stderr.isatty(), record=record,
                      ports=spec.ports()), spec, vcd)
    raise ValueError(f"unknown backend {backend!r} "
                     f"(choose from {', '.join(BACKENDS + (COCOTB,))})")
