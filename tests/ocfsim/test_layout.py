"""The top-level layer packages must be ocfsim's own: a clash with another
package of the same name is found, not silently imported."""

import subprocess
import sys
from pathlib import Path

from ocfsim import LAYERS, layout_conflicts

ROOT = Path(__file__).resolve().parents[2]


def test_installed_layout_has_no_conflicts():
    assert layout_conflicts() == []
    assert set(LAYERS) <= {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}


def test_a_shadowing_package_is_reported(tmp_path):
    shadow = tmp_path / "sim"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    code = "import ocfsim; print('\\n'.join(ocfsim.layout_conflicts()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                         check=True).stdout
    assert "package 'sim' is imported from" in out and str(shadow) in out
    assert "'hw'" not in out


def test_cli_refuses_to_run_with_a_shadowed_layer(tmp_path):
    (tmp_path / "drivers").mkdir()
    (tmp_path / "drivers" / "__init__.py").write_text("")
    r = subprocess.run([sys.executable, "-m", "ocfsim.cli", "lspci"], capture_output=True,
                       text=True, cwd=tmp_path,
                       env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("ocfsim: error: package 'drivers' is imported from")
    assert len(r.stderr.splitlines()) == 1
