"""A machine on a 64-bit bus (PCI 2.3 §3.8): the host bridge is a 64-bit
agent, a 64-bit capable card's master moves quadwords, a 32-bit card's
master and every card's register target stay 32-bit; results are verified
against the ``cryptography`` package (the workload does it) and the bytes the
monitor counts against what the workload moved."""

import pytest

from hw.machine import MachineSpec
from sim.experiment import run

ENTRY = "tests.sim.skip_cases:observed"


def machine(kind, width):
    return MachineSpec(clock_mhz=66, bus_width=width, cards=[dict(kind=kind, slot=1)])


def test_widths_of_the_agents():
    spec = machine("bcm5820", 64)
    assert spec.agent_widths() == [64, 64, 32, 64]
    assert machine("dmatest", 64).agent_widths() == [64, 64, 32, 32]
    assert machine("bcm5820", 32).agent_widths() == [32, 32, 32, 32]
    names = {n for n, _, _ in spec.ports()}
    assert {"mon_a0_bytes", "mon_a3_bytes", "mon_t1_bytes"} <= names
    assert "mon_a3_bytes" not in {n for n, _, _ in machine("bcm5820", 32).ports()}
    with pytest.raises(ValueError, match="32 or 64"):
        MachineSpec(bus_width=48)


def test_32_bit_card_on_a_64_bit_bus_moves_dwords():
    """The DMA test card (32-bit) copies N bytes: 2N bytes in N/2 dword
    phases, the same clocks as on a 32-bit bus."""
    n = 1024
    args = {"entry": "ocfsim.workloads.dma:dma_copy", "args": {"nbytes": n}}
    r32 = run(machine("dmatest", 32), ENTRY, args)
    r64 = run(machine("dmatest", 64), ENTRY, args)
    assert r32["result"]["ok"] and r64["result"]["ok"]
    assert r64["cycle"] == r32["cycle"]
    card = r64["bus"]["bytes_by_master"]["slot1.master"]
    assert card == 2 * n
    assert r64["bus"]["by_master"]["slot1.master"]["data"] == 2 * n // 4
    assert r64["outputs"]["chk_error"] == 0


def test_bcm5820_moves_quadwords_on_a_64_bit_bus():
    """The 5820's master takes ACK64# from the 64-bit bridge: fewer data
    phases than on a 32-bit bus for the same bytes; results still right."""
    args = {"entry": "ocfsim.workloads.devcrypto:devcrypto",
            "args": {"alg": "3des-sha1", "size": 2048, "ops": 2, "threads": 1}}
    r32 = run(machine("bcm5820", 32), ENTRY, args)
    r64 = run(machine("bcm5820", 64), ENTRY, args)
    assert r32["result"]["ok"] and r64["result"]["ok"]
    assert r64["outputs"]["chk_error"] == 0
    p32 = r32["bus"]["by_master"]["slot1.master"]["data"]
    p64 = r64["bus"]["by_master"]["slot1.master"]["data"]
    moved = r64["bus"]["bytes_by_master"]["slot1.master"]
    # every byte the card moved on the 32-bit bus, it moves on the 64-bit one,
    # in at most 8 bytes a phase and at least 4 on average (bursts of quadwords)
    assert moved <= 4 * p32
    assert moved / 8 <= p64 < p32 * 0.75
    assert r64["cycle"] <= r32["cycle"]
