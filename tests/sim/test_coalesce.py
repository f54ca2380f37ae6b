"""Coalesced wake-ups (quiet timers, posted writes completed inside a step)
change nothing the host or the machine can see: same cycles, same results,
same monitor counters, same DRAM, interrupts taken at the same cycle."""

import hashlib

import pytest

from hw.machine import MachineSpec
from hw.pci.host_bridge import CpuOp
from hw.pci.initiator import Status
from sim.backend import Backend
from sim.host import COALESCE_ENV, Host
from sim.kernel import Kernel
from sim.loop import ns, us

# --------------------------------------------------------------------------
# A machine in Python: an interrupt source and a CPU port, cycle by cycle
# --------------------------------------------------------------------------

#: bus cycles from the cycle a CPU access is started to its completion (a
#: stand-in for the host bridge's latency; any fixed value exercises the host)
ACCESS_CYCLES = 7
STAT, CLEAR, SCRATCH = 0x8000_0000, 0x8000_0004, 0x8000_0008


class FakeMachine(Backend):
    """The flat ports the host uses (``attn``, ``cycle``, ``irq``, ``cpu_*``,
    ``chk_error``): INTA# rises at each cycle of ``irq_at`` and falls when a
    write to CLEAR completes; a read of STAT returns the cycle count, other
    registers read back what was written. Inputs are sampled at the next
    cycle, as the RTL's at the next rising edge."""

    name = "fake"
    period_ps = 15_000

    def __init__(self, irq_at):
        self.irq_at = set(irq_at)
        self.ports = {"attn": 0, "cycle": 0, "irq": 0, "cpu_ack": 0, "cpu_rdata": 0,
                      "cpu_status": Status.OK, "chk_error": 0, "cpu_seq": 0, "cpu_op": 0,
                      "cpu_addr": 0, "cpu_wdata": 0, "cpu_be": 0}
        self._seen = 0
        self._busy = 0
        self.regs = {}
        self.dram = bytearray(16384)
        self.steps = 0

    def _cycle(self):
        p = self.ports
        p["cycle"] += 1
        if p["cpu_seq"] != self._seen:           # sampled at this edge
            self._seen = p["cpu_seq"]
            self._busy = ACCESS_CYCLES
        elif self._busy:
            self._busy -= 1
            if not self._busy:
                addr = p["cpu_addr"]
                if p["cpu_op"] == CpuOp.MEM_WRITE:
                    self.regs[addr] = p["cpu_wdata"]
                    if addr == CLEAR and p["irq"]:
                        p["irq"] = 0
                        p["attn"] += 1
                else:
                    p["cpu_rdata"] = p["cycle"] if addr == STAT else self.regs.get(addr, 0)
                p["cpu_ack"] = self._seen
                p["attn"] += 1
        if p["cycle"] in self.irq_at and not p["irq"]:
            p["irq"] = 1
            p["attn"] += 1

    async def step(self, max_cycles):
        self.steps += 1
        start, n = self.ports["attn"], 0
        limit = 1 << 20 if max_cycles is None else max_cycles
        while n < limit:
            self._cycle()
            n += 1
            if self.ports["attn"] != start:
                break
        return n

    @property
    def cycle(self):
        return self.ports["cycle"]

    def get(self, port):
        return self.ports[port]

    def set(self, port, value):
        self.ports[port] = value

    def dram_read(self, addr, n):
        return bytes(self.dram[addr:addr + n])

    def dram_write(self, addr, data):
        self.dram[addr:addr + len(data)] = data


def _drive(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the host awaited something outside its loop")


def run_fake(irq_at, coalesce):
    """A kernel thread doing quiet kernel work (tsleep timeouts), driver work
    and register accesses (posted writes, then a read) while the machine
    interrupts at ``irq_at``; what the host saw, when."""
    machine = FakeMachine(irq_at)
    host = Host(machine, MachineSpec(dram_bytes=len(machine.dram)), coalesce=coalesce)
    k = Kernel(host.loop, host.memory)
    log = []

    async def handler():
        stat = await host.mmio_read(STAT)
        log.append(("intr", host.loop.now, stat))
        await k.charge("driver", ns(300))
        await host.mmio_write(CLEAR, 1)
        return True
    k.intr_establish(0, handler, "fake")
    host.on_interrupt(k.interrupt)

    async def worker(t):
        for i in range(6):
            await k.tsleep("nap", 0, "nap", timo=ns(700 + 90 * i))
            await k.charge("driver", ns(200))
            for j in range(2 + i):              # up to 7: past the posting buffer
                await host.mmio_write(SCRATCH, i * 8 + j)
            host.memory.write(0x1000 + 64 * i, bytes([i]) * 16)
            log.append(("read", host.loop.now, await host.mmio_read(SCRATCH)))
        return k.accounting()

    t = k.kthread_create("worker", worker)
    acct = _drive(host.loop.run_until_complete(t.task))
    return {"log": log, "acct": acct, "cycle": machine.cycle, "now": host.loop.now,
            "nintr": k.nintr, "dram": bytes(machine.dram), "regs": machine.regs,
            "edges": list(host.interrupt_edges)}, host.wakeups


def test_an_interrupt_anywhere_is_taken_at_the_same_cycle_coalesced_or_not():
    plain, _ = run_fake((), coalesce=False)
    end = plain["cycle"]
    saved = batched = 0
    # every cycle of the run: interrupts in quiet stretches (tsleep, the
    # interrupt's own entry and exit) and in posted-write batches included
    for at in range(1, end + 1, 3):
        a, wa = run_fake((at, at + 150), coalesce=False)
        b, wb = run_fake((at, at + 150), coalesce=True)
        assert b == a, f"interrupt at cycle {at}"
        assert wb["steps"] <= wa["steps"]
        saved += wa["steps"] - wb["steps"]
        batched += wb["batched"]
    assert saved > 0 and batched > 0       # the option did something


def test_coalescing_needs_fewer_wakeups_on_the_fake_machine():
    a, wa = run_fake((40,), coalesce=False)
    b, wb = run_fake((40,), coalesce=True)
    assert a == b and a["nintr"] == 1
    assert wa["coalesced"] == wa["batched"] == 0
    assert wb["coalesced"] > 0 and wb["batched"] > 0 and wb["steps"] < wa["steps"]
    assert wb["steps"] == wb["timer"] + wb["attention"]


# --------------------------------------------------------------------------
# The real machine, on both backends
# --------------------------------------------------------------------------

async def execute_with_dram(backend, spec, entry, args):
    """``sim.experiment.execute`` plus a digest of host DRAM at the end and the
    final monitor counters (as ``Host.bus_stats`` reads them)."""
    from hw.machine import MachineSpec
    from sim.experiment import execute
    result = await execute(backend, spec, entry, args)
    size = MachineSpec.from_dict(spec).dram_bytes
    result["dram_sha256"] = hashlib.sha256(backend.dram_read(0, size)).hexdigest()
    result["monitor"] = {p: backend.get(p) for p in ("mon_total", "mon_idle", "mon_data",
                                                       "mon_wait", "mon_address", "cycle")}
    return result


def _devcrypto(card, size, ops, threads):
    return {"alg": "3des-sha1", "size": size, "ops": ops * threads, "threads": threads,
            "profile": "p3-1400-openbsd", "allow_soft": False, "decrypt": False,
            "seed": 3, "progress": False, "faults": []}


def _model_part(r):
    """Everything but wall-clock figures and the wake-up counts."""
    return {k: v for k, v in r.items() if k not in ("_wall_s", "_speed")}


def _run_pysim(spec, args):
    from hw.machine import Machine
    from sim.backend_pysim import run_pysim
    spec.blackbox_dram = False

    async def body(b):
        return await execute_with_dram(b, spec.to_dict(), "ocfsim.workloads.devcrypto:devcrypto",
                                       args)
    return run_pysim(Machine(spec), spec.period_ps, body)


@pytest.mark.slow
def test_pysim_same_results_cycles_counters_and_dram(monkeypatch):
    from ocfsim.machines import crypto_machine
    runs = {}
    for flag in ("0", "1"):
        monkeypatch.setenv(COALESCE_ENV, flag)
        runs[flag] = _run_pysim(crypto_machine(["bcm5820"], 66), _devcrypto("bcm5820", 64, 2, 2))
    assert runs["0"]["ok"] and _model_part(runs["0"]) == _model_part(runs["1"])
    w0, w1 = runs["0"]["_speed"]["wakeups"], runs["1"]["_speed"]["wakeups"]
    assert w0["coalesced"] == w0["batched"] == 0 and w1["steps"] < w0["steps"]


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", "hifn7751"])
def test_verilator_same_results_cycles_counters_and_dram(monkeypatch, card):
    from ocfsim.machines import crypto_machine
    from sim.experiment import direct_build
    from sim.verilator.direct import run_direct
    spec = crypto_machine([card], 66)
    bdir = direct_build(spec)
    runs = {}
    for flag in ("0", "1"):
        monkeypatch.setenv(COALESCE_ENV, flag)
        runs[flag] = run_direct(bdir, spec.to_dict(), "ocfsim.workloads.devcrypto:devcrypto",
                                _devcrypto(card, 64, 8, 4), period_ps=spec.period_ps,
                                executor="tests.sim.test_coalesce:execute_with_dram")
    a, b = runs["0"], runs["1"]
    assert a["ok"] and a["ops"] == 32
    assert _model_part(a) == _model_part(b)
    w0, w1 = a["_speed"]["wakeups"], b["_speed"]["wakeups"]
    assert w0["coalesced"] == w0["batched"] == 0
    assert w1["steps"] < w0["steps"] and w1["coalesced"] > 0
