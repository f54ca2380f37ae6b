"""Bad command lines: one line on stderr, exit status 2, no traceback, nothing on disk.

Most cases run ``ocfsim.cli.main`` in this process from an empty working
folder and check that the folder (and any absolute path named) is still
empty afterwards; the pipe case runs the command in a subprocess.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocfsim.cli import main

PROFILES = Path(__file__).resolve().parents[2] / "sim" / "profiles"


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(argv, capsys) -> str:
    """Run the CLI; assert it refused properly; return its one stderr line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "error:" in err
    return err


OUTPUT_PATHS = ["/proc/x/y.vcd", "/etc/passwd/x.vcd", "/dev/null/x.vcd", "/tmp", "",
                "sub/dir/"]


@pytest.mark.parametrize("path", OUTPUT_PATHS)
@pytest.mark.parametrize("cmd", [["run", "--card", "soft", "--alg", "null", "--size", "8"],
                                 ["dma", "--bytes", "64"]])
def test_unwritable_vcd_is_refused_while_parsing(cmd, path, empty_cwd, capsys):
    err = refused(cmd + ["--ops", "1"] * (cmd[0] == "run") + ["--vcd", path], capsys)
    assert "--vcd" in err
    assert not os.path.exists("/proc/x") and not list(empty_cwd.iterdir())


@pytest.mark.parametrize("path", OUTPUT_PATHS)
@pytest.mark.parametrize("bench", ["pci", "fig1"])
def test_unwritable_plot_is_refused_before_the_sweep(bench, path, empty_cwd, capsys):
    err = refused(["bench", bench, "--plot", path], capsys)
    assert "--plot" in err
    assert not list(empty_cwd.iterdir())


@pytest.mark.parametrize("path", ["/proc/x", "/etc/passwd", "/etc/passwd/x", "/dev/null/x", ""])
@pytest.mark.parametrize("cmd", [["run"], ["dma", "--bytes", "64"], ["lspci"],
                                 ["bench", "pci"], ["bench", "null"], ["bench", "cores"]])
def test_unusable_out_folder_is_refused(cmd, path, empty_cwd, capsys):
    assert "--out" in refused(cmd + ["--out", path], capsys)
    assert not os.path.exists("/proc/x") and not list(empty_cwd.iterdir())


def test_no_folder_is_made_when_a_later_check_refuses(empty_cwd, capsys):
    """The VCD's folder is created when the run starts, not while parsing."""
    err = refused(["run", "--alg", "null", "--vcd", "out/deep/run.vcd"], capsys)
    assert "--card soft" in err                    # says what would work
    assert not list(empty_cwd.iterdir())


@pytest.mark.parametrize("argv, hint", [
    (["run", "--alg", "null"], "--card soft"),                            # no card does null
    (["run", "--card", "hifn7751", "--card", "bcm5820", "--alg", "null"], "--card soft"),
    (["run", "--card", "soft", "--alg", "null", "--size", "9"], "--size 8"),   # 4-byte block
    (["run", "--card", "soft", "--alg", "des", "--size", "12"], "--size 8"),
    (["run", "--alg", "3des-sha1", "--size", "1020"], "--size 1016"),
    (["run", "--size", "262144"], "262140"),                             # /dev/crypto's limit
    (["run", "--size", "0"], "1..262140"),
    (["run", "--size", "65536", "--threads", "16"], "4 MiB"),
    (["run", "--card", "soft", "--card", "bcm5820"], "soft"),
    (["run", "--card", "mixed", "--card", "hifn7751"], "mixed"),
    (["run", "--ops", "0"], "--ops"),
    (["run", "--threads", "x"], "--threads"),
    (["run", "--profile", "nosuch"], "p3-1400-openbsd"),
    (["run", "--profile", "nosuch.toml"], "--profile"),
    (["run", "--seed", "-1"], "--seed"),
    (["lspci", "--card", "mixed", "--card", "dmatest"], "mixed"),
    (["lspci", "--card", "soft"], "--card"),
])
def test_usage_errors_say_what_would_work(argv, hint, empty_cwd, capsys):
    assert hint in refused(argv, capsys)
    assert not list(empty_cwd.iterdir())


@pytest.mark.parametrize("argv", [
    ["bench", "pci", "--bytes", "abc"],
    ["bench", "pci", "--bursts", "x,y"],
    ["bench", "pci", "--bursts", "1,,4"],
    ["bench", "pci", "--masters", "9"],
    ["bench", "pci", "--backends", "pysim,gem5"],
    ["bench", "pci", "--nosuch"],
    ["bench", "null", "--sizes", "abc"],
    ["bench", "null", "--procs", "abc"],
    ["bench", "null", "--sizes", "0"],
    ["bench", "null", "--sizes", "7"],
    ["bench", "null", "--sizes", "-8"],
    ["bench", "null", "--sizes", "99999999"],
    ["bench", "null", "--procs", "0"],
    ["bench", "null", "--profile", "nosuch"],
    ["bench", "fig1", "--backend", "x"],
    ["bench", "fig1", "--card", "bcm5820,gpu"],
    ["bench", "fig1", "--sizes", "12"],
    ["bench", "cores", "--backend", "icarus"],
    ["bench", "nosuch"],
])
def test_bench_arguments_are_typed(argv, empty_cwd, capsys):
    refused(argv, capsys)
    assert not list(empty_cwd.iterdir())


def test_relative_profile_path_is_resolved_by_the_cli(empty_cwd, monkeypatch):
    """The Verilator backend runs host code in its own folder, so the CLI hands
    on an absolute path; checked here on what reaches the experiment."""
    shutil.copy(PROFILES / "p3-1400-openbsd.toml", empty_cwd / "my-host.toml")
    seen = {}

    class Reached(Exception):
        pass

    def fake_run(spec, entry, args, **kw):
        seen.update(args)
        raise Reached
    monkeypatch.setattr("sim.experiment.run", fake_run)
    with pytest.raises(Reached):
        main(["run", "--card", "soft", "--profile", "my-host.toml", "--seed", "7"])
    assert seen["profile"] == str(empty_cwd / "my-host.toml")
    assert seen["seed"] == 7


def test_closed_pipe_ends_quietly(tmp_path):
    """``ocfsim run ... | head``: the reader goes away; no traceback, SIGPIPE's status."""
    p = subprocess.Popen([sys.executable, "-m", "ocfsim.cli", "run", "--card", "soft",
                          "--alg", "null", "--size", "8", "--ops", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    p.stdout.close()                                # before the child prints anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141, err
    assert err == ""


@pytest.mark.parametrize("cmd", [["run", "--card", "bcm5820", "--card", "hifn7751"],
                                 ["lspci", "--card", "dmatest", "--card", "hifn7751"]])
def test_cards_with_several_card_options_is_refused_not_ignored(cmd, empty_cwd, capsys):
    err = refused(cmd + ["--cards", "3"], capsys)
    assert "--cards 3" in err and "2 --card options" in err


@pytest.mark.parametrize("argv", [
    ["run", "--machine", "quad7751", "--card", "bcm5820"],
    ["run", "--machine", "ocf-4x5820", "--cards", "2"],
    ["run", "--machine", "ocf-4x5820", "--clock", "33"],
    ["lspci", "--machine", "quad7751", "--card", "dmatest"],
    ["run", "--machine", "no-such-board"],
])
def test_machine_option_refuses_what_would_build_another_machine(argv, empty_cwd, capsys):
    err = refused(argv, capsys)
    assert "--machine" in err or "machine" in err
    assert not list(empty_cwd.iterdir())
