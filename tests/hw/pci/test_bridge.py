"""PCI-to-PCI bridge: the type-1 header description and the bridge RTL."""

import hw.pci.pcireg as R


def test_type1_offsets_match_linux_pci_regs():
    # include/uapi/linux/pci_regs.h: PCI_PRIMARY_BUS 0x18 .. PCI_BRIDGE_CONTROL 0x3e
    linux = {"BUS_NUMBERS": 0x18, "IO_WINDOW": 0x1C, "SECONDARY_STATUS": 0x1E,
             "MEMORY_WINDOW": 0x20, "PREFETCH_WINDOW": 0x24, "PREFETCH_BASE_UPPER": 0x28,
             "PREFETCH_LIMIT_UPPER": 0x2C, "IO_UPPER": 0x30, "BRIDGE_ROM": 0x38,
             "BRIDGE_INTERRUPT": 0x3C, "BRIDGE_CONTROL": 0x3E}
    got = {r.name: r.offset for r in R.TYPE1_HEADER}
    for name, off in linux.items():
        assert got[name] == off, name
    offsets = [r.offset for r in R.TYPE1_HEADER]
    assert offsets == sorted(offsets)
    # each register ends where the next begins (no overlap, no gap)
    for a, b in zip(R.TYPE1_HEADER, R.TYPE1_HEADER[1:]):
        assert a.offset + a.width // 8 == b.offset, (a.name, b.name)
    assert R.TYPE1_HEADER[-1].offset + 2 == R.HEADER_SIZE
    # Linux: PCI_SECONDARY_LATENCY_TIMER 0x1b, PCI_SUBORDINATE_BUS 0x1a
    assert R.BUS_NUMBERS.secondary_latency_timer.lsb // 8 + 0x18 == 0x1B
    assert R.BUS_NUMBERS.subordinate_bus.lsb // 8 + 0x18 == 0x1A
    # PCI_SEC_STATUS bit 13 is received master abort, as in STATUS
    assert R.SECONDARY_STATUS.received_master_abort.mask == R.STATUS.received_master_abort.mask


def test_window_bounds():
    v = R.MEMORY_WINDOW.bits(base=0x800, limit=0x80F)
    assert R.window_bounds(R.MEMORY_WINDOW, v) == (0x8000_0000, 0x80FF_FFFF)
    lo, hi = R.window_bounds(R.PREFETCH_WINDOW, R.PREFETCH_WINDOW.bits(base=0xFFF, limit=0))
    assert lo > hi                       # base above limit: off


def test_config_address_layout():
    # PCI 2.3 figure 3-1: bus 23:16, device 15:11, function 10:8, register 7:2, type 1:0
    a = R.CONFIG_ADDRESS.bits(bus=2, device=3, function=1, register=4,
                              type=R.CONFIG_TYPE_1)
    assert a == (2 << 16) | (3 << 11) | (1 << 8) | (4 << 2) | 1


# ---------------------------------------------------------------- bridge RTL
from amaranth.sim import Simulator

from hw.pci import bridge as B
from hw.pci.bus import Cmd
from hw.pci.initiator import Status

from .bridge_harness import BRIDGE_DEVICE, SEC_BUS, SEC_DEVICE, BridgeBench, BridgedSegments


def run(body, **kw):
    seg = BridgedSegments(**kw)
    sim = Simulator(seg)
    sim.add_clock(1e-6)
    out = {}

    async def tb(ctx):
        bench = BridgeBench(seg, ctx)
        out["result"] = await body(bench, ctx, seg)
        out["violations"] = bench.violations()

    sim.add_testbench(tb)
    sim.run()
    assert out["violations"] == []
    return out["result"]


async def _setup_buses(bench, sub=SEC_BUS):
    buses = R.BUS_NUMBERS.bits(primary_bus=0, secondary_bus=SEC_BUS, subordinate_bus=sub,
                               secondary_latency_timer=32)
    await bench.cfg(0, BRIDGE_DEVICE, R.BUS_NUMBERS.offset, buses)
    return buses


def test_own_header_and_type1_to_type0():
    async def body(bench, ctx, seg):
        ident = await bench.cfg(0, BRIDGE_DEVICE, R.ID.offset)
        header = await bench.cfg(0, BRIDGE_DEVICE, R.HEADER.offset)
        klass = await bench.cfg(0, BRIDGE_DEVICE, R.CLASS.offset)
        buses = await _setup_buses(bench)
        back = await bench.cfg(0, BRIDGE_DEVICE, R.BUS_NUMBERS.offset)
        card = await bench.cfg(SEC_BUS, SEC_DEVICE, R.ID.offset)
        absent = await bench.cfg(SEC_BUS, SEC_DEVICE + 1, R.ID.offset)
        sec_status = await bench.cfg(0, BRIDGE_DEVICE, R.IO_WINDOW.offset) >> 16
        beyond = await bench.cfg(SEC_BUS + 1, 0, R.ID.offset)    # not behind this bridge
        return ident, header, klass, buses, back, card, absent, sec_status, beyond

    ident, header, klass, buses, back, card, absent, sec_status, beyond = run(body)
    assert R.ID.decode(ident) == {"vendor_id": B.VENDOR_DEC, "device_id": B.DEVICE_21152}
    assert R.HEADER.decode(header)["header_type"] == R.HEADER_TYPE_BRIDGE
    assert R.CLASS.decode(klass)["class_code"] == B.CLASS_PCI_PCI_BRIDGE
    assert back == buses
    assert card == 0x7E57_0CF5                   # the card answers a converted type-0 cycle
    assert absent == 0xFFFF_FFFF                 # master abort on the secondary: all ones
    assert R.SECONDARY_STATUS.decode(sec_status)["received_master_abort"] == 1
    assert beyond == 0xFFFF_FFFF                 # nobody claims bus 2
