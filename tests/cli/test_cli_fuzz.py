"""Hostile command lines (hypothesis): every argv either is refused with one
line on stderr and exit status 2, or reaches the experiment; nothing else
(no traceback, no file) happens while arguments are checked."""

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from ocfsim.cli import main

COMMANDS = [["run"], ["dma"], ["lspci"], ["bench", "pci"], ["bench", "null"],
            ["bench", "fig1"], ["bench", "cores"]]
OPTIONS = ["--card", "--cards", "--alg", "--size", "--ops", "--threads", "--decrypt",
           "--profile", "--clock", "--seed", "--backend", "--vcd", "--bytes", "--burst",
           "--bursts", "--masters", "--backends", "--plot", "--no-plot", "--sizes", "--procs",
           "-v", "--quick", "--speed", "--out", "--nosuch"]
VALUES = ["", "0", "1", "7", "8", "9", "-8", "12", "33", "66", "256", "65536", "262140",
          "262144", "99999999", "0x10", "abc", "1,4", "x,y", "1,,4", "bcm5820", "hifn7751",
          "mixed", "soft", "dmatest", "null", "3des", "3des-sha1", "des", "pysim",
          "verilator", "gem5", "p3-1400-openbsd", "nosuch", "x.toml", "/proc/x/y.vcd",
          "/tmp", "/dev/null/x", "out/", "out/w.vcd", "bcm5820,soft", "--"]


class Reached(Exception):
    """The arguments passed every check and an experiment would start."""


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(COMMANDS),
       rest=st.lists(st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES)),
                     max_size=6))
def test_any_command_line_is_refused_cleanly_or_runs(cmd, rest, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(tmp_path)

    def reached(*args, **kwargs):
        raise Reached
    monkeypatch.setattr("sim.experiment.run", reached)
    for bench in ("bench.pci_bandwidth", "bench.fig1", "bench.null", "bench.crypto_cores"):
        for name in ("run_bench", "run"):
            monkeypatch.setattr(f"{bench}.{name}", reached, raising=False)
    try:
        main(cmd + rest)
    except Reached:
        event("reached the experiment")
        capsys.readouterr()
        return
    except SystemExit as exc:
        out, err = capsys.readouterr()
        event("refused")
        assert exc.code == 2 and out == "" and len(err.splitlines()) == 1, (cmd + rest, err)
    else:
        pytest.fail(f"{cmd + rest}: returned without running or refusing")
    assert not list(tmp_path.iterdir()), cmd + rest
