"""Two PCI segments joined by :class:`hw.pci.bridge.PciBridge`, without hw.machine.

Primary bus, agents in resolver order: 0 the host bridge's CPU initiator,
1 the host DRAM target, 2 the bridge's primary target, 3 the bridge's
primary initiator; masters: the host bridge, the PCI bridge. The host
bridge issues type 0 for bus 0 and type 1 for any other bus number in the
CPU's configuration address (PCI 2.3 §3.2.2.3.2); ``t1_en``/``t1_addr``
still let a test put any address phase on the primary.

Secondary bus: 0 the bridge's secondary target, 1 the bridge's secondary
initiator, 2 a card initiator, 3 a card target (device ``SEC_DEVICE``,
IDSEL = AD[16 + SEC_DEVICE]) in front of a word memory. Masters (the
bridge's arbiter): the bridge, the card initiator. A monitor and a checker
on each bus.
"""

from amaranth.hdl import Cat, Module, Signal, Elaboratable

from hw.pci.bridge import PciBridge
from hw.pci.bus import Resolver
from hw.pci.host_bridge import CpuOp, HostBridge
from hw.pci.initiator import InitiatorState, PciInitiator
from hw.pci.monitor import Checker, Monitor
from hw.pci.target import BarSpec, PciTarget
from hw.pci import pcireg as R

from .harness import CardMemory, CARD_BAR_SIZE

BRIDGE_DEVICE = 3                    # the bridge on the primary: IDSEL = AD[19]
SEC_DEVICE = 2                       # the card on the secondary: IDSEL = AD[18]
SEC_BUS = 1


class BridgedSegments(Elaboratable):
    def __init__(self, dram_bytes=16 << 10):
        self.host = HostBridge(dram_bytes)
        self.bridge = PciBridge(masters=1, devices=(SEC_DEVICE,))
        self.initiator = PciInitiator(depth=16, state_name="card_ini_state")
        self.target = PciTarget(vendor_id=0x0CF5, device_id=0x7E57, class_code=0x058000,
                                int_pin=R.INTERRUPT_PIN_INTA,
                                bars=[BarSpec(CARD_BAR_SIZE, prefetchable=True)],
                                state_name="card_tgt_state")
        self.card_mem = CardMemory(self.target)
        self.pri = Resolver(4)
        self.sec = Resolver(4)
        from hw.pci.arbiter import Arbiter
        self.pri_arb = Arbiter(2)
        self.mon = [Monitor(4, masters=[0, 3], targets=[1, 2]),
                    Monitor(4, masters=[1, 2], targets=[0, 3])]
        self.chk = [Checker(4, 2), Checker(4, 2)]
        self.cycle = Signal(64)
        self.t1_en = Signal()
        self.t1_addr = Signal(32)
        self.card_int = Signal()        # the card's INTA#

    def elaborate(self, platform):
        m = Module()
        h, br, ini, tgt = self.host, self.bridge, self.initiator, self.target
        for name, sub in (("host", h), ("bridge", br), ("initiator", ini), ("target", tgt),
                          ("card_mem", self.card_mem), ("pri", self.pri), ("sec", self.sec),
                          ("pri_arb", self.pri_arb), ("mon0", self.mon[0]),
                          ("mon1", self.mon[1]), ("chk0", self.chk[0]), ("chk1", self.chk[1])):
            m.submodules[name] = sub
        for agent, port in zip((h.pci_m, h.pci_t, br.pri_t, br.pri_m), self.pri.agents):
            m.d.comb += [port.o.eq(agent.o), port.oe.eq(agent.oe), agent.bus.eq(port.bus)]
        with m.If(self.t1_en & (h.initiator.state == InitiatorState.ADDR)):
            m.d.comb += self.pri.agents[0].o.ad.eq(self.t1_addr)
        for agent, port in zip((br.sec_t, br.sec_m, ini.pci, tgt.pci), self.sec.agents):
            m.d.comb += [port.o.eq(agent.o), port.oe.eq(agent.oe), agent.bus.eq(port.bus)]
        arb = self.pri_arb
        m.d.comb += [
            arb.req.eq(Cat(h.req, br.pri_req)), h.gnt.eq(arb.gnt[0]), br.pri_gnt.eq(arb.gnt[1]),
            arb.bus.frame.eq(self.pri.bus.frame), arb.bus.irdy.eq(self.pri.bus.irdy),
            br.idsel.eq(self.pri.bus.ad[16 + BRIDGE_DEVICE]),
            br.sec_req.eq(ini.req), ini.gnt.eq(br.sec_gnt[0]),
            ini.master_enable.eq(1), ini.latency_timer.eq(32),
            tgt.idsel.eq(self.sec.bus.ad[16 + SEC_DEVICE]),
            br.dev_int[0].eq(Cat(self.card_int, 0, 0, 0)),
        ]
        for k, (res, gnt, gnt_of) in enumerate((
                (self.pri, arb.gnt, Cat(0, arb.gnt[0], 0, 0, arb.gnt[1])),
                (self.sec, br.sec_arb_gnt, Cat(0, 0, br.sec_arb_gnt[0], br.sec_arb_gnt[1], 0)))):
            mon, chk = self.mon[k], self.chk[k]
            m.d.comb += [
                mon.bus.eq(res.bus), mon.master_of.eq(res.frame_owner),
                mon.target_of.eq(res.devsel_owner),
                chk.bus.eq(res.bus), chk.contention.eq(res.contention), chk.gnt.eq(gnt),
                chk.gnt_of_agent.eq(gnt_of), chk.master_of.eq(res.frame_owner),
                chk.cycle.eq(self.cycle),
            ]
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m


class BridgeBench:
    """CPU operations (type 0 to bus 0, type 1 beyond) and card DMA."""

    def __init__(self, seg: BridgedSegments, ctx):
        self.seg, self.ctx = seg, ctx
        self.seq = 0

    async def cpu(self, op, addr, wdata=0, be=0xF, t1=None, limit=3000):
        b, ctx = self.seg.host, self.ctx
        self.seq ^= 1
        ctx.set(self.seg.t1_en, t1 is not None)
        ctx.set(self.seg.t1_addr, t1 or 0)
        ctx.set(b.cpu_op, op)
        ctx.set(b.cpu_addr, addr)
        ctx.set(b.cpu_wdata, wdata)
        ctx.set(b.cpu_be, be)
        ctx.set(b.cpu_seq, self.seq)
        for _ in range(limit):
            await ctx.tick()
            if ctx.get(b.cpu_ack) == self.seq:
                await ctx.tick()
                return ctx.get(b.cpu_rdata), ctx.get(b.cpu_status)
        raise AssertionError(f"CPU operation {op} at {addr:#x} not done in {limit} clocks")

    async def cfg(self, bus, dev, reg, value=None, be=0xF, func=0):
        """A configuration read (value None) or write of dword ``reg``."""
        op = CpuOp.CFG_READ if value is None else CpuOp.CFG_WRITE
        # the CPU's configuration address (bus << 16 | ...): the host bridge
        # makes a bus other than 0 a type-1 cycle
        addr = bus << 16 | dev << 11 | func << 8 | reg
        rdata, status = await self.cpu(op, addr, value or 0, be)
        return rdata if value is None else status

    async def dma(self, addr, count, code, words=(), limit=20000):
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

    def violations(self):
        out = []
        for k, chk in enumerate(self.seg.chk):
            err = self.ctx.get(chk.error)
            for i, rule in enumerate(chk.rules):
                if err >> i & 1:
                    out.append(("primary", "secondary")[k] + ":" + rule)
        return out
