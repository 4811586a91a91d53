"""The wheel carries every subpackage and the whole conf tree (non-editable installs)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"compoptim"} | {f"compoptim.{p.parent.name}" for p in (ROOT / "compoptim").glob("*/__init__.py")}
    plugins = {f"hydra_plugins.{p.parent.name}" for p in (ROOT / "hydra_plugins").glob("*/__init__.py")}
    assert listed == on_disk | {"compoptim.conf"} | plugins


@pytest.mark.slow
def test_wheel_contains_the_conf_tree(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("compoptim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"compoptim/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert expected and expected <= names
    assert "compoptim/conf/config.yaml" in names
    assert "compoptim/config/schemas.json" in names  # the option schemas the CLI composes with
