"""compoptim-report on synthetic run trees (written here in the runs' real formats) and on
real small runs: grouping, seed averaging, target crossing, partial and failed runs, figures."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from compoptim.cli.report import main
from compoptim.report import load_runs, varying_keys
from compoptim.report.tables import crossing, summary_table
from compoptim.topology import disconnected, one_peer_exponential, ring, star, torus

FIGURES = ["test_acc_vs_epoch", "test_acc_vs_bytes", "test_acc_vs_time", "consensus_distance_vs_epoch",
           "final_test_acc_vs_compression"]


def write_run(path, optimizer="sgd", compressor="none", seed=0, accs=(0.1, 0.5, 0.9), status="finished",
              lr=0.1, ratio=1.0, metrics=True, epochs=2):
    """A run directory as compoptim-run writes it (config, metrics.csv, summary.json)."""
    path.mkdir(parents=True)
    config = {"seed": seed, "trainer": {"epochs": epochs, "threads": 1},
              "optimizer": {"name": optimizer, "lr": lr, **({"betas": [0.9, 0.999]} if optimizer == "adam" else {})},
              "compressor": {"name": compressor, **({"ratio": 0.01} if compressor == "topk" else {})},
              "hydra": {"x": seed}}
    (path / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    if metrics:
        with open(path / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "step", "wall_time_s", "test_acc", "test_loss", "consensus_distance",
                        "bytes_sent_per_node"])
            for e, acc in enumerate(accs):
                w.writerow([e, 10 * e, 1.5 * e, acc, 1 - acc, 0.1 / (e + 1), 1000.0 * e / ratio])
    summary = {"status": status, "test_acc": accs[-1], "n_nodes": 4, "bytes_sent_per_node": 1000.0 * (len(accs) - 1)
               / ratio, "wall_time_s": 1.5 * (len(accs) - 1), "compression": {"ratio": ratio}}
    if status == "failed":
        summary["error"] = "rank 1: RuntimeError: boom"
    (path / "summary.json").write_text(json.dumps(summary))


def sweep(tmp_path):
    root = tmp_path / "sweep"
    k = 0
    for opt in ("sgd", "adam"):
        for comp, ratio in (("none", 1.0), ("topk", 60.0)):
            for seed in (0, 1):
                accs = (0.1, 0.6 + 0.1 * seed, 0.8 + 0.1 * seed) if opt == "adam" else (0.1, 0.3, 0.5 + 0.2 * seed)
                write_run(root / str(k), opt, comp, seed, accs, ratio=ratio)
                k += 1
    return root


def test_grouping_keeps_the_keys_that_vary_and_averages_seeds(tmp_path):
    runs = load_runs([sweep(tmp_path)])
    assert len(runs) == 8
    # betas only differ because the optimizer differs; seed and hydra.* are never dimensions
    assert varying_keys(runs) == ["compressor.name", "compressor.ratio", "optimizer.name"] or \
        varying_keys(runs) == ["compressor.name", "optimizer.name"]
    table = summary_table(runs, ["optimizer.name", "compressor.name"], target=0.7)
    row = table[table["group"] == "optimizer=adam, compressor=topk"].iloc[0]
    assert row["runs"] == 2 and row["seeds"] == "0,1"
    assert row["final test_acc"] == pytest.approx(0.85) and row["final test_acc std"] == pytest.approx(0.0707, abs=1e-4)
    # target crossing: seed 0 reaches 0.7 only at epoch 2, seed 1 at epoch 1 (bytes 1000/60 per epoch)
    assert row["reached"] == "2/2"
    assert row["MB to test_acc>=0.7"] == pytest.approx((2000 / 60 + 1000 / 60) / 2 / 1e6)
    assert row["s to test_acc>=0.7"] == pytest.approx((3.0 + 1.5) / 2)
    sgd = table[table["group"] == "optimizer=sgd, compressor=none"].iloc[0]
    assert sgd["reached"] == "1/2"


def test_crossing_is_nan_when_never_reached():
    import pandas as pd

    frame = pd.DataFrame({"test_acc": [0.1, 0.5], "wall_time_s": [0, 1]})
    assert crossing(frame, "test_acc", 0.5, "wall_time_s") == 1
    assert math.isnan(crossing(frame, "test_acc", 0.9, "wall_time_s"))


def test_report_writes_tables_figures_and_index(tmp_path, capsys):
    root = sweep(tmp_path)
    write_run(root / "8", "adam", "topk", seed=2, accs=(0.1,), status="running")  # killed early
    write_run(root / "9", "sgd", "none", seed=2, status="failed")
    (root / "10").mkdir()
    (root / "10" / "summary.json").write_text("{not json")
    main([str(root), "--target", "0.7"])
    out = root / "report"
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 10_000 and (out / f"{name}.pdf").exists()
    for name in ("evaluations.csv", "summary.csv", "summary.md", "runs.csv", "index.html"):
        assert (out / name).exists()
    with open(out / "evaluations.csv") as f:
        evaluations = list(csv.DictReader(f))
    assert len(evaluations) == 8 * 3 + 1 + 3  # every evaluation of every readable run
    listing = (out / "runs.csv").read_text()
    assert "running" in listing and "failed" in listing and "unreadable" in listing
    markdown = (out / "summary.md").read_text()
    assert "| compressor=topk, optimizer=adam | 3 | 2 | 0,1,2 | 0.85 ± 0.07071 |" in markdown
    page = (out / "index.html").read_text()
    assert "test_acc_vs_bytes.png" in page and "failed (rank 1: RuntimeError: boom)" in page
    assert "wrote" in capsys.readouterr().out


def test_report_options_filter_group_and_format(tmp_path, capsys):
    root = sweep(tmp_path)
    out = tmp_path / "r"
    main([str(root), "--out", str(out), "--where", "optimizer=adam", "--group-by", "compressor.name",
          "--x", "bytes", "--format", "png", "--metric", "test_loss"])
    assert sorted(p.name for p in out.glob("*.png")) == ["consensus_distance_vs_epoch.png",
                                                           "final_test_loss_vs_compression.png",
                                                           "test_loss_vs_bytes.png"]
    assert not list(out.glob("*.pdf"))
    table = (out / "summary.md").read_text()
    assert "compressor=none" in table and "optimizer=" not in table
    assert "| compressor=topk | 2 | 2 | 0,1 |" in table and "None" not in table


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/nope"], "no such path"),
    (["{tmp}"], "no runs (no summary.json)"),
    (["{tmp}/sweep", "--where", "optimizer"], "--where needs KEY=VALUE"),
    (["{tmp}/sweep", "--where", "optimizer=sgdx"], "no runs match optimizer=sgdx"),
    (["{tmp}/sweep", "--group-by", "optimizer.foo"], "--group-by: no run has the config key 'optimizer.foo'"),
    (["{tmp}/sweep", "--metric", "accuracy"], "--metric: no metric column 'accuracy'"),
])
def test_report_errors_are_one_line(tmp_path, capsys, argv, message):
    if "sweep" in argv[0]:
        sweep(tmp_path)
    with pytest.raises(SystemExit) as info:
        main([a.format(tmp=tmp_path) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("topology", [torus(6), star(5), one_peer_exponential(6), ring(1), disconnected(3)],
                         ids=lambda t: t.name)
def test_report_draws_each_distinct_topology(tmp_path, capsys, topology):
    for k in range(2):  # two runs on the same graph: one picture
        write_run(tmp_path / "sweep" / str(k), seed=k)
        (tmp_path / "sweep" / str(k) / "topology.json").write_text(json.dumps(topology.to_json()))
    main([str(tmp_path / "sweep"), "--format", "png"])
    pictures = sorted((tmp_path / "sweep" / "report").glob("topology-*.png"))
    assert [p.name for p in pictures] == [f"topology-{topology.name}-n{topology.n}.png"]
    assert pictures[0].read_bytes().startswith(b"\x89PNG") and pictures[0].stat().st_size > 5000


def test_report_on_real_runs(tmp_path, capsys):
    """Two real (tiny) runs through the in-process backend, then the report."""
    import torch

    from compoptim.comm import run_local
    from compoptim.train import Trainer
    from tests.conftest import compose_config

    for k, opt in enumerate(("sgd", "adam")):
        cfg = compose_config("trainer.epochs=2", "model=mlp", "model.hidden=[16]", f"optimizer={opt}")
        run_local(ring(3), lambda comm, cfg=cfg, k=k: Trainer(cfg, comm, tmp_path / "runs" / str(k),
                                                              torch.device("cpu"), log=lambda m: None).fit())
    main([str(tmp_path / "runs"), "--target", "0.5"])
    out = tmp_path / "runs" / "report"
    assert (out / "partition-iid-n3.png").exists()
    table = (out / "summary.md").read_text()
    assert "optimizer=sgd" in table and "optimizer=adam" in table
    for name in FIGURES:
        assert (out / f"{name}.png").exists()
    assert (out / "topology-ring-n3.png").exists()
