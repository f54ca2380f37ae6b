"""Both kinds of card in one machine: OCF spreads sessions, results agree.

Four processes each open a session; with one BCM5820 and one Hifn 7751 the
fewest-sessions rule (OpenBSD crypto.c crypto_newsession) puts two on each card, and the software
driver stays unused. Every output is checked against ``cryptography`` by the
workload, whichever card served it.
"""

import pytest

from ocfsim.machines import crypto_kinds, crypto_machine
from sim.experiment import run


@pytest.mark.parametrize("alg", [pytest.param("3des", marks=pytest.mark.slow), "3des-sha1"])
def test_sessions_land_on_both_kinds_and_agree(backend, alg):
    if backend == "pysim" and alg == "3des-sha1":
        pytest.skip("one algorithm is enough on pysim (slow); Verilator runs both")
    size, ops = (64, 8) if backend == "pysim" else (1024, 32)
    spec = crypto_machine(crypto_kinds(["mixed"], 2))
    assert [c.kind for c in spec.cards] == ["bcm5820", "hifn7751"]
    r = run(spec, "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": alg, "size": size, "ops": ops, "threads": 4}, backend=backend)
    assert r["ok"], (r["failures"], r["errnos"])
    d = r["ocf_drivers"]
    assert d["ubsec0"]["newsessions"] == 2 and d["hifn0"]["newsessions"] == 2
    assert d["ubsec0"]["operations"] > 0 and d["hifn0"]["operations"] > 0
    assert d["ubsec0"]["operations"] + d["hifn0"]["operations"] == ops
    assert d["cryptosoft"]["operations"] == 0
    assert r["checker"] == []


def test_software_driver_serves_when_no_card():
    r = run(crypto_machine([]), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des", "size": 64, "ops": 2, "threads": 1, "allow_soft": True})
    assert r["ok"] and r["ocf_drivers"]["cryptosoft"]["operations"] == 2
