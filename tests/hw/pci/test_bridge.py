"""PCI-to-PCI bridge: the type-1 header description and the bridge RTL."""

import pytest

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
from hw.pci.host_bridge import CpuOp as B_CpuOp
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


CARD_BASE = 0x8000_0000


async def _setup_window(bench):
    """Bus numbers, the card's BAR0 and command, the bridge's memory window
    (1 MiB at CARD_BASE) and command: what the enumeration would program."""
    await _setup_buses(bench)
    await bench.cfg(SEC_BUS, SEC_DEVICE, R.bar(0).offset, CARD_BASE)
    await bench.cfg(SEC_BUS, SEC_DEVICE, R.COMMAND.offset,
                    R.COMMAND.mask("memory_space", "bus_master"))
    top = CARD_BASE >> R.WINDOW_SHIFT
    await bench.cfg(0, BRIDGE_DEVICE, R.MEMORY_WINDOW.offset,
                    R.MEMORY_WINDOW.bits(base=top, limit=top))
    # the prefetchable window off (base above limit): at reset 0/0 it spans the first MiB
    await bench.cfg(0, BRIDGE_DEVICE, R.PREFETCH_WINDOW.offset,
                    R.PREFETCH_WINDOW.bits(base=0xFFF, limit=0))
    await bench.cfg(0, BRIDGE_DEVICE, R.COMMAND.offset,
                    R.COMMAND.mask("memory_space", "bus_master"))


def _dram(ctx, seg, first, n):
    return [ctx.get(seg.host.dram.mem.data[first // 4 + i]) for i in range(n)]


def _pattern(n, seed):
    import random
    rng = random.Random(seed)
    return [rng.getrandbits(32) for _ in range(n)]


def test_mmio_through_the_memory_window():
    words = _pattern(6, 1)

    async def body(bench, ctx, seg):
        await _setup_window(bench)
        statuses = [(await bench.cpu(B_CpuOp.MEM_WRITE, CARD_BASE + 0x40 + 4 * i, w))[1]
                    for i, w in enumerate(words)]
        back = [await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE + 0x40 + 4 * i)
                for i in range(len(words))]
        card = [ctx.get(seg.card_mem.mem.data[0x10 + i]) for i in range(len(words))]
        outside = await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE + (1 << R.WINDOW_SHIFT))
        return statuses, back, card, outside

    statuses, back, card, outside = run(body)
    assert statuses == [Status.OK] * len(words)
    assert back == [(w, Status.OK) for w in words]
    assert card == words
    # above the window nobody claims: the host bridge sees a master abort
    assert outside == (0xFFFF_FFFF, Status.MASTER_ABORT)


@pytest.mark.parametrize("wait_every,wait_len,latency", [(0, 0, 0), (2, 3, 2), (3, 9, 5)])
def test_dma_upstream_byte_exact(wait_every, wait_len, latency):
    """A secondary master writes host DRAM through the bridge (posted writes)
    and reads it back (delayed Memory Read Multiple), DRAM with wait states
    and disconnects."""
    words = _pattern(37, wait_len)
    base = 0x200

    async def body(bench, ctx, seg):
        ctx.set(seg.host.dram_wait_every, wait_every)
        ctx.set(seg.host.dram_wait_len, wait_len)
        ctx.set(seg.host.dram_latency, latency)
        await _setup_window(bench)
        for i in range(len(words) + 2):
            ctx.set(seg.host.dram.mem.data[base // 4 - 1 + i], 0x5A5A_5A5A)
        w = await bench.dma(base, len(words), Cmd.MEM_WRITE, words)
        for _ in range(400):                     # the posted writes drain
            await ctx.tick()
        mem = _dram(ctx, seg, base - 4, len(words) + 2)
        r = await bench.dma(base, len(words), Cmd.MEM_READ_MULT)
        one = await bench.dma(base + 8, 1, Cmd.MEM_READ)
        return w, mem, r, one

    w, mem, r, one = run(body)
    assert w[:2] == (Status.OK, len(words))
    assert mem == [0x5A5A_5A5A] + words + [0x5A5A_5A5A]
    assert r == (Status.OK, len(words), words)
    assert one == (Status.OK, 1, [words[2]])


def test_read_pushes_posted_writes():
    """Same direction: a read after posted writes sees them. Across: a read
    completion (the CPU reading the card) does not pass the card's posted
    writes to DRAM still in the bridge."""
    words = _pattern(12, 7)
    base = 0x400

    async def body(bench, ctx, seg):
        ctx.set(seg.host.dram_wait_every, 1)
        ctx.set(seg.host.dram_wait_len, 6)
        await _setup_window(bench)
        await bench.dma(base, len(words), Cmd.MEM_WRITE, words)
        same = await bench.dma(base + 4 * (len(words) - 1), 1, Cmd.MEM_READ)
        await bench.dma(base + 0x100, len(words), Cmd.MEM_WRITE, words[::-1])
        in_bridge = ctx.get(seg.bridge.up.pending)
        await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE)      # completion pushes them
        mem = _dram(ctx, seg, base + 0x100, len(words))
        # downstream: posted MMIO writes, then a read of the last one
        for i, w in enumerate(words):
            await bench.cpu(B_CpuOp.MEM_WRITE, CARD_BASE + 4 * i, w)
        last = await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE + 4 * (len(words) - 1))
        return same, in_bridge, mem, last

    same, in_bridge, mem, last = run(body)
    assert same == (Status.OK, 1, [words[-1]])
    assert in_bridge > 0                 # the card finished while its writes were posted
    assert mem == words[::-1]
    assert last == (words[-1], Status.OK)


def test_interrupt_swizzle():
    """Secondary device d's INTx# pin p drives primary line (d + p) mod 4
    (PPB 1.1 §9.1), on the RTL for devices 0-4 and every pin."""
    devices = (0, 1, 2, 3, 4)
    br = B.PciBridge(masters=1, devices=devices)
    sim = Simulator(br)
    sim.add_clock(1e-6)
    seen = {}

    async def tb(ctx):
        for k, d in enumerate(devices):
            for pin in range(4):
                ctx.set(br.dev_int[k], 1 << pin)
                await ctx.tick()
                seen[d, pin] = ctx.get(br.int_out)
            ctx.set(br.dev_int[k], 0)

    sim.add_testbench(tb)
    sim.run()
    for (d, pin), lines in seen.items():
        assert lines == 1 << ((d + pin) % 4), (d, pin)


def test_type1_beyond_the_secondary_stays_type1():
    """A bus in (secondary, subordinate] gets the type-1 cycle unchanged on
    the secondary (AD[1:0] = 01); with nobody there it master-aborts."""
    seen = []

    async def body(bench, ctx, seg):
        await _setup_buses(bench, sub=SEC_BUS + 3)
        return await bench.cfg(SEC_BUS + 2, 5, 0x08)

    async def watch(ctx, seg):
        prev = 0
        async for _, _, frame, ad, cbe in ctx.tick().sample(seg.sec.bus.frame, seg.sec.bus.ad,
                                                            seg.sec.bus.cbe_n):
            if frame and not prev:
                seen.append((ad, cbe))
            prev = frame

    seg = BridgedSegments()
    sim = Simulator(seg)
    sim.add_clock(1e-6)
    out = {}

    async def tb(ctx):
        bench = BridgeBench(seg, ctx)
        out["r"] = await body(bench, ctx, seg)
        out["v"] = bench.violations()

    sim.add_testbench(tb)
    async def watcher(ctx):
        await watch(ctx, seg)

    sim.add_process(watcher)
    sim.run()
    assert out["v"] == [] and out["r"] == 0xFFFF_FFFF
    want = R.CONFIG_ADDRESS.bits(bus=SEC_BUS + 2, device=5, register=2, type=R.CONFIG_TYPE_1)
    assert seen == [(want, Cmd.CFG_READ)]


def _clocks(ctx, seg):
    return ctx.get(seg.cycle)


def test_bridge_latency_in_bus_clocks():
    """The bridge's added latency, measured (printed; docs/pci.md quotes it):
    CPU reads and posted writes through it against the same on the primary
    (host DRAM), and a secondary master's DMA to host DRAM."""
    async def body(bench, ctx, seg):
        await _setup_window(bench)
        res = {}
        t = _clocks(ctx, seg)
        await bench.cpu(B_CpuOp.MEM_READ, 0x40)
        res["cpu_read_dram"] = _clocks(ctx, seg) - t
        t = _clocks(ctx, seg)
        await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE)
        res["cpu_read_card"] = _clocks(ctx, seg) - t
        t = _clocks(ctx, seg)
        await bench.cpu(B_CpuOp.MEM_WRITE, 0x40, 1)
        res["cpu_write_dram"] = _clocks(ctx, seg) - t
        t = _clocks(ctx, seg)
        await bench.cpu(B_CpuOp.MEM_WRITE, CARD_BASE, 1)
        res["cpu_write_card"] = _clocks(ctx, seg) - t
        for _ in range(100):
            await ctx.tick()
        t = _clocks(ctx, seg)
        await bench.dma(0x400, 64, Cmd.MEM_WRITE, range(64))
        res["dma_write_64dw_secondary"] = _clocks(ctx, seg) - t
        while ctx.get(seg.bridge.up.pending):
            await ctx.tick()
        res["dma_write_64dw_in_dram"] = _clocks(ctx, seg) - t
        t = _clocks(ctx, seg)
        _, _, got = await bench.dma(0x400, 64, Cmd.MEM_READ_MULT)
        res["dma_read_64dw"] = _clocks(ctx, seg) - t
        res["ok"] = got == list(range(64))
        t = _clocks(ctx, seg)
        await bench.dma(0x400, 1, Cmd.MEM_READ)
        res["dma_read_1dw"] = _clocks(ctx, seg) - t
        return res

    res = run(body)
    print("bridge latency (bus clocks):", res)
    assert res.pop("ok")
    # a delayed read costs at least a retry, the far-side read and the retried read
    assert res["cpu_read_card"] > res["cpu_read_dram"] + 4
    assert res["dma_write_64dw_in_dram"] >= res["dma_write_64dw_secondary"]


def test_quiet_bridge_keeps_its_registers():
    """While the bridge says ``quiet`` on an idle bus, none of its registers
    (every signal its sync statements assign, its small memories) changes;
    after each step of traffic it gets quiet again."""
    from amaranth.hdl import Fragment
    from .harness import find_fragment, sync_state

    seg = BridgedSegments()
    frag = Fragment.get(seg, None)
    regs, mems = sync_state(find_fragment(frag, seg.bridge))
    log = []

    def snapshot(ctx):
        values = [ctx.get(s) for s in regs]
        values += [tuple(ctx.get(mem[i]) for i in range(mem.depth)) for mem in mems]
        return values

    async def hold(ctx, label):
        for clk in range(200):
            if ctx.get(seg.bridge.quiet):
                break
            await ctx.tick()
        else:
            raise AssertionError(f"{label}: the bridge not quiet after 200 clocks")
        before = snapshot(ctx)
        for _ in range(16):
            await ctx.tick()
            assert ctx.get(seg.bridge.quiet), label
            assert snapshot(ctx) == before, f"{label}: registers changed while quiet"
        log.append(label)

    async def tb(ctx):
        bench = BridgeBench(seg, ctx)
        await hold(ctx, "reset")
        await _setup_window(bench)
        await hold(ctx, "configuration")
        await bench.cfg(SEC_BUS, SEC_DEVICE + 4, 0)
        await hold(ctx, "master abort")
        await bench.cpu(B_CpuOp.MEM_WRITE, CARD_BASE, 5)
        await bench.cpu(B_CpuOp.MEM_READ, CARD_BASE)
        await hold(ctx, "MMIO")
        ctx.set(seg.host.dram_wait_every, 2)
        ctx.set(seg.host.dram_wait_len, 4)
        await bench.dma(0x100, 20, Cmd.MEM_WRITE, range(20))
        await bench.dma(0x100, 20, Cmd.MEM_READ_MULT)
        await hold(ctx, "DMA")
        assert bench.violations() == []

    sim = Simulator(frag)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert log == ["reset", "configuration", "master abort", "MMIO", "DMA"]


# ---------------------------------------------------------------- enumeration
class BridgeDriverHost:
    """drivers.pci's host over the bridged segments: bus 0 by type 0, other
    buses by type 1, the board's routing of primary INTA#..INTD#."""

    mmio_window = (0x8000_0000, 0x1_0000_0000)

    def __init__(self, bench, bus=0):
        self.bench, self.bus = bench, bus

    def config_bus(self, bus):
        return BridgeDriverHost(self.bench, bus)

    async def cfg_read(self, slot, reg, func=0):
        return await self.bench.cfg(self.bus, slot, reg, func=func)

    async def cfg_write(self, slot, reg, value, func=0, be=0xF):
        await self.bench.cfg(self.bus, slot, reg, value, be=be, func=func)

    @staticmethod
    def interrupt_route(slot, pin):
        return (slot - 1 + pin - 1) % 4


def test_recursive_enumeration_through_the_bridge_rtl():
    from drivers.pci import enumerate_bus

    async def body(bench, ctx, seg):
        found = await enumerate_bus(BridgeDriverHost(bench))
        regs = {name: await bench.cfg(0, BRIDGE_DEVICE, reg.offset) for name, reg in
                (("buses", R.BUS_NUMBERS), ("mem", R.MEMORY_WINDOW),
                 ("pf", R.PREFETCH_WINDOW), ("command", R.COMMAND))}
        card = [d for d in found if d.bus == SEC_BUS][0]
        addr = card.bar(0).addr
        await bench.cpu(B_CpuOp.MEM_WRITE, addr + 0x10, 0x1234_5678)
        back = await bench.cpu(B_CpuOp.MEM_READ, addr + 0x10)
        # the card's DMA to DRAM goes upstream: the bridge is a master now
        w = await bench.dma(0x300, 4, Cmd.MEM_WRITE, [1, 2, 3, 4])
        r = await bench.dma(0x300, 4, Cmd.MEM_READ_MULT)
        return found, regs, back, w, r

    found, regs, back, w, r = run(body)
    assert [(d.bus, d.slot, d.name) for d in found] == [
        (0, BRIDGE_DEVICE, f"{B.VENDOR_DEC:04x}:{B.DEVICE_21152:04x}"),
        (SEC_BUS, SEC_DEVICE, "0cf5:7e57")]
    bridge, card = found
    buses = R.BUS_NUMBERS.decode(regs["buses"])
    assert (buses["primary_bus"], buses["secondary_bus"], buses["subordinate_bus"]) == (0, 1, 1)
    first, last = R.window_bounds(R.MEMORY_WINDOW, regs["mem"])
    assert bridge.bridge == (1, 1, first, last)
    b0 = card.bar(0)
    assert first <= b0.addr and b0.addr + b0.size - 1 <= last
    assert first % R.WINDOW_GRANULE == 0 and (last + 1) % R.WINDOW_GRANULE == 0
    lo, hi = R.window_bounds(R.PREFETCH_WINDOW, regs["pf"])
    assert lo > hi
    assert regs["command"] & R.COMMAND.mask("memory_space", "bus_master") == \
        R.COMMAND.mask("memory_space", "bus_master")
    # INTA# of device 2 behind the bridge in slot 3: bridge pin (2 + 0) % 4 + 1 = INTC#
    assert card.irq == BridgeDriverHost.interrupt_route(BRIDGE_DEVICE, 3)
    assert back == (0x1234_5678, Status.OK)
    assert w[:2] == (Status.OK, 4) and r == (Status.OK, 4, [1, 2, 3, 4])


def test_delayed_reads_prefetch_to_the_21152_boundaries():
    """A secondary master's read is fetched on the primary up to the
    aligned boundary of its command, the cache line size register being 0
    (21152 datasheet §4.6.3, Table 4-5): Memory Read Multiple to the next
    32-dword boundary, Memory Read Line to the next 16-dword one, Memory
    Read one dword; the requester gets only what it asked for. Counted as
    data phases of host DRAM on the primary."""
    base = 0x800                                 # 32-dword (128-byte) aligned
    words = _pattern(32, 3)
    cases = [(Cmd.MEM_READ_MULT, 18, 4, 32 - 18), (Cmd.MEM_READ_MULT, 0, 16, 32),
             (Cmd.MEM_READ_LINE, 5, 2, 16 - 5), (Cmd.MEM_READ_LINE, 16, 3, 16),
             (Cmd.MEM_READ, 7, 1, 1)]

    async def body(bench, ctx, seg):
        await _setup_window(bench)
        for i, w in enumerate(words):
            ctx.set(seg.host.dram.mem.data[base // 4 + i], w)
        dram_data = seg.mon[0].target_data[1]
        out = []
        for code, first, count, _ in cases:
            before = ctx.get(dram_data)
            r = await bench.dma(base + 4 * first, count, code)
            for _ in range(20):
                await ctx.tick()
            out.append((r, ctx.get(dram_data) - before))
        return out

    for (code, first, count, fetched), (r, moved) in zip(cases, run(body)):
        assert r == (Status.OK, count, words[first:first + count]), code
        assert moved == fetched, (code, first, moved)


def test_discard_timer_frees_an_abandoned_completion():
    """A delayed read whose requester never repeats it is discarded when the
    discard timer expires (PPB 1.1 §3.2.5.18: 2^15 clocks, 2^10 with the
    Primary Discard Timeout bit, Discard Timer Status set, write 1 to clear):
    the entry is free again, a later read of the same address is a new
    request fetched afresh (it sees data written after the abandoned fetch),
    and a completion the requester does come back for is unaffected. The CPU
    abandons its first read by repeating a different address (the harness
    replaces its address phase)."""
    a, b = CARD_BASE + 0x40, CARD_BASE + 0x80

    async def body(bench, ctx, seg):
        await _setup_window(bench)
        mem = seg.card_mem.mem.data
        ctx.set(mem[0x10], 0x1111_1111)
        ctx.set(mem[0x20], 0x2222_2222)
        down = seg.bridge.down
        entries = down.entry_states

        # the CPU's read of a: retried and latched; then it repeats b instead
        ctx.set(seg.t1_en, 1)
        ctx.set(seg.t1_addr, a)
        b_ = seg.host
        bench.seq ^= 1
        ctx.set(b_.cpu_op, B_CpuOp.MEM_READ)
        ctx.set(b_.cpu_addr, a)
        ctx.set(b_.cpu_seq, bench.seq)
        for _ in range(200):
            await ctx.tick()
            if any(ctx.get(s) != B.DelayedState.EMPTY for s in entries):
                break
        ctx.set(seg.t1_addr, b)
        for _ in range(3000):
            await ctx.tick()
            if ctx.get(b_.cpu_ack) == bench.seq:
                break
        await ctx.tick()
        got_b = ctx.get(b_.cpu_rdata), ctx.get(b_.cpu_status)
        ctx.set(seg.t1_en, 0)
        held = [ctx.get(s) for s in entries]
        ctx.set(mem[0x10], 0x3333_3333)          # after the abandoned fetch of a
        # 2^10 clocks pass with the default (2^15): the completion is still held
        for _ in range(B.DISCARD_CLOCKS_SHORT + 50):
            await ctx.tick()
        still = [ctx.get(s) for s in entries]
        ctl = await bench.cfg(0, BRIDGE_DEVICE, R.BRIDGE_INTERRUPT.offset)
        # Primary Discard Timeout on: it expires at once (it has waited longer)
        await bench.cfg(0, BRIDGE_DEVICE, R.BRIDGE_INTERRUPT.offset,
                        (ctl & 0xFFFF) | B.CTL_PRIMARY_DISCARD << 16)
        for _ in range(4):
            await ctx.tick()
        after = [ctx.get(s) for s in entries]
        ctl_after = await bench.cfg(0, BRIDGE_DEVICE, R.BRIDGE_INTERRUPT.offset)
        again = await bench.cpu(B_CpuOp.MEM_READ, a)
        # write 1 to clear Discard Timer Status
        await bench.cfg(0, BRIDGE_DEVICE, R.BRIDGE_INTERRUPT.offset,
                        (ctl & 0xFFFF) | (B.CTL_PRIMARY_DISCARD | B.CTL_DISCARD_STATUS) << 16)
        cleared = await bench.cfg(0, BRIDGE_DEVICE, R.BRIDGE_INTERRUPT.offset)
        return got_b, held, still, ctl, after, ctl_after, again, cleared

    got_b, held, still, ctl, after, ctl_after, again, cleared = run(body)
    assert got_b == (0x2222_2222, Status.OK)
    assert sorted(held).count(B.DelayedState.READY) == 1      # a's completion, abandoned
    assert still == held
    assert not (ctl >> 16) & B.CTL_DISCARD_STATUS
    assert all(s == B.DelayedState.EMPTY for s in after)
    assert (ctl_after >> 16) & B.CTL_DISCARD_STATUS
    assert again == (0x3333_3333, Status.OK)                  # fetched afresh
    assert not (cleared >> 16) & B.CTL_DISCARD_STATUS
    assert (cleared >> 16) & B.CTL_PRIMARY_DISCARD


def test_a_16_dword_write_burst_crosses_whole():
    """A secondary master's 16-dword Memory Write (a Hifn 7751's burst) is
    taken in one transaction: the bridge's posted-write buffering (20 data
    dwords, the 21152's 88 bytes with two addresses) holds it, where 12
    dwords disconnected it; it goes out on the primary as one burst, in
    order, byte-exact in DRAM; a later read of it sees all of it (the read
    pushes the posted writes, PPB 1.1 chapter 5)."""
    base = 0xC00                                 # 16-dword aligned
    words = _pattern(16, 11)

    async def body(bench, ctx, seg):
        ctx.set(seg.host.dram_latency, 3)
        await _setup_window(bench)
        sec_addr, pri_addr = seg.mon[1].by_master[2][0], seg.mon[0].by_master[3][0]
        s0, p0 = ctx.get(sec_addr), ctx.get(pri_addr)
        w = await bench.dma(base, len(words), Cmd.MEM_WRITE, words)
        s1 = ctx.get(sec_addr)
        r = await bench.dma(base, len(words), Cmd.MEM_READ_LINE)
        for _ in range(20):
            await ctx.tick()
        return w, s1 - s0, ctx.get(pri_addr) - p0, _dram(ctx, seg, base, len(words)), r

    w, sec_txns, pri_txns, mem, r = run(body)
    assert w[:2] == (Status.OK, 16)
    assert sec_txns == 1                         # no disconnect on the secondary
    assert pri_txns == 2                         # the write as one burst, then the read
    assert mem == words
    assert r == (Status.OK, 16, words)


def test_posted_write_master_aborted_mid_feed_is_dropped_whole():
    """A secondary master's 16-dword write to an address nobody on the
    primary claims (beyond DRAM) is posted, then master-aborts upstream
    while the bridge is still feeding its initiator (a streamed replay
    starts on the first dword). The bridge drops the rest of that run (PPB
    1.1 §4.8.1: the write is discarded, received master abort is set); the
    next posted write crosses intact, nothing is left pending, and the
    bridge goes quiet."""
    base, nowhere = 0xC00, 0x8000                # DRAM is 16 KiB: 0x8000 is unclaimed
    lost, words = _pattern(16, 21), _pattern(16, 22)

    async def body(bench, ctx, seg):
        await _setup_window(bench)
        ini = seg.bridge.up.initiator
        w0 = await bench.dma(nowhere, len(lost), Cmd.MEM_WRITE, lost)
        aborted_with = None
        for _ in range(200):
            if ctx.get(ini.done):
                aborted_with = ctx.get(seg.bridge.up.pending)
            await ctx.tick()
        w1 = await bench.dma(base, len(words), Cmd.MEM_WRITE, words)
        for _ in range(200):
            await ctx.tick()
        status = await bench.cfg(0, BRIDGE_DEVICE, R.COMMAND.offset) >> 16
        return (w0, w1, aborted_with, ctx.get(seg.bridge.up.pending),
                ctx.get(seg.bridge.up.quiet), _dram(ctx, seg, base, len(words)), status)

    w0, w1, aborted_with, pending, quiet, mem, status = run(body)
    assert w0[:2] == (Status.OK, 16) and w1[:2] == (Status.OK, 16)   # both posted
    assert aborted_with is not None and aborted_with > 0   # dwords still to feed at the abort
    assert R.STATUS.decode(status)["received_master_abort"] == 1
    assert mem == words
    assert pending == 0 and quiet == 1
