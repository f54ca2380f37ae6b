"""Run one card scenario on both backends, for tests that require the same
clocks and results from each."""

from sim.experiment import run

#: keys only one backend reports (wall time; Verilator's own cycle counter)
BACKEND_KEYS = ("_wall_s", "_sim_cycles")


def run_on_both(spec, target, args):
    """(pysim result, Verilator result), without the backend-specific keys."""
    out = []
    for backend in ("pysim", "verilator"):
        r = run(spec, target, args, backend=backend)
        out.append({k: v for k, v in r.items() if k not in BACKEND_KEYS})
    return out
