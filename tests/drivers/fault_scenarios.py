"""Faults behind a driver's back, with processes looping on /dev/crypto.

:func:`loop_with_fault` boots a machine, forks processes that each run
CIOCCRYPT ``ops`` times (continuing after an errno) with every output checked
against ``cryptography``, injects one fault at a simulated time from outside
the kernel (a register poke, a configuration write, garbage written at
hand-over through the driver's ``handover_hook``), then waits up to a
simulated-time bound. It reports which processes are still asleep, every
request's outcome, and the result of a verified probe batch run afterwards.
"""

from __future__ import annotations

import random
import struct

from ocf.cryptodev import (CIOCCRYPT, CIOCGSESSION, COP_ENCRYPT, CRIOGET, CrioGet, CryptOp,
                           SessionOp)
from ocfsim.system import boot
from ocfsim.workloads.devcrypto import ALGS, MAC_BYTES, reference
from hw.pci.pcireg import COMMAND

US = 1_000_000                          # ps per µs
CMD_MEMORY, CMD_MASTER = COMMAND.mask("memory_space"), COMMAND.mask("bus_master")


def _poke(bar: int, off: int, value: int):
    async def fault(host, sc, log):
        await host.mmio_write(sc.dev.bar(bar).addr + off, value)
        log.append(host.now)
    return fault


def _command(off_bits: int, for_us: float | None):
    """Clear ``off_bits`` of the command register, set them back after ``for_us``."""
    async def fault(host, sc, log):
        slot = sc.dev.slot
        await host.cfg_write(slot, COMMAND.offset, (CMD_MEMORY | CMD_MASTER) & ~off_bits)
        log.append(host.now)
        if for_us is not None:
            await host.sleep(int(for_us * US))
            await host.cfg_write(slot, COMMAND.offset, CMD_MEMORY | CMD_MASTER)
    return fault


def _at_handover(kind: str, corrupt):
    """Corrupt the next structure of ``kind`` the driver hands over (once)."""
    async def fault(host, sc, log):
        def hook(k, addr, size):
            if k == kind and sc.handover_hook is hook:
                corrupt(host.memory, addr)
                sc.handover_hook = None
                log.append(host.now)
        sc.handover_hook = hook
    return fault


def _clear_valid(mem, addr):
    (l,) = struct.unpack("<I", mem.read(addr, 4))
    mem.write(addr, struct.pack("<I", l & 0x7FFF_FFFF))


def _session_ffff(mem, addr):
    mem.write(addr + 2, b"\xff\xff")


def _particle_self_loop(mem, addr):
    """The record's first input particle (``ubsec_mcr`` + 8: addr, next, len):
    length 0, next pointing at itself."""
    mem.write(addr + 12, struct.pack("<II", addr + 8, 0))


#: name → async fault(host, softc, log): appends the time(s) it struck to ``log``
FAULTS = {
    "ubsec-ctrl-reset": _poke(0, 0x04, 0x8000_0000),        # CTRL RESET
    "hifn-puctrl-reset": _poke(0, 0x04, 0x1),               # PUCTRL RESET
    "hifn-rings-off": _poke(1, 0x40, 0x4040_4040),          # DMA_CSR: all rings disabled
    "ubsec-particle-loop": _at_handover("mcr", _particle_self_loop),
    "hifn-res-novalid": _at_handover("hifn-res", _clear_valid),
    "hifn-session-ffff": _at_handover("hifn-cmdbuf", _session_ffff),
    "mse-off-60us": _command(CMD_MEMORY, 60),
    "mse-off": _command(CMD_MEMORY, None),
    "none": None,
}


async def _probe(kernel, p, fd, ses, alg, size, prng, ops, log):
    """``ops`` CIOCCRYPTs on session ``ses``; log (errno, verified) for each."""
    cipher, _, mac, _ = ALGS[alg]
    for _ in range(ops):
        data = prng.randbytes(size)
        iv = prng.randbytes(8)
        dst = bytearray(size)
        tag = bytearray(MAC_BYTES) if mac else None
        cop = CryptOp(ses=ses["id"], op=COP_ENCRYPT, len=size, src=data, dst=dst, mac=tag,
                      iv=iv)
        err = await kernel.sys_ioctl(p, fd, CIOCCRYPT, cop)
        ok = False
        if not err:
            want, want_tag = reference(alg, ses["key"], ses["mackey"], iv, data, True)
            ok = bytes(dst) == want and (not mac or bytes(tag) == want_tag)
        log.append((err, ok))


async def _session(kernel, p, alg, prng):
    cipher, keylen, mac, mackeylen = ALGS[alg]
    err, fd = await kernel.sys_open(p, "/dev/crypto")
    g = CrioGet()
    err = err or await kernel.sys_ioctl(p, fd, CRIOGET, g)
    key, mackey = prng.randbytes(keylen), prng.randbytes(mackeylen)
    sop = SessionOp(cipher=cipher, keylen=keylen, key=key)
    if mac:
        sop.mac, sop.mackeylen, sop.mackey = mac, mackeylen, mackey
    err = err or await kernel.sys_ioctl(p, g.fd, CIOCGSESSION, sop)
    return err, g.fd, {"id": sop.ses, "key": key, "mackey": mackey}


async def loop_with_fault(host, fault: str = "none", at_us: float = 60, procs: int = 3,
                          ops: int = 50, size: int = 64, alg: str = "3des-sha1",
                          until_us: float = 2000, probe_ops: int = 2,
                          driver_options: dict | None = None, seed: int = 1) -> dict:
    system = await boot(host, driver_options=driver_options)
    k = system.kernel
    sc = system.softcs[0]
    rng = random.Random(seed)
    logs: list[list] = [[] for _ in range(procs)]
    struck: list[int] = []

    async def app(p, i, prng):
        err, fd, ses = await _session(k, p, alg, prng)
        if err:
            logs[i].append((err, False))
            return
        await _probe(k, p, fd, ses, alg, size, prng, ops, logs[i])

    async def inject():
        await host.sleep(max(0, int(at_us * US) - host.now))
        if FAULTS[fault] is not None:
            await FAULTS[fault](host, sc, struck)

    t0 = host.now
    host.loop.spawn(inject(), "fault")
    ctxs = [k.fork(f"app{i}", app, i, random.Random(rng.getrandbits(64)))
            for i in range(procs)]
    end = t0 + int(until_us * US)
    while host.now < end and not all(c.task.done() for c in ctxs):
        await host.sleep(5 * US)
    asleep = [c.name for c in ctxs if not c.task.done()]
    # the card must serve new requests afterwards, correctly
    probe: list = []
    if not asleep:
        async def prober(p):
            err, fd, ses = await _session(k, p, alg, random.Random(seed + 1))
            if err:
                probe.append((err, False))
                return
            await _probe(k, p, fd, ses, alg, size, random.Random(seed + 2), probe_ops, probe)
        pc = k.fork("probe", prober)
        end = host.now + int(until_us * US)
        while host.now < end and not pc.task.done():
            await host.sleep(5 * US)
    outcomes = [x for log in logs for x in log]
    return {
        "asleep": asleep,
        "struck_at_us": [t / US for t in struck],
        "ended_at_us": (host.now - t0) / US,
        "requests": len(outcomes),
        "ok": sum(1 for e, ok in outcomes if not e and ok),
        "wrong": sum(1 for e, ok in outcomes if not e and not ok),
        "errnos": sorted({e for e, _ in outcomes if e}),
        "probe": probe,
        "driver": sc.stats(),
        "dup_done": system.crypto.dup_done,
        "msgs": [m for m in k.msgbuf if sc.name in m or "raised" in m][-8:],
        "raised": [m for m in k.msgbuf if "raised" in m],
        "checker": host.checker_errors(),
    }
