"""The particle-chain walker alone (hw/dma/mcr_chain.py), on pysim: the
first particle from the record's words, takes, fetches of ``next`` (a
``struct ubsec_pktbuf`` read of 3 dwords), the end of a chain and the
UBS_MAX_SCATTER (ubsecvar.h, 64) limit."""

from amaranth.sim import Simulator

from hw.cards.ubsecreg import MAX_PARTICLES
from hw.dma.mcr_chain import ChainState, ChainWalker
from hw.dma.mcr_common import Dest, P_IPKT, count_bits

FIRST_AT = 0x0808          # bus address of the record's input particle


def simulate(body):
    dut = ChainWalker(count_bits(32), Dest.IN, P_IPKT)

    async def bench(ctx):
        ctx.set(dut.first_at, FIRST_AT)
        await body(ctx, dut)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


async def words(ctx, dut, addr, nxt, length, fetched=False):
    """The three particle words on the packet bus (index P_IPKT..)."""
    for k, w in enumerate((addr, nxt, length)):
        ctx.set(dut.packet.valid, 1)
        ctx.set(dut.packet.index, P_IPKT + k)
        ctx.set(dut.packet.word, w)
        ctx.set(dut.fetched, fetched and k == 2)
        if fetched and k == 2:
            assert ctx.get(dut.chain.loaded)
            loaded = (ctx.get(dut.chain.empty), ctx.get(dut.chain.at))
        await ctx.tick()
    ctx.set(dut.packet.valid, 0)
    ctx.set(dut.fetched, 0)
    return loaded if fetched else None


async def fetch(ctx, dut, addr, nxt, length):
    """Advance; the walker asks for ``chain.next``; grant and answer it."""
    want = ctx.get(dut.chain.next)
    ctx.set(dut.chain.advance, 1)
    assert not ctx.get(dut.chain.end) and not ctx.get(dut.chain.refused)
    await ctx.tick()
    ctx.set(dut.chain.advance, 0)
    assert ctx.get(dut.state) == ChainState.DESC_RD
    assert ctx.get(dut.req.valid)
    p = ctx.get(dut.req.payload)
    assert (p.addr, p.count, p.read, p.dest) == (want, 3, 1, Dest.IN)
    ctx.set(dut.req.ready, 1)
    await ctx.tick()
    ctx.set(dut.req.ready, 0)
    assert ctx.get(dut.state) == ChainState.DESC_WAIT and not ctx.get(dut.req.valid)
    return await words(ctx, dut, addr, nxt, length, fetched=True)


def test_first_particle_takes_fetch_and_end():
    async def body(ctx, dut):
        c = dut.chain
        await words(ctx, dut, 0x1001, 0x2000, 0x0005)
        ctx.set(c.start, 1)
        assert ctx.get(c.at) == FIRST_AT
        await ctx.tick()
        ctx.set(c.start, 0)
        assert ctx.get(dut.parts) == 1
        ctx.set(c.take, 1)
        ctx.set(c.take_n, 3)
        await ctx.tick()
        ctx.set(c.take, 0)
        assert (ctx.get(c.addr), ctx.get(c.len)) == (0x1004, 2)
        empty, at = await fetch(ctx, dut, 0x3002, 0x2100, 7)
        assert (empty, at) == (0, 0x2000)
        assert (ctx.get(c.addr), ctx.get(c.next), ctx.get(c.len)) == (0x3002, 0x2100, 7)
        assert ctx.get(dut.parts) == 2 and ctx.get(c.at) == 0x2000
        empty, at = await fetch(ctx, dut, 0x4000, 0, 0)     # a zero-length particle
        assert (empty, at) == (1, 0x2100)
        ctx.set(c.advance, 1)                               # next = 0: the chain ends
        assert ctx.get(c.end) and not ctx.get(c.refused)
        await ctx.tick()
        assert ctx.get(dut.state) == ChainState.HOLD and not ctx.get(dut.req.valid)
    simulate(body)


def test_max_particles_then_refused():
    async def body(ctx, dut):
        c = dut.chain
        await words(ctx, dut, 0x1000, 0x2000, 4)
        ctx.set(c.start, 1)
        await ctx.tick()
        ctx.set(c.start, 0)
        for n in range(2, MAX_PARTICLES + 1):               # a self-linked chain
            await fetch(ctx, dut, 0x1000, 0x2000, 4)
            assert ctx.get(dut.parts) == n
        ctx.set(c.advance, 1)
        assert ctx.get(c.refused) and not ctx.get(c.end) and ctx.get(c.next) == 0x2000
        await ctx.tick()
        assert ctx.get(dut.state) == ChainState.HOLD and ctx.get(dut.parts) == MAX_PARTICLES
        # a new packet starts the count again
        ctx.set(c.advance, 0)
        ctx.set(c.start, 1)
        assert ctx.get(c.at) == FIRST_AT
        await ctx.tick()
        assert ctx.get(dut.parts) == 1
    simulate(body)
