"""The fault campaign (bench/faults.py): a subset by default, all of it when slow."""

import pytest

from bench.faults import passed, run_campaign, scenarios
from ocfsim.sweep import Sweep

pytestmark = pytest.mark.verilator

SUBSET = {"bcm5820": ("reset", "bme-off", "lost-irq", "zero-particle"),
          "hifn7751": ("rings-off", "mse-off", "res-novalid", "bad-session")}


def _check(result):
    for row in result["rows"]:
        assert "error" not in row, row
        assert row["injected"], row["scenario"]
        assert row["lost"] == 0, (row["scenario"], row["card"], row["log"])
        assert row["served_after"], (row["scenario"], row["card"])
        assert row["catchalls"] == 0
        assert row["dispatched"] == (row["verified"] + row["wrong"] + row["errno_total"]
                                     + row["lost"])
        assert passed(row)
    assert result["summary"]["ok"]


def test_campaign_subset():
    cells = [c for c in scenarios(quick=True) if c["scenario"].split("@")[0] in SUBSET[c["card"]]]
    assert len(cells) == 8
    _check(run_campaign(cells, sweep=Sweep(jobs=2)))


@pytest.mark.slow
def test_full_campaign():
    cells = scenarios()
    assert len(cells) >= 50 and {c["card"] for c in cells} == {"bcm5820", "hifn7751"}
    _check(run_campaign(cells))
