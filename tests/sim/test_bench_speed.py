"""``ocfsim bench speed``: rows, JSON keys, ratios, argument errors (pysim; one slow
case on Verilator with the raw replay)."""

import json

import pytest

from bench import speed
from ocfsim.cli import main


def test_idle_row_on_pysim(capsys):
    assert main(["bench", "speed", "--backends", "pysim", "--machines", "dma",
                 "--workloads", "idle", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "speed"
    (row,) = out["rows"]
    assert {k: row[k] for k in ("machine", "workload", "backend", "ok", "ratio_to_raw")} == \
        {"machine": "dma", "workload": "idle", "backend": "pysim", "ok": True,
         "ratio_to_raw": None}
    # the idle entry sleeps exactly the cycles it is asked for
    assert row["sim_cycles"] == speed.WORKLOADS["idle"][2]["pysim"]["cycles"]
    assert row["cycles_per_s"] == row["sim_cycles"] / row["wall_s"]
    assert row["wakeups"] >= 1
    assert row["fixed_s"] > 0


def test_workloads_only_where_they_fit():
    cells = speed.cells(("dma", "bcm5820"), ("dma", "crypto64"), ("pysim",))
    assert cells == [("dma", "dma", "pysim"), ("bcm5820", "crypto64", "pysim")]


def test_bad_arguments_exit_2(capsys):
    for argv in (["--machines", "nic"], ["--machines", "bcm5820", "--workloads", "dma"]):
        try:
            main(["bench", "speed", *argv])
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{argv} accepted")
        err = capsys.readouterr().err
        assert err.startswith("ocfsim bench speed: error:") and err.count("\n") == 1


def test_ratios_against_raw_of_same_cell():
    rows = [speed._row("dma", "idle", "raw", True, 4_000_000, 2.0, 0.1),        # 2 M/s
            speed._row("dma", "idle", "verilator", True, 1_000_000, 1.0, 1.0),  # 1 M/s
            speed._row("bcm5820", "idle", "raw", True, 1_000_000, 2.0, 0.1),    # 0.5 M/s
            speed._row("bcm5820", "idle", "pysim", True, 1_000, 2.0, 1.0),
            speed._row("hifn7751", "idle", "pysim", True, 1_000, 1.0, 1.0)]     # no raw
    speed._ratios(rows)
    assert [r["ratio_to_raw"] for r in rows] == [1.0, 0.5, 1.0, 1e-3, None]
    assert [r.get("ratio_to_dma_raw") for r in rows] == [1.0, None, 0.25, None, None]


@pytest.mark.slow
@pytest.mark.verilator
def test_raw_row_replays_the_verilator_run(capsys):
    assert main(["bench", "speed", "--backends", "verilator,raw", "--machines", "dma",
                 "--workloads", "idle", "--json"]) == 0
    verilator, raw = json.loads(capsys.readouterr().out)["rows"]
    assert (verilator["backend"], raw["backend"]) == ("verilator", "raw")
    assert raw["ok"] and raw["ratio_to_raw"] == 1.0 and raw["ratio_to_dma_raw"] == 1.0
    # the replay runs from time 0: reset, then the recorded run's cycles
    assert raw["sim_cycles"] >= verilator["sim_cycles"] == \
        speed.WORKLOADS["idle"][2]["verilator"]["cycles"]
    assert verilator["ratio_to_raw"] == verilator["cycles_per_s"] / raw["cycles_per_s"]


def test_the_network_workload_runs_on_the_nic_machine_only():
    cells = speed.cells(tuple(speed.MACHINES), ("idle", "net"), ("verilator",))
    assert [c for c in cells if c[1] == "net"] == [("net", "net", "verilator")]
    assert ("net", "idle", "verilator") not in cells
    # the NIC machine: the BCM5820 and the em NIC
    kinds = [c.kind for c in speed.MACHINES["net"]().cards]
    assert sorted(kinds) == ["bcm5820", "em82544"]
