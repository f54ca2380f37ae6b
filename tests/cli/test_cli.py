"""The ``ocfsim`` command line: JSON contract, verification, bad input."""

import json
import subprocess
import sys

import pytest

OCFSIM = [sys.executable, "-m", "ocfsim.cli"]


def ocfsim(*args):
    return subprocess.run(OCFSIM + list(args), capture_output=True, text=True, timeout=600)


def test_dma_json_is_one_object_with_the_contract_keys():
    p = ocfsim("dma", "--bytes", "260", "--cards", "2", "--burst", "16", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)                      # exactly one JSON document
    for key in ("ok", "bytes", "sim_cycles", "wall_s", "cycles_per_s",
                "pci_utilisation", "breakdown"):
        assert key in out
    assert out["ok"] is True and out["bytes"] == 520
    assert sum(out["breakdown"].values()) == out["dma_cycles"]
    assert 0 < out["pci_utilisation"] < 1
    assert out["breakdown"]["data"] / out["dma_cycles"] == pytest.approx(out["pci_utilisation"])


def test_dma_human_output_has_units_and_writes_vcd(tmp_path):
    from vcdvcd import VCDVCD
    vcd = tmp_path / "w" / "dma.vcd"
    p = ocfsim("dma", "--bytes", "64", "--vcd", str(vcd))
    assert p.returncode == 0, p.stderr
    assert "Mbit/s" in p.stdout and "bus cycles/s" in p.stdout and "byte-exact" in p.stdout
    v = VCDVCD(str(vcd), signals=["bench.top.\\bus.frame"], store_tvs=True)
    frame = v["bench.top.\\bus.frame"]
    assert sum(1 for _, val in frame.tv if val == "1") > 5   # transactions happened


def test_lspci_lists_the_cards():
    p = ocfsim("lspci", "--cards", "2", "--json")
    assert p.returncode == 0, p.stderr
    devs = json.loads(p.stdout)["devices"]
    assert [(d["slot"], d["vendor"], d["device"]) for d in devs] == \
        [(1, 0x0CF5, 0xD0A1), (2, 0x0CF5, 0xD0A1)]
    p = ocfsim("lspci", "--cards", "1")
    assert "0cf5:d0a1" in p.stdout and "BAR0" in p.stdout


@pytest.mark.parametrize("args", [
    ["dma", "--bytes", "0"],
    ["dma", "--bytes", "-5"],
    ["dma", "--bytes", "lots"],
    ["dma", "--bytes", "64", "--cards", "99"],
    ["dma", "--bytes", "64", "--backend", "gem5"],
    ["dma", "--bytes", "64", "--burst", "0"],
    ["dma", "--bytes", "1048576", "--cards", "8"],
    ["dma"],
    ["frobnicate"],
    [],
])
def test_bad_arguments_give_one_line_and_status_2(args):
    p = ocfsim(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
