"""scripts/reproduce/: every script's smoke mode runs end to end and writes its page section
and figure (so no script rots), and the page machinery keeps the other sections intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "scripts" / "reproduce").glob("*.py") if p.stem != "common")
sys.path.insert(0, str(ROOT / "scripts" / "reproduce"))

from common import Reproduction, mean_spread, table  # noqa: E402


def test_the_five_comparisons_and_the_mnist1d_table_have_scripts():
    assert SCRIPTS == ["beer_vs_choco", "choco_consensus", "choco_vs_dpsgd", "dpsgd_bias", "lodadac_local_steps",
                       "mnist1d_baselines"]


def test_a_section_is_replaced_in_place_and_the_rest_of_the_page_is_kept(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("# Reproductions\n\nintro\n\n<!-- begin a -->\nold a\n<!-- end a -->\n\nbetween\n\n"
                   "<!-- begin b -->\nold b\n<!-- end b -->\n\nclosing words\n")
    Reproduction("a", "test", ["--doc", str(doc), "--figures", str(tmp_path)]).write_section("new a")
    Reproduction("c", "test", ["--doc", str(doc), "--figures", str(tmp_path)]).write_section("new c")
    text = doc.read_text()
    assert "old a" not in text and "new a" in text and "old b" in text and "closing words" in text
    assert text.index("intro") < text.index("new a") < text.index("between") < text.index("old b")
    assert text.rstrip().endswith("<!-- end c -->") and text.count("<!-- begin a -->") == 1


def test_table_and_spread_formatting():
    assert table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    assert mean_spread([0.5]) == "0.5000"
    assert mean_spread([1.0, 2.0, 3.0], 1) == "2.0 ± 1.0 (1.0–3.0)"
    assert mean_spread([float("nan")]) == "n/a"


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_smoke_mode_writes_its_section_and_figure(tmp_path, name):
    doc = tmp_path / "reproductions.md"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce" / f"{name}.py"), "--smoke",
                           "--doc", str(doc), "--figures", str(tmp_path), "--runs", str(tmp_path / "runs")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = doc.read_text()
    assert f"<!-- begin {name} -->" in text and f"<!-- end {name} -->" in text
    assert "|---|" in text and "nan" not in text.lower().replace("n/a", "")
    assert f"scripts/reproduce/{name}.py --smoke" in text
    figure = tmp_path / f"reproduce_{name}.png"
    assert f"figures/{figure.name}" in text
    pixels = matplotlib.image.imread(figure)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels.std() > 0.01  # drawn, not blank
