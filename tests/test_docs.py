"""The repository carries its own sources: no tracked file cites notes that
live outside it or issue numbers, and every relative link in README.md and
docs/*.md names a file that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: citations of material outside the repository: the project's private notes
#: ("REFERENCE §3", "DESIGN.md", "../shared/...") and issue numbers
#: ("issue 2", "issues 3", "issue #4")
FORBIDDEN = re.compile(
    r"REFERENCE\s*§|REFERENCE\.md|DESIGN\.md|\.\./shared\b|\b[Ii]ssues? #?\d+")
#: Markdown inline links and images: [text](target) / ![alt](target)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.decode().split("\0") if p]


def forbidden_citations(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line citing outside material."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if FORBIDDEN.search(line)]


def broken_links(md: Path) -> list[str]:
    """Relative link targets in ``md`` whose file does not exist."""
    bad = []
    for target in LINK.findall(md.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                              # URL, mailto:, in-page anchor
        path = target.split("#", 1)[0]
        if not (md.parent / path).exists():
            bad.append(target)
    return bad


def test_no_tracked_file_cites_outside_material():
    me = Path(__file__).resolve()
    hits = []
    for path in tracked_files():
        if path.resolve() == me or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue                              # binary file
        hits += [f"{path.relative_to(ROOT)}:{n}: {line}"
                 for n, line in forbidden_citations(text)]
    assert not hits, "cite the original source or a docs/ page instead:\n" + "\n".join(hits)


def test_relative_links_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bad = [f"{md.relative_to(ROOT)}: {t}" for md in pages for t in broken_links(md)]
    assert not bad, "links to missing files:\n" + "\n".join(bad)


#: a project file named in a code span: `hw/dma/hifn_rings.py`, `sim/profiles/x.toml`
CODE_PATH = re.compile(r"`((?:hw|sim|ocf|drivers|ocfsim|bench|tests|docs)/[\w./-]*\w)`")


def test_files_named_in_docs_exist():
    """When a file moves, the pages that name it must follow."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    gone = [f"{md.relative_to(ROOT)}: {p}" for md in pages
            for p in CODE_PATH.findall(md.read_text(encoding="utf-8"))
            if "*" not in p and not (ROOT / p).exists()]
    assert not gone, "pages name files that do not exist:\n" + "\n".join(gone)


@pytest.mark.parametrize("line, cited", [
    ("registers at REFERENCE §3's offsets", True),
    ("# see DESIGN.md", True),
    ("facts in ../shared/papers", True),
    ("(issue 2: default 4 MB)", True),
    ("fixed in issue #12", True),
    ("configuration mechanism #1 layout", False),
    ('f"{addr:#010x}"', False),
    ("OpenBSD hifn7751reg.h (HIFN_D_*)", False),
])
def test_citation_pattern(line, cited):
    assert bool(forbidden_citations(line)) is cited


def test_broken_link_detection(tmp_path):
    (tmp_path / "here.md").write_text("x")
    md = tmp_path / "index.md"
    md.write_text("[ok](here.md) [anchor](here.md#a) [web](https://example.org) "
                  "[self](#top) [gone](missing.md)")
    assert broken_links(md) == ["missing.md"]
