"""cocotb test module run inside the simulator by :func:`sim.verilator.runner.run_experiment`.

Reads the JSON config named by ``$OCFSIM_EXPERIMENT`` (spec, entry, args,
period_ps, executor, result path, optionally a record to make), creates the
backend (a :class:`~sim.backend_verilator.RecordingBackend` when recording),
waits for reset to end, awaits ``executor(backend, spec, entry, args)`` and
writes
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": traceback}`` to
the result path for the parent to read.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import traceback

import cocotb


def _resolve(name: str):
    module, _, func = name.partition(":")
    if not func:
        raise ValueError(f"executor {name!r} is not 'module:function'")
    return getattr(importlib.import_module(module), func)


@cocotb.test()
async def experiment(dut):
    with open(os.environ["OCFSIM_EXPERIMENT"]) as f:
        cfg = json.load(f)
    try:
        from sim.backend_verilator import RecordingBackend, VerilatorBackend
        record = cfg.get("record")
        if record:
            backend = RecordingBackend(dut, cfg["period_ps"], record["inputs"])
        else:
            backend = VerilatorBackend(dut, cfg["period_ps"])
        await backend.start()
        execute = _resolve(cfg["executor"])
        t0 = time.perf_counter()
        result = await execute(backend, cfg["spec"], cfg["entry"], cfg["args"])
        wall = time.perf_counter() - t0
        if record:
            backend.save(record["path"], record["outputs"])
        result = dict(result)
        result.setdefault("_wall_s", wall)      # sim.experiment.execute sets its own
        result["_sim_cycles"] = backend.sim_cycles
        from sim.backend import speed_stats
        result["_speed"] = speed_stats(backend)
        text = json.dumps({"ok": True, "result": result})
    except BaseException:  # noqa: BLE001 — every failure goes back to the parent
        text = json.dumps({"ok": False, "error": traceback.format_exc()})
        _write(cfg["result"], text)
        raise
    _write(cfg["result"], text)


def _write(path: str, text: str) -> None:
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
