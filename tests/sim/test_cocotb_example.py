"""The cocotb path for users' own test benches: ``cocotb_dma_card.py`` drives
the one-card DMA machine's exported Verilog from a cocotb test."""

import pytest

from ocfsim.machines import dma_machine
from sim.experiment import verilator_build
from sim.verilator.runner import TB_TOPLEVEL, run_cocotb

pytestmark = pytest.mark.verilator


def test_dma_card_from_a_cocotb_test():
    bdir = verilator_build(dma_machine(1))      # cached; the bench the backend uses
    results = run_cocotb(bdir, TB_TOPLEVEL, "tests.sim.cocotb_dma_card",
                         env={"DMA_BYTES": "8192"}, timeout_s=300)
    assert list(results) == ["copy_through_the_card"]
