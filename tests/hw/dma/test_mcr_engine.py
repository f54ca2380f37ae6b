"""The command-record engine alone (hw/dma/mcr.py and its components), on pysim.

A little host-memory model answers the engine's initiator port as the PCI
initiator does (command accepted, read words streamed, write words taken
from the data FIFO, one ``done`` per command). Records, contexts and
particles are packed from the hw.cards.ubsecreg layouts by hw.structs; the
ciphertext is checked against ``cryptography`` (3DES-CBC)."""

import random

from amaranth.sim import Simulator

from hw import structs
from hw.cards.ubsecreg import (ContextLong, Mcr, McrPacket, PktBuf, CTX_LONG_BYTES,
                               ERR_CHAIN, ERR_OUTPUT, MAX_PARTICLES, UBS_MCR_DONE,
                               UBS_MCR_ERROR, UBS_PKTCTX_ENC_3DES, byte_offset)
from hw.crypto.params import card_engine_params
from hw.dma.mcr import McrEngine
from hw.pci.bus import Cmd
from hw.pci.initiator import Status
from tests.hw.crypto.crypto_ref import cbc

MEM = 1 << 16
GUARD = 0xA5


class Memory:
    def __init__(self):
        self.b = bytearray([GUARD]) * MEM
        self.next = 0x100

    def alloc(self, n, lead=0):
        a = self.next + lead
        self.next = (self.next + n + lead + 15) & ~7
        return a

    def write(self, a, data):
        self.b[a:a + len(data)] = data


async def serve(ctx, dut, mem, log, cycles):
    """The initiator: accept each command, move its data, report done."""
    pend = None                     # [cmd dict, words left, is_read]
    wbuf = []
    done = None
    ctx.set(dut.ini_wdata.ready, 1)
    for _ in range(cycles):
        ctx.set(dut.ini_done, 0)
        if done is not None:
            ctx.set(dut.ini_done, 1)
            ctx.set(dut.ini_done_status, Status.OK)
            ctx.set(dut.ini_done_count, done)
            done = None
        ctx.set(dut.ini_cmd.ready, pend is None)
        ctx.set(dut.ini_rdata.valid, 0)
        if pend is not None and pend[2]:
            c, left = pend[0], pend[1]
            a = c["addr"] + 4 * (c["count"] - left)
            ctx.set(dut.ini_rdata.valid, 1)
            ctx.set(dut.ini_rdata.payload, int.from_bytes(mem.b[a:a + 4], "little"))
        if ctx.get(dut.ini_wdata.valid):
            wbuf.append(ctx.get(dut.ini_wdata.payload))
        if pend is None and ctx.get(dut.ini_cmd.valid):
            p = ctx.get(dut.ini_cmd.payload)
            c = {"addr": p.addr, "count": p.count, "first_be": p.first_be,
                 "last_be": p.last_be}
            read = p.code == Cmd.MEM_READ_MULT
            log.append(("R" if read else "W", c["addr"], c["count"]))
            pend = [c, c["count"], read]
        elif pend is not None and pend[2]:
            if ctx.get(dut.ini_rdata.ready):
                pend[1] -= 1
                if pend[1] == 0:
                    done, pend = pend[0]["count"], None
        elif pend is not None and len(wbuf) >= pend[1]:
            c = pend[0]
            for i in range(c["count"]):
                be = (c["first_be"] if i == 0 else 0xF) & \
                     (c["last_be"] if i == c["count"] - 1 else 0xF)
                w = wbuf.pop(0).to_bytes(4, "little")
                for k in range(4):
                    if be >> k & 1:
                        mem.b[c["addr"] + 4 * i + k] = w[k]
            done, pend = c["count"], None
        await ctx.tick()


def particles(mem, rng, sizes, fill=None, last_next=0):
    """A chain over buffers of ``sizes`` (any byte alignment); returns (first
    particle dict, [(addr, len)], [descriptor addresses])."""
    bufs = [(mem.alloc(n + 4, lead=rng.randrange(4)), n) for n in sizes]
    if fill is not None:
        pos = 0
        for a, n in bufs:
            mem.write(a, fill[pos:pos + n])
            pos += n
    descs = [mem.alloc(12) for _ in bufs[1:]]
    for k in range(1, len(bufs)):
        nxt = descs[k] if k < len(descs) else last_next
        mem.write(descs[k - 1], structs.pack(PktBuf, addr=bufs[k][0], next=nxt, len=bufs[k][1]))
    first_next = descs[0] if descs else last_next
    first = {"addr": bufs[0][0], "next": first_next, "len": bufs[0][1]} if bufs else \
        {"addr": 0, "next": last_next, "len": 0}
    return first, bufs, descs


def record(mem, ctx_flags, pktlen, ipkt, opkt, key=bytes(24), iv=bytes(8)):
    ctxp = mem.alloc(CTX_LONG_BYTES)
    mem.write(ctxp, structs.pack(ContextLong, {
        "len": CTX_LONG_BYTES, "flags": ctx_flags, "offset": 0,
        "deskey": [int.from_bytes(key[4 * j:4 * j + 4], "big") for j in range(6)],
        "iv": [int.from_bytes(iv[0:4], "big"), int.from_bytes(iv[4:8], "big")]}))
    mcr = mem.alloc(byte_offset(Mcr, "pkt") + structs.size(McrPacket))
    mem.write(mcr, structs.pack(Mcr, {"hdr": {"pkts": 1},
                                      "pkt": {"ctxp": ctxp, "ipkt": ipkt, "pktlen": pktlen,
                                              "opkt": opkt}}))
    return mcr


def run(mem, mcr, cycles=6000):
    """Queue ``mcr``; return (record flags, [(err_addr, err_read)], commands)."""
    dut = McrEngine(card_engine_params("bcm5820"), chunk=8, data_depth=16)
    errors, log = [], []

    async def host(ctx):
        ctx.set(dut.mcr1_push, 1)
        ctx.set(dut.mcr1_addr, mcr)
        await ctx.tick()
        ctx.set(dut.mcr1_push, 0)
        for _ in range(cycles):
            *_, err, addr, read, done, halted = await ctx.tick().sample(
                dut.dma_error, dut.err_addr, dut.err_read, dut.record_done, dut.halted)
            if err:
                errors.append((addr, read))
            if done or halted:
                return
        raise AssertionError("the record did not complete")

    async def initiator(ctx):
        await serve(ctx, dut, mem, log, cycles + 10)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(initiator, background=True)
    sim.run()
    return int.from_bytes(mem.b[mcr + 2:mcr + 4], "little"), errors, log


def test_chains_of_several_particles_at_any_alignment():
    rng = random.Random(5)
    mem = Memory()
    data = bytes(rng.getrandbits(8) for _ in range(24))
    key, iv = bytes(rng.getrandbits(8) for _ in range(24)), bytes(range(8))
    ipkt, _, _ = particles(mem, rng, [5, 7, 3, 9], fill=data)
    opkt, obufs, _ = particles(mem, rng, [10, 6, 8])
    mcr = record(mem, UBS_PKTCTX_ENC_3DES, len(data), ipkt, opkt, key, iv)
    flags, errors, _ = run(mem, mcr)
    assert flags == UBS_MCR_DONE and errors == []
    got = b"".join(bytes(mem.b[a:a + n]) for a, n in obufs)
    assert got == cbc(key[0:8], key[8:16], key[16:24], iv, data, False)
    for a, n in obufs:                       # the bytes around each particle: untouched
        assert mem.b[a - 1] == GUARD and mem.b[a + n] == GUARD


def test_output_chain_shorter_than_the_packet_writes_what_fits():
    rng = random.Random(6)
    mem = Memory()
    data = bytes(rng.getrandbits(8) for _ in range(16))
    ipkt, _, _ = particles(mem, rng, [16], fill=data)
    opkt, obufs, _ = particles(mem, rng, [5, 3])          # 8 of 16 bytes
    mcr = record(mem, UBS_PKTCTX_ENC_3DES, len(data), ipkt, opkt)
    flags, errors, _ = run(mem, mcr)
    assert flags == UBS_MCR_DONE | UBS_MCR_ERROR | ERR_OUTPUT << 8 and errors == []
    want = cbc(bytes(8), bytes(8), bytes(8), bytes(8), data, False)
    assert b"".join(bytes(mem.b[a:a + n]) for a, n in obufs) == want[:8]
    assert all(mem.b[a + n] == GUARD for a, n in obufs)


def test_zero_length_particle_owing_data_is_err_chain_and_a_dma_error():
    rng = random.Random(7)
    mem = Memory()
    data = bytes(range(12))
    ipkt, ibufs, idescs = particles(mem, rng, [8, 4], fill=data)
    at = idescs[0]                                         # the second particle
    mem.write(at, structs.pack(PktBuf, addr=ibufs[1][0], next=at, len=0))   # self-linked
    mcr = record(mem, 0, len(data), ipkt, {"addr": 0, "next": 0, "len": 0})
    flags, errors, log = run(mem, mcr)
    assert flags == UBS_MCR_ERROR | ERR_CHAIN << 8              # not DONE
    assert errors == [(at, 1)]
    assert sum(1 for op, a, _ in log if op == "R" and a == at) == 1   # read once: no loop


def test_more_than_max_particles_is_err_chain_at_the_first_one_over():
    rng = random.Random(8)
    n = MAX_PARTICLES + 1
    mem = Memory()
    ipkt, _, idescs = particles(mem, rng, [1] * n, fill=bytes(n))
    mcr = record(mem, 0, n, ipkt, {"addr": 0, "next": 0, "len": 0})
    flags, errors, _ = run(mem, mcr, cycles=20000)
    assert flags == UBS_MCR_ERROR | ERR_CHAIN << 8
    assert errors == [(idescs[MAX_PARTICLES - 1], 1)]      # particle MAX_PARTICLES + 1


def test_max_particles_exactly_are_walked():
    rng = random.Random(9)
    n = MAX_PARTICLES
    mem = Memory()
    ipkt, _, _ = particles(mem, rng, [1] * n, fill=bytes(n))
    mcr = record(mem, 0, n, ipkt, {"addr": 0, "next": 0, "len": 0})
    flags, errors, _ = run(mem, mcr, cycles=20000)
    assert flags == UBS_MCR_DONE and errors == []
