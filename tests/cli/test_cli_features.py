"""What a new user meets: --ops per process, --help with defaults, --version,
lspci of any machine, and the CLI's algorithm table against the drivers."""

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC
from ocfsim.cli import BENCHES, Parser, build_parser, main
from ocfsim.machines import CARD_ALGORITHMS, crypto_machine
from ocfsim.system import boot
from sim.experiment import run

PROFILES = Path(__file__).resolve().parents[2] / "sim" / "profiles"


def run_json(argv, capsys) -> dict:
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ops_are_per_process(capsys):
    res = run_json(["run", "--card", "soft", "--alg", "null", "--size", "8",
                    "--threads", "2", "--ops", "3"], capsys)
    assert res["ok"] and res["ops"] == 6 and res["ops_per_process"] == 3
    assert main(["run", "--card", "soft", "--alg", "null", "--size", "8",
                 "--threads", "2", "--ops", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 process(es) x 3 /dev/crypto null ops" in out and "6 of 6 operations" in out


class _Parsed(Exception):
    pass


def _bench_parser(module: str) -> Parser:
    """The parser a benchmark's ``main`` builds, caught as it parses."""
    seen = []

    def catch(self, argv=None, namespace=None):
        seen.append(self)
        raise _Parsed
    saved, Parser.parse_args = Parser.parse_args, catch
    try:
        importlib.import_module(f"bench.{module}").main([])
    except _Parsed:
        pass
    finally:
        Parser.parse_args = saved
    assert seen, f"bench.{module} does not parse with ocfsim.cli.Parser"
    return seen[0]


def _parsers():
    """(name, parser) of every subcommand and every benchmark."""
    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    yield from sub.choices.items()
    for name, module in BENCHES.items():
        yield f"bench {name}", _bench_parser(module)


@pytest.mark.parametrize("name, parser", list(_parsers()), ids=lambda x: str(x)[:12])
def test_every_option_has_help_and_shows_its_default(name, parser):
    assert parser.format_help().startswith(f"usage: ocfsim {name} ")
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        assert action.help, f"{name} {action.option_strings[0]} has no help"
        if action.default is not None and action.default is not False:
            assert "%(default)s" in formatter._get_help_string(action), action.option_strings


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"ocfsim {version('ocfsim')}\n"


def test_lspci_lists_crypto_cards_with_their_config_space(capsys):
    devs = run_json(["lspci", "--card", "bcm5820", "--card", "hifn7751", "-v"],
                    capsys)["devices"]
    assert [(d["slot"], d["vendor"], d["device"]) for d in devs] == \
        [(1, 0x14E4, 0x5820), (2, 0x13A3, 0x0005)]
    for d in devs:
        cfg = d["config"]                          # the type-0 header, PCI 2.3 §6.1
        assert len(cfg) == 16
        assert cfg[0] == d["device"] << 16 | d["vendor"]
        assert cfg[2] == d["class"] << 8 | d["revision"]
        assert cfg[1] & 0b110 == 0b110             # memory space and bus master enabled
        assert [cfg[4 + b["index"]] & ~0xF for b in d["bars"]] == [b["addr"] for b in d["bars"]]
        assert cfg[15] & 0xFF == d["irq"]          # Interrupt Line as routed
    assert main(["lspci", "--card", "bcm5820", "--card", "hifn7751", "-v"]) == 0
    out = capsys.readouterr().out
    assert "[14e4:5820]" in out and "Kernel driver in use: ubsec" in out
    assert "Kernel driver in use: hifn" in out and "bus master" in out
    assert "00: e4 14 20 58" in out                # lspci -x's first bytes: IDs, little-endian


@pytest.mark.verilator
def test_machine_option_runs_the_standard_machines(capsys):
    # the quad card: a bridge on bus 0 and four 7751s on bus 1 (depth-first
    # bus numbers, PCI-to-PCI Bridge Architecture 1.1 §3.2.5.3)
    lsp = run_json(["lspci", "--machine", "quad7751", "--backend", "verilator"], capsys)
    by_bus = [(d["bus"], d["vendor"], d["device"]) for d in lsp["devices"]]
    assert by_bus[0][0] == 0 and lsp["devices"][0]["bridge"]["secondary"] == 1
    assert by_bus[1:] == [(1, 0x13A3, 0x0005)] * 4
    assert [(s["width"], s["clock_mhz"]) for s in lsp["segments"]] == [(64, 33), (32, 33)]
    res = run_json(["run", "--machine", "quad7751", "--threads", "4", "--ops", "1",
                    "--size", "1024", "--backend", "verilator"], capsys)
    assert res["ok"] and res["ops"] == 4 and res["machine"] == "quad7751"
    assert res["card"] == ",".join(["hifn7751"] * 4) and res["segment_clocks_mhz"] == [33, 33]
    assert res["bus_width"] == 64 and "behind slot1: 32-bit/33 MHz" in res["bus"]


async def registered_algorithms(host) -> dict:
    """Experiment entry: boot the machine; the algorithms each card driver registered."""
    system = await boot(host)
    return {sc.name: sorted(system.crypto.drivers[sc.cid].algs) for sc in system.softcs}


def test_card_algorithm_table_matches_what_the_drivers_register():
    r = run(crypto_machine(["bcm5820", "hifn7751"]),
            "tests.cli.test_cli_features:registered_algorithms")
    by_driver = {name.rstrip("0123456789"): algs for name, algs in r.items()
                 if not name.startswith("_") and isinstance(algs, list)}   # not the run's own keys
    assert by_driver == {"ubsec": sorted(CARD_ALGORITHMS["bcm5820"]),
                         "hifn": sorted(CARD_ALGORITHMS["hifn7751"])}
    assert CARD_ALGORITHMS["bcm5820"] == {CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC}


@pytest.mark.slow
@pytest.mark.verilator
def test_relative_profile_path_on_verilator(tmp_path):
    """The simulator child runs in its own folder; the CLI's absolute path reaches it."""
    shutil.copy(PROFILES / "p3-1400-openbsd.toml", tmp_path / "my-host.toml")
    p = subprocess.run([sys.executable, "-m", "ocfsim.cli", "run", "--card", "soft", "--alg",
                        "null", "--size", "8", "--ops", "1", "--profile", "my-host.toml",
                        "--backend", "verilator", "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["ok"] and res["profile"] == str(tmp_path / "my-host.toml")


def test_json_runs_do_not_overwrite_the_default_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["bench", "pci", "--bursts", "256", "--masters", "1", "--bytes", "4"]
    res = run_json(tiny, capsys)
    assert res["rows"][0]["ok"] and "plot" not in res
    assert not list(tmp_path.iterdir())
    assert main(tiny) == 0
    assert "plot: build/pci_bandwidth.png" in capsys.readouterr().out
    assert (tmp_path / "build" / "pci_bandwidth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run_json(tiny + ["--plot", "out/p.png"], capsys)
    assert res["plot"] == "out/p.png" and (tmp_path / "out" / "p.png").exists()


def test_json_results_carry_their_provenance(capsys):
    argv = ["run", "--card", "soft", "--alg", "null", "--size", "8", "--ops", "1",
            "--seed", "5"]
    prov = run_json(argv, capsys)["provenance"]
    head = subprocess.run(["git", "-C", str(PROFILES), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert prov == {"version": version("ocfsim"), "git_commit": head or None, "seed": 5,
                    "command": ["ocfsim"] + argv + ["--json"]}
    prov = run_json(["bench", "null", "--sizes", "1024", "--procs", "1"], capsys)["provenance"]
    assert prov["command"] == ["ocfsim", "bench", "null", "--sizes", "1024", "--procs", "1",
                               "--json"]


def test_out_puts_the_json_and_the_vcd_together(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["run", "--card", "soft", "--alg", "null", "--size", "8", "--ops", "1",
            "--out", str(out)]
    res = run_json(argv, capsys)
    assert json.loads((out / "run.json").read_text()) == json.loads(json.dumps(res))
    assert res["vcd"] == str(out / "run.vcd") and (out / "run.vcd").stat().st_size > 0
    assert (out / "run.gtkw").exists()


def test_out_puts_bench_rows_in_a_csv(tmp_path, capsys):
    import csv
    out = tmp_path / "o"
    assert main(["bench", "null", "--sizes", "64,1024", "--procs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"outputs: {out / 'null.json'}, {out / 'null.csv'}" in printed
    saved = json.loads((out / "null.json").read_text())
    with open(out / "null.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["size"]) for r in rows] == [r["size"] for r in saved["rows"]] == [64, 1024]
    assert [float(r["mbps"]) for r in rows] == [r["mbps"] for r in saved["rows"]]
    assert rows[1]["ref_mbps"] == "420.0" and rows[0]["ref_mbps"] == ""


def test_out_takes_the_default_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    res = run_json(["bench", "pci", "--bursts", "256", "--masters", "1", "--bytes", "4",
                    "--out", "o"], capsys)
    assert res["plot"] == "o/pci_bandwidth.png" and (tmp_path / "o" / "pci.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
