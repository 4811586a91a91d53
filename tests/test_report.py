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
              lr=0.1, ratio=1.0, metrics=True, epochs=2, **summary_fields):
    """A run directory as compoptim-run writes it (config, metrics.csv, summary.json); ``summary_fields``
    add to or replace the summary's (n_nodes, backend, code, dataset_hash, ...)."""
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
    summary.update(summary_fields)
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


def test_a_directed_topology_is_drawn_with_one_arrow_per_link_and_its_mixing_rate():
    from matplotlib.patches import FancyArrowPatch

    from compoptim.report.topology_figure import topology_figure
    from compoptim.topology.builders import directed_exponential, one_peer_directed_exponential

    topo = directed_exponential(5)  # i -> i+1, i+2, i+4: 15 links
    ax = topology_figure(topo.to_json()).axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 15 and all(a.get_arrowstyle().__class__.__name__ == "CurveFilledB" for a in arrows)
    assert "directed, mixing rate 1-|λ2| 0.7500" in ax.get_title()
    one_peer = topology_figure(one_peer_directed_exponential(4).to_json()).axes[0]
    assert [t.get_text() for t in one_peer.get_legend().get_texts()] == ["round 0", "round 1"]
    assert "spectral gap" in topology_figure(ring(4).to_json()).axes[0].get_title()


@pytest.mark.slow
def test_report_on_real_runs(tmp_path, capsys):
    """Two real (tiny) runs through the in-process backend, one compressed, then the report."""
    import torch

    from compoptim.comm import run_local
    from compoptim.train import Trainer
    from tests.conftest import compose_config

    for k, (opt, compressor) in enumerate((("sgd", "none"), ("adam", "topk"))):
        cfg = compose_config("trainer.epochs=2", "model=mlp", "model.hidden=[16]", f"optimizer={opt}",
                             f"compressor={compressor}")
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


def _summary(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_report_never_averages_runs_on_other_nodes_backends_code_or_data(tmp_path, capsys):
    """The old bug: runs on 1, 1 and 8 nodes, all seed 0, became one group 'seeds 0,0,0'."""
    root = tmp_path / "mixed"
    code = {"version": "0.1.0", "git_commit": "a" * 40, "git_dirty": False}
    same = {"backend": "mpi", "code": code, "dataset_hash": "d" * 64}
    write_run(root / "0", accs=(0.1, 0.5), n_nodes=1, **same)
    write_run(root / "1", accs=(0.1, 0.5), n_nodes=1, **same)  # a rerun: a duplicate, not a second seed
    write_run(root / "2", accs=(0.1, 0.9), n_nodes=8, **same)
    write_run(root / "3", accs=(0.1, 0.4), n_nodes=1, **{**same, "backend": "local"})
    write_run(root / "4", accs=(0.1, 0.3), n_nodes=1, **{**same, "code": {**code, "git_commit": "b" * 40}})
    write_run(root / "5", accs=(0.1, 0.2), n_nodes=1, **{**same, "dataset_hash": "e" * 64})
    write_run(root / "6", accs=(0.1, 0.6), n_nodes=1, backend="mpi")  # an older run: no code, no dataset hash
    write_run(root / "7", accs=(0.1, 0.7), n_nodes=1, seed=1, **same)  # a real second seed
    main([str(root), "--format", "png"])
    out = root / "report"
    rows = {r["group"]: r for r in _summary(out / "summary.csv")}
    assert len(rows) == 6
    base = "n_nodes=1, backend=mpi, code=0.1.0@aaaaaaaaaaaa, dataset_hash=dddddddddddd"
    assert rows[base]["seeds"] == "0,1" and rows[base]["runs"] == "3" and rows[base]["finished"] == "2"
    assert rows[base]["duplicates"] == "1"
    assert float(rows[base]["final test_acc"]) == pytest.approx((0.5 + 0.7) / 2)  # seed 0 counted once
    eight = rows[base.replace("n_nodes=1", "n_nodes=8")]
    assert eight["seeds"] == "0" and float(eight["final test_acc"]) == pytest.approx(0.9) and eight["duplicates"] == "0"
    assert "n_nodes=1, backend=mpi, code=unknown@unknown, dataset_hash=unknown" in rows
    assert all(r["seeds"].split(",") == sorted(set(r["seeds"].split(","))) for r in rows.values())
    listing = {r["run"]: r for r in _summary(out / "runs.csv")}
    assert listing[str(root / "1")]["duplicate_of"] == str(root / "0")
    assert not listing[str(root / "0")]["duplicate_of"] and listing[str(root / "2")]["n_nodes"] == "8"
    page = (out / "index.html").read_text()
    assert "1 duplicate run(s)" in page and "do not record code" in page and "duplicate of" in page
    curves = [r for r in _summary(out / "evaluations.csv") if not r["duplicate_of"]]
    assert len(curves) == 7 * 2  # evaluations.csv keeps the duplicate's rows, marked


def test_an_absent_fact_is_unknown_and_old_backend_names_are_config_names(tmp_path):
    from compoptim.report.grouping import fact

    write_run(tmp_path / "old", backend="LocalCommunicator")
    write_run(tmp_path / "new", backend="local", code={"version": "0.1.0", "git_commit": "c" * 40, "git_dirty": True})
    old, new = load_runs([tmp_path / "old"])[0], load_runs([tmp_path / "new"])[0]
    assert fact(old, "backend") == fact(new, "backend") == "local"
    assert fact(old, "dataset_hash") == "unknown" and fact(old, "code") == "unknown@unknown"
    assert fact(new, "code") == "0.1.0@cccccccccccc+dirty"


def _grid_figure(tmp_path, y="test_acc", x="epoch", **kwargs):
    from compoptim.report.figures import curve_figure
    from compoptim.report.grouping import dimensions, group_runs
    from compoptim.report.styles import encode
    from compoptim.report.tables import evaluations

    runs = load_runs([sweep(tmp_path)])
    keys = ["optimizer.name", "compressor.name"]
    groups = group_runs(runs, keys)
    return curve_figure(evaluations(runs, keys), x, y, encode(groups, dimensions(runs, keys)), **kwargs)


def test_curves_encode_first_dimension_by_colour_second_by_line_style(tmp_path):
    fig = _grid_figure(tmp_path)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines) == 4
    sgd_none, sgd_topk = lines["optimizer=sgd, compressor=none"], lines["optimizer=sgd, compressor=topk"]
    adam_none, adam_topk = lines["optimizer=adam, compressor=none"], lines["optimizer=adam, compressor=topk"]
    assert sgd_none.get_color() == sgd_topk.get_color() != adam_none.get_color() == adam_topk.get_color()
    assert sgd_none.get_linestyle() == adam_none.get_linestyle() != sgd_topk.get_linestyle() \
        == adam_topk.get_linestyle()
    # the legend explains each encoding once (2 colours + 2 styles), and sits right of the plot
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["optimizer=sgd", "optimizer=adam", "compressor=none",
                                                          "compressor=topk"]
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks == [0, 1, 2]


def test_a_third_dimension_is_a_marker_and_bytes_are_mb(tmp_path):
    from compoptim.report.figures import curve_figure
    from compoptim.report.grouping import dimensions, group_runs
    from compoptim.report.styles import encode
    from compoptim.report.tables import evaluations

    for k, (opt, comp, lr) in enumerate([(o, c, lr) for o in ("sgd", "adam") for c in ("none", "topk")
                                         for lr in (0.1, 0.01)]):
        write_run(tmp_path / "s" / str(k), opt, comp, lr=lr)
    runs = load_runs([tmp_path / "s"])
    keys = varying_keys(runs)
    assert keys == ["compressor.name", "optimizer.lr", "optimizer.name"]
    fig = curve_figure(evaluations(runs, keys), "bytes_sent_per_node", "test_acc",
                       encode(group_runs(runs, keys), dimensions(runs, keys)), logx=True)
    ax = fig.axes[0]
    markers = {line.get_label(): line.get_marker() for line in ax.get_lines()}
    sgd = markers["compressor=none, optimizer.lr=0.1, optimizer=sgd"]
    assert sgd == markers["compressor=topk, optimizer.lr=0.01, optimizer=sgd"]
    assert sgd != markers["compressor=none, optimizer.lr=0.1, optimizer=adam"]
    assert ax.get_xlabel() == "MB sent per node"
    assert max(max(line.get_xdata()) for line in ax.get_lines()) == pytest.approx(2000 / 1e6)


def test_consensus_axis_ignores_zeros_and_round_off(tmp_path):
    import pandas as pd

    from compoptim.report.figures import curve_figure
    from compoptim.report.styles import Encoding

    evals = pd.DataFrame({"group": ["choco"] * 4 + ["exact"] * 4, "epoch": [0, 1, 2, 3] * 2,
                          "consensus_distance": [0.0, 1e-2, 5e-3, 2e-3, 0.0, 1e-40, 3e-16, 2e-16]})
    fig = curve_figure(evals, "epoch", "consensus_distance", Encoding({}, [], {}), logy=True)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert 1e-4 < bottom <= 1e-3 and top >= 1e-2
    assert "no value above it: exact" in " ".join(t.get_text() for t in ax.texts)


def test_no_compression_figure_when_nothing_is_compressed(tmp_path, capsys):
    root = tmp_path / "plain"
    for k, opt in enumerate(("sgd", "adam")):
        write_run(root / str(k), opt)
    main([str(root), "--format", "pdf"])
    out = root / "report"
    assert not list(out.glob("final_*"))
    # PNG curves are drawn whatever --format says: the page shows them
    assert (out / "test_acc_vs_epoch.png").exists() and (out / "test_acc_vs_epoch.pdf").exists()
    assert 'src="test_acc_vs_epoch.png"' in (out / "index.html").read_text()


def test_settings_table_shows_what_all_runs_share_and_what_each_option_brings(tmp_path):
    from compoptim.report.settings import page_rows, settings_table

    runs = load_runs([sweep(tmp_path)])
    table = settings_table(runs)
    rows = {(scope, setting): value for scope, setting, value in table.itertuples(index=False)}
    assert rows[("all runs", "trainer.epochs")] == 2 and rows[("all runs", "n_nodes")] == 4
    assert rows[("all runs", "optimizer.lr")] == 0.1
    assert rows[("optimizer=adam", "optimizer.betas")] == "[0.9, 0.999]"
    assert rows[("compressor=topk", "compressor.ratio")] == 0.01
    assert not any(setting in ("optimizer.name", "seed") or setting.startswith("hydra.") for _, setting in rows)
    lines = dict(page_rows(table))
    assert lines["trainer"] == "epochs=2, threads=1" and lines["optimizer"] == "lr=0.1"
    assert lines["optimizer=adam"] == "betas=[0.9, 0.999]" and lines["nodes"] == "4"
    assert list(lines)[:2] == ["nodes", "backend used"] and lines["backend used"] == "unknown"


def test_nested_option_settings_are_not_dimensions(tmp_path):
    for k, (partition, extra) in enumerate([("iid", {}), ("dirichlet", {"alpha": 0.5})]):
        write_run(tmp_path / "p" / str(k))
        config = yaml.safe_load((tmp_path / "p" / str(k) / "config.resolved.yaml").read_text())
        config["dataset"] = {"name": "digits", "partition": {"name": partition, **extra}}
        (tmp_path / "p" / str(k) / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    assert varying_keys(load_runs([tmp_path / "p"])) == ["dataset.partition.name"]


def test_page_has_the_experiment_and_links_each_runs_files(tmp_path, capsys):
    root = sweep(tmp_path)
    (root / "0" / "compoptim.log").write_text("epoch 0\n")
    (root / "3" / "partition.json").write_text(json.dumps({"partition": "label", "label_histogram": [[3, 1], [1, 3]]}))
    main([str(root), "--format", "png"])
    page = (root / "report" / "index.html").read_text()
    assert "<h2>Experiment</h2>" in page and "epochs=2" in page
    assert "<td>compressor.name</td><td>none, topk</td>" in page
    assert 'href="../0/config.resolved.yaml"' in page and 'href="../0/compoptim.log"' in page
    assert 'href="../0/metrics.csv"' in page and 'href="../1/compoptim.log"' not in page
    assert "bytes_sent_per_node" not in page and "MB per node" in page
    # a partition figure says whose it is
    from compoptim.report.figures import label_histogram_figure

    fig = label_histogram_figure({"partition": "label", "label_histogram": [[3, 1], [1, 3]]},
                                 "compressor=topk, optimizer=sgd; seed 1")
    assert "compressor=topk, optimizer=sgd; seed 1" in fig.axes[0].get_title()
    assert (root / "report" / "partition-label-n2.png").exists()


def test_a_step_size_that_changes_with_the_optimizer_stays_in_the_labels(tmp_path):
    """sgd at lr 0.1 and adam at lr 0.001: the lr is constant within each optimizer, but the
    algorithms did not run at the same step, so the label says so; adam's betas (which sgd's
    runs do not have) stay implied by the option."""
    from compoptim.report.grouping import group_runs

    for k, (opt, lr) in enumerate([("sgd", 0.1), ("adam", 0.001)]):
        write_run(tmp_path / "s" / str(k), opt, lr=lr)
    runs = load_runs([tmp_path / "s"])
    assert varying_keys(runs) == ["optimizer.lr", "optimizer.name"]
    labels = sorted(g.label for g in group_runs(runs, varying_keys(runs)))
    assert labels == ["optimizer.lr=0.001, optimizer=adam", "optimizer.lr=0.1, optimizer=sgd"]


def _with_network(path, network, sim_per_eval):
    """Give a written run a network and a sim_time_s column (as compoptim-run writes them)."""
    config = yaml.safe_load((path / "config.resolved.yaml").read_text())
    config["network"] = {"name": network}
    (path / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    with open(path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, [*rows[0], "sim_time_s"])
        w.writeheader()
        for row in rows:
            w.writerow({**row, "sim_time_s": sim_per_eval * int(row["epoch"])})
    summary = json.loads((path / "summary.json").read_text())
    summary["sim_time_s"] = sim_per_eval * (len(rows) - 1)
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.mark.slow  # renders two whole reports
def test_simulated_time_is_an_axis_and_a_column_when_a_run_simulates_a_network(tmp_path, capsys):
    root = tmp_path / "net"
    write_run(root / "0", "sgd", "none", accs=(0.1, 0.5, 0.9))
    write_run(root / "1", "sgd", "topk", accs=(0.1, 0.8, 0.85), ratio=60.0)
    _with_network(root / "0", "wan_100m", 4.0)
    _with_network(root / "1", "wan_100m", 1.0)
    main([str(root), "--target", "0.8"])
    out = root / "report"
    assert (out / "test_acc_vs_sim_time.png").stat().st_size > 10_000
    with open(out / "summary.csv") as f:
        table = {r["compressor.name"]: r for r in csv.DictReader(f)}
    assert float(table["none"]["sim time s"]) == 8.0 and float(table["topk"]["sim time s"]) == 2.0
    to_target = {name: float(row["sim s to test_acc>=0.8"]) for name, row in table.items()}
    assert to_target == {"none": 8.0, "topk": 1.0}
    from compoptim.report.figures import curve_figure
    from compoptim.report.grouping import dimensions, group_runs
    from compoptim.report.styles import encode
    from compoptim.report.tables import evaluations

    runs, keys = load_runs([root]), ["compressor.name"]
    figure = curve_figure(evaluations(runs, keys), "sim_time_s", "test_acc",
                          encode(group_runs(runs, keys), dimensions(runs, keys)))
    assert figure.axes[0].get_xlabel() == "simulated time on the run's network (s)"
    lines = {line.get_label(): line.get_xdata().tolist() for line in figure.axes[0].get_lines()}
    assert sorted(lines.values()) == [[0.0, 1.0, 2.0], [0.0, 4.0, 8.0]]
    ideal = tmp_path / "ideal"
    write_run(ideal / "0")
    main([str(ideal)])
    assert not (ideal / "report" / "test_acc_vs_sim_time.png").exists()  # nothing simulated: no such figure
    capsys.readouterr()
