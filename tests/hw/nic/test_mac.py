"""The MAC blocks alone under an Amaranth testbench: CRC-32 against zlib,
the byte packer, frames on the phy stream (preamble, SFD, padding, FCS,
wire timing at 1000 Mb/s) and the receive side's checks, in MAC loopback."""

import random
import zlib

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.cards.em8254xreg import BYTE_PS, FCS_BYTES, IFG_BYTES, PREAMBLE_BYTES
from hw.net.crc32 import CRC_INIT, RESIDUE, crc32_update
from hw.net.mac import MacRx, MacTx, RxInfo
from hw.net.packer import BytePacker

P66 = 15_000          # a 66 MHz bus clock (PCI 2.3: 15 ns)


def _sim(dut, bench, period_ps=P66):
    sim = Simulator(dut)
    sim.add_clock(period_ps * 1e-12)
    sim.add_testbench(bench)
    sim.run()


def test_crc32_network_is_zlib():
    crc_in, d, out = Signal(32), Signal(32), [Signal(32) for _ in range(4)]
    m = Module()
    for n in range(1, 5):
        m.d.comb += out[n - 1].eq(crc32_update(crc_in, d, n))
    rng = random.Random(1)
    msg = bytes(rng.getrandbits(8) for _ in range(23))

    async def bench(ctx):
        for n in (1, 2, 3, 4):
            crc, i = CRC_INIT, 0
            while i < len(msg):
                k = min(n, len(msg) - i)
                ctx.set(crc_in, crc)
                ctx.set(d, int.from_bytes(msg[i:i + k].ljust(4, b"\0"), "little"))
                crc = ctx.get(out[k - 1])
                i += k
            assert crc ^ 0xFFFF_FFFF == zlib.crc32(msg)
            # the receiver's register over frame + FCS is the residue
            for b in zlib.crc32(msg).to_bytes(4, "little"):
                ctx.set(crc_in, crc)
                ctx.set(d, b)
                crc = ctx.get(out[0])
            assert crc == RESIDUE
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_packer_packs_any_split():
    dut = BytePacker()
    rng = random.Random(2)
    packets = []
    for _ in range(6):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 23)))
        cuts, i = [], 0
        while i < len(data):
            k = rng.randint(1, min(4, len(data) - i))
            cuts.append(data[i:i + k])
            i += k
        packets.append((data, cuts, rng.getrandbits(1)))
    got = []

    async def feed(ctx):
        for data, cuts, flag in packets:
            for j, c in enumerate(cuts):
                ctx.set(dut.i.payload, {"data": int.from_bytes(c.ljust(4, b"\0"), "little"),
                                        "n": len(c), "last": j == len(cuts) - 1, "flag": flag})
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def drain(ctx):
        ctx.set(dut.o.ready, 1)
        buf = b""
        while len(got) < len(packets):
            p, = await ctx.tick().sample(dut.o.payload).until(dut.o.valid)
            assert p.n == 4 or p.last            # full beats except a packet's last
            buf += p.data.to_bytes(4, "little")[:p.n]
            if p.last:
                got.append((buf, p.flag))
                buf = b""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.run()
    assert got == [(d, f) for d, _, f in packets]


class Loop(wiring.Component):
    """MacTx's phy stream into MacRx (MAC loopback), both visible."""

    def __init__(self, period_ps):
        self.tx = MacTx(period_ps)
        self.rx = MacRx()
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        m.d.comb += [self.rx.phy.valid.eq(self.tx.phy.valid),
                     self.rx.phy.payload.eq(self.tx.phy.payload)]
        return m


STATION = bytes.fromhex("0002b3aabbcc")


def _frame(rng, size, dest=STATION):
    return dest + bytes(rng.getrandbits(8) for _ in range(size - 6))


def _run_loop(frames, period_ps=P66, psp=True, ifcs=True, upe=False):
    dut = Loop(period_ps)
    tx, rx = dut.tx, dut.rx
    beats, infos, words = [], [], []

    async def feed(ctx):
        ctx.set(tx.psp, psp)
        for f in frames:
            for i in range(0, len(f), 4):
                c = f[i:i + 4]
                ctx.set(tx.words.payload, {"data": int.from_bytes(c.ljust(4, b"\0"), "little"),
                                           "n": len(c), "last": i + 4 >= len(f), "flag": ifcs})
                ctx.set(tx.words.valid, 1)
                await ctx.tick().until(tx.words.ready)
        ctx.set(tx.words.valid, 0)

    async def watch(ctx):
        ctx.set(rx.enable, 1)
        ctx.set(rx.station, int.from_bytes(STATION, "little"))
        ctx.set(rx.station_valid, 1)
        ctx.set(rx.upe, upe)
        ctx.set(rx.words.ready, 1)
        ctx.set(rx.info.ready, 1)
        cycle = 0
        idle = 0
        while idle < 400:
            _, _, valid, pay, wv, wp, iv, ip = await ctx.tick().sample(
                tx.phy.valid, tx.phy.payload, rx.words.valid, rx.words.payload,
                rx.info.valid, rx.info.payload)
            cycle += 1
            if valid:
                beats.append((cycle, pay.data, pay.n, pay.first, pay.last))
            if wv:
                words.append(wp)
            if iv:
                infos.append((ip.length, ip.nwords, ip.ok))
            idle = 0 if (valid or ctx.get(tx.busy) or ctx.get(rx.busy) or cycle < 50) \
                else idle + 1
    sim = Simulator(dut)
    sim.add_clock(period_ps * 1e-12)
    sim.add_testbench(feed)
    sim.add_testbench(watch)
    sim.run()
    return beats, words, infos


def _wire_frames(beats):
    """(start cycle, bytes incl. preamble) of each frame on the phy stream."""
    out, cur = [], None
    for cyc, d, n, first, last in beats:
        if first:
            cur = [cyc, b""]
        assert n == 4 or last
        cur[1] += d.to_bytes(4, "little")[:n]
        if last:
            out.append(tuple(cur))
    return out


@pytest.mark.parametrize("period_ps", [P66, pytest.param(30_000, marks=pytest.mark.slow)])
def test_frames_on_the_wire_and_back(period_ps):
    rng = random.Random(3)
    # largest first: each next frame is in the FIFO (store and forward) before
    # the one ahead of it has left, so they go back to back
    sizes = [500, 129, 64, 63, 61, 60]
    frames = [_frame(rng, s) for s in sizes] + [_frame(rng, 20)]   # a short one: padded
    beats, words, infos = _run_loop(frames, period_ps)
    wire = _wire_frames(beats)
    assert len(wire) == len(frames)
    for (start, raw), f in zip(wire, frames):
        assert raw[:PREAMBLE_BYTES] == b"\x55" * 7 + b"\xd5"
        body = f.ljust(60, b"\0")                       # TCTL.PSP: 60 + FCS = 64
        assert raw[PREAMBLE_BYTES:] == body + zlib.crc32(body).to_bytes(4, "little")
    # back to back: start to start = (preamble + frame + FCS + IFG) byte times
    for (s0, r0), (s1, _) in zip(wire, wire[1:]):
        want = len(r0) + IFG_BYTES
        assert abs((s1 - s0) - want * BYTE_PS / period_ps) <= 1, (s1 - s0, want)
    # the receive side took them all, FCS included
    assert [i[2] for i in infos] == [1] * len(frames)
    got, k = [], 0
    for length, nwords, _ in infos:
        got.append(b"".join(w.to_bytes(4, "little") for w in words[k:k + nwords])[:length])
        k += nwords
    assert got == [r[PREAMBLE_BYTES:] for _, r in wire]


@pytest.mark.slow
def test_receive_side_rejects_bad_fcs_and_other_stations():
    rng = random.Random(4)
    mine = _frame(rng, 100)
    other = _frame(rng, 100, dest=bytes.fromhex("0002b3000001"))
    bcast = _frame(rng, 80, dest=b"\xff" * 6)
    bad = mine[:-4] + bytes(4)                           # FCS given by "software": wrong
    beats, words, infos = _run_loop([mine, other, bcast], psp=False)
    assert [ok for _, _, ok in infos] == [1, 0, 0]       # BAM clear: no broadcast
    _, _, infos = _run_loop([bad + zlib.crc32(bad).to_bytes(4, "little"), bad], ifcs=False)
    assert [ok for _, _, ok in infos] == [1, 0]
    _, _, infos = _run_loop([other], upe=True)
    assert [ok for _, _, ok in infos] == [1]


@pytest.mark.slow
def test_long_frame_timing_1514():
    rng = random.Random(5)
    frames = [_frame(rng, 1514), _frame(rng, 1514)]
    beats, _, infos = _run_loop(frames)
    wire = _wire_frames(beats)
    s0, s1 = wire[0][0], wire[1][0]
    want = (PREAMBLE_BYTES + 1514 + FCS_BYTES + IFG_BYTES) * BYTE_PS / P66
    assert abs((s1 - s0) - want) <= 1
    assert [(l, ok) for l, _, ok in infos] == [(1518, 1), (1518, 1)]
