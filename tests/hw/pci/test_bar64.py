"""64-bit memory BARs (type 10b, PCI 2.3 §6.2.5.1): the target's two
registers, sizing over both dwords, and drivers.pci enumeration.

Expected values are the spec's: a BAR of size S reads back ~(S - 1) in its
address bits after an all-ones write, bits 2:1 = 10b mark a 64-bit BAR,
bit 3 prefetchable, and the upper register reads back all ones (every upper
address bit is writable for a BAR below 4 GiB in size).
"""

from amaranth.sim import Simulator

from drivers.pci import enumerate_bus
from hw.pci import pcireg as R
from hw.pci.initiator import Status
from hw.pci.target import BarSpec

import pytest

from .harness import Bench, DriverHost, Segment, CARD_DEVICE

BARS = [BarSpec(4096), BarSpec(1 << 16, prefetchable=True, wide=True), BarSpec(256)]


def simulate(script, bars=BARS):
    seg = Segment(bars=bars)
    out = {}

    async def bench(ctx):
        await script(Bench(seg, ctx), out)

    sim = Simulator(seg)
    sim.add_clock(30e-9)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_registers_of_a_64_bit_bar():
    async def script(b, out):
        for reg in range(0x10, 0x28, 4):
            await b.cfg_write(reg, 0xFFFF_FFFF)
            out[reg] = await b.cfg_read(reg)
    r = simulate(script)
    assert r[0x10] == 0xFFFF_F000                       # BAR0: 4 KiB, 32-bit
    # BAR1: 64 KiB, prefetchable (bit 3), type 10b (bits 2:1)
    assert r[0x14] == (0xFFFF_0000 | 0b1000 | R.BAR_MEM_64 << 1)
    assert r[0x18] == 0xFFFF_FFFF                       # BAR2: BAR1's upper dword
    assert r[0x1C] == 0xFFFF_FF00                       # BAR3: 256 bytes, 32-bit
    assert r[0x20] == r[0x24] == 0                      # unimplemented
    size = (~((r[0x18] << 32) | (r[0x14] & ~0xF)) & (1 << 64) - 1) + 1
    assert size == 1 << 16


def test_64_bit_bar_decodes_only_below_4_gib():
    async def script(b, out):
        await b.cfg_write(0x14, 0x9000_0000)
        await b.cfg_write(0x18, 0)
        await b.cfg_write(0x04, R.COMMAND.mask("memory_space"))
        await b.mem_write(0x9000_0010, 0x600D_F00D)
        out["below"] = await b.mem_read(0x9000_0010)
        await b.cfg_write(0x18, 1)                      # now at 0x1_9000_0000
        out["above"] = await b.mem_read(0x9000_0010)
        out["upper"] = await b.cfg_read(0x18)
    r = simulate(script)
    assert r["below"] == (0x600D_F00D, Status.OK)
    assert r["above"] == (0xFFFF_FFFF, Status.MASTER_ABORT)   # a SAC cannot reach it
    assert r["upper"] == 1


def test_enumeration_sizes_both_halves_and_programs_the_upper_dword():
    async def script(b, out):
        host = DriverHost(b)
        out["devs"] = await enumerate_bus(host, slots=[CARD_DEVICE, CARD_DEVICE + 1])
        out["regs"] = {reg: await b.cfg_read(reg) for reg in range(0x10, 0x28, 4)}
    r = simulate(script)
    dev, = r["devs"]                                    # slot 2 is empty
    assert [(x.index, x.size, x.prefetchable, x.wide) for x in dev.bars] == \
        [(0, 4096, False, False), (1, 1 << 16, True, True), (3, 256, False, False)]
    for x in dev.bars:
        assert x.addr % x.size == 0 and 0x8000_0000 <= x.addr < 1 << 32
    regs = r["regs"]
    assert regs[0x14] & ~0xF == dev.bar(1).addr and regs[0x18] == 0
    assert regs[0x1C] & ~0xF == dev.bar(3).addr
    assert len({x.addr for x in dev.bars}) == 3


def test_bar_register_budget_counts_64_bit_bars_twice():
    from hw.pci.target import PciTarget
    with pytest.raises(ValueError, match="six BAR registers"):
        PciTarget(bars=[BarSpec(4096, wide=True)] * 3 + [BarSpec(4096)])
    with pytest.raises(ValueError, match="4 GiB"):
        BarSpec(1 << 32, wide=True)
