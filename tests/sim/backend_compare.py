"""Executor for the cross-backend comparisons (runs in the simulator child).

:func:`execute` is ``sim.experiment.execute`` plus the machine's state at the
end: every output port (monitor counters, checker, ``cycle``, ``irq``,
``attn``, the bridge's CPU side) and a digest of all of host DRAM, so a test
can compare two backends on more than what the experiment chose to report.
:func:`entry_bad_set` is an entry for the stub machine's executor.
"""

import hashlib

from hw.machine import MachineSpec
from sim.experiment import execute as run_entry


async def execute(backend, spec: dict, entry: str, args: dict) -> dict:
    result = await run_entry(backend, spec, entry, args)
    outputs = [n for n, d, _ in MachineSpec.from_dict(spec).ports() if d == "out"]
    result["_outputs"] = {n: backend.get(n) for n in outputs}
    dram = backend.dram_read(0, backend.dram_size)
    result["_dram_sha256"] = hashlib.sha256(dram).hexdigest()
    result["_steps"] = backend.steps
    return result


async def entry_bad_set(backend, spec):
    """Write a value wider than the stub's 2-bit ``cmd_op`` port."""
    backend.set("cmd_op", 4)
    return {}
