"""pyproject.toml: what the installed code imports is a runtime dependency
(directly or through one) or in an optional feature's extra (``dask``);
test-only packages stay in the ``test`` extra."""

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PACKAGES = ("hw", "sim", "netinet", "ocf", "drivers", "ocfsim", "bench")


def _runtime_closure() -> set[str]:
    """Runtime dependencies and the optional features' extras (not ``test``)
    and, recursively, what they require (their extras left out)."""
    todo = [Requirement(r) for r in PROJECT["dependencies"]]
    todo += [Requirement(r) for extra, reqs in PROJECT["optional-dependencies"].items()
             if extra != "test" for r in reqs]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in requires(name) or []]
        except PackageNotFoundError:
            pass
    return seen


def _imported_roots() -> set[str]:
    roots = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    roots |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    roots.add(node.module.split(".")[0])
    return roots - set(sys.stdlib_module_names) - set(PACKAGES)


def test_every_import_of_the_installed_code_is_a_runtime_dependency():
    closure = _runtime_closure()
    owners = packages_distributions()
    missing = {root: owners.get(root) for root in _imported_roots()
               if not {canonicalize_name(d) for d in owners.get(root, [])} & closure}
    assert not missing


def test_test_only_packages_are_not_runtime_dependencies():
    direct = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert not direct & {"pytest", "vcdvcd", "hypothesis", "pytest-xdist"}
    assert "cryptography>=43" in [str(Requirement(r)) for r in PROJECT["dependencies"]]


def test_optional_features_are_in_the_test_extra():
    # the suite exercises every optional feature (the dask extra: a LocalCluster)
    test = {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["test"]}
    for extra, reqs in PROJECT["optional-dependencies"].items():
        assert {canonicalize_name(Requirement(r).name) for r in reqs} <= test, extra
