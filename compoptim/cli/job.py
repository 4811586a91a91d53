"""One training run of compoptim-run on every rank of the MPI world: Hydra's task function.

Imported only when a run really starts (the CLI's --help, --version and config errors never
import torch): builds this rank's Trainer, agrees with the other ranks that every build
succeeded, then trains; any failure on one rank aborts the whole job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from mpi4py import MPI
from omegaconf import DictConfig

from compoptim.cli.local_run import run_local_job
from compoptim.cli.watchdog import watchdog
from compoptim.cli.world import (
    fail,
    node_local,
    resolve_device,
    set_threads,
    wait_for_all,
)
from compoptim.comm import BACKENDS
from compoptim.comm.mpi import MPICommunicator
from compoptim.config import snapshot
from compoptim.data import load_dataset
from compoptim.errors import AgreedExit, JobNotFinished, UserError
from compoptim.registry import to_plain
from compoptim.topology import build_topology
from compoptim.train import Trainer
from compoptim.train.checkpoint import config_hash
from compoptim.train.record import launch_record
from compoptim.train.signals import STOP_SIGNALS, Interrupted, RunStopped
from compoptim.train.writer import mark_failed, start_summary

log = logging.getLogger("compoptim")


def run_job(cfg: DictConfig, world: MPI.Comm, command: list[str]) -> float:
    """One training run on every rank of ``world``; returns the final averaged-model accuracy.
    The process that writes summary.json (rank 0) is watched: if it dies unrecorded, the
    status becomes ``killed``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    logging.raiseExceptions = False  # a full disk is said once, by the run's writer, not at every log line
    with watchdog(run_dir) if world.Get_rank() == 0 else contextlib.nullcontext():
        try:
            return _run_job(cfg, world, command, run_dir)
        # A Ctrl-C between the steps below, or a rank that never reached the end of setup:
        # this rank records it and ends the job.
        except (RunStopped, KeyboardInterrupt, TimeoutError) as exc:
            mark_failed(run_dir, exc, rank=world.Get_rank() if world.Get_size() > 1 else None)
            fail(world, exc)
        except AgreedExit as exc:
            # In a sweep, a job that diverged, was refused or failed alike on every rank is
            # one job lost, not the sweep: the next job runs (a Ctrl-C still ends the sweep).
            if HydraConfig.get().mode == RunMode.MULTIRUN and exc.code != Interrupted.exit_code:
                raise JobNotFinished(_ending(run_dir, exc.code)) from None
            raise


def _ending(run_dir: Path, code: object) -> str:
    """``status: error`` of a run that did not finish, from its summary.json."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        return f"{summary['status']}: {summary.get('error')}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"exit code {code}"


def _run_job(cfg: DictConfig, world: MPI.Comm, command: list[str], run_dir: Path) -> float:
    if world.Get_rank() == 0:
        start_summary(run_dir)  # from now on the run's status says how it ended, a kill in setup included
    cfg = to_plain(cfg)  # the boundary: plain values from here down
    snapshot.check()  # the schemas Hydra composed with are the factories' own
    if cfg["backend"]["name"] == "local" and world.Get_size() == 1:
        accuracy = run_local_job(cfg, run_dir, launch=_launch(command))
        _report_job(json.loads((run_dir / "summary.json").read_text()))
        return accuracy
    local = node_local(world)
    trainer, error = None, None
    STOP_SIGNALS.install()
    try:
        _agree_on_config(world, cfg)
        if cfg["backend"]["name"] == "local":
            raise UserError(f"backend=local runs all nodes in one process; start it without mpirun "
                            f"(got {world.Get_size()} MPI ranks), or use backend=mpi")
        set_threads(cfg["trainer"]["threads"], local.Get_size())
        _fetch_dataset_once_per_machine(cfg, local)
        backend = BACKENDS.build(cfg["backend"])
        comm = MPICommunicator(world, build_topology(cfg["topology"], world.Get_size()),
                               cuda_aware=backend.cuda_aware, timeout_s=backend.timeout_s,
                               shared_memory=backend.shared_memory)
        device = resolve_device(cfg["trainer"]["device"], local.Get_rank())
        trainer = Trainer(cfg, comm, run_dir, device, log=log.info, launch=_launch(command))
    except Exception as exc:  # noqa: BLE001 - reported below, once, after all ranks agree
        error = exc
    finally:
        local.Free()
    wait_for_all(world, cfg["backend"].get("timeout_s"), "the end of setup")
    _agree_on_build(world, error, run_dir)

    try:
        summary = trainer.fit()
    except RunStopped as exc:
        if not exc.agreed:  # one node stopped (a non-finite loss of its own): the others must be ended
            mark_failed(run_dir, exc, rank=world.Get_rank() if world.Get_size() > 1 else None)
            fail(world, exc)
        # Every rank stopped at the same point (agreed in a reduction): no abort needed.
        if world.Get_rank() == 0:
            mark_failed(run_dir, exc)
            print(f"compoptim-run: {exc.status}: {exc}", file=sys.stderr, flush=True)
        raise AgreedExit(exc.exit_code) from None
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt must abort the job too
        # The failing rank records the failure itself: rank 0 may be killed by the abort.
        mark_failed(run_dir, exc, rank=world.Get_rank() if world.Get_size() > 1 else None)
        fail(world, exc)
    _report_job(summary)
    return summary["test_acc"]


def _report_job(summary: dict[str, Any]) -> None:
    """In a sweep, one line per finished job: which, how it ended, its final metric."""
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        log.info(f"job {hydra.job.num} ({' '.join(hydra.overrides.task)}): {summary['status']}, "
                 f"test acc {summary['test_acc']:.4f}, {summary['wall_time_s']:.1f} s -> {hydra.runtime.output_dir}")


def _launch(command: list[str]) -> dict[str, Any]:
    """How this job was started: the command line and this job's own overrides (a sweep's included)."""
    return launch_record(command or None, list(HydraConfig.get().overrides.task))


def _agree_on_config(world: MPI.Comm, cfg: dict[str, Any]) -> None:
    """All ranks must run the same configuration (a rank launched with other arguments, or
    another code version, would silently train something else)."""
    hashes = world.allgather(config_hash(cfg))
    differing = [r for r, h in enumerate(hashes) if h != hashes[0]]
    if differing:
        raise UserError(f"ranks {', '.join(map(str, differing))} have a different configuration than rank 0; "
                        f"start every rank with the same command line and the same compoptim")


def _fetch_dataset_once_per_machine(cfg: dict[str, Any], local: MPI.Comm) -> None:
    """With dataset.download=true, one rank per machine fetches the files before the rest
    read them, instead of every rank writing the same files at once."""
    if not cfg["dataset"].get("download", False):
        return
    try:
        if local.Get_rank() == 0:
            load_dataset(cfg["dataset"])
    finally:
        local.Barrier()  # reached even after a failed download, so nobody hangs


def _agree_on_build(world: MPI.Comm, error: Exception | None, run_dir: Path) -> None:
    """All ranks learn whether every rank built its Trainer; on failure all exit with code 2.

    Config mistakes fail identically everywhere, so the message is printed once (by the
    lowest failing rank) instead of n times, and no rank is left waiting in a collective.
    """
    reports = world.allgather(None if error is None else str(error))
    failed = [r for r, rep in enumerate(reports) if rep is not None]
    if not failed:
        return
    rank = world.Get_rank()
    # A Ctrl-C during the build is an interrupt (exit 130), anything else a refusal (exit 2).
    stop = error if isinstance(error, RunStopped) else None
    if rank == failed[0]:
        if not isinstance(error, (UserError, RunStopped)):
            traceback.print_exception(error, file=sys.stderr)
        where = f" (rank {rank})" if len(failed) < world.Get_size() else ""
        print(f"compoptim-run: {stop.status if stop else 'error'}{where}: {error}", file=sys.stderr, flush=True)
    if rank == 0:
        mark_failed(run_dir, error or RuntimeError(f"rank {failed[0]}: {reports[failed[0]]}"))
    raise AgreedExit(stop.exit_code if stop else 2)
