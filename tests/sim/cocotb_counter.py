"""cocotb test of ``verilator_stub.Counter`` with the clock driven from cocotb."""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


@cocotb.test()
async def counts_enabled_cycles(dut):
    Clock(dut.clk, 30, unit="ns").start()
    dut.rst.value = 1
    dut.en.value = 0
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    n = int(os.environ.get("COUNTER_CYCLES", "10"))
    dut.en.value = 1
    for _ in range(n):
        await FallingEdge(dut.clk)
    dut.en.value = 0
    await FallingEdge(dut.clk)
    assert int(dut.count.value) == n
