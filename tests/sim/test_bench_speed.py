"""``ocfsim bench speed``: rows, JSON keys, argument errors (pysim only: quick)."""

import json

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
    assert row["cycles"] == speed.WORKLOADS["idle"][2]["pysim"]["cycles"]
    assert row["cycles_per_s"] == row["cycles"] / row["wall_s"]
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
