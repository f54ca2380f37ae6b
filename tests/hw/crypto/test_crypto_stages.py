"""The transform engine's components on their own (pysim): the word
unpacker and packer against the bytes they carry (PCI lane order), the
cipher stage against `cryptography`'s DES/3DES-CBC, the MAC stage against
`cryptography`'s SHA-1 and HMAC-SHA1; random stalls on every stream."""

import random

import pytest
from crypto_ref import cbc, hmac_midstates
from cryptography.hazmat.primitives import hashes, hmac

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from hw.crypto.bytestream import BytePacker, WordUnpacker
from hw.crypto.cbc import CipherStage
from hw.crypto.command import LEN_BITS, Cipher, Mac
from hw.crypto.harness import from_words, to_words
from hw.crypto.mac import MacStage, MacState


def _sim(dut, *benches, limit=20000):
    """Run until the first bench returns (the others are background); fail
    after ``limit`` cycles."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for n, tb in enumerate(benches):
        sim.add_testbench(tb, background=n > 0)
    cycles = [0]

    async def count(ctx):
        async for _ in ctx.tick():
            cycles[0] += 1
    sim.add_testbench(count, background=True)
    while sim.advance():
        assert cycles[0] < limit, "no progress"


async def _send_bytes(ctx, port, data, rng, stall):
    for b in data:
        while rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.payload, b)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def _recv_bytes(ctx, port, n, rng, stall, out):
    while len(out) < n:
        ctx.set(port.ready, int(rng.random() >= stall))
        _, _, valid, ready, byte = await ctx.tick().sample(port.valid, port.ready, port.payload)
        if valid and ready:
            out.append(byte)
    ctx.set(port.ready, 0)


class _Loop(wiring.Component):
    """Unpacker straight into packer: what goes in must come out."""

    def __init__(self):
        self.up = WordUnpacker(LEN_BITS)
        self.pk = BytePacker(LEN_BITS)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.up, m.submodules.pk = self.up, self.pk
        wiring.connect(m, self.up.o, self.pk.i)
        return m


@pytest.mark.parametrize("sparse,stall", [(0.0, 0.0), (0.4, 0.0), (0.3, 0.5)])
def test_unpack_pack_round_trip(sparse, stall):
    rng = random.Random(int(sparse * 10 + stall * 100))
    top = _Loop()
    up, pk = top.up, top.pk
    packets = [rng.randbytes(n) for n in (1, 2, 3, 4, 5, 8, 13, 31, 64)]
    got = []

    async def bench(ctx):
        for data in packets:
            ctx.set(up.length, len(data))
            ctx.set(pk.length, len(data))
            ctx.set(up.start, 1)
            ctx.set(pk.start, 1)
            await ctx.tick()
            ctx.set(up.start, 0)
            ctx.set(pk.start, 0)
            ctx.set(up.enable, 1)
            words = []
            while not words or not words[-1][2]:
                ctx.set(pk.o.ready, int(rng.random() >= stall))
                _, _, valid, ready, d, be, last = await ctx.tick().sample(
                    pk.o.valid, pk.o.ready, pk.o.payload.data, pk.o.payload.be,
                    pk.o.payload.last)
                if valid and ready:
                    words.append((d, be, last))
            ctx.set(up.enable, 0)
            got.append((words, ctx.get(up.length_error)))

    async def feed(ctx):
        # the words of all packets back to back: the unpacker takes a
        # packet's words only while that packet still needs bytes
        for data in packets:
            for w, be, last in to_words(data, rng, sparse):
                while rng.random() < stall:
                    ctx.set(up.i.valid, 0)
                    await ctx.tick()
                ctx.set(up.i.payload.data, w)
                ctx.set(up.i.payload.be, be)
                ctx.set(up.i.payload.last, last)
                ctx.set(up.i.valid, 1)
                await ctx.tick().until(up.i.ready)
        ctx.set(up.i.valid, 0)

    _sim(top, bench, feed, limit=60000)
    assert len(got) == len(packets)
    for data, (words, err) in zip(packets, got):
        assert from_words(words) == data
        # packed from lane 0: every word but the last is full, last only on the final one
        assert all(be == 0xF and not last for _, be, last in words[:-1])
        assert words[-1][1] == (1 << (len(data) - 4 * (len(words) - 1))) - 1
        assert err == 0


def test_unpacker_early_last_fills_zeros():
    up = WordUnpacker(LEN_BITS)
    data = bytes(range(1, 7))
    out = []

    async def bench(ctx):
        ctx.set(up.length, 10)
        ctx.set(up.start, 1)
        await ctx.tick()
        ctx.set(up.start, 0)
        ctx.set(up.enable, 1)
        await _recv_bytes(ctx, up.o, 10, random.Random(0), 0.0, out)
        await ctx.tick()
        assert ctx.get(up.pos) == 10
        assert ctx.get(up.length_error) == 1

    async def feed(ctx):
        for w, be, last in to_words(data):     # `last` on the word with byte 6
            ctx.set(up.i.payload.data, w)
            ctx.set(up.i.payload.be, be)
            ctx.set(up.i.payload.last, last)
            ctx.set(up.i.valid, 1)
            await ctx.tick().until(up.i.ready)
        ctx.set(up.i.valid, 0)

    _sim(up, bench, feed)
    # the 6 bytes given, then zeros for the 4 that never came
    assert bytes(out) == data + bytes(4)


def _run_cipher(cipher, decrypt, keys, iv, data, stall, seed):
    dut = CipherStage(des_rounds=2)
    rng = random.Random(seed)
    out = []

    async def bench(ctx):
        ctx.set(dut.cipher, cipher)
        ctx.set(dut.decrypt, decrypt)
        for port, k in zip((dut.key1, dut.key2, dut.key3), keys):
            ctx.set(port, int.from_bytes(k, "big"))
        ctx.set(dut.iv, int.from_bytes(iv, "big"))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.enable, 1)
        await _recv_bytes(ctx, dut.o, len(data), rng, stall, out)
        await ctx.tick().until(dut.idle)
        out.append(ctx.get(dut.chain))

    async def feed(ctx):
        await ctx.tick()
        await _send_bytes(ctx, dut.i, data, rng, stall)

    _sim(dut, bench, feed)
    return bytes(out[:-1]), out[-1]


@pytest.mark.parametrize("cipher,decrypt,stall", [
    (Cipher.TDES, 0, 0.0), (Cipher.TDES, 1, 0.4), (Cipher.DES, 0, 0.4), (Cipher.DES, 1, 0.0)])
def test_cipher_stage_cbc(cipher, decrypt, stall):
    rng = random.Random(int(cipher.value) * 10 + decrypt)
    keys = [rng.randbytes(8) for _ in range(3)]
    if cipher == Cipher.DES:
        keys = [keys[0]] * 3             # single DES = EDE with K1 = K2 = K3
    iv = rng.randbytes(8)
    data = rng.randbytes(40)
    out, chain = _run_cipher(cipher, decrypt, keys, iv, data, stall, seed=rng.random())
    assert out == cbc(*keys, iv, data, decrypt)
    ciphertext = data if decrypt else out
    assert chain == int.from_bytes(ciphertext[-8:], "big")   # the IV of the next request


def _run_mac(mode, key, msg, trunc, stall, seed):
    dut = MacStage(sha_rounds=4)
    rng = random.Random(seed)
    res = {}

    async def bench(ctx):
        ctx.set(dut.mode, mode)
        ctx.set(dut.length, len(msg))
        ctx.set(dut.trunc, trunc)
        ctx.set(dut.key, int.from_bytes(key.ljust(64, b"\0"), "big"))
        inner, outer = hmac_midstates(key)
        ctx.set(dut.inner, inner)
        ctx.set(dut.outer, outer)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await _send_bytes(ctx, dut.i, msg, rng, stall)
        await ctx.tick().until(dut.done)
        res["digest"] = ctx.get(dut.digest)
        res["state"] = ctx.get(dut.state)

    _sim(dut, bench)
    return res


@pytest.mark.parametrize("mode", [Mac.SHA1, Mac.HMAC_KEY, Mac.HMAC_STATE])
@pytest.mark.parametrize("length", [0, 55, 56, 64, 130])
def test_mac_stage(mode, length):
    rng = random.Random(length * 4 + int(mode.value))
    key = rng.randbytes(rng.randint(1, 64))
    msg = rng.randbytes(length)
    trunc = length % 2
    res = _run_mac(mode, key, msg, trunc, stall=0.3, seed=length)
    if mode == Mac.SHA1:
        h = hashes.Hash(hashes.SHA1())
    else:
        h = hmac.HMAC(key, hashes.SHA1())
    h.update(msg)
    want = h.finalize()
    if trunc:
        want = want[:12] + bytes(8)       # RFC 2404: HMAC-SHA1-96
    assert res["digest"].to_bytes(20, "big") == want
    assert res["state"] == MacState.DONE
