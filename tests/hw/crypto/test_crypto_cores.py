"""DES/3DES and SHA-1 cores alone, every rounds-per-cycle setting, against
`cryptography` (ECB blocks) and hashlib-free SHA-1 (`cryptography` hashes).
Also checks the cycle counts the benchmark and the card parameters rely on."""

import random

import pytest
from crypto_ref import cbc
from cryptography.hazmat.primitives import hashes

from amaranth.sim import Simulator
from hw.crypto.des import DES_ROUNDS_CHOICES, DESCore, des_cycles_per_block
from hw.crypto.sha1 import SHA_ROUNDS_CHOICES, SHA1Core, sha1_cycles_per_block, sha1_iv_int


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("rpc", DES_ROUNDS_CHOICES)
def test_des_core(rpc):
    rng = random.Random(rpc)
    dut = DESCore(rpc)
    cases = [(rng.randbytes(8), rng.randbytes(8), rng.randbytes(8), rng.randbytes(8), d, t)
             for d in (0, 1) for t in (0, 1) for _ in range(2)]

    async def tb(ctx):
        for k1, k2, k3, blk, dec, triple in cases:
            if not triple:
                k2 = k3 = k1
            for port, v in ((dut.key1, k1), (dut.key2, k2), (dut.key3, k3), (dut.block_in, blk)):
                ctx.set(port, int.from_bytes(v, "big"))
            ctx.set(dut.decrypt, dec)
            ctx.set(dut.triple, triple)
            ctx.set(dut.load, 1)             # the key schedule is registered
            await ctx.tick()
            ctx.set(dut.load, 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            n = 1
            while ctx.get(dut.busy):
                await ctx.tick()
                n += 1
            assert n == des_cycles_per_block(rpc, triple)
            got = ctx.get(dut.block_out).to_bytes(8, "big")
            assert got == cbc(k1, k2, k3, bytes(8), blk, dec)   # 1 block, IV 0 = ECB
    _run(dut, tb)


def _pad(msg):
    # FIPS 180-4 §5.1.1
    n = len(msg) * 8
    msg += b"\x80" + b"\0" * ((55 - len(msg)) % 64)
    return msg + n.to_bytes(8, "big")


@pytest.mark.parametrize("rpc", SHA_ROUNDS_CHOICES)
def test_sha1_core(rpc):
    rng = random.Random(rpc)
    dut = SHA1Core(rpc)
    msgs = [rng.randbytes(n) for n in (0, 55, 56, 130)]

    async def tb(ctx):
        for msg in msgs:
            state = sha1_iv_int()
            p = _pad(msg)
            for i in range(0, len(p), 64):
                ctx.set(dut.state_in, state)
                ctx.set(dut.block, int.from_bytes(p[i:i + 64], "big"))
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                n = 1
                while ctx.get(dut.busy):
                    await ctx.tick()
                    n += 1
                assert n == sha1_cycles_per_block(rpc)
                state = ctx.get(dut.state_out)
            h = hashes.Hash(hashes.SHA1())
            h.update(msg)
            assert state.to_bytes(20, "big") == h.finalize()
    _run(dut, tb)
