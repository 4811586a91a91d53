"""compoptim-report on damaged run folders: each damage is one warning line naming the file, the
run is listed as unreadable (or, for what can be left out, reported without it), the good runs'
numbers stay right, and nothing of the damaged run reaches a table or a figure.

Every case starts from real runs (two seeds of one tiny training) and a third run, a copy of the
first with seed 5 and a test accuracy of MARK in every evaluation, which is then damaged."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import compoptim.cli.report as cli
from compoptim.report import load_run
from tests.test_trainer import METRIC_COLUMNS

MARK = 0.987654  # the damaged run's test accuracy: it must appear in no table and no figure
WARNING = "compoptim-report: warning: "
# Each case renders a whole report (tables and figures): the class runs in the full suite, not the quick subset.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    import torch

    from compoptim.comm import run_local
    from compoptim.topology import ring
    from compoptim.train import Trainer
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("real")
    for seed in (0, 1):
        cfg = compose_config("trainer.epochs=1", "model=mlp", "model.hidden=[8]", f"seed={seed}",
                             "trainer.save_model=false")
        run_local(ring(2), lambda comm, cfg=cfg, seed=seed: Trainer(cfg, comm, root / str(seed), torch.device("cpu"),
                                                                    log=lambda m: None).fit())
    return root


@pytest.fixture
def tree(tmp_path, real_runs) -> Path:
    """runs/0 and runs/1: the real runs; runs/2: the run to damage (seed 5, test accuracy MARK)."""
    root = tmp_path / "runs"
    for seed in ("0", "1"):
        shutil.copytree(real_runs / seed, root / seed)
    victim = root / "2"
    shutil.copytree(real_runs / "0", victim)
    config = yaml.safe_load((victim / "config.resolved.yaml").read_text())
    config["seed"] = 5
    (victim / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    with open(victim / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(victim / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows([{**row, "test_acc": repr(MARK)} for row in rows])
    edit_summary(victim, test_acc=MARK)
    return root


def edit_summary(run: Path, **fields) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary.update(fields)
    (run / "summary.json").write_text(json.dumps(summary, indent=2))


def good_finals(root: Path) -> list[float]:
    return [json.loads((root / s / "summary.json").read_text())["test_acc"] for s in ("0", "1")]


def metric_rows(run: Path) -> int:
    return len((run / "metrics.csv").read_text().splitlines()) - 1


def cut_last_row(run: Path, keep: float = 0.5) -> None:
    """metrics.csv as a partial write leaves it: the last row cut after ``keep`` of its text."""
    text = (run / "metrics.csv").read_text()
    start = text[:-1].rfind("\n") + 1
    (run / "metrics.csv").write_text(text[: start + int((len(text) - 1 - start) * keep)])


def insert_bytes(run: Path, name: str) -> None:
    data = (run / name).read_bytes()
    (run / name).write_bytes(data[:20] + b"\xff\xfe" + data[20:])


def write(name: str, text: str):
    return lambda run: (run / name).write_text(text)


def replace_cell(run: Path, line: int, column: str, text: str) -> None:
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    cells = lines[line - 1].rstrip("\n").split(",")
    cells[header.index(column)] = text
    lines[line - 1] = ",".join(cells) + "\n"
    (run / "metrics.csv").write_text("".join(lines))


def drop_cells(run: Path) -> None:
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    lines[1] = ",".join(lines[1].split(",")[:3]) + "\n"
    (run / "metrics.csv").write_text("".join(lines))


def drop_last_row(run: Path) -> None:
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (run / "metrics.csv").write_text("".join(lines[:-1]))


def header_only(run: Path) -> None:
    (run / "metrics.csv").write_text((run / "metrics.csv").read_text().splitlines(keepends=True)[0])


def folder_instead(name: str):
    def damage(run: Path) -> None:
        (run / name).unlink()
        (run / name).mkdir()
    return damage


# damage -> (the file named in the warning, what the warning says about it)
UNREADABLE = {
    "summary_list": (write("summary.json", "[1, 2]"), "summary.json", "not a JSON object (a list)"),
    "summary_string": (write("summary.json", '"finished"'), "summary.json",
                       "not a JSON object (a string ('finished'))"),
    "summary_number": (write("summary.json", "42"), "summary.json", "not a JSON object (a number (42))"),
    "summary_null": (write("summary.json", "null"), "summary.json", "not a JSON object (null)"),
    "summary_empty_object": (write("summary.json", "{}"), "summary.json", "no status"),
    "summary_empty_file": (write("summary.json", ""), "summary.json", "empty file"),
    "summary_invalid_json": (write("summary.json", '{"status": "finished", "test_acc": 0.'), "summary.json",
                             "not valid JSON ("),
    "summary_not_utf8": (lambda run: insert_bytes(run, "summary.json"), "summary.json",
                         "not UTF-8 text (byte 0xff at offset 20)"),
    "summary_status_null": (lambda run: edit_summary(run, status=None), "summary.json",
                            "status is null, not a word such as finished"),
    "summary_status_number": (lambda run: edit_summary(run, status=3), "summary.json", "status is a number (3)"),
    "summary_bytes_text": (lambda run: edit_summary(run, bytes_sent_per_node="lots"), "summary.json",
                           "bytes_sent_per_node is a string ('lots'), not a number"),
    "summary_code_number": (lambda run: edit_summary(run, code=5), "summary.json",
                            "code is a number (5), not an object"),
    "summary_ratio_text": (lambda run: edit_summary(run, compression={"ratio": "x"}), "summary.json",
                           "compression.ratio is a string ('x'), not a number"),
    "summary_hosts_number": (lambda run: edit_summary(run, hosts=3), "summary.json", "hosts is a number (3)"),
    "summary_folder": (folder_instead("summary.json"), "summary.json", "a folder, not a file"),
    "config_missing": (lambda run: (run / "config.resolved.yaml").unlink(), "config.resolved.yaml", "missing"),
    "config_empty": (write("config.resolved.yaml", "\n"), "config.resolved.yaml", "empty file"),
    "config_list": (write("config.resolved.yaml", "- a\n- b\n"), "config.resolved.yaml",
                    "not a YAML mapping of settings (a list)"),
    "config_text": (write("config.resolved.yaml", "hello\n"), "config.resolved.yaml",
                    "not a YAML mapping of settings (a string ('hello'))"),
    "config_invalid_yaml": (write("config.resolved.yaml", "seed: [1, 2\n"), "config.resolved.yaml",
                            "not valid YAML"),
    "config_not_utf8": (lambda run: insert_bytes(run, "config.resolved.yaml"), "config.resolved.yaml",
                        "not UTF-8 text"),
    "metrics_cut_finished": (cut_last_row, "metrics.csv",
                             "last line cut mid-row (partial write), so the finished run's last evaluation is lost"),
    "metrics_rows_lost": (drop_last_row, "metrics.csv",
                          "its last row is step 0, but summary.json says the run finished at step"),
    "metrics_header_only": (header_only, "metrics.csv", "a header and no rows, though the run finished"),
    "metrics_empty": (write("metrics.csv", ""), "metrics.csv", "empty file (not even a header)"),
    "metrics_missing": (lambda run: (run / "metrics.csv").unlink(), "metrics.csv", "missing, though the run finished"),
    "metrics_non_numeric": (lambda run: replace_cell(run, 3, "test_acc", "abc"), "metrics.csv",
                            "line 3, column test_acc: 'abc' is not a number"),
    "metrics_true": (lambda run: replace_cell(run, 2, "step", "True"), "metrics.csv",
                     "line 2, column step: 'True' is not a number"),
    # the header's width: the trainer's metric columns (METRIC_COLUMNS in test_trainer.py)
    "metrics_short_row": (drop_cells, "metrics.csv", f"line 2 has 3 cells, the header {len(METRIC_COLUMNS)}"),
    "metrics_no_epoch": (lambda run: (run / "metrics.csv").write_text(
        (run / "metrics.csv").read_text().replace("epoch,", "epok,", 1)), "metrics.csv",
        "the header has no epoch column"),
    "metrics_not_utf8": (lambda run: insert_bytes(run, "metrics.csv"), "metrics.csv", "not UTF-8 text"),
    "metrics_nul": (lambda run: (run / "metrics.csv").write_bytes(
        (run / "metrics.csv").read_bytes().replace(b",0.0,", b",0.\x000,", 1)), "metrics.csv",
        "line 2, column sim_time_s: '0.\\x000' is not a number"),
}


def report(root: Path, capsys, *args: str) -> tuple[str, list[str]]:
    """compoptim-report in-process; it must succeed (exit 0) without a traceback: (stderr, stdout)."""
    cli.main([str(root), "--format", "png", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err, captured.out


@pytest.fixture
def drawn(monkeypatch) -> dict[str, list[np.ndarray]]:
    """Every number each figure draws (lines and shaded bands), by figure file stem."""
    figures: dict[str, list[np.ndarray]] = {}
    save = cli.save

    def keep(fig, stem, formats):
        figures[stem.name] = [np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.get_lines()]
        figures[stem.name] += [np.asarray(c.get_paths()[0].vertices[:, 1], dtype=float)
                               for ax in fig.axes for c in ax.collections if c.get_paths()]
        return save(fig, stem, formats)

    monkeypatch.setattr(cli, "save", keep)
    return figures


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_good_runs_reported(root: Path, drawn, victim_unfinished: bool = False) -> None:
    """The two real runs are one group with their own numbers; nothing of the damaged run is in a number
    or a figure (an unfinished one is in the group, counted in no number, its rows in evaluations.csv)."""
    out = root / "report"
    (row,) = read_csv(out / "summary.csv")
    assert row["finished"] == "2" and (row["runs"], row["seeds"]) == (("3", "0,1,5") if victim_unfinished
                                                                      else ("2", "0,1"))
    assert float(row["final test_acc"]) == pytest.approx(np.mean(good_finals(root)))
    evaluations = read_csv(out / "evaluations.csv")
    good = [r for r in evaluations if r["run"] != str(root / "2")]
    assert {r["run"] for r in good} == {str(root / "0"), str(root / "1")}
    assert len(good) == metric_rows(root / "0") + metric_rows(root / "1")
    assert all(not np.isclose(float(r["test_acc"]), MARK) for r in good)
    assert victim_unfinished or len(good) == len(evaluations)
    curve = drawn["test_acc_vs_epoch"][0]
    assert curve[-1] == pytest.approx(np.mean(good_finals(root)))
    for stem, values in drawn.items():
        assert not any(np.isclose(v, MARK).any() for v in values), stem


@pytest.mark.parametrize("damage", list(UNREADABLE))
def test_a_damaged_run_is_one_warning_and_listed_unreadable(tree, capsys, drawn, damage):
    hurt, file, what = UNREADABLE[damage]
    victim = tree / "2"
    hurt(victim)
    err, out = report(tree, capsys)
    warnings = err.strip().splitlines()
    assert len(warnings) == 1, err
    assert warnings[0].startswith(f"{WARNING}{victim / file}: {what}") and warnings[0].endswith(
        "; listed as unreadable")
    listing = {r["run"]: r for r in read_csv(tree / "report" / "runs.csv")}
    assert listing[str(victim)]["status"] == "unreadable"
    assert listing[str(victim)]["error"].startswith(f"{file}: {what}")
    assert not listing[str(victim)]["group"] and not listing[str(victim)]["test_acc"]
    assert listing[str(tree / "0")]["status"] == "finished"
    assert f"unreadable ({file}: " in (tree / "report" / "index.html").read_text()
    assert "unreadable" in out  # the console listing shows it
    assert_good_runs_reported(tree, drawn)


@pytest.mark.parametrize("keep", [0.5, 0.01, 0.99], ids=["mid_row", "its_first_cell", "in_its_last_cell"])
def test_a_cut_last_row_of_an_unfinished_run_is_dropped_with_a_warning(tree, capsys, drawn, keep):
    victim = tree / "2"
    edit_summary(victim, status="running")
    full = read_csv(victim / "metrics.csv")
    cut_last_row(victim, keep)
    err, _ = report(tree, capsys)
    assert err.strip().splitlines() == [
        f"{WARNING}{victim / 'metrics.csv'}: last line cut mid-row (partial write); that row is left out"]
    rows = [r for r in read_csv(tree / "report" / "evaluations.csv") if r["run"] == str(victim)]
    assert len(rows) == len(full) - 1
    # the rows kept are the complete ones, cell for cell: no half row, no row of NaN
    for kept, original in zip(rows, full):
        assert [float(kept[k] or "nan") for k in original] == pytest.approx(
            [float(original[k]) for k in original], nan_ok=True)
    listing = {r["run"]: r for r in read_csv(tree / "report" / "runs.csv")}
    assert listing[str(victim)]["status"] == "running"
    assert "that row is left out" in (tree / "report" / "index.html").read_text()
    assert_good_runs_reported(tree, drawn, victim_unfinished=True)


@pytest.mark.parametrize("damage", ["no_metrics", "header_only"])
def test_a_run_with_no_evaluations_yet_is_listed_running_without_a_warning(tree, capsys, drawn, damage):
    victim = tree / "2"
    edit_summary(victim, status="running")
    if damage == "no_metrics":
        (victim / "metrics.csv").unlink()
    else:
        header_only(victim)
    err, _ = report(tree, capsys)
    assert err == ""
    listing = {r["run"]: r for r in read_csv(tree / "report" / "runs.csv")}
    assert listing[str(victim)]["status"] == "running"
    assert_good_runs_reported(tree, drawn, victim_unfinished=True)


def test_only_runs_without_evaluations_still_report_their_listing(tmp_path, real_runs, capsys):
    root = tmp_path / "runs"
    shutil.copytree(real_runs / "0", root / "0")
    edit_summary(root / "0", status="running")
    (root / "0" / "metrics.csv").unlink()
    err, _ = report(root, capsys)
    assert err == ""
    assert read_csv(root / "report" / "runs.csv")[0]["status"] == "running"
    assert not list((root / "report").glob("test_acc_vs_*.png"))  # no curve without a point
    assert (root / "report" / "index.html").exists()


DRAWINGS = {
    "topology_empty": (write("topology.json", ""), "topology.json", "empty file"),
    "topology_object": (write("topology.json", "{}"), "topology.json", "no name"),
    "topology_list": (write("topology.json", "[]"), "topology.json", "not a JSON object (a list)"),
    "topology_bad_edges": (lambda run: (run / "topology.json").write_text(json.dumps(
        {**json.loads((run / "topology.json").read_text()), "rounds": [{"edges": [[0, 7, 0.5]]}]})),
        "topology.json", "round 0: edges are not a list of [i, j, weight] with nodes 0..1"),
    "topology_not_utf8": (lambda run: insert_bytes(run, "topology.json"), "topology.json", "not UTF-8 text"),
    "partition_ragged": (write("partition.json", json.dumps({"partition": "iid", "label_histogram": [[1, 2], [3]]})),
                         "partition.json", "label_histogram is not one list of class counts"),
    "partition_invalid": (write("partition.json", "{"), "partition.json", "not valid JSON"),
    "partition_not_utf8": (lambda run: insert_bytes(run, "partition.json"), "partition.json", "not UTF-8 text"),
}


@pytest.mark.parametrize("damage", list(DRAWINGS))
def test_a_damaged_drawing_is_not_drawn_and_the_run_still_counts(tree, capsys, drawn, damage):
    hurt, file, what = DRAWINGS[damage]
    victim = tree / "2"
    hurt(victim)
    err, _ = report(tree, capsys)
    (warning,) = err.strip().splitlines()
    assert warning.startswith(f"{WARNING}{victim / file}: {what}") and warning.endswith("; not drawn")
    out = tree / "report"
    (row,) = read_csv(out / "summary.csv")
    assert row["runs"] == "3" and row["seeds"] == "0,1,5" and row["finished"] == "3"
    assert float(row["final test_acc"]) == pytest.approx(np.mean([*good_finals(tree), MARK]))
    # the other runs' topology and partitions (the seeds split the data apart) are still drawn, once each
    assert [p.name for p in out.glob("topology-*.png")] == ["topology-ring-n2.png"]
    assert sorted(p.name for p in out.glob("partition-*.png")) == ["partition-iid-n2-2.png", "partition-iid-n2.png"]


@pytest.mark.parametrize("field", ["test_acc", "topology", "n_nodes", "compression", "code", "hosts"])
def test_a_null_field_is_not_recorded_not_damage(tree, capsys, drawn, field):
    """The run writer writes NaN (a diverged metric) as null: a null field is a value not recorded."""
    victim = tree / "2"
    edit_summary(victim, **{field: None})
    err, _ = report(tree, capsys)
    assert err == ""
    listing = {r["run"]: r for r in read_csv(tree / "report" / "runs.csv")}
    assert listing[str(victim)]["status"] == "finished"
    rows = {r["group"]: r for r in read_csv(tree / "report" / "summary.csv")}
    if field == "test_acc":
        assert listing[str(victim)]["test_acc"] == ""  # not a number: shown as missing, never as 0
    if field in ("n_nodes", "code"):  # a fact not recorded: unknown, its own group
        (good,) = [r for r in rows.values() if "unknown" not in r["group"]]
        assert good["seeds"] == "0,1" and float(good["final test_acc"]) == pytest.approx(np.mean(good_finals(tree)))
        assert "do not record" in (tree / "report" / "index.html").read_text()
    else:
        (row,) = rows.values()
        assert row["seeds"] == "0,1,5"
        assert float(row["final test_acc"]) == pytest.approx(np.mean([*good_finals(tree), MARK]))


def test_a_run_damaged_twice_is_still_one_warning(tree, capsys, drawn):
    victim = tree / "2"
    write("summary.json", "[]")(victim)
    write("metrics.csv", "")(victim)
    write("topology.json", "")(victim)
    err, _ = report(tree, capsys)
    assert err.strip().splitlines() == [f"{WARNING}{victim / 'summary.json'}: not a JSON object (a list); "
                                        "listed as unreadable"]
    assert_good_runs_reported(tree, drawn)


def test_damaged_runs_stay_listed_under_where(tree, capsys, drawn):
    write("summary.json", "[]")(tree / "2")
    err, _ = report(tree, capsys, "--where", "optimizer=dsgd")
    assert len(err.strip().splitlines()) == 1
    assert {r["run"]: r["status"] for r in read_csv(tree / "report" / "runs.csv")}[str(tree / "2")] == "unreadable"


def test_every_run_unreadable_is_one_error_and_nothing_written(tree, capsys):
    for run in ("0", "1", "2"):
        write("summary.json", "")(tree / run)
    with pytest.raises(SystemExit) as info:
        cli.main([str(tree)])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.startswith(WARNING) for line in lines] == [True, True, True, False]
    assert lines[-1] == (f"compoptim-report: error: nothing to report: all 3 runs under {tree} are unreadable "
                         "(damaged files, see the warnings)")
    assert not (tree / "report").exists()


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process may not write into (as root, whom no permission stops: sysfs)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked / "out"
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without /sys: no folder that cannot be written")
    return Path("/sys/compoptim-report-test")


@pytest.mark.parametrize("where", ["file", "under_a_file", "unwritable"])
def test_out_that_cannot_be_a_folder_is_one_error_and_nothing_changes(tree, tmp_path, capsys, where):
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    out = {"file": target, "under_a_file": target / "report", "unwritable": _unwritable(tmp_path)}[where]
    listing = tmp_path / "listing.csv"
    with pytest.raises(SystemExit) as info:
        cli.main([str(tree), "--out", str(out), "--csv", str(listing)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("compoptim-report: error: ") and str(out) in err[0]
    assert target.read_text() == "keep me" and not listing.exists() and not (tree / "report").exists()
    if where == "file":
        assert err[0] == f"compoptim-report: error: --out: {out} is a file, not a folder"


def test_default_out_taken_by_a_file_is_one_error(tree, capsys):
    (tree / "report").write_text("keep me")
    with pytest.raises(SystemExit):
        cli.main([str(tree)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{tree / 'report'} is a file, not a folder" in line and "--out" in line
    assert (tree / "report").read_text() == "keep me"


def test_a_write_that_fails_midway_is_one_error(tree, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "r" / "summary.md"))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SystemExit) as info:
        cli.main([str(tree), "--out", str(tmp_path / "r")])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"compoptim-report: error: cannot write {tmp_path / 'r' / 'summary.md'}: No space left on device"


@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "topology.json", "partition.json"])
def test_every_cut_of_a_finished_runs_file_is_caught(tmp_path, real_runs, name):
    """However much of the file a partial write or copy kept, the run never loads with a wrong number:
    a cut summary or metrics.csv makes it unreadable, a cut drawing is not drawn."""
    text = (real_runs / "0" / name).read_bytes()
    for k, length in enumerate(sorted({*np.linspace(0, len(text.rstrip()) - 1, 12).astype(int)})):
        run = tmp_path / str(k)
        shutil.copytree(real_runs / "0", run)
        (run / name).write_bytes(text[:length])
        loaded = load_run(run)
        if name in ("summary.json", "metrics.csv"):
            assert loaded.status == "unreadable" and loaded.error.startswith(f"{name}: "), (length, loaded.error)
            assert loaded.metrics is None and not loaded.config and not loaded.summary
        else:
            assert loaded.status == "finished" and getattr(loaded, name.split(".")[0]) is None
            assert len(loaded.warnings) == 1 and loaded.warnings[0].startswith(f"{run / name}: ")


def test_the_installed_command_exits_0_with_a_damaged_run_and_2_for_a_file_as_out(tree, tmp_path):
    from tests.conftest import tool

    write("metrics.csv", "epoch,step\n0,0\n1,")(tree / "2")  # cut, in a finished run
    done = subprocess.run([tool("compoptim-report"), str(tree), "--format", "png", "--x", "epoch"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"{WARNING}{tree / '2' / 'metrics.csv'}: last line cut mid-row (partial "
                                        "write), so the finished run's last evaluation is lost; listed as unreadable"]
    taken = tmp_path / "taken"
    taken.write_text("")
    done = subprocess.run([tool("compoptim-report"), str(tree), "--out", str(taken)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"compoptim-report: error: --out: {taken} is a file, not a folder"]
    assert taken.read_text() == ""


def test_the_real_runs_load_clean(real_runs):
    for seed in ("0", "1"):
        run = load_run(real_runs / seed)
        assert run.status == "finished" and run.warnings == [] and run.topology and run.partition
        assert run.metrics["test_acc"].iloc[-1] == run.summary["test_acc"]
