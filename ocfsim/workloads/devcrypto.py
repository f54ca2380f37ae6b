"""/dev/crypto workload: T processes doing CIOCCRYPT in a loop, every result verified.

An experiment entry (``sim.experiment``): boots the machine (``ocfsim.system``),
forks ``threads`` user processes, each opens ``/dev/crypto``, takes a private
descriptor, creates one session with random keys and encrypts random buffers
of ``size`` bytes with a fresh explicit IV, checking each output (and MAC)
against the ``cryptography`` package. Every figure — throughput, latency,
interrupts, CPU and bus — is measured over one window, from the first
request's start to the last request's end: the counters are read at those
two instants.

Every request is accounted (``requests`` in the result): dispatched,
completed with a verified result, with a wrong one, with an errno (by name)
and never completed. With ``faults`` (SPECs of :mod:`ocfsim.faults`, times
relative to the first request) the run is bounded in simulated time: the
processes stop issuing ``timeout_us`` after the last fault window closes,
then a probe batch of ``probe_ops`` requests on fresh sessions shows whether
the card serves again (bounded the same way); a request still asleep at the
end is *lost*. ``recovery_us`` is the time from the end of the fault window
to the first verified completion of a request dispatched after it.

With ``steady`` (a fraction 0 < f < 0.5; 0, the default, leaves it out) the
result also has ``steady``: the same figures over the run's middle only,
from the completion of request ``f * ops`` to that of request ``ops - f *
ops`` (in completion order), so that neither the start (every process
dispatching at once) nor the end (processes finishing one by one, fewer
requests in flight) is in them. It gives throughput over each half of that
window by completions (``halves_mbps``, the steady-state check of
``bench.tables``) and each driver's counters over the window (``drivers``:
e.g. ubsec's records, packets and interrupts, so packets per command record
and interrupts per operation in steady state).
"""

from __future__ import annotations

import hmac as _hmac
import hashlib
import random
from collections import Counter

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_NULL, CRYPTO_SHA1_HMAC
from ocf.cryptodev import (CIOCCRYPT, CIOCFSESSION, CIOCGSESSION, COP_DECRYPT, COP_ENCRYPT,
                           CRIOGET, CrioGet, CryptOp, SessionOp)
from ocfsim.faults import FaultPlan
from ocfsim.system import boot
from sim.experiment import progress as progress_bar
from sim.kernel.errno import errorname
from sim.kernel.profile import DEFAULT_PROFILE

__all__ = ["devcrypto", "ALGS", "reference", "Tally"]

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


class Tally:
    """Every request of a batch: dispatched, verified, wrong, errno, outstanding."""

    def __init__(self):
        self.dispatched = self.ok = self.wrong = self.outstanding = 0
        self.errno: Counter = Counter()
        self.stopped = False           # no new requests once the run's bound has passed

    def start(self) -> None:
        self.dispatched += 1
        self.outstanding += 1

    def end(self, err: int, correct: bool) -> None:
        self.outstanding -= 1
        if err:
            self.errno[errorname(err)] += 1
        elif correct:
            self.ok += 1
        else:
            self.wrong += 1

    def as_dict(self) -> dict:
        return {"dispatched": self.dispatched, "ok": self.ok, "wrong": self.wrong,
                "errno": dict(sorted(self.errno.items())),
                "errno_total": sum(self.errno.values()), "lost": self.outstanding}


async def _wait(loop, tasks: list, until_ps: int | None) -> None:
    """Wait for every task to finish, or until simulated time ``until_ps``."""
    if all(t.done() for t in tasks):
        return
    fut = loop.create_future("workload bound")

    def check(_f=None):
        if not fut.done() and (_f is None or all(t.done() for t in tasks)):
            fut.set_result(None)
    for t in tasks:
        t.add_done_callback(check)
    handle = None
    if until_ps is not None:
        timer, handle = loop.call_at(until_ps, "workload bound")
        timer.add_done_callback(lambda _f: check())
    await fut
    if handle is not None:
        handle.cancel()


async def devcrypto(host, alg: str = "3des", size: int = 1024, ops: int = 16,
                    threads: int = 1, profile: str = DEFAULT_PROFILE,
                    allow_soft: bool = False, decrypt: bool = False, seed: int = 1,
                    progress: bool = False, driver_options: dict | None = None,
                    faults: list[str] | None = None, timeout_us: float = 5000.0,
                    probe_ops: int = 4, steady: float = 0.0) -> dict:
    if alg not in ALGS:
        raise ValueError(f"unknown algorithm {alg!r}")
    if not 0 <= steady < 0.5:
        raise ValueError(f"steady must be a fraction in [0, 0.5), not {steady!r}")
    plan = FaultPlan.parse(faults or [])
    system = await boot(host, profile=profile, allow_soft=allow_soft,
                        driver_options=driver_options)
    kernel = system.kernel
    cipher, keylen, mac, mackeylen = ALGS[alg]
    rng = random.Random(seed)
    latencies: list[int] = []
    failures: list[str] = []
    errnos: list[int] = []
    window = {"start": None, "end": 0}
    edges = {}                     # the counters at the window's start, and over it
    left = [0]                     # requests of forked processes not yet ended
    per_thread = [ops // threads + (1 if i < ops % threads else 0) for i in range(threads)]
    done_ops = [0]
    bar = progress_bar(ops, unit="op") if progress else None
    main, probe = Tally(), Tally()
    first_new_ok = [None]          # first verified completion dispatched after the faults

    def counters():
        return {"bus": host.bus_stats(), "cpu": kernel.accounting(),
                "irq": sum(host.interrupt_edges), "kirq": _kernel_asserts(kernel)}

    # the steady window: completions number `lo`, `mid` and `hi` (1-based)
    lo = int(steady * ops) if steady else 0
    hi = ops - lo
    mid = (lo + hi) // 2
    marks: dict = {}               # completion number → (time, counters, drivers, ok ops)

    def steady_mark(n: int) -> None:
        if steady and n in (lo, mid, hi) and n not in marks and lo < hi:
            marks[n] = (kernel.now, counters(),
                        {getattr(sc, "name", repr(sc)): dict(getattr(sc, "counters", {}))
                         for sc in system.softcs}, done_ops[0])

    def request_ended(count=1):
        left[0] -= count
        if left[0] == 0 and "start" in edges:       # the window's end (so far)
            start = edges["start"]
            edges["over"] = {
                "bus": host.bus_stats_since(start["bus"]),
                "cpu": {k: v - start["cpu"].get(k, 0) for k, v in kernel.accounting().items()},
                "irq": sum(host.interrupt_edges) - start["irq"],
                "kirq": _kernel_asserts(kernel) - start["kirq"]}

    async def app(p, n, prng, tally):
        ended = [0]
        try:
            await requests(p, n, prng, tally, ended)
        finally:
            if n - ended[0]:
                request_ended(n - ended[0])      # requests this process never made

    async def requests(p, n, prng, tally, ended):
        err, fd = await kernel.sys_open(p, "/dev/crypto")
        g = CrioGet()
        err = err or await kernel.sys_ioctl(p, fd, CRIOGET, g)
        key = prng.randbytes(keylen)
        mackey = prng.randbytes(mackeylen)
        sop = SessionOp(cipher=cipher, keylen=keylen, key=key)
        if mac:
            sop.mac, sop.mackeylen, sop.mackey = mac, mackeylen, mackey
        err = err or await kernel.sys_ioctl(p, g.fd, CIOCGSESSION, sop)
        if err:
            errnos.append(err)
            return
        for _ in range(n):
            if tally.stopped:
                break
            data = prng.randbytes(size)
            iv = prng.randbytes(8) if cipher != CRYPTO_NULL else None
            dst = bytearray(size)
            tag = bytearray(MAC_BYTES) if mac else None
            cop = CryptOp(ses=sop.ses, op=COP_DECRYPT if decrypt else COP_ENCRYPT,
                          len=size, src=data, dst=dst, mac=tag, iv=iv)
            t0 = kernel.now
            if window["start"] is None:
                window["start"] = t0
                edges["start"] = counters()
                if plan.faults:
                    plan.arm(system)
            tally.start()
            err = await kernel.sys_ioctl(p, g.fd, CIOCCRYPT, cop)
            t1 = kernel.now
            window["end"] = max(window["end"], t1)
            ended[0] += 1
            request_ended()
            correct = False
            ended_main = tally is main
            if err:
                errnos.append(err)
            else:
                latencies.append(t1 - t0)
                want, want_tag = reference(alg, key, mackey, iv or bytes(8), data, not decrypt)
                correct = bytes(dst) == want and (not mac or bytes(tag) == want_tag)
                if bytes(dst) != want:
                    failures.append(f"{p.name}: output differs from cryptography")
                elif not correct:
                    failures.append(f"{p.name}: MAC differs from hashlib HMAC-SHA1")
                elif tally is main:
                    done_ops[0] += 1
                    if bar:
                        bar.update(1)
            tally.end(err, correct)
            if ended_main:
                steady_mark(main.dispatched - main.outstanding)
            if correct and plan.faults and first_new_ok[0] is None \
                    and t0 >= plan.window_end_ps:
                first_new_ok[0] = t1
            if err and not plan.faults:
                return
        await kernel.sys_ioctl(p, g.fd, CIOCFSESSION, sop.ses)
        await kernel.sys_close(p, g.fd)
        await kernel.sys_close(p, fd)

    def fork(name, counts, tally):
        left[0] += sum(counts)
        return [kernel.fork(f"{name}{i}", app, n, random.Random(rng.getrandbits(64)), tally)
                for i, n in enumerate(counts)]

    timeout_ps = int(timeout_us * 1e6)
    edges["run"] = counters()      # no request at all: the figures cover the run
    procs = fork("app", per_thread, main)
    if plan.faults:
        # the plan is armed at the first request, a few µs from now
        bound = host.now + max(f.end_ps for f in plan.faults) + timeout_ps
        await _wait(host.loop, [p.task for p in procs], bound)
        main.stopped = True
        await host.sleep(max(0, plan.window_end_ps - host.now))
        nprobe = min(threads, probe_ops)
        probes = fork("probe", [probe_ops // nprobe + (i < probe_ops % nprobe)
                                for i in range(nprobe)], probe) if probe_ops else []
        await _wait(host.loop, [p.task for p in probes], host.now + timeout_ps)
    else:
        probes = []
        await _wait(host.loop, [p.task for p in procs], None)
    for p in procs + probes:
        if p.task.done():
            p.task.result()                # a process's own error is the run's error
    if bar:
        bar.close()
    start = window["start"] or kernel.now
    elapsed = max(1, window["end"] - start)
    secs = elapsed / 1e12
    if "over" not in edges:        # no request started, or one still asleep (lost)
        edges["start"] = edges.get("start", edges["run"])
        left[0] = 1
        request_ended()
    over = edges["over"]
    bus, cpu = over["bus"], over["cpu"]
    cpu_total = sum(cpu.values()) or 1
    interrupts, delivered = over["irq"], over["kirq"]
    lat = sorted(latencies)
    drivers = {}
    for softc in system.softcs:
        drivers[getattr(softc, "name", repr(softc))] = getattr(softc, "stats", lambda: {})()
    requests = _total(main, probe)
    served_after = probe.dispatched > 0 and probe.ok == probe.dispatched
    if plan.faults:
        ok = not failures and not requests["lost"] and served_after and plan.injected
    else:
        ok = not failures and not errnos and done_ops[0] == ops and not requests["lost"]
    result = {
        "ok": ok and not kernel.catchalls and not host.checker_errors(),
        "alg": alg, "size": size, "threads": threads, "ops": done_ops[0],
        "bytes": done_ops[0] * size,
        "mbps": 8 * done_ops[0] * size / secs / 1e6,
        "ops_per_s": done_ops[0] / secs,
        "latency_mean_s": (sum(lat) / len(lat) / 1e12) if lat else None,
        "latency_p99_s": (lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1e12) if lat else None,
        "interrupts": interrupts,
        "interrupts_per_s": interrupts / secs,
        "interrupts_delivered": delivered,
        "cpu_busy": 1 - cpu.get("idle", 0) / cpu_total,
        "cpu_by_kind": {k: v / cpu_total for k, v in sorted(cpu.items()) if v},
        "pci_utilisation": bus["pci_utilisation"],
        "breakdown": bus["breakdown"], "by_master": bus["by_master"],
        "sim_time_s": secs,
        "devices": [f"{d.slot}:{d.name}" for d in system.devices],
        "drivers": drivers, "ocf_drivers": _ocf_drivers(system),
        "requests": requests, "kernel_catchalls": kernel.catchalls,
        "failures": failures[:5], "errnos": errnos[:5],
        "checker": host.checker_errors(),
        "profile": profile,
    }
    if steady:
        result["steady"] = _steady(marks, lo, mid, hi, size)
    if plan.faults:
        result["faults"] = {
            "specs": [str(f) for f in plan.faults], "log": plan.log, "injected": plan.injected,
            "window_end_us": (plan.window_end_ps - plan.t0) / 1e6,
            "probe": probe.as_dict(), "served_after": served_after,
            "recovery_us": (first_new_ok[0] - plan.window_end_ps) / 1e6
            if first_new_ok[0] is not None else None,
            "timeout_us": timeout_us, "end_us": (host.now - plan.t0) / 1e6,
            "kernel_log": [m for m in kernel.msgbuf if not m.endswith("not configured")][-12:],
        }
    return result


def _steady(marks: dict, lo: int, mid: int, hi: int, size: int) -> dict | None:
    """The figures between completions ``lo`` and ``hi`` (see the module's
    docstring), or None when the run did not get that far."""
    if not all(n in marks for n in (lo, mid, hi)) or lo >= hi:
        return None
    (t0, c0, d0, ok0), (tm, _, _, okm), (t1, c1, d1, ok1) = marks[lo], marks[mid], marks[hi]
    secs = max(1, t1 - t0) / 1e12
    ops = ok1 - ok0
    cpu = {k: v - c0["cpu"].get(k, 0) for k, v in c1["cpu"].items()}
    cpu_total = sum(cpu.values()) or 1
    bus = _bus_between(c0["bus"], c1["bus"])
    halves = [8 * (okm - ok0) * size / (max(1, tm - t0) / 1e12) / 1e6,
              8 * (ok1 - okm) * size / (max(1, t1 - tm) / 1e12) / 1e6]
    interrupts = c1["irq"] - c0["irq"]
    return {
        "from_op": lo, "to_op": hi, "ops": ops, "window_s": secs,
        "mbps": 8 * ops * size / secs / 1e6, "halves_mbps": halves,
        "ops_per_s": ops / secs,
        "interrupts": interrupts, "interrupts_per_s": interrupts / secs,
        "interrupts_per_op": interrupts / ops if ops else None,
        "interrupts_delivered": c1["kirq"] - c0["kirq"],
        "cpu_busy": 1 - cpu.get("idle", 0) / cpu_total,
        "cpu_by_kind": {k: v / cpu_total for k, v in sorted(cpu.items()) if v},
        "pci_utilisation": bus["pci_utilisation"],
        "byte_utilisation": bus.get("byte_utilisation"),
        "bus_cycles": bus["total"],
        "drivers": {name: {k: v - d0.get(name, {}).get(k, 0) for k, v in counts.items()
                           if isinstance(v, int) and not k.endswith("_max")}
                    for name, counts in d1.items()},
    }


def _bus_between(before: dict, after: dict) -> dict:
    """Bus figures between two ``host.bus_stats()`` snapshots."""
    total = after["total"] - before["total"]
    out = {"total": total,
           "breakdown": {k: v - before["breakdown"][k] for k, v in after["breakdown"].items()}}
    out["pci_utilisation"] = out["breakdown"]["data"] / total if total else 0.0
    if "data_bytes" in after:
        moved = after["data_bytes"] - before["data_bytes"]
        out["data_bytes"] = moved
        out["byte_utilisation"] = moved / (8 * total) if total else 0.0
    return out


def _kernel_asserts(kernel) -> int:
    """Interrupt-line assertions the kernel was told of (all lines)."""
    return sum(st["asserts"] for st in kernel.intr_stats().values())


def _total(*tallies: Tally) -> dict:
    out = Tally()
    for t in tallies:
        out.dispatched += t.dispatched
        out.ok += t.ok
        out.wrong += t.wrong
        out.outstanding += t.outstanding
        out.errno.update(t.errno)
    return out.as_dict()


def _ocf_drivers(system) -> dict:
    """OCF's own per-driver accounting, the same for every driver."""
    names = {getattr(sc, "cid", None): getattr(sc, "name", "?") for sc in system.softcs}
    if system.ocf.swcr is not None:
        names[system.ocf.swcr.cid] = "cryptosoft"
    out = {}
    for cid, name in names.items():
        st = system.crypto.driver_stats(cid) if cid is not None else None
        if st is not None:
            out[name] = {k: v for k, v in vars(st).items() if isinstance(v, int)}
    return out
