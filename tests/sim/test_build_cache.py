"""The Verilator build cache: keyed on content only, per user, found without elaborating.

Nothing here compiles: ``runner._build_into`` is replaced by a stand-in that
makes an empty build, so the tests check the cache's keys, location, index
and locking, not Verilator.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ocfsim.machines import crypto_machine, dma_machine
from sim import experiment
from sim.verilator import runner

REPO = Path(runner.__file__).resolve().parent.parent.parent
PERIOD_PS = 30_000


def checkout(dest: Path) -> Path:
    """A copy of the trees the key reads, as another checkout would have them
    (and enough of ``sim`` to import the runner from it)."""
    for tree in ("hw", "sim/verilator"):
        shutil.copytree(REPO / tree, dest / tree,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "sim" / "__init__.py", dest / "sim" / "__init__.py")
    return dest


def key(root: Path, spec: dict | None = None, trace: bool = False) -> str:
    spec = spec if spec is not None else dma_machine(1).to_dict()
    return runner.machine_key(spec, period_ps=PERIOD_PS, trace=trace, root=root)


def fake_build(calls: list):
    """A stand-in for ``runner._build_into`` that records its calls."""
    def build_into(bdir, *a, **k):
        calls.append(bdir)
        (bdir / "obj").mkdir()
    return build_into


@pytest.fixture
def frozen(tmp_path, monkeypatch):
    """Keys from a copy of the sources taken now: others editing ``hw/`` in
    this working tree meanwhile must not turn a hit into a miss."""
    root = checkout(tmp_path / "frozen")
    real = runner.source_digest
    monkeypatch.setattr(runner, "source_digest", lambda *_: real(root))
    # and the code in memory counts as the code hashed, whatever was edited
    monkeypatch.setattr(runner, "_process_start", lambda: float("inf"))
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch, frozen):
    monkeypatch.setenv("OCFSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_key_same_for_two_checkouts_changes_with_a_byte(tmp_path):
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "elsewhere" / "b")
    assert key(a) == key(b)
    (b / "hw" / "__pycache__").mkdir(exist_ok=True)      # compiled files do not count
    (b / "hw" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert key(a) == key(b)
    bus = b / "hw" / "pci" / "bus.py"
    text = bus.read_bytes()
    bus.write_bytes(text[:-1] + bytes([text[-1] ^ 1]))    # one bit of one hw/ byte
    assert key(a) != key(b)
    bus.write_bytes(text)
    assert key(a) == key(b)
    dram = b / "sim" / "verilator" / "ocfsim_dram.c"
    dram.write_text(dram.read_text() + "\n")              # the bench's support files count
    assert key(a) != key(b)


def test_key_follows_spec_and_tracing(tmp_path):
    root = checkout(tmp_path / "a")
    base = key(root)
    assert key(root, trace=True) != base
    assert key(root, crypto_machine(["bcm5820"]).to_dict()) != base
    assert key(root, dma_machine(2).to_dict()) != base


def test_key_has_no_paths(tmp_path, monkeypatch):
    """Nothing that names a folder goes into the key: not the checkout, not the venv."""
    spec = dma_machine(1).to_dict()
    seen = {}
    real = runner._digest

    def spy(k):
        seen["key"] = json.dumps(k)
        return real(k)
    monkeypatch.setattr(runner, "_digest", spy)
    runner.machine_key(spec, period_ps=PERIOD_PS, trace=False, root=checkout(tmp_path / "a"))
    for folder in (str(tmp_path), str(REPO), sys.prefix, str(Path.home())):
        assert folder not in seen["key"]


def test_exported_verilog_names_no_path():
    """The Verilog (the key of the compiled build) holds no source path, so
    checkouts share builds and moving lines in hw/ does not recompile."""
    text, ports = experiment.export_verilog(dma_machine(1))
    assert "module ocfsim_machine" in text and ports == dma_machine(1).ports()
    assert str(REPO) not in text and ".py:" not in text


def test_cache_folder_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("OCFSIM_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runner.cache_root() == tmp_path / "home" / ".cache" / "ocfsim"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runner.cache_root() == tmp_path / "xdg" / "ocfsim"
    monkeypatch.setenv("OCFSIM_CACHE", str(tmp_path / "mine"))
    assert runner.cache_root() == tmp_path / "mine"


def test_hit_does_not_elaborate(cache, monkeypatch, capsys):
    """The second run of a machine finds its build without exporting Verilog."""
    calls, runs = [], []
    monkeypatch.setattr(runner, "_build_into", fake_build(calls))
    monkeypatch.setattr(runner, "run_built", lambda bdir, *a, **k: runs.append(bdir) or {})
    spec = dma_machine(1)
    experiment.run(spec, "ocfsim.workloads.dma:lspci", backend=experiment.COCOTB)
    assert "building the machine with Verilator, ~1 min, cached afterwards" in \
        capsys.readouterr().err

    def no_export(*a, **k):
        raise AssertionError("a cache hit elaborated the machine")
    monkeypatch.setattr("amaranth.back.verilog.convert", no_export)
    monkeypatch.setattr(experiment, "export_verilog", no_export)
    experiment.run(dma_machine(1), "ocfsim.workloads.dma:lspci", backend=experiment.COCOTB)
    assert len(calls) == 1 and runs[0] == runs[1] and (runs[0] / ".complete").exists()
    assert capsys.readouterr().err == ""


def test_code_edited_while_running_is_not_indexed(cache, monkeypatch):
    """A source edited since this process imported it: the build of the code
    in memory is made but not filed under the key of the content on disk."""
    calls, exports = [], []
    monkeypatch.setattr(runner, "_build_into", fake_build(calls))
    monkeypatch.setattr(runner, "_process_start", lambda: 0.0)   # every file is newer

    def export():
        exports.append(1)
        return "module ocfsim_machine(); endmodule\n", [("attn", "out", 16)]
    a = runner.cached_machine({"m": 1}, export, period_ps=PERIOD_PS)
    b = runner.cached_machine({"m": 1}, export, period_ps=PERIOD_PS)
    assert a == b and len(calls) == 1 and len(exports) == 2    # built once, never indexed
    index = cache / "verilator" / "machines"
    assert [p for p in index.iterdir() if p.suffix != ".lock"] == []


def test_same_verilog_shares_one_build(cache, monkeypatch):
    """Two keys whose Verilog is the same (e.g. a comment changed in hw/) share a build."""
    calls = []
    monkeypatch.setattr(runner, "_build_into", fake_build(calls))
    export = lambda: ("module ocfsim_machine(); endmodule\n",
                      [("attn", "out", 16), ("cycle", "out", 64)])
    a = runner.cached_machine({"machine": 1}, export, period_ps=PERIOD_PS)
    b = runner.cached_machine({"machine": 2}, export, period_ps=PERIOD_PS)
    assert a == b and len(calls) == 1
    index = cache / "verilator" / "machines"
    assert len([p for p in index.iterdir() if p.suffix != ".lock"]) == 2   # two entries


def test_threads_export_and_build_once(cache, monkeypatch):
    calls, exports, out = [], [], []
    monkeypatch.setattr(runner, "_build_into", fake_build(calls))

    def export():
        exports.append(1)
        time.sleep(0.3)        # long enough for the other thread to queue on the lock
        return "module ocfsim_machine(); endmodule\n", [("attn", "out", 16)]
    threads = [threading.Thread(target=lambda: out.append(
        runner.cached_machine({"m": 1}, export, period_ps=PERIOD_PS))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(exports) == 1 and len(calls) == 1 and out[0] == out[1]


BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sim.verilator import runner
    log = Path(sys.argv[1])

    def note(word):
        with open(log, "a") as f:
            f.write(word + "\\n")

    def started():
        return log.read_text().split().count("start") if log.exists() else 0

    def build_into(bdir, *a, **k):
        note("build")
        time.sleep(1.0)
        (bdir / "obj").mkdir()

    def export():
        note("export")
        return "module ocfsim_machine(); endmodule\\n", [("attn", "out", 16)]

    runner._build_into = build_into
    note("start")
    deadline = time.monotonic() + 60
    while started() < 2 and time.monotonic() < deadline:    # both miss at once
        time.sleep(0.05)
    print(runner.cached_machine({"m": "two processes"}, export, period_ps=30000))
""")


def test_processes_build_once(cache, frozen, tmp_path):
    """Two processes (two pytest-xdist workers, two checkouts) miss at once:
    one exports and builds, the other waits and uses that build."""
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(frozen)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(log)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dirs = {Path(out.strip()) for out, _ in outs}
    assert len(dirs) == 1 and (dirs.pop() / ".complete").exists()
    assert sorted(log.read_text().split()) == ["build", "export", "start", "start"]
    assert sum("building the machine" in err for _, err in outs) == 1
    assert not list((cache / "verilator").glob("*.tmp"))
