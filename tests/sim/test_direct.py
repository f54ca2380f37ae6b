"""The direct Verilator backend (``sim.verilator.direct``): the shim's stepping
and DRAM on the stub machine, VCD and FST, errors, the raw replay of a
direct run, and whole experiments on the real machines giving the same
results, monitor counters, final cycle count and host DRAM as the
cocotb-driven backend.

The first run builds the stub (~1 min) and, for the comparisons, each
machine's direct build (~1-2 min each on 2 loaded cores); cached afterwards.
"""

import pytest

from ocfsim.machines import crypto_machine, dma_machine
from sim.experiment import direct_build, verilator_build
from sim.verilator import direct, runner
from sim.verilator.raw import raw_harness, replay
from sim.verilator.runner import RESET_CYCLES, ExperimentError, run_built

from tests.sim.progress_bars import record_bars
from tests.sim.verilator_stub import DELAY_LATENCY, stub_design

pytestmark = pytest.mark.verilator

PERIOD_PS = 30_000          # 33 MHz PCI clock
STUB_EXECUTOR = "tests.sim.verilator_stub:execute"
COMPARE_EXECUTOR = "tests.sim.backend_compare:execute"


@pytest.fixture(scope="module")
def stub():
    verilog, ports = stub_design()
    return ports, verilog


def stub_run(stub, entry, trace=None, vcd=None, record=None, timeout_s=300, **args):
    ports, verilog = stub
    bdir = direct.build_direct(verilog, ports, trace=trace)
    entry = entry if ":" in entry else f"tests.sim.verilator_stub:{entry}"
    return direct.run_direct(bdir, {}, entry, args,
                             period_ps=PERIOD_PS, executor=STUB_EXECUTOR, vcd=vcd,
                             record=record, ports=ports, timeout_s=timeout_s)


def test_cached_build_found_without_export(tmp_path, monkeypatch):
    """A direct build is filed under the machine's content key: the second
    lookup does not export; another trace format is another build."""
    monkeypatch.setenv("OCFSIM_CACHE", str(tmp_path))
    # keys from a fixed digest: others editing hw/ meanwhile change nothing
    monkeypatch.setattr(runner, "source_digest", lambda *_: "frozen")
    monkeypatch.setattr(runner, "_process_start", lambda: float("inf"))
    exports, made = [], []

    def export():
        exports.append(1)
        return "module ocfsim_machine; endmodule\n", []

    def fake_build(verilog, ports, trace=None):
        bdir = tmp_path / "verilator" / f"build{len(made)}"
        bdir.mkdir(parents=True)
        (bdir / ".complete").write_text("")
        made.append(trace)
        return bdir

    monkeypatch.setattr(direct, "build_direct", fake_build)
    first = direct.cached_direct({"m": 1}, export, period_ps=PERIOD_PS)
    again = direct.cached_direct({"m": 1}, export, period_ps=PERIOD_PS)
    fst = direct.cached_direct({"m": 1}, export, period_ps=PERIOD_PS, trace="fst")
    assert first == again != fst
    assert len(exports) == 2 and made == [None, "fst"]


def test_step_exact_cycles(stub):
    """The same cycle counts the cocotb backend gives (test_verilator.py)."""
    r = stub_run(stub, "entry_steps", delays=[0, 1, 5, 40], limit=[1, 2, 7, 1000])
    for d, ran, port_delta in r["delay"]:
        assert ran == port_delta == d + DELAY_LATENCY     # returned on the attn change
    for n, ran, port_delta in r["limit"]:
        assert ran == n == port_delta                     # returned on the cycle limit
    assert r["split"] == [50, 100 + DELAY_LATENCY - 50, 1]


def test_dram_backdoor_and_rtl_copy(stub):
    r = stub_run(stub, "entry_dram", nbytes=65536)
    assert r["roundtrip_ok"] and r["copy_ok"] and r["odd_ok"]
    assert r["size"] == 256 * 1024
    assert r["copy_cycles"] == 2 * 65536 // 4 + DELAY_LATENCY   # two cycles a word


@pytest.mark.parametrize("kind", ["vcd", pytest.param("fst", marks=pytest.mark.slow)])
def test_trace_written(stub, tmp_path, kind):
    path = tmp_path / "wave" / f"stub.{kind}"
    r = stub_run(stub, "entry_steps", trace=kind, vcd=str(path), delays=[3], limit=[5])
    data = path.read_bytes()
    if kind == "vcd":
        text = data.decode()
        assert "$timescale" in text and "1ps" in text
        for name in ("clk", "attn", "cycle", "cmd_seq"):
            assert f" {name} " in text
        # rising edges at (k + 1/2) periods, the last falling edge after every cycle run
        stamps = [int(line[1:]) for line in text.splitlines() if line.startswith("#")]
        assert stamps[:3] == [0, PERIOD_PS // 2, PERIOD_PS]
        assert stamps[-1] == (RESET_CYCLES + r["_sim_cycles"]) * PERIOD_PS
    else:
        assert data[:1] == b"\x00" and len(data) > 100     # FST header block


def test_progress_relayed_to_parent(stub, monkeypatch):
    """A bar made inside the child shows in the parent, which draws it."""
    bars = record_bars(monkeypatch, direct)
    ports, verilog = stub
    r = direct.run_direct(direct.build_direct(verilog, ports), {},
                          "tests.sim.verilator_stub:entry_progress", {"total": 7},
                          period_ps=PERIOD_PS, executor=STUB_EXECUTOR, progress=True,
                          timeout_s=300)
    assert r["relayed"]
    assert [(b.total, b.unit, b.n, b.closed) for b in bars] == [(7, "step", 7, True)]


def test_timeout_kills_the_child(stub):
    """A step that would run for hours: the child is killed, the error says so."""
    with pytest.raises(ExperimentError, match="timed out after 1 s"):
        stub_run(stub, "entry_bench", timeout_s=1, free_cycles=10**12, empty_steps=1)


def test_trace_needs_a_tracing_build(stub, tmp_path):
    with pytest.raises(ExperimentError, match="model built without tracing"):
        stub_run(stub, "entry_steps", vcd=str(tmp_path / "x.vcd"), delays=[1], limit=[1])


def test_failing_entry_raises_with_traceback(stub):
    with pytest.raises(ExperimentError) as info:
        stub_run(stub, "entry_fail", message="boom from the stub")
    assert "ValueError: boom from the stub" in str(info.value)
    assert "Traceback" in str(info.value)


def test_bad_input_value_is_refused(stub):
    with pytest.raises(ExperimentError, match="does not fit input port 'cmd_op'"):
        stub_run(stub, "tests.sim.backend_compare:entry_bad_set")


def test_raw_replay_of_a_direct_run(stub, tmp_path):
    """The raw harness replays a record of a direct run to the same state."""
    ports, _ = stub
    record = tmp_path / "run.rec"
    r = stub_run(stub, "entry_dram", record=record, nbytes=4096)
    assert r["copy_ok"]
    bdir = direct.build_direct(stub[1], ports)
    out = replay(raw_harness(bdir, ports), record)
    assert out["cycles"] == RESET_CYCLES + r["_sim_cycles"]


# ---------------------------------------------------------------------------
# The same experiments on the direct and the cocotb backend
# ---------------------------------------------------------------------------

#: Result fields measured in wall time, which differ from run to run.
#: what may differ between the backends: wall time, and the clocks skipped
#: idle (the cocotb backend does not skip; tests/sim/test_skip.py shows that
#: skipping changes nothing else)
WALL_FIELDS = {"_wall_s", "wall_s", "cycles_per_s", "skipped"}

EXPERIMENTS = {
    "dma-copy": (lambda: dma_machine(1), "ocfsim.workloads.dma:dma_copy",
                 {"nbytes": 16384}),
    "bcm5820-devcrypto": (lambda: crypto_machine(["bcm5820"]),
                          "ocfsim.workloads.devcrypto:devcrypto",
                          {"alg": "3des-sha1", "size": 1024, "ops": 3, "threads": 2}),
    "hifn7751-devcrypto": (lambda: crypto_machine(["hifn7751"]),
                           "ocfsim.workloads.devcrypto:devcrypto",
                           {"alg": "3des", "size": 512, "ops": 3, "threads": 2}),
}


def _without_wall(value):
    if isinstance(value, dict):
        return {k: _without_wall(v) for k, v in value.items() if k not in WALL_FIELDS}
    if isinstance(value, list):
        return [_without_wall(v) for v in value]
    return value


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_same_as_cocotb_backend(name):
    make, entry, args = EXPERIMENTS[name]
    spec = make()
    common = dict(period_ps=spec.period_ps, executor=COMPARE_EXECUTOR, timeout_s=600)
    ours = direct.run_direct(direct_build(spec), spec.to_dict(), entry, args, **common)
    ref = run_built(verilator_build(make()), spec.to_dict(), entry, args, **common)
    assert ours["ok"] is True and ours["_outputs"]["mon_total"] > 0
    assert ours["_outputs"]["cycle"] == ref["_outputs"]["cycle"]
    assert ours["_sim_cycles"] == ref["_sim_cycles"] and ours["_steps"] == ref["_steps"]
    assert _without_wall(ours) == _without_wall(ref)
