"""Plots that say only what was measured, and bench rows in the README's JSON
conventions (``mbps`` beside ``ref_mbps``)."""

import json
import re
from pathlib import Path

import matplotlib
import pytest
from matplotlib.figure import Figure

from bench import fig1, pci_bandwidth
from ocfsim.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def pci_row(backend, burst, cycles=1000, eff=0.8):
    return {"kind": "sweep", "backend": backend, "masters": 1, "burst": burst, "size": 4096,
            "sim_cycles": cycles, "efficiency": eff, "pci_utilisation": 0.5, "mbps": 100.0,
            "ok": True}


def title(fig) -> str:
    return fig.axes[0].get_title()


@pytest.fixture
def other_backend():
    """A non-Agg matplotlib backend set by the caller (as a notebook would)."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def test_pci_title_claims_agreement_only_when_two_backends_agreed(other_backend):
    one = {"rows": [pci_row("pysim", 16), pci_row("pysim", 64)]}
    assert "agree" not in title(pci_bandwidth.plot(one))
    both = {"rows": [pci_row(b, n) for b in ("pysim", "verilator") for n in (16, 64)]}
    assert "agree cycle for cycle" in title(pci_bandwidth.plot(both))
    differ = {"rows": [pci_row("pysim", 16), pci_row("verilator", 16, cycles=1001)]}
    assert "agree" not in title(pci_bandwidth.plot(differ))
    assert matplotlib.get_backend() == other_backend     # the plot left the caller's choice


def test_pci_reference_curve_names_r_and_shows_with_one_burst():
    fig = pci_bandwidth.plot({"rows": [pci_row("pysim", 16)]})
    assert isinstance(fig, Figure)
    ref = next(line for line in fig.axes[0].get_lines() if "model" in line.get_label())
    assert f"R = {pci_bandwidth.REF_READ_LATENCY}" in ref.get_label()
    assert len(ref.get_xdata()) == 1 and ref.get_marker() not in ("None", "", None)
    # 2D/(2D+5+R) at D = 16, R = 2: 32/39 (PCI 2.3 timing, module docstring)
    assert ref.get_ydata()[0] == pytest.approx(100 * 32 / 39)


def fig1_result():
    rows = [{"series": s, "size": z, "mbps": 100.0 + z / 100} for s in ("bcm5820", "null")
            for z in (256, 1024, 8192)]
    return {"rows": rows}


def test_fig1_legend_has_the_paper_marks_and_calibrated_points_look_different():
    fig = fig1.plot(fig1_result())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("paper" in t for t in labels) and any("calibrated" in t for t in labels)
    hatched = {(p.get_x(), p.get_hatch()) for p in ax.patches if p.get_hatch()}
    # exactly the null bars at 1 KB and 8 KB, the host profile's calibration points
    assert len(hatched) == 2 == len(fig1.CALIBRATED)


def test_logy_gives_a_log_axis_and_the_cli_takes_it(tmp_path, capsys):
    assert pci_bandwidth.plot({"rows": [pci_row("pysim", 16)]}, logy=True) \
        .axes[0].get_yscale() == "log"
    assert fig1.plot(fig1_result(), logy=True).axes[0].get_yscale() == "log"
    png = tmp_path / "p.png"
    assert main(["bench", "pci", "--bytes", "64", "--bursts", "16", "--masters", "1", "-j", "1",
                 "--logy", "--plot", str(png), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["plot"] == str(png) and png.stat().st_size > 0
    assert f"plot: {png}" in err                        # said where, off stdout


def test_cores_engine_rows_put_the_card_rate_under_mbps():
    from bench.crypto_cores import CARD_ENGINE_PARAMS, _engine_rows, mbps
    rows = _engine_rows("pysim", 64)
    assert len(rows) == len(CARD_ENGINE_PARAMS)
    for r in rows:
        assert "mbps_card" not in r and {"mbps", "ref_mbps", "meets_ref"} <= set(r)
        card = CARD_ENGINE_PARAMS[r["alg"].split()[1]]
        assert r["mbps"] == pytest.approx(mbps(r["cycles_per_block"], 8, card.clock_mhz))
        assert r["ref_mbps"] == card.ref_mbps


def test_rows_carry_no_empty_reference():
    """A row names the reference it is compared with, or has none (no null ref_*)."""
    from bench.crypto_cores import _sha_rows
    for r in _sha_rows("pysim", 2):
        assert not [k for k, v in r.items() if k.startswith("ref_") and v is None]


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    """The README's notebook example, run as written."""
    text = README.read_text()
    section = text[text.index("### Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["result"]["ok"] and isinstance(scope["fig"], Figure)


def test_speed_rows_name_cycles_as_every_bench_does(capsys):
    assert main(["bench", "speed", "--backends", "pysim", "--machines", "dma",
                 "--workloads", "idle", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["sim_cycles"] > 0 and row["cycles_per_s"] == row["sim_cycles"] / row["wall_s"]


def test_human_bus_figures_say_their_window(capsys):
    assert main(["dma", "--bytes", "64"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "PCI utilisation" in x)
    cycles = int(re.search(r"\((\d+) bus cycles\)", line).group(1))
    copy = int(re.search(r"\((\d+) bus cycles for the copy", out).group(1))
    assert cycles == copy                          # the monitor's window: the copy
    assert re.search(r"over ([\d.]+) µs", line)


def test_run_figures_share_one_window(capsys):
    assert main(["run", "--ops", "2", "--size", "64", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    period_s = res["bus_period_ps"] / 1e12
    assert res["bus_period_ps"] == 15_000            # a 5820 machine: 66 MHz PCI, 15 ns
    bus_s = sum(res["breakdown"].values()) * period_s
    # bus and CPU figures cover the throughput's window: first request to last
    assert bus_s == pytest.approx(res["sim_time_s"], abs=2 * period_s)
    assert res["mbps"] == pytest.approx(8 * res["bytes"] / res["sim_time_s"] / 1e6)
