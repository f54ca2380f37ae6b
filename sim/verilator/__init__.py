"""Verilator backend support: builds (cached), cocotb runs, the DPI-C host DRAM.

See :mod:`sim.verilator.direct` for the backend ``--backend verilator`` runs
(the model driven through ctypes), :mod:`sim.verilator.runner` for builds
and cocotb runs, and :mod:`sim.backend_verilator` for the cocotb-driven
backend.
"""

from .runner import (BuildError, CocotbFailure, ExperimentError, TestResult, build,
                     machine_ports, run_cocotb, run_experiment)

__all__ = ["build", "run_cocotb", "run_experiment", "machine_ports",
           "BuildError", "CocotbFailure", "ExperimentError", "TestResult"]
