import json

import pytest

from compoptim.cli.report import main
from compoptim.topology import disconnected, one_peer_exponential, ring, star, torus


def _run(path, acc, status="finished"):
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"status": status, "test_acc": acc, "n_nodes": 4}))


def test_report_lists_every_run_below_the_paths(tmp_path, capsys):
    _run(tmp_path / "sweep" / "0", 0.91)
    _run(tmp_path / "sweep" / "1", 0.95)
    _run(tmp_path / "single", 0.5, status="failed")
    (tmp_path / "sweep" / "2").mkdir()  # no summary: not a run
    main([str(tmp_path / "sweep"), str(tmp_path / "single"), "--csv", str(tmp_path / "t.csv")])
    out = capsys.readouterr().out
    assert "0.91" in out and "0.95" in out and "failed" in out
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 4


def test_report_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "nope")])
    assert info.value.code == 2
    assert "no such path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "no runs" in capsys.readouterr().err


@pytest.mark.parametrize("topology", [torus(6), star(5), one_peer_exponential(6), ring(1), disconnected(3)],
                         ids=lambda t: t.name)
def test_report_draws_each_distinct_topology(tmp_path, capsys, topology):
    for k in range(2):  # two runs on the same graph: one picture
        _run(tmp_path / "sweep" / str(k), 0.9)
        (tmp_path / "sweep" / str(k) / "topology.json").write_text(json.dumps(topology.to_json()))
    main([str(tmp_path / "sweep")])
    pictures = sorted((tmp_path / "sweep" / "report").glob("*.png"))
    assert [p.name for p in pictures] == [f"topology-{topology.name}-n{topology.n}.png"]
    assert pictures[0].read_bytes().startswith(b"\x89PNG") and pictures[0].stat().st_size > 5000
    assert f"wrote {pictures[0]}" in capsys.readouterr().out
