"""Exact idle skipping and the lazy RTL (docs/simulation.md): the same
workloads with skipping on and off, and with the lazy RTL on and off, give
the same results, every monitor counter and output port, the same final
cycle and time, interrupt edges, wire frames and the same host DRAM, on both
backends; and skipping does skip, the lazy RTL does leave host events
without a step (a run that changed nothing would prove nothing)."""

import pytest

from ocfsim.machines import crypto_machine, dma_machine
from sim.experiment import run
from sim.host import LAZY_ENV, SKIP_ENV
from tests.sim import test_wire

ENTRY = "tests.sim.skip_cases:observed"

#: (machine, workload entry, args, skips idle clocks) — pysim sizes
CASES = {
    "idle-dma": (lambda: dma_machine(1), "bench.speed:idle", {"cycles": 6_000}, True),
    "idle-bcm5820": (lambda: crypto_machine(["bcm5820"]), "bench.speed:idle",
                     {"cycles": 6_000}, True),
    # no driver: the Hifn stays held in reset, its initiator flushed every
    # clock, so the machine is never at rest (a booted one is: hifn7751-64)
    "idle-hifn7751": (lambda: crypto_machine(["hifn7751"]), "bench.speed:idle",
                      {"cycles": 6_000}, False),
    "dma-copy": (lambda: dma_machine(1), "ocfsim.workloads.dma:dma_copy",
                 {"nbytes": 2048}, False),
    "bcm5820-64": (lambda: crypto_machine(["bcm5820"]), "ocfsim.workloads.devcrypto:devcrypto",
                   {"alg": "3des-sha1", "size": 64, "ops": 2, "threads": 2}, True),
    "hifn7751-64": (lambda: crypto_machine(["hifn7751"]), "ocfsim.workloads.devcrypto:devcrypto",
                    {"alg": "3des", "size": 64, "ops": 2, "threads": 2}, True),
    # the em NIC: frames out to the host and echoed back in (host wire events)
    "em-echo": (test_wire.machine, "tests.sim.test_wire:scenario",
                {"mode": "echo", "sizes": [60, 333], "gap_us": 5}, True),
}


def both_ways(monkeypatch, name, backend, knob=SKIP_ENV):
    """The case with ``knob`` (skipping or the lazy RTL) off, then on: the
    observed state of each, and the wake-up counts of the run with it on."""
    machine, entry, args, skips = CASES[name]
    out, speed = {}, {}
    for on in (False, True):
        monkeypatch.setenv(knob, "1" if on else "0")
        r = run(machine(), ENTRY, {"entry": entry, "args": args}, backend=backend)
        out[on] = {k: v for k, v in r.items() if not k.startswith("_")}
        speed[on] = r["_speed"]["wakeups"]
    if knob == LAZY_ENV:
        return out[False], out[True], skips, speed
    return out[False], out[True], skips


def check(off, on, skips):
    assert off["skipped"] == 0
    assert (on["skipped"] > 0) == skips, on["skipped"]
    on = dict(on, skipped=0)
    assert on["result"] == off["result"]
    assert on["outputs"] == off["outputs"]
    assert on == off


@pytest.mark.parametrize("name", list(CASES))
def test_skip_exact_pysim(monkeypatch, name):
    check(*both_ways(monkeypatch, name, "pysim"))


@pytest.mark.verilator
@pytest.mark.parametrize("name", list(CASES))
def test_skip_exact_verilator(monkeypatch, name):
    check(*both_ways(monkeypatch, name, "verilator"))


#: cases whose host has timers while the machine is quiet (the kernel's CPU
#: accounting between requests): the lazy RTL leaves some without a step
#: (the idle ones are one sleep, one step either way)
LAZY_CASES = {"bcm5820-64", "hifn7751-64", "em-echo"}
#: ... and needs fewer steps in all (the em run's host reads the hardware
#: soon after most of its timers: catch-ups take their place)
FEWER_STEPS = {"bcm5820-64", "hifn7751-64"}


def check_lazy(off, on, skips, speed, name):
    """The lazy RTL changes nothing but how the run is stepped (and so which
    idle clocks fall into one skipped edge); where the host has timers while
    the machine is quiet, it leaves them without a step and needs fewer."""
    assert speed[False]["lazy"] == speed[False]["caught_up"] == 0
    assert (on["skipped"] > 0) == skips
    on, off = dict(on, skipped=0), dict(off, skipped=0)
    assert on["result"] == off["result"]
    assert on["outputs"] == off["outputs"]
    assert on == off
    lazy, plain = speed[True], speed[False]
    assert lazy["steps"] <= plain["steps"], (lazy, plain)
    if name in LAZY_CASES:
        assert lazy["lazy"] > 0, lazy
    if name in FEWER_STEPS:
        assert lazy["steps"] < plain["steps"], (lazy, plain)
    assert lazy["steps"] == lazy["timer"] + lazy["attention"] + lazy["caught_up"]


@pytest.mark.parametrize("name", list(CASES))
def test_lazy_exact_pysim(monkeypatch, name):
    monkeypatch.setenv(SKIP_ENV, "1")
    check_lazy(*both_ways(monkeypatch, name, "pysim", LAZY_ENV), name)


@pytest.mark.verilator
@pytest.mark.parametrize("name", list(CASES))
def test_lazy_exact_verilator(monkeypatch, name):
    monkeypatch.setenv(SKIP_ENV, "1")
    check_lazy(*both_ways(monkeypatch, name, "verilator", LAZY_ENV), name)


@pytest.mark.verilator
@pytest.mark.parametrize("name", ["bcm5820-64", "hifn7751-64"])
def test_lazy_exact_without_skipping_verilator(monkeypatch, name):
    """Lazy without skipping: the catch-up steps run every clock."""
    monkeypatch.setenv(SKIP_ENV, "0")
    off, on, quiet, speed = both_ways(monkeypatch, name, "verilator", LAZY_ENV)
    assert on == off and on["skipped"] == 0 and speed[True]["lazy"] > 0


@pytest.mark.parametrize("name", ["idle-dma", "idle-bcm5820", "bcm5820-64", "hifn7751-64"])
def test_quiet_means_nothing_moves(name):
    """On quiet clocks no register of the design changes but the counters
    and timers skipping advances (the RTL audited, not trusted)."""
    from tests.sim.quiet_audit import audit
    machine, entry, args, _ = CASES[name]
    out = audit(machine(), entry, args)
    assert out["result"].get("ok", True)
    assert out["audited"] > 0
    assert out["violations"] == {}
