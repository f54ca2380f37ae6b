"""The quad-7751 card scales past one chip (hw/pci/bridge.py, hw/cards/quad7751.py).

The card's four chips share one 32-bit/33 MHz secondary bus behind the
on-card bridge. That bus carries 1.056 Gbit/s (PCI 2.3: 4 bytes a clock at
33 MHz) and every 16 KB operation crosses it twice (source read, result
written), so it allows at most 528 Mbit/s of operations: four chips at one
chip's rate (about 81 Mbit/s at 16 KB) use some 60 % of it, and the bus
leaves room for four times one chip's rate. With one delayed read per
direction in the bridge the four chips' source reads were served one at a
time and four processes ran at 1.3 times one process's rate; the bridge
now queues a delayed read per secondary master (PCI 2.3 §3.3.3.3) and
prefetches to the 21152's boundaries.

Checked: every output against ``cryptography`` (the workload), the four
chips each doing a quarter of the work (OCF's fewest-sessions rule puts
one process's session on each), four processes at least twice one
process's throughput and never above what the secondary bus can carry.
"""

import pytest

from ocfsim.machines import quad7751_machine
from sim.experiment import run

SIZE = 16384
#: the secondary bus: 32 bits at 33 MHz (PCI 2.3 §2.2), in Mbit/s
SECONDARY_MBPS = 32 * 33
#: crossings of the secondary bus per byte of an operation: read, then written
CROSSINGS = 2


def _run(threads, ops):
    r = run(quad7751_machine(), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des", "size": SIZE, "ops": ops, "threads": threads, "seed": 1},
            backend="verilator")
    assert r["ok"], (r["failures"], r["errnos"], r["checker"])
    assert r["requests"]["ok"] == ops
    return r


@pytest.mark.verilator
def test_four_processes_use_all_four_chips_and_scale():
    one = _run(1, 8)
    four = _run(4, 32)
    per_chip = [four["ocf_drivers"][f"hifn{u}"]["operations"] for u in range(4)]
    assert per_chip == [8, 8, 8, 8], four["ocf_drivers"]
    assert four["ocf_drivers"]["cryptosoft"]["operations"] == 0
    assert four["mbps"] <= SECONDARY_MBPS / CROSSINGS
    # one chip's work at a time gave 1.3x; four chips side by side at least 2x
    assert four["mbps"] >= 2 * one["mbps"], (one["mbps"], four["mbps"])
