"""compoptim-run: train one configuration (or a sweep with -m) on every MPI rank.

    mpirun -np 4 compoptim-run optimizer=dsgd topology=ring trainer.epochs=20

Order of events on every rank:
1. rank 0 picks the run stamp and broadcasts it, so all ranks agree on one run directory;
2. the command line is checked: overrides compose, the output directory is writable (a
   mistake is one line, exit 2, nothing trained); ranks other than 0 then tell Hydra to
   write no ``.hydra/`` and no log file;
3. Hydra composes the config and calls ``run_job``, which builds this rank's Trainer; the
   ranks agree on whether every build succeeded before any training traffic starts;
4. training; an exception on any rank aborts the whole MPI job (no rank left hanging).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from mpi4py import MPI
from omegaconf import DictConfig, OmegaConf

from compoptim.cli.help import help_text
from compoptim.cli.precheck import check_command_line, check_output_dir
from compoptim.cli.world import choose_run_stamp, default_threads, fail, node_local_rank, resolve_device
from compoptim.comm.mpi import MPICommunicator
from compoptim.config import register_schemas
from compoptim.errors import UserError
from compoptim.topology import build_topology
from compoptim.train import Trainer
from compoptim.train.writer import mark_failed

log = logging.getLogger("compoptim")

# Hydra settings that keep ranks other than 0 from writing shared files.
_WORKER_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


def main() -> None:
    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    argv = sys.argv[1:]
    args = get_args_parser().parse_args(argv)
    if args.help:
        if rank == 0:
            print(help_text())
        sys.exit(0)
    stamp = choose_run_stamp(world)
    OmegaConf.register_new_resolver("run_stamp", lambda: stamp, replace=True)
    register_schemas()
    if not (args.hydra_help or args.info or args.shell_completion or args.cfg):
        # Every rank composes the same config and gets the same answer; only the
        # directory check touches the file system, so rank 0 does it and shares the result.
        message = check_command_line(args.overrides, args.multirun)
        if message is None:
            message = world.bcast(check_output_dir(args.overrides, args.multirun) if rank == 0 else None)
        if message:
            if rank == 0:
                print(f"compoptim-run: error: {message}", file=sys.stderr)
            sys.exit(2)
    sys.argv = [sys.argv[0], *argv, *(_WORKER_OVERRIDES if rank else [])]
    _hydra_entry()


@hydra.main(version_base="1.3", config_path="pkg://compoptim.conf", config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    return run_job(cfg, MPI.COMM_WORLD)


def run_job(cfg: DictConfig, world: MPI.Comm) -> float:
    """One training run on every rank of ``world``; returns the final averaged-model accuracy."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    rank = world.Get_rank()
    local_rank, local_size = node_local_rank(world)

    trainer, error = None, None
    try:
        device = resolve_device(str(getattr(cfg.trainer.device, "value", cfg.trainer.device)), local_rank)
        comm = MPICommunicator(world, build_topology(cfg.topology, world.Get_size()))
        trainer = Trainer(cfg, comm, run_dir, device, log=log.info)
        torch.set_num_threads(cfg.trainer.threads or default_threads(local_size))
    except Exception as exc:
        error = exc
    _agree_on_build(world, error, run_dir)

    try:
        summary = trainer.fit()
    except BaseException as exc:
        if rank == 0:
            mark_failed(run_dir, exc)
        fail(world, exc)
    return summary["test_acc"]


def _agree_on_build(world: MPI.Comm, error: Exception | None, run_dir: Path) -> None:
    """All ranks learn whether every rank built its Trainer; on failure all exit with code 2.

    Config mistakes fail identically everywhere, so the message is printed once (by the
    lowest failing rank) instead of n times, and no rank is left waiting in a collective.
    """
    reports = world.allgather(None if error is None else (isinstance(error, UserError), str(error)))
    failed = [r for r, rep in enumerate(reports) if rep is not None]
    if not failed:
        return
    rank = world.Get_rank()
    if rank == failed[0]:
        if not isinstance(error, UserError):
            import traceback

            traceback.print_exception(error, file=sys.stderr)
        where = f" (rank {rank})" if len(failed) < world.Get_size() else ""
        print(f"compoptim-run: error{where}: {error}", file=sys.stderr, flush=True)
    if rank == 0:
        mark_failed(run_dir, error or RuntimeError(f"rank {failed[0]}: {reports[failed[0]][1]}"))
    sys.exit(2)
