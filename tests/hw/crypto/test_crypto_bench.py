"""``bench/crypto_cores.py`` (``ocfsim bench cores``): backend argument
handling, and the Verilator rows (slow: they compile one model per core
setting) against the cycle counts the cores guarantee."""

import json
import subprocess
import sys

import pytest

from bench import crypto_cores
from hw.crypto import CARD_ENGINE_PARAMS, des_cycles_per_block, sha1_cycles_per_block


def test_backend_lists():
    from ocfsim.cli import name_list
    from sim.experiment import BACKENDS
    parse = name_list(BACKENDS)
    assert parse("pysim,verilator") == ["pysim", "verilator"]
    assert parse("verilator") == ["verilator"]
    for bad in ("", "pysim,icarus", "nope"):
        with pytest.raises(Exception):
            parse(bad)


def test_bad_backend_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        crypto_cores.main(["--backend", "pysim,icarus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "backend" in err


@pytest.mark.slow
@pytest.mark.verilator
def test_verilator_rows_count_what_the_cores_guarantee():
    """``ocfsim bench cores --quick --backend verilator --json`` prints one
    JSON object; the free-running benches count blocks right (their cycles
    per block are the cores') and the engines meet the datasheet rates."""
    p = subprocess.run([sys.executable, "-m", "ocfsim.cli", "bench", "cores", "--quick",
                        "--backend", "verilator", "--json"],
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)                      # exactly one JSON document
    assert res["bench"] == "cores" and res["backends"] == ["verilator"]
    rows = res["rows"]
    assert rows and all(r["backend"] == "verilator" and r["cycles_per_s"] > 0 for r in rows)
    for r in rows:
        rpc = r["rounds_per_cycle"]
        if r["alg"] in ("DES", "3DES"):
            assert r["cycles_per_block"] == pytest.approx(
                des_cycles_per_block(rpc, r["alg"] == "3DES"), rel=1e-3)
        elif r["alg"] == "SHA1":
            assert r["cycles_per_block"] == pytest.approx(sha1_cycles_per_block(rpc), rel=1e-3)
        else:
            assert r["meets_ref"], r
    assert {r["alg"].split()[1] for r in rows if r["alg"].startswith("engine")} == \
        set(CARD_ENGINE_PARAMS)


def test_tls_one_pass_fewer_cycles_than_two_requests():
    """The one-pass record and the two-request path give the same ciphertext
    (checked inside) and one request needs fewer engine cycles: the MAC
    request's pass over the data is saved."""
    t = crypto_cores.tls_onepass_cycles(64)
    assert t["two_request_cycles"] == t["mac_cycles"] + t["encrypt_cycles"]
    assert t["onepass_cycles"] < t["two_request_cycles"]
    assert t["onepass_cycles"] > t["encrypt_cycles"]     # the MAC tail is waited for


@pytest.mark.parametrize("bad", ["-1", "16385", "x"])
def test_bad_tls_bytes_exits_2(capsys, bad):
    with pytest.raises(SystemExit) as exc:
        crypto_cores.main(["--tls-bytes", bad])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
