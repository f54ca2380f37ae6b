"""/dev/crypto workload: T processes doing CIOCCRYPT in a loop, every result verified.

An experiment entry (``sim.experiment``): boots the machine (``ocfsim.system``),
forks ``threads`` user processes, each opens ``/dev/crypto``, takes a private
descriptor, creates one session with random keys and encrypts random buffers
of ``size`` bytes with a fresh explicit IV, checking each output (and MAC)
against the ``cryptography`` package. Figures are measured over the window
from the first request's start to the last request's end.
"""

from __future__ import annotations

import hmac as _hmac
import hashlib
import random
import sys

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_NULL, CRYPTO_SHA1_HMAC
from ocf.cryptodev import (CIOCCRYPT, CIOCFSESSION, CIOCGSESSION, COP_DECRYPT, COP_ENCRYPT,
                           CRIOGET, CrioGet, CryptOp, SessionOp)
from ocfsim.system import boot
from sim.kernel.profile import DEFAULT_PROFILE

__all__ = ["devcrypto", "ALGS", "reference"]

#: name → (cipher, key bytes, MAC algorithm or None, MAC key bytes)
ALGS = {
    "3des":      (CRYPTO_3DES_CBC, 24, None, 0),
    "des":       (CRYPTO_DES_CBC, 8, None, 0),
    "3des-sha1": (CRYPTO_3DES_CBC, 24, CRYPTO_SHA1_HMAC, 20),
    "null":      (CRYPTO_NULL, 0, None, 0),
}
#: HMAC-SHA1 as returned by /dev/crypto: truncated to 96 bits (RFC 2404)
MAC_BYTES = 12


def reference(alg: str, key: bytes, mackey: bytes, iv: bytes, data: bytes,
              encrypt: bool) -> tuple[bytes, bytes]:
    """Expected (output, MAC) from the ``cryptography`` package / hashlib."""
    cipher, _, mac, _ = ALGS[alg]
    if cipher == CRYPTO_NULL:
        out = data
    else:
        k = key if cipher == CRYPTO_3DES_CBC else key * 3      # single DES = K,K,K
        c = Cipher(TripleDES(k), modes.CBC(iv))
        op = c.encryptor() if encrypt else c.decryptor()
        out = op.update(data) + op.finalize()
    tag = b""
    if mac:
        macced = out if encrypt else data        # MAC over the ciphertext (IPsec order)
        tag = _hmac.new(mackey, macced, hashlib.sha1).digest()[:MAC_BYTES]
    return out, tag


async def devcrypto(host, alg: str = "3des", size: int = 1024, ops: int = 16,
                    threads: int = 1, profile: str = DEFAULT_PROFILE,
                    allow_soft: bool = False, decrypt: bool = False, seed: int = 1,
                    progress: bool = False, driver_options: dict | None = None) -> dict:
    if alg not in ALGS:
        raise ValueError(f"unknown algorithm {alg!r}")
    system = await boot(host, profile=profile, allow_soft=allow_soft,
                        driver_options=driver_options)
    kernel = system.kernel
    cipher, keylen, mac, mackeylen = ALGS[alg]
    rng = random.Random(seed)
    latencies: list[int] = []
    failures: list[str] = []
    errnos: list[int] = []
    window = {"start": None, "end": 0}
    per_thread = [ops // threads + (1 if i < ops % threads else 0) for i in range(threads)]
    done_ops = [0]
    bar = _progress(ops) if progress else None

    async def app(p, n, prng):
        err, fd = await kernel.sys_open(p, "/dev/crypto")
        g = CrioGet()
        err = err or await kernel.sys_ioctl(p, fd, CRIOGET, g)
        key = bytes(prng.getrandbits(8) for _ in range(keylen))
        mackey = bytes(prng.getrandbits(8) for _ in range(mackeylen))
        sop = SessionOp(cipher=cipher, keylen=keylen, key=key)
        if mac:
            sop.mac, sop.mackeylen, sop.mackey = mac, mackeylen, mackey
        err = err or await kernel.sys_ioctl(p, g.fd, CIOCGSESSION, sop)
        if err:
            errnos.append(err)
            return
        for _ in range(n):
            data = bytes(prng.getrandbits(8) for _ in range(size))
            iv = bytes(prng.getrandbits(8) for _ in range(8)) if cipher != CRYPTO_NULL else None
            dst = bytearray(size)
            tag = bytearray(MAC_BYTES) if mac else None
            cop = CryptOp(ses=sop.ses, op=COP_DECRYPT if decrypt else COP_ENCRYPT,
                          len=size, src=data, dst=dst, mac=tag, iv=iv)
            t0 = kernel.now
            if window["start"] is None:
                window["start"] = t0
            err = await kernel.sys_ioctl(p, g.fd, CIOCCRYPT, cop)
            t1 = kernel.now
            window["end"] = max(window["end"], t1)
            if err:
                errnos.append(err)
                return
            latencies.append(t1 - t0)
            want, want_tag = reference(alg, key, mackey, iv or bytes(8), data, not decrypt)
            if bytes(dst) != want:
                failures.append(f"{p.name}: output differs from cryptography")
            elif mac and bytes(tag) != want_tag:
                failures.append(f"{p.name}: MAC differs from hashlib HMAC-SHA1")
            done_ops[0] += 1
            if bar:
                bar.update(1)
        await kernel.sys_ioctl(p, g.fd, CIOCFSESSION, sop.ses)
        await kernel.sys_close(p, g.fd)
        await kernel.sys_close(p, fd)

    before_bus = host.bus_stats()
    before_cpu = kernel.accounting()
    before_irq = sum(host.interrupt_edges)
    procs = [kernel.fork(f"app{i}", app, per_thread[i], random.Random(rng.getrandbits(64)))
             for i in range(threads)]
    for p in procs:
        await p.task
    if bar:
        bar.close()
    start = window["start"] or kernel.now
    elapsed = max(1, window["end"] - start)
    secs = elapsed / 1e12
    bus = host.bus_stats_since(before_bus)
    cpu = {k: v - before_cpu.get(k, 0) for k, v in kernel.accounting().items()}
    cpu_total = sum(cpu.values()) or 1
    interrupts = sum(host.interrupt_edges) - before_irq
    lat = sorted(latencies)
    drivers = {}
    for softc in system.softcs:
        drivers[getattr(softc, "name", repr(softc))] = getattr(softc, "stats", lambda: {})()
    # OCF's own per-driver accounting, the same for every driver
    names = {getattr(sc, "cid", None): getattr(sc, "name", "?") for sc in system.softcs}
    if system.ocf.swcr is not None:
        names[system.ocf.swcr.cid] = "cryptosoft"
    ocf_drivers = {}
    for cid, name in names.items():
        st = system.crypto.driver_stats(cid) if cid is not None else None
        if st is not None:
            ocf_drivers[name] = {"operations": st.operations, "bytes": st.bytes,
                                 "newsessions": st.newsessions, "errors": st.errors}
    return {
        "ok": not failures and not errnos and done_ops[0] == ops and not host.checker_errors(),
        "alg": alg, "size": size, "threads": threads, "ops": done_ops[0],
        "bytes": done_ops[0] * size,
        "mbps": 8 * done_ops[0] * size / secs / 1e6,
        "ops_per_s": done_ops[0] / secs,
        "latency_mean_s": (sum(lat) / len(lat) / 1e12) if lat else None,
        "latency_p99_s": (lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1e12) if lat else None,
        "interrupts": interrupts,
        "interrupts_per_s": interrupts / secs,
        "cpu_busy": 1 - cpu.get("idle", 0) / cpu_total,
        "cpu_by_kind": {k: v / cpu_total for k, v in sorted(cpu.items()) if v},
        "pci_utilisation": bus["pci_utilisation"],
        "breakdown": bus["breakdown"], "by_master": bus["by_master"],
        "sim_time_s": secs,
        "devices": [f"{d.slot}:{d.name}" for d in system.devices],
        "drivers": drivers, "ocf_drivers": ocf_drivers,
        "failures": failures[:5], "errnos": errnos[:5],
        "checker": host.checker_errors(),
        "profile": profile,
    }


def _progress(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="op", file=sys.stderr, leave=False)
