"""Run a sweep's independent cells: here, on a local process pool, or on a Dask cluster.

A *cell* is one call ``fn(*args)`` of a picklable, module-level function with
picklable (typically JSON-able) arguments, e.g. one ``sim.experiment.run``
of a benchmark point. Cells are seeded and share nothing, so a cell's result
does not depend on which process runs it; :meth:`Sweep.map` returns the
results in the order of the cells whatever ran them:

- ``Sweep(jobs=1)``: one after the other in this process;
- ``Sweep(jobs=N)``: on N local worker processes (started from a fork server,
  so they inherit no threads or locks from this process);
- ``Sweep(dask=client)`` (:func:`connect`): submitted to a Dask distributed
  scheduler; its workers must have this package installed at the same
  version.

A Verilator cell builds its machine or fetches it from the per-user cache
(``sim.verilator.runner``, ``$OCFSIM_CACHE``); the cache locks per content
key, so two workers asking for one machine compile it once and the other
waits for it. Workers on several hosts share builds when ``OCFSIM_CACHE``
names a shared folder whose file system supports ``flock``.

A cell that raises (or whose worker dies) ends the sweep with
:class:`CellError` naming that cell; cells not yet started are cancelled,
so a failure never hangs the sweep. While cells run, a bar of cells done is
drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["Sweep", "CellError", "SweepError", "connect", "default_jobs", "from_args",
           "where_text", "report_failure"]

#: seconds to reach a Dask scheduler, and then to see at least one worker
#: there (a choice: a scheduler on a LAN answers in well under a second; a
#: cluster that has no worker after this long is not going to run the sweep)
CONNECT_TIMEOUT_S = 10
WORKER_TIMEOUT_S = 30


class SweepError(Exception):
    """The sweep cannot start (e.g. the Dask scheduler is unreachable): one line."""


class CellError(Exception):
    """Cell ``index`` (``fn(*args)``) raised, or its worker died.

    ``str()`` is one line naming the cell and the error; ``traceback`` is the
    cell's traceback as text (from the worker when it ran elsewhere).
    """

    def __init__(self, index: int, fn: Callable, args: tuple, error: BaseException,
                 tb: str = ""):
        first = (str(error).strip().splitlines() or [""])[0]
        super().__init__(f"cell {index} {_call_text(fn, args)} failed: "
                         f"{type(error).__name__}: {first}".rstrip(": "))
        self.index, self.cell, self.error, self.traceback = index, args, error, tb


def _call_text(fn: Callable, args: tuple) -> str:
    text = f"{getattr(fn, '__qualname__', fn)}({', '.join(map(repr, args))})"
    return text if len(text) <= 120 else text[:117] + "..."


def default_jobs() -> int:
    """Local worker processes by default: one per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def connect(address: str):
    """A ``distributed.Client`` of the scheduler at ``address`` with at least
    one worker; :class:`SweepError` (one line) when there is none to be had."""
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--dask needs the 'distributed' package "
                         "(pip install 'ocfsim[dask]')") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:   # unreachable, timed out, bad address
        raise SweepError(f"cannot reach the Dask scheduler at {address}: "
                         f"{' '.join(str(exc).split()) or type(exc).__name__}") from None
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise SweepError(f"the Dask scheduler at {address} has no worker "
                         f"after {WORKER_TIMEOUT_S} s") from exc
    return client


def where_text(result: dict) -> str:
    """Where a result's cells ran, for a table's footer: ``-j 2`` or ``Dask ADDR``."""
    return f"Dask {result['dask']}" if result.get("dask") else f"-j {result.get('jobs', 1)}"


def report_failure(prog: str, exc: CellError) -> int:
    """Print a failed cell's traceback, then one line saying which cell; status 1."""
    if exc.traceback:
        print(exc.traceback.rstrip(), file=sys.stderr)
    print(f"{prog}: {exc}", file=sys.stderr)
    return 1


def from_args(parser, args) -> "Sweep":
    """The sweep a benchmark's ``-j``/``--dask`` options ask for
    (``ocfsim.cli.sweep_options``); an unreachable scheduler is a usage error
    (one line, exit status 2)."""
    if args.dask is None:
        return Sweep(jobs=args.jobs)
    try:
        return Sweep(dask=connect(args.dask))
    except SweepError as exc:
        parser.error(f"argument --dask: {exc}")


class Sweep:
    """Where a sweep's cells run: ``jobs`` local processes, or a Dask ``client``."""

    def __init__(self, jobs: int = 1, dask=None):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, not {jobs}")
        self.jobs, self.dask = jobs, dask

    def describe(self) -> dict:
        """For a result's JSON: ``{"jobs": N, "dask": address or None}``."""
        return {"jobs": self.jobs if self.dask is None else None,
                "dask": self.dask.scheduler.address if self.dask is not None else None}

    def close(self) -> None:
        """Close the Dask client, if any (the cluster itself is left running)."""
        if self.dask is not None:
            self.dask.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def map(self, fn: Callable, cells: Sequence[tuple], on_result: Callable | None = None
            ) -> list[Any]:
        """``[fn(*args) for args in cells]``, run where this sweep runs them.

        ``on_result(result)`` is called here for each result in the order of
        the cells, as soon as it and all before it are done.
        """
        cells = [tuple(c) for c in cells]
        if not cells:
            return []
        ordered = _Ordered(len(cells), on_result)
        with _bar(len(cells)) as bar:
            ordered.bar = bar
            if self.dask is not None:
                _run_dask(self.dask, fn, cells, ordered)
            elif self.jobs == 1 or len(cells) == 1:
                _run_here(fn, cells, ordered)
            else:
                _run_pool(min(self.jobs, len(cells)), fn, cells, ordered)
        return ordered.results


class _Ordered:
    """Results by cell index; hands them to ``on_result`` in cell order."""

    _MISSING = object()

    def __init__(self, n: int, on_result: Callable | None):
        self.results: list[Any] = [self._MISSING] * n
        self._next = 0
        self._on_result = on_result
        self.bar = None

    def done(self, index: int, value: Any) -> None:
        self.results[index] = value
        if self.bar is not None:
            self.bar.update(1)
        while self._next < len(self.results) and self.results[self._next] is not self._MISSING:
            if self._on_result:
                _write_beside(self.bar, self._on_result, self.results[self._next])
            self._next += 1


def _write_beside(bar, fn: Callable, value: Any) -> None:
    """Call ``fn(value)``, which may print to stderr, without garbling the bar."""
    if bar is None:
        fn(value)
        return
    from tqdm import tqdm
    with tqdm.external_write_mode(file=sys.stderr):
        fn(value)


class _bar:
    """A tqdm bar of cells done on stderr when it is a terminal, else None."""

    def __init__(self, total: int):
        self.total, self.bar = total, None

    def __enter__(self):
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, unit="cell", desc="sweep", file=sys.stderr,
                            leave=False)
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _run_here(fn: Callable, cells: list[tuple], ordered: _Ordered) -> None:
    for i, args in enumerate(cells):
        try:
            value = fn(*args)
        except Exception as exc:          # noqa: BLE001 — reported as this cell's error
            raise CellError(i, fn, args, exc, traceback.format_exc()) from exc
        ordered.done(i, value)


def _run_pool(jobs: int, fn: Callable, cells: list[tuple], ordered: _Ordered) -> None:
    """On a local pool; on a failure, cells not started are cancelled and the
    running ones (at most ``jobs - 1``) finish before the error is raised."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([fn.__module__])   # workers fork with fn's imports done
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        index = {pool.submit(fn, *args): i for i, args in enumerate(cells)}
        pending = set(index)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=index.get):
                    ordered.done(index[fut], _pool_result(fut, index[fut], fn, cells))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _pool_result(fut, i: int, fn: Callable, cells: list[tuple]) -> Any:
    exc = fut.exception()
    if exc is None:
        return fut.result()
    if isinstance(exc, BrokenProcessPool):
        exc = BrokenProcessPool("its worker process died (killed, or crashed in native code)")
    cause = getattr(exc, "__cause__", None)        # the worker's traceback, as text
    raise CellError(i, fn, cells[i], exc, str(cause) if cause else "") from exc


def _run_dask(client, fn: Callable, cells: list[tuple], ordered: _Ordered) -> None:
    """On a Dask cluster; on a failure every other cell is cancelled."""
    from distributed import as_completed
    futures = [client.submit(fn, *args, pure=False) for args in cells]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            if fut.status != "finished":
                exc = fut.exception()
                tb = "".join(traceback.format_tb(fut.traceback())) if fut.traceback() else ""
                raise CellError(i, fn, cells[i], exc, tb) from exc
            ordered.done(i, fut.result())
    finally:
        client.cancel(futures)
