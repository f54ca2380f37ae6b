"""Verilator backend support: builds (cached), cocotb runs, the DPI-C host DRAM.

See :mod:`sim.verilator.runner` for the API and :mod:`sim.backend_verilator`
for the backend the host side talks to.
"""

from .runner import (BuildError, CocotbFailure, ExperimentError, TestResult, build,
                     machine_ports, run_cocotb, run_experiment)

__all__ = ["build", "run_cocotb", "run_experiment", "machine_ports",
           "BuildError", "CocotbFailure", "ExperimentError", "TestResult"]
