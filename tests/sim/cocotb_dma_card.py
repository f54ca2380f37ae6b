"""A user's own cocotb test bench of one card against its exported Verilog.

The documented example of the cocotb path (``docs/architecture.md``,
Backends): the machine with one DMA test card, exported to Verilog and built
under the ``ocfsim_tb`` bench (``sim.experiment.verilator_build``), is driven
from a cocotb test. The project's host API does the bus work (enumeration,
BARs, MMIO through the host bridge, ``sim.host.Host`` on a
``sim.backend_verilator.VerilatorBackend``); plain cocotb waits on the
card's interrupt line clock by clock and reads the monitor's counters, and
host DRAM is checked through the backdoor. Run by ``test_cocotb_example.py``
with ``run_cocotb``; not named ``test_*.py`` so pytest does not collect it.
"""

import os
import random

import cocotb
from cocotb.triggers import FallingEdge

from drivers.pci import enumerate_bus
from ocfsim.machines import dma_machine
from ocfsim.workloads.dma import DMA_DEVICE, DMA_VENDOR, REG, ST_DONE
from sim.backend_verilator import VerilatorBackend
from sim.host import Host


@cocotb.test()
async def copy_through_the_card(dut):
    nbytes = int(os.environ["DMA_BYTES"])
    spec = dma_machine(1)
    backend = VerilatorBackend(dut, spec.period_ps)
    await backend.start()                       # reset done, at a falling edge
    host = Host(backend, spec)
    run = host.loop.run_until_complete          # host coroutines, on simulated time
    (card,) = [d for d in await run(enumerate_bus(host))
               if (d.vendor, d.device) == (DMA_VENDOR, DMA_DEVICE)]
    payload = random.Random(1).randbytes(nbytes)
    src, dst = host.memory.alloc(nbytes), host.memory.alloc(nbytes)
    host.memory.write(src, payload)
    base = card.bar(0).addr

    async def program():
        for reg, value in (("SRC", src), ("DST", dst), ("LEN", nbytes), ("INTEN", 1),
                           ("CTRL", 1)):
            await host.mmio_write(base + REG[reg], value)
        await host.mmio_read(base + REG["ID"])     # a read flushes the posted writes
    await run(program())

    # Plain cocotb from here: clock by clock until the card's INTx# line is
    # asserted (an 8 KB copy takes a few thousand bus cycles).
    mask = 1 << card.irq
    for waited in range(200_000):
        await FallingEdge(dut.clk)
        if dut.irq.value.to_unsigned() & mask:
            break
    assert dut.irq.value.to_unsigned() & mask, f"no interrupt after {waited} cycles"
    # every dword crossed the bus twice (read from DRAM, written back)
    assert dut.mon_data.value.to_unsigned() >= 2 * nbytes // 4
    assert backend.dram_read(dst, nbytes) == payload
    # back to host code: its clock catches up with the cycles clocked by hand
    # (the RTL is already there, so the backend steps nothing)
    async def catch_up():
        await host.sleep(backend.cycle * spec.period_ps - host.now)
    await run(catch_up())
    status = await run(host.mmio_read(base + REG["STATUS"]))
    assert status & ST_DONE
