"""cocotb tests run by tests/sim/test_verilator.py through ``run_cocotb``.

They drive the stub machine's command interface from cocotb cycle by cycle,
the way a component's known-answer test does (the bench generates the clock).
"""

import os

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer


async def _after_reset(dut):
    # The bench drops rst at a falling edge of clk; inputs written now are
    # sampled by the first rising edge out of reset. (Reading rst at time 0
    # is no use: the bench's initial block has not run yet.)
    await FallingEdge(dut.rst)


@cocotb.test()
async def delay_command(dut):
    """A DELAY command raises attn after cmd_len + 2 edges (see verilator_stub)."""
    await _after_reset(dut)
    length = int(os.environ.get("STUB_DELAY", "3"))
    dut.cmd_op.value = 0
    dut.cmd_len.value = length
    dut.cmd_seq.value = 1
    edges = 0
    while True:
        await RisingEdge(dut.clk)
        edges += 1
        await Timer(1, "ps")          # past the edge: registers updated
        if int(dut.attn.value) == 1:
            break
        assert edges < 100, "attn never moved"
    assert edges == length + 2, f"attn after {edges} edges"


@cocotb.test()
async def deliberate_failure(dut):
    """Fails when STUB_FAIL is set: checks that failures come back with text."""
    await Timer(100, "ns")
    assert not os.environ.get("STUB_FAIL"), "deliberate failure: STUB_FAIL is set"
