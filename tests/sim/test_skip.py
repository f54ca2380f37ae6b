"""Exact idle skipping (docs/simulation.md): the same workloads with skipping
on and off give the same results, every monitor counter and output port, the
same final cycle and the same host DRAM, on both backends; and skipping does
skip (a run that skipped nothing would prove nothing)."""

import pytest

from ocfsim.machines import crypto_machine, dma_machine
from sim.experiment import run
from sim.host import SKIP_ENV

ENTRY = "tests.sim.skip_cases:observed"

#: (machine, workload entry, args, skips idle clocks) — pysim sizes
CASES = {
    "idle-dma": (lambda: dma_machine(1), "bench.speed:idle", {"cycles": 20_000}, True),
    "idle-bcm5820": (lambda: crypto_machine(["bcm5820"]), "bench.speed:idle",
                     {"cycles": 20_000}, True),
    # no driver: the Hifn stays held in reset, its initiator flushed every
    # clock, so the machine is never at rest (a booted one is: hifn7751-64)
    "idle-hifn7751": (lambda: crypto_machine(["hifn7751"]), "bench.speed:idle",
                      {"cycles": 20_000}, False),
    "dma-copy": (lambda: dma_machine(1), "ocfsim.workloads.dma:dma_copy",
                 {"nbytes": 2048}, False),
    "bcm5820-64": (lambda: crypto_machine(["bcm5820"]), "ocfsim.workloads.devcrypto:devcrypto",
                   {"alg": "3des-sha1", "size": 64, "ops": 2, "threads": 2}, True),
    "hifn7751-64": (lambda: crypto_machine(["hifn7751"]), "ocfsim.workloads.devcrypto:devcrypto",
                    {"alg": "3des", "size": 64, "ops": 2, "threads": 2}, True),
}


def both_ways(monkeypatch, name, backend):
    machine, entry, args, skips = CASES[name]
    out = {}
    for on in (False, True):
        monkeypatch.setenv(SKIP_ENV, "1" if on else "0")
        r = run(machine(), ENTRY, {"entry": entry, "args": args}, backend=backend)
        out[on] = {k: v for k, v in r.items() if not k.startswith("_")}
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
