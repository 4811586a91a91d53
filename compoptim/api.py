"""``compoptim.run``: one training run from Python (a notebook, a script), in this process.

The same config and the same checks as ``compoptim-run``: the overrides compose against the
same schemas, and a mistake is the CLI's one-line message, raised as a ``UserError`` instead
of an exit. The nodes train as threads of this process (``backend=local``, the default
here); an MPI run needs one process per rank, so it stays with ``compoptim-run`` under
``mpirun``. Like the CLI, this is an entry point: it sits beside ``cli/``, above everything
it assembles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from mpi4py import MPI
from omegaconf import OmegaConf

from compoptim.cli.local_run import train_local
from compoptim.cli.precheck import check_command_line, prepare_output_dir
from compoptim.cli.world import choose_run_stamp, release_stamp
from compoptim.config import compose_config, snapshot
from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.train.record import launch_record

# Where a run without run_dir goes, as with compoptim-run: outputs/<date>/<time> here.
_ROOT = "outputs"


@dataclass(frozen=True)
class Result:
    """A finished run, read back from its directory: ``summary`` (summary.json),
    ``metrics`` (metrics.csv: one row per evaluation, epoch 0 first) and ``nodes``
    (metrics_nodes.csv: one row per node and evaluation)."""

    run_dir: Path
    summary: dict[str, Any]
    metrics: pd.DataFrame
    nodes: pd.DataFrame

    @classmethod
    def load(cls, run_dir: str | Path) -> Result:
        """Any run directory, also one that compoptim-run wrote (``run_dir`` becomes absolute,
        so it stays right if the notebook changes directory)."""
        path = Path(run_dir).resolve()
        try:
            summary = json.loads((path / "summary.json").read_text())
            return cls(path, summary, pd.read_csv(path / "metrics.csv"), pd.read_csv(path / "metrics_nodes.csv"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} holds no readable run: {exc}") from None


def run(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> Result:
    """Train the configuration ``compoptim-run <overrides>`` would, in this process, and
    return what it wrote.

    ``overrides``: command-line overrides (``["optimizer=choco_sgd", "compressor=topk"]``);
    without a ``backend=...`` choice the backend is ``local`` (set ``backend.nodes``).
    ``run_dir``: where the run writes; by default a fresh ``outputs/<date>/<time>`` under
    the current directory, reserved as compoptim-run reserves it (or ``hydra.run.dir=...``).
    A bad override, a bad value or a failed run raises ``UserError``; nothing exits.
    """
    overrides = _local_by_default(list(overrides))
    cfg, path = _prepare(overrides, run_dir)
    snapshot.check()  # the schemas the config was composed with are the factories' own
    # No command line was typed: summary.json records the overrides that reproduce the run.
    train_local(cfg, path, launch_record(None, overrides))
    return Result.load(path)


def _local_by_default(overrides: list[str]) -> list[str]:
    """``backend=local`` first unless an override chooses the backend (a line that does not
    parse is left to the command-line check, which reports it)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return overrides
    return overrides if any(o.key_or_group == "backend" for o in parsed) else ["backend=local", *overrides]


def _prepare(overrides: list[str], run_dir: str | Path | None) -> tuple[dict[str, Any], Path]:
    """(plain config, created run directory), checked as compoptim-run checks its command
    line; a refused one leaves no directory behind."""
    stamp = choose_run_stamp(MPI.COMM_SELF, _ROOT) if run_dir is None else None
    # With run_dir given, hydra.run.dir is never read, so no stamp is reserved for it. The
    # resolver lives only while the command line is checked: a later compose_config in this
    # process must not see this run's stamp.
    OmegaConf.register_new_resolver("run_stamp", lambda: stamp or "unreserved", replace=True)
    used = None
    try:
        message, output_dir = check_command_line(overrides, multirun=False)
        if message:
            raise UserError(message)
        if output_dir is None:
            raise UserError("compoptim.run trains one configuration; for a sweep, call it once per "
                            "configuration (or use compoptim-run -m)")
        cfg = to_plain(compose_config(overrides))
        backend = cfg["backend"]["name"]
        if backend != "local":
            raise UserError(f"compoptim.run trains in this process (backend=local); backend={backend} needs one "
                            f"process per rank: use compoptim-run under mpirun")
        path = Path(run_dir) if run_dir is not None else output_dir
        message = prepare_output_dir(path, multirun=False)
        if message:
            raise UserError(message)
        used = path
    finally:
        OmegaConf.clear_resolver("run_stamp")
        if stamp is not None:
            release_stamp(_ROOT, stamp, used=used)
    return cfg, path
