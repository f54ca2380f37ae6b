"""ocfsim.sweep: one small pysim sweep gives the same rows in this process, on
a local pool and on a Dask cluster (``distributed.LocalCluster`` with worker
processes); a failing cell, or a dead worker, is that cell's error; ``-j`` and
``--dask`` on the command line, a bad or unreachable address (or a scheduler
without workers) being one line and exit status 2. (The Verilator cache builds
a machine once for concurrent processes: tests/sim/test_build_cache.py.)"""

import subprocess
import sys

import pytest

from bench import null, pci_bandwidth
from ocfsim import sweep as sweep_mod
from ocfsim.cli import main
from ocfsim.sweep import CellError, Sweep

#: row fields that time the run (wall clock), not what was simulated
TIMING = {"wall_s", "cycles_per_s"}


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:   # any free port
        yield c


@pytest.fixture(scope="module")
def dask_sweep(cluster):
    with Sweep(dask=sweep_mod.connect(cluster.scheduler_address)) as s:
        yield s


def simulated(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def small_pci(sweep):
    """Two pysim DMA points (one card copies 16 bytes in bursts of 1 and 4
    dwords), ~1-2 s each, mostly elaboration."""
    return pci_bandwidth.run_bench(("pysim",), 16, (1, 4), (1,), sweep=sweep, speed=False)


def test_same_rows_here_on_a_pool_and_on_dask(dask_sweep):
    here = small_pci(Sweep(jobs=1))
    rows = simulated(here["rows"])
    assert [(r["burst"], r["ok"]) for r in rows] == [(1, True), (4, True)]
    # a longer burst moves the same bytes in fewer bus cycles (PCI 2.3 burst cost)
    assert rows[0]["sim_cycles"] > rows[1]["sim_cycles"]
    pool = small_pci(Sweep(jobs=2))
    dask = small_pci(dask_sweep)
    assert simulated(pool["rows"]) == rows
    assert simulated(dask["rows"]) == rows
    assert (here["jobs"], pool["jobs"], dask["jobs"]) == (1, 2, None)
    assert dask["dask"].startswith("tcp://") and here["dask"] is None


def test_null_bench_rows_do_not_depend_on_the_pool():
    one = null.run((64, 1024), (1, 2), sweep=Sweep(jobs=1))
    two = null.run((64, 1024), (1, 2), sweep=Sweep(jobs=2))
    assert two["rows"] == one["rows"]
    assert [(r["threads"], r["size"]) for r in two["rows"]] == [(1, 64), (1, 1024),
                                                              (2, 64), (2, 1024)]


def test_results_come_back_in_cell_order():
    seen = []
    cells = [("sleep 1; echo first",), ("echo second",)]     # the second finishes first
    assert Sweep(jobs=2).map(subprocess.getoutput, cells, seen.append) == ["first", "second"]
    assert seen == ["first", "second"]


@pytest.mark.parametrize("where", ["here", "pool", "dask"])
def test_a_failing_cell_is_that_cells_error(where, request):
    s = request.getfixturevalue("dask_sweep") if where == "dask" else \
        Sweep(jobs=1 if where == "here" else 2)
    with pytest.raises(CellError) as info:
        s.map(int, [("1",), ("x",), ("3",)])
    exc = info.value
    assert exc.index == 1 and exc.cell == ("x",) and isinstance(exc.error, ValueError)
    assert str(exc).startswith("cell 1 int('x') failed: ValueError: invalid literal")
    assert len(str(exc).splitlines()) == 1


#: run in a process of its own: the pool's forkserver and the module's Dask
#: cluster (worker processes of this same pytest worker) must not share a
#: process with workers that die on purpose
DEAD_WORKER = """
import os, sys
from ocfsim.sweep import CellError, Sweep
try:
    Sweep(jobs=2).map(os._exit, [(3,), (3,)])
except CellError as exc:
    print(exc)
    sys.exit(0)
sys.exit(1)
"""


def test_a_dead_worker_is_that_cells_error():
    done = subprocess.run([sys.executable, "-c", DEAD_WORKER], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr      # the sweep's process survives it
    assert "worker process died" in done.stdout and len(done.stdout.splitlines()) == 1


def test_bench_takes_jobs(capsys):
    assert main(["bench", "null", "--sizes", "64", "--procs", "1,2", "-j", "2", "--json"]) == 0
    import json
    res = json.loads(capsys.readouterr().out)
    assert res["jobs"] == 2 and res["dask"] is None and len(res["rows"]) == 2


@pytest.mark.parametrize("addr, says", [("x y:1", "is not HOST:PORT"),
                                        ("udp://h:1", "scheme 'udp'"),
                                        ("127.0.0.1:1", "cannot reach the Dask scheduler")])
def test_bad_dask_address_is_one_line_and_status_2(addr, says, monkeypatch, capsys):
    monkeypatch.setattr(sweep_mod, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(SystemExit) as info:
        main(["bench", "fig1", "--card", "null", "--sizes", "16", "--backend", "pysim",
              "--dask", addr, "--json"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    assert len(err.splitlines()) == 1 and says in err and "--dask" in err, err


def test_bench_runs_on_dask(cluster, capsys):
    assert main(["bench", "null", "--sizes", "64,1024", "--procs", "1",
                 "--dask", cluster.scheduler_address, "--json"]) == 0
    import json
    res = json.loads(capsys.readouterr().out)
    assert res["dask"] == cluster.scheduler_address and res["jobs"] is None
    assert res["rows"] == null.run((64, 1024), (1,))["rows"]


def test_a_scheduler_without_workers_is_refused(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(sweep_mod, "WORKER_TIMEOUT_S", 1)
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp",
                                  dashboard_address=":0") as empty:
        with pytest.raises(sweep_mod.SweepError, match="has no worker after 1 s"):
            sweep_mod.connect(empty.scheduler_address)
