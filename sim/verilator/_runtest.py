"""Child process of :func:`sim.verilator.runner.run_cocotb`: one cocotb run.

Runs cocotb's ``Runner.test`` for the JSON config named on the command line.
A separate process so that the runner's ``sys.exit`` on failure, its
environment handling and a timeout kill stay away from the caller; results
are read back from the JUnit XML file by the parent.
"""

from __future__ import annotations

import json
import sys


def main(cfg_path: str) -> int:
    with open(cfg_path) as f:
        cfg = json.load(f)
    from sim.verilator.runner import _runner_class, _setup_environ
    _setup_environ()
    # The runner lets the process environment override extra_env; make the
    # caller's variables win instead (this process exists only for this run).
    import os
    os.environ.update(cfg["env"])
    runner = _runner_class()()
    try:
        runner.test(
            test_module=cfg["test_module"],
            hdl_toplevel=cfg["toplevel"],
            hdl_toplevel_lang="verilog",
            build_dir=cfg["build_dir"],
            test_dir=cfg["test_dir"],
            results_xml=cfg["results_xml"],
            log_file=cfg["log_file"],
            extra_env=cfg["env"],
            testcase=cfg["testcase"],
            waves=cfg["waves"],
            test_args=cfg["test_args"],
        )
    except SystemExit as exc:   # the runner exits on simulator failure
        return exc.code if isinstance(exc.code, int) and exc.code else 1
    except RuntimeError as exc:
        print(f"runner error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
