"""The transform engine's ``idle`` output (pysim): while it is 1 no sync
signal of the engine or its stages changes across the clock edge; it is 1
once a request has finished and its result is taken, 0 while one runs."""

import random

from crypto_ref import expected, make_cmd
from idle_check import elaborated, idle_watch

from amaranth.sim import Simulator
from hw.crypto.engine import Cipher, Mac, Order, TransformEngine
from hw.crypto.harness import pack_command, to_words, unpack_result


def _requests(rng):
    keys = tuple(rng.randbytes(8) for _ in range(3))
    reqs = []
    for n, (cipher, mac, dec) in enumerate([(Cipher.TDES, Mac.HMAC_KEY, 0),
                                            (Cipher.DES, Mac.SHA1, 1),
                                            (Cipher.TDES, Mac.HMAC_STATE, 1),
                                            (Cipher.NONE, Mac.NONE, 0)]):
        data = rng.randbytes(8 * rng.randint(1, 12))
        reqs.append((make_cmd(cipher=cipher, decrypt=dec, mac=mac,
                              order=Order.MAC_FIRST if dec else Order.CIPHER_FIRST,
                              length=len(data), cipher_len=len(data) if cipher else 0,
                              mac_len=len(data) if mac else 0, keys=keys,
                              iv=rng.randbytes(8), mac_key=rng.randbytes(20)), data))
    return reqs


def test_engine_idle_means_no_state_change():
    rng = random.Random(7)
    dut = TransformEngine(des_rounds=4, sha_rounds=2)
    frag, signals = elaborated(dut)
    assert len(signals) > 50                        # the stages' registers are found
    reqs = _requests(rng)
    stats, seen = {}, {"busy_idle": 0, "results": []}

    async def bench(ctx):
        await ctx.tick().repeat(3)
        assert ctx.get(dut.idle)                   # after reset
        for cmd, data in reqs:
            gap = rng.randint(0, 20)               # idle clocks between requests
            await ctx.tick().repeat(gap)
            ctx.set(dut.cmd.payload.as_value(), pack_command(**cmd))
            ctx.set(dut.cmd.valid, 1)
            assert not ctx.get(dut.idle)           # a command is offered
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            words = to_words(data)
            ctx.set(dut.o.ready, 1)
            out, k = [], 0
            while True:
                if k < len(words) and rng.random() < 0.7:
                    w, be, last = words[k]
                    ctx.set(dut.i.payload.as_value(), w | be << 32 | last << 36)
                    ctx.set(dut.i.valid, 1)
                else:
                    ctx.set(dut.i.valid, 0)
                ctx.set(dut.result.ready, 1)
                _, _, iv, ir, ov, res_v, res, idle = await ctx.tick().sample(
                    dut.i.valid, dut.i.ready, dut.o.valid, dut.result.valid,
                    dut.result.payload.as_value(), dut.idle)
                seen["busy_idle"] += bool(idle)
                if iv and ir:
                    k += 1
                if res_v:
                    break
            ctx.set(dut.i.valid, 0)
            seen["results"].append(unpack_result(res.value if hasattr(res, "value") else res))
            assert ctx.get(dut.idle)               # result taken: nothing in flight
        await ctx.tick().repeat(40)
        assert ctx.get(dut.idle)

    sim = Simulator(frag)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(idle_watch(dut.idle, signals, stats), background=True)
    sim.run()
    assert seen["busy_idle"] == 0                  # never idle while a request ran
    assert stats["idle"] > 60                      # and the idle clocks were checked
    for (cmd, data), r in zip(reqs, seen["results"]):
        e = expected(cmd, data)
        assert r["status"] == e["status"] and r["mac"] == e["mac"] and r["iv"] == e["iv"]
