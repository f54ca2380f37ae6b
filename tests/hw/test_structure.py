"""Components a reader can hold in their head: no ``elaborate()`` in hw/
longer than ~150 lines (a long one is split into components or helpers)."""

import ast
from pathlib import Path

HW = Path(__file__).resolve().parents[2] / "hw"
LIMIT = 155          # lines, docstring and comments included


def test_no_elaborate_is_longer_than_the_limit():
    long = []
    for path in sorted(HW.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "elaborate":
                n = node.end_lineno - node.lineno + 1
                if n > LIMIT:
                    long.append(f"{path.relative_to(HW.parent)}:{node.lineno} {n} lines")
    assert not long, "elaborate() too long:\n" + "\n".join(long)
