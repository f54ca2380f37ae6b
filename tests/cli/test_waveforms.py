"""Waveforms a user can open and read: the GTKWave save file (relative dump
path, opening zoom, named states and commands) and ``ocfsim vcd`` (signals,
PCI transactions decoded from the wires, checked against the RTL monitor's
own counters read from the same dump with vcdvcd)."""

import json
import os
import re
import shutil

import pytest

from hw.machine import Machine
from hw.pci.bus import Cmd
from ocfsim.cli import main
from ocfsim.machines import dma_machine
from sim.gtkw import enum_names, read_header, signal_paths


def dma_vcd(folder, backend="pysim", cards=2) -> tuple[str, dict]:
    vcd = os.path.join(folder, "w", "dma.vcd")
    argv = ["dma", "--bytes", "256", "--cards", str(cards), "--burst", "16",
            "--backend", backend, "--vcd", vcd, "--json"]
    return vcd, argv


def run_dma(tmp_path, capsys, backend="pysim", cards=2):
    vcd, argv = dma_vcd(str(tmp_path), backend, cards)
    assert main(argv) == 0
    return vcd, json.loads(capsys.readouterr().out)


def save_file(vcd):
    return open(vcd[:-4] + ".gtkw").read().splitlines()


def monitor_totals(vcd: str, n_agents: int) -> dict:
    """The monitor's counters at the end of the dump (vcdvcd, not our reader)."""
    from vcdvcd import VCDVCD
    names = ["mon_address", "mon_data"] + [f"mon_a{a}_{c}" for a in range(n_agents)
                                           for c in ("address", "data")]
    v = VCDVCD(vcd, only_sigs=True)
    scope = next(s for s in v.signals if s.endswith(".monitor.mon_address")
                 or s.endswith(".monitor.mon_address[39:0]")).rsplit(".", 1)[0]
    full = {n: next(s for s in v.signals if s.split("[")[0] == f"{scope}.{n}")
            for n in names if any(s.split("[")[0] == f"{scope}.{n}" for s in v.signals)}
    v = VCDVCD(vcd, signals=list(full.values()), store_tvs=True)
    return {n: int(v[s].tv[-1][1], 2) for n, s in full.items()}


def test_save_file_names_its_dump_relatively_and_opens_on_the_first_transactions(
        tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys)
    lines = save_file(vcd)
    assert lines[0] == '[dumpfile] "dma.vcd"'          # beside the save file, movable
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "w", moved)
    assert (moved / save_file(str(moved / "dma.vcd"))[0].split('"')[1]).exists()
    start = int(next(x for x in lines if x.startswith("[timestart]")).split()[1])
    zoom, marker = next(x for x in lines if x.startswith("*"))[1:].split()[:2]
    capsys.readouterr()
    assert main(["vcd", vcd, "--transactions", "--limit", "1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["transactions"][0]
    timescale, _ = read_header(vcd)
    assert int(marker) * timescale / 1e6 == pytest.approx(first["time_ns"])
    assert start <= int(marker)
    # the window spans the first transactions, not the whole run
    width_units = 2 ** -float(zoom) * 1000
    end_units = int(open(vcd).read().rsplit("#", 1)[1].split()[0])
    assert width_units < end_units / 4


def test_save_file_translates_bus_commands_from_the_cmd_table(tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys, cards=1)
    lines = save_file(vcd)
    i = next(k for k, x in enumerate(lines) if "command (address phase)" in x)
    assert re.match(r"\^\d+ /", lines[i - 1]) and int(lines[i - 2][1:], 16) & 0x2000
    table = dict(x.split() for x in open(lines[i - 1].split(" ", 1)[1]))
    assert {int(k, 16): v for k, v in table.items()} == \
        {v: k for k, v in vars(Cmd).items() if k.isupper() and isinstance(v, int)}
    # PCI 2.3 table 3-1
    assert {k: table[k] for k in "67ab"} == {"6": "MEM_READ", "7": "MEM_WRITE",
                                             "a": "CFG_READ", "b": "CFG_WRITE"}


def check_states_are_named(vcd):
    """Every traced enum-shaped signal shows names: a string variable in the
    dump, or a translate filter with the enumeration's members."""
    top = Machine(dma_machine(1))
    traces, paths = top.vcd_traces(), signal_paths(top)
    _, variables = read_header(vcd)
    lines = save_file(vcd)
    enums = [s for group in traces.values()
             for s in (group if isinstance(group, list) else
                       [x for sub in group.values() for x in sub])
             if enum_names(s)]
    assert enums, "no traced signal has a lib.enum shape"
    for sig in enums:
        path = paths[sig]
        var = next(v for v in variables if v.path[-len(path):] == path)
        members = enum_names(sig)[1]
        if var.kind == "string":
            continue
        k = next(k for k, x in enumerate(lines) if x.startswith(var.gtkw_name()))
        assert re.match(r"\^\d+ /", lines[k - 1]), var.gtkw_name()
        table = dict(x.split() for x in open(lines[k - 1].split(" ", 1)[1]))
        assert {int(v, 16): n for v, n in table.items()} == members
    return enums


def test_fsm_states_are_named_on_pysim(tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys, cards=1)
    check_states_are_named(vcd)


@pytest.mark.verilator
def test_fsm_states_are_named_on_verilator(tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys, backend="verilator", cards=1)
    uses = [x for x in save_file(vcd) if re.match(r"\^\d+ /", x)]
    assert any("State" in x for x in uses)
    # one number per distinct filter file
    assert len({x.split()[0] for x in uses}) == len({x.split()[1] for x in uses})
    check_states_are_named(vcd)


@pytest.mark.parametrize("backend", ["pysim", pytest.param("verilator",
                                                           marks=pytest.mark.verilator)])
def test_transactions_match_the_monitor_counters(tmp_path, capsys, backend):
    vcd, res = run_dma(tmp_path, capsys, backend=backend)
    assert main(["vcd", vcd, "--transactions", "--json"]) == 0
    txns = json.loads(capsys.readouterr().out)["transactions"]
    agents = ["bridge.cpu", "bridge.dram", "slot1.target", "slot1.master",
              "slot2.target", "slot2.master"]
    mon = monitor_totals(vcd, len(agents))
    assert len(txns) == mon["mon_address"] > 10
    assert sum(t["data_phases"] for t in txns) == mon["mon_data"]
    for a, name in enumerate(agents):
        if f"mon_a{a}_address" in mon:
            mine = [t for t in txns if t["initiator"] == name]
            assert len(mine) == mon[f"mon_a{a}_address"], name
            assert sum(t["data_phases"] for t in mine) == mon[f"mon_a{a}_data"], name
    # both cards' bursts are there, read and written, with the burst length asked for
    for slot in ("slot1.master", "slot2.master"):
        cmds = {t["command"] for t in txns if t["initiator"] == slot}
        assert "MEM_WRITE" in cmds and cmds & {"MEM_READ", "MEM_READ_MULT", "MEM_READ_LINE"}
        assert max(t["data_phases"] for t in txns if t["initiator"] == slot) == 16
    # enumeration probes empty slots: nobody claims those configuration cycles
    aborts = [t for t in txns if t["termination"] == "master abort"]
    assert aborts and all(t["command"] == "CFG_READ" and t["target"] is None for t in aborts)


def test_transactions_human_log(tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys, cards=1)
    assert main(["vcd", vcd, "--transactions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "termination" in out[0] and "initiator" in out[0]
    assert any("MEM_READ" in x and "slot1.master" in x and "bridge.dram" in x for x in out)
    assert out[-1].split()[1] == "transactions,"


def test_signals_lists_hierarchical_and_short_names(tmp_path, capsys):
    vcd, _ = run_dma(tmp_path, capsys, cards=1)
    assert main(["vcd", vcd, "--signals"]) == 0
    out = capsys.readouterr().out
    assert "resolver.bus.frame" in out and "(short: bus.frame)" in out
    assert "slot1.target.state" in out and "bridge.initiator" in out
    names = [x.split()[0] for x in out.splitlines()[:-1]]
    assert not [n for n in names if any(part.startswith(("$", "port$"))
                                        for part in n.split("."))]   # no tool temporaries


def test_vcd_refuses_a_file_that_is_not_a_machine_dump(tmp_path, capsys):
    bad = tmp_path / "x.vcd"
    bad.write_text("$timescale 1ps $end\n$enddefinitions $end\n#0\n")
    with pytest.raises(SystemExit) as exc:
        main(["vcd", str(bad), "--transactions"])
    assert exc.value.code == 2
    assert "resolver" in capsys.readouterr().err


def knob_run(tmp_path, timing: dict):
    from sim.experiment import run
    vcd = str(tmp_path / "k.vcd")
    r = run(dma_machine(1), "ocfsim.workloads.dma:dma_copy",
            {"nbytes": 256, "burst": 16, "seed": 1, "dram_timing": timing}, vcd=vcd)
    from ocfsim.vcd import transactions
    return r, vcd, transactions(vcd)


def test_retry_and_disconnect_are_told_apart(tmp_path):
    # host DRAM retries every 3rd transaction and stalls every 4th access for
    # 12 clocks, past the 8-clock subsequent-latency limit: a disconnect
    # (hw.pci.host_bridge knobs; PCI 2.3 §3.5.1.2)
    r, vcd, txns = knob_run(tmp_path, {"retry_every": 3, "wait_every": 4, "wait_len": 12})
    assert r["ok"]
    dram = [t for t in txns if t.target == "bridge.dram"]
    retries = [t for t in dram if t.termination == "retry"]
    disconnects = [t for t in dram if t.termination == "disconnect"]
    assert retries and all(t.data_phases == 0 for t in retries)
    assert disconnects and all(t.data_phases > 0 for t in disconnects)
    # a retried transaction is repeated by its master at the same address
    for t in retries:
        assert any(u.cycle > t.cycle and u.initiator == t.initiator and u.address == t.address
                   and u.command == t.command for u in txns)
    mon = monitor_totals(vcd, 4)
    assert len(txns) == mon["mon_address"] and sum(t.data_phases for t in txns) == mon["mon_data"]


def test_target_abort_is_decoded(tmp_path):
    r, vcd, txns = knob_run(tmp_path, {"abort_every": 2})
    aborts = [t for t in txns if t.termination == "target abort"]
    assert not r["ok"] and aborts
    assert all(t.target == "bridge.dram" and t.data_phases == 0 and t.initiator == "slot1.master"
               for t in aborts)
