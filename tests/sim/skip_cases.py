"""Entry for the idle-skipping comparisons (runs where the experiment runs).

:func:`observed` runs a workload entry and returns, beside its result, the
machine's state at the end: every output port but the skipping ones
themselves, the monitor's statistics as the host reads them, the cycle and a
digest of all of host DRAM — what must not differ with skipping on or off.
"""

import hashlib

from sim.experiment import resolve_entry

#: ports that say how the run was stepped, not what the machine did
STEPPING = {"quiet", "quiet_for"}


async def observed(host, entry: str, args: dict) -> dict:
    result = await resolve_entry(entry)(host, **args)
    await host.settle()             # the RTL at the present cycle (lazy RTL)
    backend = host.backend
    outputs = [n for n, d, _ in host.spec.ports() if d == "out" and n not in STEPPING]
    dram = backend.dram_read(0, host.spec.dram_bytes)
    return {"result": result, "outputs": {n: backend.get(n) for n in outputs},
            "bus": host.bus_stats(), "cycle": backend.cycle,
            "dram_sha256": hashlib.sha256(dram).hexdigest(),
            "interrupt_edges": list(host.interrupt_edges),
            "now": host.now, "skipped": backend.skipped}
