"""The record engine's ``idle`` output (pysim): while it is 1 no sync signal
of the engine (record sequencer, issuer, demultiplexer, walkers, input and
output sides, the transform engine) changes across the clock edge; it is 0
from the MCR1 write until the record is done and 1 again afterwards."""

import random

from amaranth.sim import Simulator

from hw.cards.ubsecreg import UBS_MCR_DONE, UBS_PKTCTX_ENC_3DES
from hw.crypto.params import card_engine_params
from hw.dma.mcr import McrEngine
from tests.hw.crypto.crypto_ref import cbc
from tests.hw.crypto.idle_check import elaborated, idle_watch
from tests.hw.dma.test_mcr_engine import Memory, particles, record, serve


def test_record_engine_idle_means_no_state_change():
    rng = random.Random(11)
    mem = Memory()
    jobs = []
    for sizes in ([16, 8], [5, 11, 8]):
        data = rng.randbytes(sum(sizes))
        key, iv = rng.randbytes(24), rng.randbytes(8)
        ipkt, _, _ = particles(mem, rng, sizes, fill=data)
        opkt, obufs, _ = particles(mem, rng, [len(data)])
        jobs.append((record(mem, UBS_PKTCTX_ENC_3DES, len(data), ipkt, opkt, key, iv),
                     data, key, iv, obufs))
    dut = McrEngine(card_engine_params("bcm5820"), chunk=8, data_depth=16)
    frag, signals = elaborated(dut)
    stats, seen = {}, {"busy_idle": 0}

    async def host(ctx):
        await ctx.tick().repeat(5)
        assert ctx.get(dut.idle)
        for mcr, *_ in jobs:
            await ctx.tick().repeat(rng.randint(0, 30))
            ctx.set(dut.mcr1_push, 1)
            ctx.set(dut.mcr1_addr, mcr)
            assert not ctx.get(dut.idle)            # a record is pushed
            await ctx.tick()
            ctx.set(dut.mcr1_push, 0)
            for _ in range(6000):
                *_, done, idle = await ctx.tick().sample(dut.record_done, dut.idle)
                if done:
                    break
                seen["busy_idle"] += bool(idle)
            else:
                raise AssertionError("the record did not complete")
            await ctx.tick()
            assert ctx.get(dut.idle)
        await ctx.tick().repeat(50)
        assert ctx.get(dut.idle)

    async def initiator(ctx):
        await serve(ctx, dut, mem, [], 20000)

    sim = Simulator(frag)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(initiator, background=True)
    sim.add_testbench(idle_watch(dut.idle, signals, stats), background=True)
    sim.run()
    assert seen["busy_idle"] == 0
    assert stats["idle"] >= 50                     # the idle clocks were checked
    for mcr, data, key, iv, obufs in jobs:
        assert int.from_bytes(mem.b[mcr + 2:mcr + 4], "little") == UBS_MCR_DONE
        got = b"".join(bytes(mem.b[a:a + n]) for a, n in obufs)
        assert got == cbc(key[0:8], key[8:16], key[16:24], iv, data, False)
