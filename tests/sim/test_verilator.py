"""Verilator backend: build cache, cocotb runs, DRAM backdoor, exact stepping, VCD,
progress relay, no assertion rewriting, the raw harness's replay.

Runs against the stub machine of ``verilator_stub.py``. The first run on a
machine compiles the Verilator runtime three times (timing, timing +
tracing, plain for the component test) plus four small designs: measured
57 s wall with ``-n 2`` on 2 cores (100 CPU s), and the raw harness of the
stub ~70 s more on a loaded machine; afterwards the per-user build cache
(``~/.cache/ocfsim/verilator``) makes the file take ~12 s.
"""

import threading
import time
from pathlib import Path

import pytest

from sim.verilator import runner
from sim.verilator.raw import ReplayMismatch, raw_harness, replay
from sim.verilator.runner import (CocotbFailure, ExperimentError, build_machine,
                                  run_built, run_cocotb, run_experiment)

from tests.sim.progress_bars import record_bars
from tests.sim.verilator_stub import DELAY_LATENCY, counter_verilog, stub_design

pytestmark = pytest.mark.verilator

PERIOD_PS = 30_000          # 33 MHz PCI clock
EXECUTOR = "tests.sim.verilator_stub:execute"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def stub():
    verilog, ports = stub_design()
    return verilog, ports, build_machine(verilog, ports, period_ps=PERIOD_PS)


def experiment(stub, entry, vcd=None, **args):
    verilog, ports, _ = stub
    return run_experiment(verilog, ports, {}, f"tests.sim.verilator_stub:{entry}", args,
                          period_ps=PERIOD_PS, executor=EXECUTOR, vcd=vcd, timeout_s=300)


def test_second_build_is_cached(stub, monkeypatch):
    verilog, ports, bdir = stub

    def no_compile(*a, **k):
        raise AssertionError("cached build recompiled")

    monkeypatch.setattr(runner, "_build_into", no_compile)
    assert build_machine(verilog, ports, period_ps=PERIOD_PS) == bdir
    assert (bdir / ".complete").exists()


def test_concurrent_builders_compile_once(tmp_path, monkeypatch):
    """Two builders of one hash: one compiles, the other waits and reuses it."""
    monkeypatch.setenv("OCFSIM_CACHE", str(tmp_path))
    calls = []

    def fake_build(bdir, *a, **k):
        calls.append(bdir)
        time.sleep(0.3)              # long enough for the other thread to queue
        (bdir / "obj").mkdir()

    monkeypatch.setattr(runner, "_build_into", fake_build)
    out = []
    threads = [threading.Thread(target=lambda: out.append(
        runner.build({"x.v": "module x; endmodule\n"}, "x"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 2 and out[0] == out[1]
    assert not list((tmp_path / "verilator").glob("*.tmp"))


def test_no_assertion_rewriting_in_simulator(stub):
    """cocotb installs pytest's assertion rewriting for every module unless
    told not to; an experiment's code is not a test and must not pay for it."""
    r = experiment(stub, "entry_env")
    assert "AssertionRewritingHook" not in r["hooks"]
    assert r["loaders"] == ["SourceFileLoader", "SourceFileLoader"]


def test_progress_relayed_to_parent(stub, monkeypatch):
    """A bar made inside the simulator shows in the parent (which draws it)."""
    bars = record_bars(monkeypatch, runner)
    verilog, ports, bdir = stub
    r = run_built(bdir, {}, "tests.sim.verilator_stub:entry_progress", {"total": 7},
                  period_ps=PERIOD_PS, executor=EXECUTOR, timeout_s=300, progress=True)
    assert r["relayed"]
    assert [(b.total, b.unit, b.n, b.closed) for b in bars] == [(7, "step", 7, True)]


def test_step_exact_cycles(stub):
    r = experiment(stub, "entry_steps", delays=[0, 1, 5, 40], limit=[1, 2, 7, 1000])
    for d, ran, port_delta in r["delay"]:
        assert ran == d + DELAY_LATENCY          # returned on the attn change ...
        assert port_delta == ran                 # ... and the RTL agrees
    for n, ran, port_delta in r["limit"]:
        assert ran == n == port_delta            # returned on the cycle limit
    first, rest, attn_moves = r["split"]
    assert (first, rest, attn_moves) == (50, 100 + DELAY_LATENCY - 50, 1)
    assert r["_sim_cycles"] > 0 and r["_wall_s"] > 0


def test_dram_backdoor_64k(stub):
    r = experiment(stub, "entry_dram", nbytes=65536)
    assert r["roundtrip_ok"]                     # backdoor write -> backdoor read
    assert r["copy_ok"]                          # backdoor write -> RTL copy -> backdoor read
    assert r["odd_ok"]                           # unaligned partial-word writes
    assert r["size"] == 256 * 1024
    assert r["copy_cycles"] == 2 * 65536 // 4 + DELAY_LATENCY   # two cycles a word


def test_vcd_written(stub, tmp_path):
    vcd = tmp_path / "wave" / "stub.vcd"
    experiment(stub, "entry_steps", vcd=str(vcd), delays=[3], limit=[5])
    text = vcd.read_text()
    assert "$timescale" in text and "1ps" in text
    for name in ("clk", "attn", "tb_wake", "cycle"):
        assert f" {name} " in text


def test_failing_entry_raises_with_traceback(stub):
    with pytest.raises(ExperimentError) as info:
        experiment(stub, "entry_fail", message="boom from the stub")
    text = str(info.value)
    assert "ValueError: boom from the stub" in text
    assert "entry_fail" in text and "Traceback" in text


def test_run_cocotb_pass_and_fail(stub):
    _, _, bdir = stub
    # test_dir puts tests/sim on the simulator's Python path: a plain module name
    results = run_cocotb(bdir, runner.TB_TOPLEVEL, "cocotb_stub", test_dir=HERE,
                         env={"STUB_DELAY": "4"}, timeout_s=120)
    assert set(results) == {"delay_command", "deliberate_failure"}
    assert all(results.values())
    with pytest.raises(CocotbFailure) as info:
        run_cocotb(bdir, runner.TB_TOPLEVEL, "tests.sim.cocotb_stub",
                   env={"STUB_FAIL": "1"}, testcase="deliberate_failure", timeout_s=120)
    assert "deliberate failure: STUB_FAIL is set" in str(info.value)
    assert info.value.results["deliberate_failure"].passed is False


def test_run_cocotb_component_with_cocotb_clock():
    """The component path: default build flags, clock and ports from cocotb."""
    bdir = runner.build({"stub_counter.v": counter_verilog()}, "stub_counter")
    results = run_cocotb(bdir, "stub_counter", "tests.sim.cocotb_counter",
                         env={"COUNTER_CYCLES": "17"}, timeout_s=120)
    assert list(results) == ["counts_enabled_cycles"] and results["counts_enabled_cycles"]


def test_raw_replay_reaches_the_recorded_state(stub, tmp_path):
    """The C++ harness replays a recorded run of the same Verilog to the same
    outputs and DRAM; a changed expectation is caught."""
    verilog, ports, bdir = stub
    record = tmp_path / "run.rec"
    r = run_built(bdir, {}, "tests.sim.verilator_stub:entry_dram", {"nbytes": 4096},
                  period_ps=PERIOD_PS, executor=EXECUTOR, timeout_s=300,
                  record=record, ports=ports)
    assert r["copy_ok"]
    exe = raw_harness(bdir, ports)
    out = replay(exe, record)
    assert out["cycles"] == runner.RESET_CYCLES + r["_sim_cycles"]
    assert out["cycles_per_s"] > 0
    dram = (tmp_path / "run.rec.dram")
    data = bytearray(dram.read_bytes())
    data[(1 << 17) + 16] ^= 1         # inside the copy's destination
    dram.write_bytes(bytes(data))
    with pytest.raises(ReplayMismatch, match="host DRAM"):
        replay(exe, record)


@pytest.mark.slow
def test_speed_report(stub, capsys):
    """Not asserted (wall-clock): free-run cycles/s and per-step overhead."""
    r = experiment(stub, "entry_bench", free_cycles=2_000_000, empty_steps=2000)
    with capsys.disabled():
        print(f"\nverilator stub: {r['cycles_per_s']:.3g} cycles/s free run, "
              f"{r['step1_s'] * 1e6:.1f} us per 1-cycle step, "
              f"{r['command_s'] * 1e6:.1f} us per set+step+get command, "
              f"get {r['get_s'] * 1e6:.1f} us, set {r['set_s'] * 1e6:.1f} us")
