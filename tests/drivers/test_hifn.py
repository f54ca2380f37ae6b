"""hifn driver end to end: /dev/crypto and OCF on the Hifn 7751-like card.

Every /dev/crypto result is checked against ``cryptography`` by the workload;
``ok`` also requires the PCI checker to be silent."""

import pytest

from hw.machine import CardSpec, MachineSpec
from sim.experiment import run
from sim.kernel.errno import EINVAL, EIO

DEV = "ocfsim.workloads.devcrypto:devcrypto"
SC = "tests.drivers.hifn_scenarios"


def hifn(n=1):
    return MachineSpec(cards=[CardSpec("hifn7751", 1 + i) for i in range(n)])


def _ok(r):
    assert r["ok"], (r["failures"], r["errnos"], r["checker"])
    assert r["checker"] == []


@pytest.mark.parametrize("alg,size,decrypt", [
    ("3des", 40, False), ("3des-sha1", 72, True), ("des", 24, True), ("3des-sha1", 16, False),
])
def test_devcrypto_byte_exact_pysim(alg, size, decrypt):
    r = run(hifn(), DEV, {"alg": alg, "size": size, "ops": 2, "decrypt": decrypt,
                          "seed": size})
    _ok(r)
    d = r["drivers"]["hifn0"]
    assert d["results"] == 2 and d["keys_sent"] == 1       # keys with the first only
    assert r["interrupts"] == 2                            # one per result


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("alg", ["3des", "des", "3des-sha1"])
@pytest.mark.parametrize("decrypt", [False, True])
def test_devcrypto_byte_exact_verilator(alg, decrypt):
    for size, threads in ((8, 1), (1000, 3), (4096 + 8, 2)):
        r = run(hifn(), DEV, {"alg": alg, "size": size, "ops": 12, "threads": threads,
                              "decrypt": decrypt, "seed": size + threads}, backend="verilator")
        _ok(r)
        assert r["drivers"]["hifn0"]["keys_sent"] == threads


def test_ring_wrap_and_queue_under_load(backend):
    """Rings smaller than the load: descriptors recycle through JUMP, the
    driver queues what does not fit and submits it as results come back."""
    small = {"ring_sizes": {"c": 2, "r": 2, "s": 3, "d": 3}}
    ops, threads = (6, 3) if backend == "pysim" else (120, 6)
    r = run(hifn(), DEV, {"alg": "3des-sha1", "size": 16, "ops": ops, "threads": threads,
                          "driver_options": {"hifn": small}}, backend=backend)
    _ok(r)
    d = r["drivers"]["hifn0"]
    assert d["results"] == ops and d["queued"] > 0 and d["aborts"] == 0
    assert d["interrupts"] <= ops and r["interrupts"] <= ops


def test_keys_once_then_abort_loses_nothing_and_resends_keys(backend):
    r = run(hifn(), f"{SC}:keys_and_abort",
            {"n_before": 2, "n_after": 2} if backend == "pysim" else
            {"n_before": 6, "n_after": 8, "size": 512}, backend=backend)
    assert r["err"] == 0
    assert r["failures"] == [] and all(c == 1 for c in r["calls"])
    # first command: MAC and crypt NEW_KEY; the next: no keys
    bm, mm, cm, ln = r["first_cmd"]
    assert mm["new_key"] and cm["new_key"] and ln == 120
    bm, mm, cm, ln = r["second_cmd"]
    assert not mm["new_key"] and not cm["new_key"] and ln == 32
    # before the bad request: fine; it and what follows: EIO; nothing lost
    bad = r["bad_index"]
    assert r["etypes"][:bad] == [0] * bad
    assert r["etypes"][bad:r["n_mid"]] == [EIO] * (r["n_mid"] - bad)
    assert r["stats"]["aborts"] == 1
    # after the reset the session's keys go again, once
    (_, m0, c0, l0), (_, m1, c1, l1) = r["after_abort"]
    assert m0["new_key"] and c0["new_key"] and l0 == 120
    assert not m1["new_key"] and l1 == 32
    assert r["etypes"][r["n_mid"]:] == [0, 0]
    assert r["checker"] == []


def test_sessions():
    r = run(hifn(), f"{SC}:sessions")
    assert r["3des"][0] == 0 and r["des"][0] == 0
    assert r["3des"][1] >> 32 == r["des"][1] >> 32              # the hifn driver
    assert r["badkey"][0] == EINVAL and r["md5"][0] == EINVAL
    assert r["mlen"][0] == EINVAL and r["two_ciphers"][0] == EINVAL
    assert r["free"] == 0
    assert r["again"] == (0, r["3des"][1])                      # slot reused
    assert r["free_twice"][0] == 0 and r["free_twice"][1] != 0
    assert r["checker"] == []


@pytest.mark.verilator
def test_16k_3des_throughput_and_interrupts_verilator():
    """At 16 KB the card model reaches ≥ 90% of its configured 3DES rate
    (two threads keep it busy); one interrupt per request."""
    from hw.crypto import CARD_ENGINE_PARAMS
    rate = CARD_ENGINE_PARAMS["hifn7751"].model_mbps()
    r = run(hifn(), DEV, {"alg": "3des", "size": 16384, "ops": 8, "threads": 2},
            backend="verilator")
    _ok(r)
    assert r["mbps"] >= 0.9 * rate
    assert r["interrupts"] == 8
