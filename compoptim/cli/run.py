"""compoptim-run: train one configuration (or a sweep with -m) on every MPI rank.

    mpirun -np 4 compoptim-run optimizer=dsgd topology=ring trainer.epochs=20

Order of events on every rank:
1. rank 0 reserves the run stamp (a fresh directory) and broadcasts it, so all ranks agree
   on one run directory;
2. the command line is checked: overrides compose against the schemas and the output
   directory is writable (a mistake is one line, exit 2, nothing trained); ranks other
   than 0 then tell Hydra to write no ``.hydra/`` and no log file;
3. Hydra composes the config and calls ``run_job``, which builds this rank's Trainer; the
   ranks agree on whether every build succeeded before any training traffic starts;
4. training.
Whatever fails on one rank only — in Hydra, in setup or in training — aborts the whole
MPI job, so no rank is ever left waiting in a collective.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from mpi4py import MPI
from omegaconf import DictConfig, OmegaConf

from compoptim.cli.help import help_text
from compoptim.cli.local_run import run_local_job
from compoptim.cli.precheck import check_command_line, prepare_output_dir
from compoptim.cli.world import (
    AgreedExit,
    abort,
    check_launcher,
    choose_run_stamp,
    fail,
    node_local,
    release_stamp,
    resolve_device,
    set_threads,
)
from compoptim.comm import BACKENDS
from compoptim.comm.mpi import MPICommunicator
from compoptim.config import register_schemas
from compoptim.config.plugins import register_plugins
from compoptim.data import load_dataset
from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.topology import build_topology
from compoptim.train import Trainer
from compoptim.train.checkpoint import config_hash
from compoptim.train.signals import STOP_SIGNALS, Diverged, Preempted
from compoptim.train.writer import mark_failed

log = logging.getLogger("compoptim")

# Hydra settings that keep ranks other than 0 from writing shared files.
_WORKER_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


def main() -> None:
    world = MPI.COMM_WORLD
    try:
        _main(world)
    except AgreedExit:
        raise
    except SystemExit as exc:
        # Hydra reports its own errors and exits; if only this rank got one, the others
        # would wait forever, so the exit becomes an abort of the whole job.
        if exc.code not in (None, 0) and world.Get_size() > 1:
            abort(world, exc.code if isinstance(exc.code, int) else 1)
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure must end every rank
        fail(world, exc)


def _main(world: MPI.Comm) -> None:
    rank = world.Get_rank()
    argv = sys.argv[1:]
    args = get_args_parser().parse_args(argv)
    if args.help:
        if rank == 0:
            print(help_text())
        sys.exit(0)
    check_launcher(world)
    root = "multirun" if args.multirun else "outputs"
    stamp = choose_run_stamp(world, root)
    OmegaConf.register_new_resolver("run_stamp", lambda: stamp, replace=True)
    register_schemas()
    register_plugins()
    if args.hydra_help or args.info or args.shell_completion or args.cfg:
        if rank == 0:
            release_stamp(root, stamp)  # Hydra only prints here; no run directory
    else:
        # Every rank composes the same config and reaches the same verdict; only the
        # directory check touches the file system, so rank 0 does it and shares the result.
        message, output_dir = check_command_line(args.overrides, args.multirun)
        if rank == 0:
            if message is None and output_dir is not None:
                message = prepare_output_dir(output_dir, args.multirun)
            release_stamp(root, stamp, used=None if message else output_dir)
        message = world.bcast(message, root=0)
        if message:
            if rank == 0:
                print(f"compoptim-run: error: {message}", file=sys.stderr)
            raise AgreedExit(2)
    # Under mpirun, a sweep's shared files come from rank 0 only (unless another sweeper is chosen).
    sweeper = ["hydra/sweeper=rank_zero"] if args.multirun and world.Get_size() > 1 and not any(
        a.startswith("hydra/sweeper=") for a in argv) else []
    sys.argv = [sys.argv[0], *argv, *sweeper, *(_WORKER_OVERRIDES if rank else [])]
    _hydra_entry()


@hydra.main(version_base="1.3", config_path="pkg://compoptim.conf", config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    return run_job(cfg, MPI.COMM_WORLD)


def run_job(cfg: DictConfig, world: MPI.Comm) -> float:
    """One training run on every rank of ``world``; returns the final averaged-model accuracy."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg = to_plain(cfg)  # the boundary: plain values from here down
    if cfg["backend"]["name"] == "local" and world.Get_size() == 1:
        return run_local_job(cfg, run_dir)
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
                               cuda_aware=backend.cuda_aware, timeout_s=backend.timeout_s)
        device = resolve_device(cfg["trainer"]["device"], local.Get_rank())
        trainer = Trainer(cfg, comm, run_dir, device, log=log.info)
    except Exception as exc:  # noqa: BLE001 - reported below, once, after all ranks agree
        error = exc
    finally:
        local.Free()
    _agree_on_build(world, error, run_dir)

    try:
        summary = trainer.fit()
    except Preempted as exc:
        # Every rank stops at the same epoch (agreed in the epoch's reduction): no abort needed.
        if world.Get_rank() == 0:
            mark_failed(run_dir, exc, status="preempted")
            print(f"compoptim-run: {exc}", file=sys.stderr, flush=True)
        raise AgreedExit(3) from None
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt must abort the job too
        # The failing rank records the failure itself: rank 0 may be killed by the abort.
        mark_failed(run_dir, exc, rank=world.Get_rank() if world.Get_size() > 1 else None,
                    status="diverged" if isinstance(exc, Diverged) else "failed")
        fail(world, exc)
    return summary["test_acc"]


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
    if rank == failed[0]:
        if not isinstance(error, UserError):
            traceback.print_exception(error, file=sys.stderr)
        where = f" (rank {rank})" if len(failed) < world.Get_size() else ""
        print(f"compoptim-run: error{where}: {error}", file=sys.stderr, flush=True)
    if rank == 0:
        mark_failed(run_dir, error or RuntimeError(f"rank {failed[0]}: {reports[failed[0]]}"))
    raise AgreedExit(2)


if __name__ == "__main__":
    main()
