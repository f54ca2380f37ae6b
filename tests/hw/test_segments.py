"""Bus segments behind PCI-PCI bridges in the machine (hw/machine.py).

Checked against the rules, not against recorded numbers: bus numbers and
windows as PPB 1.1 §3.2.5 has system software assign them (depth first,
each window around the BARs behind it, a child's inside its parent's);
master abort read as all ones (PPB 1.1 §4.8.1, PCI 2.3 §3.3.3.1); a delayed
read completes only after the posted writes ahead of it (PPB 1.1 §5.2);
each device's INTA# through the swizzle (PPB 1.1 §9.1) to its own handler;
the monitor's classes partition every clock of every segment; the
checkers silent on every segment; the quad-7751 card's four chips each
serving sessions with results the workload checks against the
``cryptography`` package.
"""

import pytest

from amaranth.hdl import Fragment

from hw.machine import CardSpec, Machine, MachineSpec
from hw.pci.bridge import DEVICE_21152, VENDOR_DEC
from ocfsim.machines import quad7751_machine
from sim.experiment import run

CASES = "tests.hw.segment_cases"


def dmatest(slot):
    return {"kind": "dmatest", "slot": slot, "params": {"depth": 16}}


def one_level():
    """A DMA card on bus 0, a bridge in slot 2 with two DMA cards behind it."""
    return MachineSpec(clock_mhz=33, dram_bytes=1 << 20, cards=[
        CardSpec("dmatest", 1, {"depth": 16}),
        CardSpec("ppb", 2, {"cards": [dmatest(1), dmatest(4)]})])


def two_levels():
    """A bridge in slot 3: a DMA card at device 0 and a second bridge at
    device 2 with a DMA card at device 1 behind it."""
    return MachineSpec(clock_mhz=33, dram_bytes=1 << 20, cards=[
        CardSpec("ppb", 3, {"cards": [dmatest(0),
                                      {"kind": "ppb", "slot": 2,
                                       "params": {"cards": [dmatest(1)]}}]})])


def _adds_up(bus):
    """Per segment: the classes partition the clocks, the masters' counts
    are within their class's; every segment sees the same clocks."""
    segs = bus["segments"]
    assert len({s["total"] for s in segs}) == 1
    for s in segs:
        assert sum(s["breakdown"].values()) == s["total"]
        for c, n in s["breakdown"].items():
            if c != "idle":
                assert sum(m.get(c, 0) for m in s["by_master"].values()) <= n


def _check_tree(r, spec):
    devs = r["devices"]
    bridges = [d for d in devs if d["bridge"]]
    for b in bridges:
        assert (b["vendor"], b["device"]) == (VENDOR_DEC, DEVICE_21152)
        sec, sub, first, last = b["bridge"]
        rb = r["readback"][f"{b['bus']}:{b['slot']}"]
        assert rb["buses"]["primary_bus"] == b["bus"]
        assert (rb["buses"]["secondary_bus"], rb["buses"]["subordinate_bus"]) == (sec, sub)
        assert rb["window"] == [first, last]
        below = [d for d in devs if sec <= d["bus"] <= sub]
        assert below, "every bridge here has devices behind it"
        for d in below:
            for addr, size in d["bars"]:
                assert first <= addr and addr + size - 1 <= last
    # bus numbers: depth first, one per bridge, as the segments are listed
    assert sorted({d["bus"] for d in devs}) == list(range(len(spec.segments())))
    assert r["empty_id"] == r["all_ones"] and r["beyond_id"] == r["all_ones"]
    # the status register's 66MHz Capable bit: the DMA card is, a 21152-like bridge not
    for d in devs:
        assert d["m66"] == (d["vendor"] == 0x0CF5), d
    for bus, slot, src, dst, ident in r["order"]:
        assert src == 0x6000 + 4 * slot and dst == 0xABC0 and ident == 0x0CF5D0A1
    assert r["checker"] == [] and all(c == [] for c in r["checker_by_segment"])
    _adds_up(r["bus"])


def test_segments_and_ports():
    spec = two_levels()
    segs = spec.segments()
    assert [(s.index, s.name, s.parent) for s in segs] == [(0, "", None), (1, "slot3", 0),
                                                           (2, "slot3_2", 1)]
    assert segs[2].agent_names() == ["slot3_2.up", "slot3_2.down",
                                     "slot3_2_1.target", "slot3_2_1.master"]
    names = {n for n, _, _ in spec.ports()}
    assert {"slot3_mon_total", "slot3_2_chk_error", "slot3_2_arb_wait_max1",
            "chk_error_bus0"} <= names
    assert "slot3_mon_total" not in {n for n, _, _ in one_level().ports()}
    Fragment.get(Machine(spec), None)                  # elaborates


def test_spec_errors():
    with pytest.raises(ValueError, match="device behind a bridge 16"):
        MachineSpec(cards=[CardSpec("ppb", 1, {"cards": [dmatest(16)]})])
    with pytest.raises(ValueError, match="two cards"):
        MachineSpec(cards=[CardSpec("ppb", 1, {"cards": [dmatest(1), dmatest(1)]})])
    with pytest.raises(ValueError, match="NIC"):
        MachineSpec(cards=[CardSpec("ppb", 1, {"cards": [{"kind": "em82544", "slot": 0}]})])
    with pytest.raises(ValueError, match="one clock"):
        MachineSpec(clock_mhz=66, cards=[CardSpec("ppb", 1, {
            "m66": True, "cards": [{"kind": "hifn7751", "slot": 0}]})])
    with pytest.raises(ValueError, match="no parameters"):
        MachineSpec(cards=[CardSpec("quad7751", 1, {"chips": 2})])


def test_m66en_per_segment():
    # every device 66 MHz capable: 66; a 33 MHz part on the bus: 33
    assert MachineSpec(clock_mhz=66, cards=[CardSpec("bcm5820", 1)]).clock_mhz == 66
    mixed = MachineSpec(clock_mhz=66, cards=[CardSpec("bcm5820", 1), CardSpec("hifn7751", 2)])
    assert mixed.clock_mhz == 33 and mixed.offered_mhz == 66
    # the quad card's bridge and chips are 33 MHz parts
    q = quad7751_machine()
    assert q.clock_mhz == 33 and q.segment_clocks() == [33, 33]
    # a 66 MHz bridge with 66 MHz cards behind it keeps 66 on both segments
    fast = MachineSpec(clock_mhz=66, cards=[CardSpec("ppb", 1, {
        "m66": True, "cards": [{"kind": "bcm5820", "slot": 0}]})])
    assert fast.segment_clocks() == [66, 66]


def test_enumeration_one_level(backend):
    spec = one_level()
    r = run(spec, f"{CASES}:tree", {"empty": (1, 9)}, backend=backend)
    _check_tree(r, spec)
    assert [(d["bus"], d["slot"]) for d in r["devices"]] == [(0, 1), (0, 2), (1, 1), (1, 4)]
    assert r["devices"][1]["bridge"][:2] == [1, 1]


def test_enumeration_two_levels(backend):
    spec = two_levels()
    r = run(spec, f"{CASES}:tree", {"empty": (2, 5)}, backend=backend)
    _check_tree(r, spec)
    assert [(d["bus"], d["slot"]) for d in r["devices"]] == [(0, 3), (1, 0), (1, 2), (2, 1)]
    outer, inner = r["devices"][0]["bridge"], r["devices"][2]["bridge"]
    assert outer[:2] == [1, 2] and inner[:2] == [2, 2]
    assert outer[2] <= inner[2] and inner[3] <= outer[3]     # child window inside parent


def test_dma_and_interrupts_behind_bridges(backend):
    """Three DMA cards, two behind the bridge: every copy byte-exact, each
    completion taken by interrupt on the line the swizzle gives (slot 1:
    INTA#; the bridge in slot 2, devices 1 and 4: its INTB# and INTA#, system
    lines 2 and 1)."""
    r = run(one_level(), f"{CASES}:copy", {"nbytes": 256, "burst": 16}, backend=backend)
    assert r["ok"] and r["cards"] == 3
    assert r["lines"][0] >= 1 and r["lines"][1] >= 1 and r["lines"][2] >= 1
    assert r["lines"][3] == 0
    assert all(c == [] for c in r["checker_by_segment"])
    seg1 = r["bus"]["segments"][1]
    assert {"slot2_1.master", "slot2_4.master"} <= set(seg1["by_master"])
    _adds_up(r["bus"])


@pytest.mark.parametrize("backend", [
    "pysim", pytest.param("verilator", marks=[pytest.mark.verilator, pytest.mark.slow])])
def test_quad7751_four_chips_serve_sessions(backend):
    """The OCF paper's quad card: four processes, one session each, the
    fewest-sessions rule spreads them over the four chips; every output is
    checked against ``cryptography`` by the workload."""
    r = run(quad7751_machine(), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des", "size": 64, "ops": 8, "threads": 4}, backend=backend)
    assert r["ok"], (r["failures"], r["errnos"])
    assert r["requests"]["ok"] == 8 and r["checker"] == []
    assert r["devices"][0] == "1:1011:0024"
    for unit in range(4):
        d = r["ocf_drivers"][f"hifn{unit}"]
        assert d["newsessions"] >= 1 and d["operations"] >= 1, (unit, r["ocf_drivers"])
        # each chip's completions by interrupt on its own line (the four
        # chips' INTA# swizzle onto the slot's INTA#..INTD#). A chip may also
        # see its line still asserted once its handler is done (the clearing
        # write is posted through two buffers), found nothing pending, "stray"
        drv = r["drivers"][f"hifn{unit}"]
        assert drv["interrupts"] >= 1 and drv["stray"] <= drv["interrupts"]
    assert r["ocf_drivers"]["cryptosoft"]["operations"] == 0


@pytest.mark.verilator
def test_backends_agree_cycle_for_cycle():
    """The same enumeration, MMIO and DMA behind a bridge on pysim and on
    Verilator: the same cycle counts and the same monitor counts on every
    segment (the host bridge's type-1 cycles included)."""
    spec = one_level()
    a = run(spec, f"{CASES}:tree", {"empty": (1, 9)}, backend="pysim")
    b = run(spec, f"{CASES}:tree", {"empty": (1, 9)}, backend="verilator")
    assert a["_cycles"] == b["_cycles"] and a["cycle"] == b["cycle"]
    assert a["bus"] == b["bus"] and a["devices"] == b["devices"]
    c = run(spec, f"{CASES}:copy", {"nbytes": 256, "burst": 16}, backend="pysim")
    d = run(spec, f"{CASES}:copy", {"nbytes": 256, "burst": 16}, backend="verilator")
    assert c["ok"] and d["ok"] and c["_cycles"] == d["_cycles"] and c["bus"] == d["bus"]


def test_bridge_cost_from_the_bus():
    """``bench pci``'s bridge figures: the copies byte-exact, the direct
    copy one read and one write burst per 16 dwords (PCI 2.3 §3.1: the
    card's bursts, no disconnects on bus 0), the bridged copy and read
    dearer."""
    from bench.pci_bandwidth import bridge_cost, bridge_machine, format_bridge  # noqa: F401
    b = run(bridge_machine(), "bench.pci_bandwidth:bridge_cost", {"nbytes": 1024, "burst": 16})
    assert b["ok"] and b["direct"]["bus"] == 0 and b["bridged"]["bus"] == 1
    assert b["direct"]["transactions"] == 2 * 1024 // (4 * 16)
    assert b["bridged"]["transactions"] > b["direct"]["transactions"]
    assert b["bridged"]["cpu_read_clocks"] > b["direct"]["cpu_read_clocks"]
    assert b["copy_extra_per_transaction"] > 0
    text = format_bridge({**b, "backend": "pysim"})
    assert "2-cycle latency" in text and "FAILED" not in text
