"""A small PCI segment for unit tests of the cores, without hw.machine.

Agents, in resolver order: 0 the host bridge's CPU initiator, 1 the host
bridge's DRAM target, 2 a card initiator, 3 a card target (IDSEL = AD[17],
device 1) with one prefetchable memory BAR in front of a word memory that
answers reads one clock after the request. Masters, in arbiter order: the
bridge, the card initiator. The monitor and the checker watch the lines.

``Bench`` drives the CPU side and the card initiator from an async
testbench; :func:`sync_state` lists every register of a component (the left
sides of its ``sync`` statements, and its small memories), so a test can
show that none changes while the component says it is ``quiet``.
"""

from amaranth.hdl import Cat, Module, Signal, Elaboratable
from amaranth.hdl._mem import MemoryInstance
from amaranth.lib import memory

from hw.pci.arbiter import Arbiter
from hw.pci.bus import Resolver
from hw.pci.host_bridge import CpuOp, HostBridge
from hw.pci.initiator import PciInitiator
from hw.pci.monitor import Checker, Monitor
from hw.pci.target import BarSpec, PciTarget

CARD_DEVICE = 1                      # IDSEL = AD[16 + 1]
CARD_BAR_SIZE = 4096
CARD_WORDS = CARD_BAR_SIZE // 4


class CardMemory(Elaboratable):
    """The card target's user side: a word memory, reads answered next clock."""

    def __init__(self, target):
        self.target = target
        self.width = target.width
        self.mem = memory.Memory(shape=self.width, depth=CARD_BAR_SIZE * 8 // self.width,
                                 init=[])

    def elaborate(self, platform):
        m = Module()
        port = self.target.port
        m.submodules.mem = mem = self.mem
        rd = mem.read_port(domain="sync")
        wr = mem.write_port(granularity=8)
        lsb = 3 if self.width == 64 else 2
        word = port.cmd.addr[lsb:lsb + (mem.depth - 1).bit_length()]
        pending = Signal()
        lanes = self.width // 8
        m.d.comb += [
            port.cmd_ready.eq(1),
            rd.en.eq(port.cmd_valid & ~port.cmd.write), rd.addr.eq(word),
            wr.addr.eq(word), wr.data.eq(port.cmd.data),
            wr.en.eq(port.cmd.be & (port.cmd_valid & port.cmd.write).replicate(lanes)),
            port.rsp_valid.eq(pending), port.rsp_data.eq(rd.data),
        ]
        m.d.sync += pending.eq(port.cmd_valid & ~port.cmd.write)
        return m


class Segment(Elaboratable):
    def __init__(self, dram_bytes=16 << 10, depth=16, bars=None, width=32,
                 initiator_width=None, target_width=None):
        """``width``: the bus (and the host bridge); the card initiator and
        target are as wide unless ``initiator_width``/``target_width`` say 32."""
        iw = initiator_width or width
        tw = target_width or width
        self.width = width
        self.bridge = HostBridge(dram_bytes, width=width)
        self.initiator = PciInitiator(depth=depth, state_name="card_ini_state", width=iw)
        self.target = PciTarget(vendor_id=0x0CF5, device_id=0x7E57, class_code=0x058000,
                                bars=bars or [BarSpec(CARD_BAR_SIZE, prefetchable=True)],
                                state_name="card_tgt_state", width=tw)
        self.card_mem = CardMemory(self.target)
        self.resolver = Resolver(4, width=width, agent_widths=[width, width, iw, tw])
        self.arbiter = Arbiter(2)
        self.monitor = Monitor(4, masters=[0, 2], targets=[1, 3], width=width)
        self.checker = Checker(4, 2, width=width)
        self.cycle = Signal(64)

    def elaborate(self, platform):
        m = Module()
        b, ini, tgt, res, arb = self.bridge, self.initiator, self.target, \
            self.resolver, self.arbiter
        mon, chk = self.monitor, self.checker
        for name, sub in (("bridge", b), ("initiator", ini), ("target", tgt),
                          ("card_mem", self.card_mem), ("resolver", res), ("arbiter", arb),
                          ("monitor", mon), ("checker", chk)):
            m.submodules[name] = sub
        for agent, port in zip((b.pci_m, b.pci_t, ini.pci, tgt.pci), res.agents):
            m.d.comb += [port.o.eq(agent.o), port.oe.eq(agent.oe), agent.bus.eq(port.bus)]
        m.d.comb += [
            arb.req.eq(Cat(b.req, ini.req)), b.gnt.eq(arb.gnt[0]), ini.gnt.eq(arb.gnt[1]),
            arb.bus.frame.eq(res.bus.frame), arb.bus.irdy.eq(res.bus.irdy),
            ini.master_enable.eq(1), ini.latency_timer.eq(32),
            tgt.idsel.eq(res.bus.ad[16 + CARD_DEVICE]),
            mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
            mon.target_of.eq(res.devsel_owner),
            chk.bus.eq(res.bus), chk.contention.eq(res.contention), chk.gnt.eq(arb.gnt),
            chk.gnt_of_agent.eq(Cat(0, arb.gnt[0], 0, arb.gnt[1], 0)),
            chk.master_of.eq(res.frame_owner), chk.cycle.eq(self.cycle),
        ]
        if self.width == 64:
            m.d.comb += [chk.ad_hi_driven.eq(res.ad_hi_driven),
                         chk.par64_driven.eq(res.par64_driven)]
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m


class Bench:
    """CPU operations and card DMA commands from a testbench ``ctx``."""

    def __init__(self, seg: Segment, ctx):
        self.seg, self.ctx = seg, ctx
        self.seq = 0

    async def cpu(self, op, addr, wdata=0, be=0xF, limit=400):
        b, ctx = self.seg.bridge, self.ctx
        self.seq ^= 1
        ctx.set(b.cpu_op, op)
        ctx.set(b.cpu_addr, addr)
        ctx.set(b.cpu_wdata, wdata)
        ctx.set(b.cpu_be, be)
        ctx.set(b.cpu_seq, self.seq)
        for _ in range(limit):
            await ctx.tick()
            if ctx.get(b.cpu_ack) == self.seq:
                # cpu_rdata follows cpu_ack by one clock (the machine's host
                # reads it on the attention that cpu_ack raises, a clock later)
                await ctx.tick()
                return ctx.get(b.cpu_rdata), ctx.get(b.cpu_status)
        raise AssertionError(f"CPU operation {op} at {addr:#x} not done in {limit} clocks")

    async def cfg_write(self, reg, value):
        return await self.cpu(CpuOp.CFG_WRITE, CARD_DEVICE << 11 | reg, value)

    async def cfg_read(self, reg):
        return (await self.cpu(CpuOp.CFG_READ, CARD_DEVICE << 11 | reg))[0]

    async def mem_read(self, addr):
        return await self.cpu(CpuOp.MEM_READ, addr)

    async def mem_write(self, addr, value):
        return await self.cpu(CpuOp.MEM_WRITE, addr, value)

    async def dma(self, addr, count, code, words=(), limit=2000):
        """One card-initiator command; write ``words`` or collect read data.
        Returns (status, dwords moved, data read)."""
        ini, ctx = self.seg.initiator, self.ctx
        ctx.set(ini.cmd.payload, {"addr": addr, "count": count, "code": code,
                                  "first_be": 0xF, "last_be": 0xF})
        ctx.set(ini.cmd.valid, 1)
        ctx.set(ini.rdata.ready, 1)
        words = list(words)
        got = []
        done = None
        for _ in range(limit):
            ctx.set(ini.wdata.valid, bool(words))
            if words:
                ctx.set(ini.wdata.payload, words[0])
            # sample before the edge: what moves at this edge
            took_cmd = ctx.get(ini.cmd.ready)
            took_w = words and ctx.get(ini.wdata.ready)
            if ctx.get(ini.rdata.valid):
                got.append(ctx.get(ini.rdata.payload))
            if ctx.get(ini.done):
                done = (ctx.get(ini.done_status), ctx.get(ini.done_count))
            await ctx.tick()
            if took_cmd:
                ctx.set(ini.cmd.valid, 0)
            if took_w:
                words.pop(0)
            if done is not None and not ctx.get(ini.rdata.valid):
                break
        else:
            raise AssertionError("DMA command not reported")
        ctx.set(ini.wdata.valid, 0)
        return done[0], done[1], got


class DriverHost:
    """What drivers.pci.enumerate_bus needs of a host, over a :class:`Bench`:
    configuration cycles through the bridge RTL, the board's routing and an
    MMIO window."""

    mmio_window = (0x8000_0000, 0x1_0000_0000)

    def __init__(self, bench):
        self.bench = bench

    async def cfg_read(self, slot, reg, func=0):
        return (await self.bench.cpu(CpuOp.CFG_READ, slot << 11 | func << 8 | reg))[0]

    async def cfg_write(self, slot, reg, value, func=0, be=0xF):
        await self.bench.cpu(CpuOp.CFG_WRITE, slot << 11 | func << 8 | reg, value, be)

    @staticmethod
    def interrupt_route(slot, pin):
        return (slot - 1 + pin - 1) % 4


def find_fragment(fragment, component):
    """The fragment ``component`` elaborated into, inside ``fragment``."""
    if component in (fragment.origins or ()):
        return fragment
    for sub, _, _ in fragment.subfragments:
        found = find_fragment(sub, component)
        if found is not None:
            return found
    return None


def sync_state(fragment):
    """(registers, memories) of an elaborated ``fragment`` tree: every signal
    a ``sync`` statement assigns, each synchronous memory read port's data
    register, and each memory of at most 64 words (FIFO storage; larger ones
    are left to the caller)."""
    signals, memories = {}, []

    def walk(frag):
        if isinstance(frag, MemoryInstance):
            if frag._data.depth <= 64:
                memories.append(frag._data)
            for port in frag._read_ports:
                if port._domain != "comb":
                    signals[id(port._data)] = port._data
        for domain, stmts in frag.statements.items():
            if domain == "comb":
                continue
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    signals[id(sig)] = sig
        for sub, _, _ in frag.subfragments:
            walk(sub)

    walk(fragment)
    return list(signals.values()), memories


__all__ = ["Segment", "Bench", "DriverHost", "sync_state", "find_fragment", "CardMemory",
           "CARD_DEVICE", "CARD_BAR_SIZE", "CpuOp"]
