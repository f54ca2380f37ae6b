"""ocfsim: the command line, standard machines and workloads.

The project installs seven top-level packages — ``hw``, ``sim``,
``netinet``, ``ocf``, ``drivers``, ``bench`` and ``ocfsim`` — the layers of
the design (see docs/architecture.md). The first six are generic names another package in
the same environment could also use; :func:`layout_conflicts` finds such a
clash without importing anything, and the CLI refuses to run with one
instead of silently importing someone else's ``sim``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["LAYERS", "layout_conflicts"]

#: the project's top-level packages besides ``ocfsim``, lowest layer first
LAYERS = ("hw", "sim", "netinet", "ocf", "drivers", "bench")


def layout_conflicts() -> list[str]:
    """One line per layer package that would be imported from somewhere
    other than this installation (empty when the layout is intact)."""
    home = Path(__file__).resolve().parent.parent
    out = []
    for name in LAYERS:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            out.append(f"package {name!r} of ocfsim is not installed")
            continue
        where = [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
        if not where and spec.origin:
            where = [Path(spec.origin).resolve().parent]
        if home / name not in where:
            shown = ", ".join(str(p) for p in where) or str(spec.origin)
            out.append(f"package {name!r} is imported from {shown}, not from ocfsim's {home / name}: "
                       f"another installed package uses the name")
    return out
