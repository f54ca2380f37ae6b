"""The lazy RTL (docs/simulation.md): while the machine is quiet the host
does not step it at host timers, and nothing the host or the machine can see
changes — every input written at the same cycle, every read the same value,
interrupts taken at the same cycle — on a Python stand-in machine that says
when it is quiet, with an interrupt swept over every cycle of a run. The real
machines lazy and not are compared in tests/sim/test_skip.py."""

import pytest

from bench import speed
from hw.machine import MachineSpec
from sim.backend import SimulationError
from sim.host import LAZY_ENV, Host, lazy_default
from sim.kernel import Kernel
from sim.loop import ns
from tests.sim.test_coalesce import CLEAR, SCRATCH, STAT, FakeMachine, _drive

#: ``quiet_for`` when no timer runs (all ones, as hw/machine.py's 32-bit port)
NO_TIMER = (1 << 32) - 1


class QuietMachine(FakeMachine):
    """The stand-in machine of test_coalesce with the skipping contract's
    outputs: ``quiet`` when no access is pending or under way, ``quiet_for``
    the edges before the next interrupt it would raise (none while INTA# is
    asserted), and the monitor's ``mon_total``/``mon_idle`` counting every
    clock and every clock without an access. Every input write is logged with
    the cycle it is made at (sampled at the next edge). ``liar``: says it is
    quiet for ever whenever no access is under way."""

    def __init__(self, irq_at, liar=False):
        super().__init__(irq_at)
        self.liar = liar
        self.ports.update({"mon_total": 0, "mon_idle": 0})
        self.inputs = []

    def _cycle(self):
        busy = self._busy or self.ports["cpu_seq"] != self._seen
        super()._cycle()
        self.ports["mon_total"] += 1
        self.ports["mon_idle"] += not busy

    def get(self, port):
        if port == "quiet":
            return int(not self._busy and self.ports["cpu_seq"] == self._seen
                       and (self.liar or self._quiet_for() >= 1))
        if port == "quiet_for":
            return NO_TIMER if self.liar else max(self._quiet_for(), 0)
        if port.startswith(("mon_", "arb_wait_max")) and port not in self.ports:
            return 0                    # per-agent counters: no agents here
        return super().get(port)

    def _quiet_for(self):
        c = self.ports["cycle"]
        if self.ports["irq"]:
            return NO_TIMER
        due = [at for at in self.irq_at if at > c]
        return min(due) - c - 1 if due else NO_TIMER

    def set(self, port, value):
        self.inputs.append((self.ports["cycle"], port, value))
        super().set(port, value)


def run_quiet(irq_at, lazy, liar=False):
    """A kernel thread: tsleeps, driver work, posted writes and a read, host
    DRAM, the cycle and the monitor read from host code, DRAM timing knobs
    written; the interrupt handler reads STAT and clears. What the host and
    the machine saw, when; and the wake-up counts."""
    machine = QuietMachine(irq_at, liar)
    host = Host(machine, MachineSpec(dram_bytes=len(machine.dram)), lazy=lazy)
    k = Kernel(host.loop, host.memory)
    log = []

    async def handler():
        stat = await host.mmio_read(STAT)
        log.append(("intr", host.loop.now, stat, host.cycle))
        await k.charge("driver", ns(300))
        await host.mmio_write(CLEAR, 1)
        return True
    k.intr_establish(0, handler, "fake")
    host.on_interrupt(k.interrupt)

    async def worker(t):
        for i in range(6):
            await k.tsleep("nap", 0, "nap", timo=ns(700 + 90 * i))
            bus = host.bus_stats()
            log.append(("woke", host.loop.now, host.cycle, bus["total"],
                        bus["breakdown"]["idle"], host.checker_errors()))
            await k.charge("driver", ns(200))
            if i == 3:
                host.set_dram_timing(latency=2)
            host.memory.write(0x1000 + 64 * i, bytes([i + 1]) * 16)
            for j in range(1 + i % 3):
                await host.mmio_write(SCRATCH, i * 8 + j)
            log.append(("read", host.loop.now, await host.mmio_read(SCRATCH),
                        host.memory.read(0x1000 + 64 * i, 16)))
            await k.charge("driver", ns(900))
        await host.settle()
        log.append(("settled", host.loop.now, machine.cycle, host.cycle))
        return k.accounting()

    t = k.kthread_create("worker", worker)
    acct = _drive(host.loop.run_until_complete(t.task))
    return {"log": log, "acct": acct, "cycle": machine.cycle, "now": host.loop.now,
            "nintr": k.nintr, "dram": bytes(machine.dram), "regs": machine.regs,
            "edges": list(host.interrupt_edges), "inputs": machine.inputs,
            "ports": {p: machine.get(p) for p in machine.ports}}, host.wakeups


def test_the_lazy_rtl_changes_nothing_wherever_an_interrupt_comes():
    plain, wp = run_quiet((), lazy=False)
    lazy, wl = run_quiet((), lazy=True)
    assert lazy == plain
    assert wl["lazy"] > 0 and wl["caught_up"] > 0 and wl["steps"] < wp["steps"]
    end = plain["cycle"]
    saved = 0
    for at in range(1, end + 1, 2):
        a, wa = run_quiet((at, at + 97), lazy=False)
        b, wb = run_quiet((at, at + 97), lazy=True)
        assert b == a, f"interrupt at cycle {at}"
        assert wa["lazy"] == 0 and wb["steps"] <= wa["steps"]
        assert wb["steps"] == wb["timer"] + wb["attention"] + wb["caught_up"]
        saved += wa["steps"] - wb["steps"]
    assert saved > 0


def test_reads_of_a_lagging_machine_are_its_present_values():
    """Host code that reads while the RTL lags gets the cycle and the
    monitor's counts as they stand at the present cycle (checked against
    the machine itself, stepped to that cycle at the end of each nap)."""
    r, w = run_quiet((), lazy=True)
    woke = [e for e in r["log"] if e[0] == "woke"]
    plain, _ = run_quiet((), lazy=False)
    assert woke == [e for e in plain["log"] if e[0] == "woke"]
    for _, now, cycle, total, idle, errors in woke:
        assert cycle == now // FakeMachine.period_ps and total == cycle and errors == []
    settled = [e for e in r["log"] if e[0] == "settled"]
    assert settled and settled[0][2] == settled[0][3]       # backend at host.cycle


def test_a_wrong_quiet_for_is_an_error_not_a_different_result():
    # the liar says it is quiet for ever, and raises INTA# at cycle 60
    with pytest.raises(SimulationError, match="quiet_for was wrong"):
        run_quiet((60,), lazy=True, liar=True)


def test_no_lazy_rtl_on_a_machine_that_does_not_say_when_it_is_quiet():
    spec = MachineSpec(dram_bytes=16384)
    assert Host(FakeMachine(()), spec, lazy=True).lazy is False
    assert Host(QuietMachine(()), spec, lazy=True).lazy is True
    assert Host(QuietMachine(()), spec, lazy=False).lazy is False


@pytest.mark.parametrize("value,on", [("0", False), ("off", False), ("1", True), ("", True)])
def test_the_switch(monkeypatch, value, on):
    monkeypatch.setenv(LAZY_ENV, value)
    assert lazy_default() is on
    assert Host(QuietMachine(()), MachineSpec(dram_bytes=16384)).lazy is lazy_default()


def test_bench_speed_lazy_speedup_against_the_same_cell_not_lazy():
    rows = [speed._row("bcm5820", "crypto64", "verilator", True, 1000, 2.0, 0.1,
                       skip=True, lazy=False),
            speed._row("bcm5820", "crypto64", "verilator", True, 1000, 0.5, 0.1,
                       skip=True, lazy=True),
            speed._row("bcm5820", "crypto64", "verilator", True, 1000, 4.0, 0.1,
                       skip=False, lazy=False),
            speed._row("bcm5820", "crypto64", "verilator", True, 1000, 1.0, 0.1,
                       skip=False, lazy=True)]
    speed._ratios(rows)
    assert [r.get("lazy_speedup") for r in rows] == [None, 4.0, None, 4.0]
    assert [r.get("skip_speedup") for r in rows] == [2.0, 2.0, None, None]
