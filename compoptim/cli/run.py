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
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from mpi4py import MPI
from omegaconf import DictConfig, OmegaConf

from compoptim.cli.help import help_text, print_and_exit, version_text
from compoptim.cli.precheck import check_command_line, prepare_output_dir
from compoptim.cli.resume import check_resume, is_resume, with_saved_overrides
from compoptim.cli.world import (
    abort,
    check_launcher,
    choose_run_stamp,
    fail,
    release_stamp,
)
from compoptim.config import normalize_overrides, register_schemas
from compoptim.config.plugins import register_plugins
from compoptim.errors import AgreedExit

log = logging.getLogger("compoptim")

# The command line as typed (sys.argv is rewritten for Hydra below).
_COMMAND: list[str] = []
# Hydra settings that keep ranks other than 0 from writing shared files.
WORKER_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


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
    _COMMAND[:] = [Path(sys.argv[0]).name, *sys.argv[1:]]  # as typed, for summary.json
    # --version is compoptim's own flag: Hydra's parser does not know it
    args = get_args_parser().parse_args([a for a in normalize_overrides(sys.argv[1:]) if a != "--version"])
    # resume=true hydra.run.dir=DIR alone: the run's own overrides first, then ours
    overrides = with_saved_overrides(args.overrides) if not args.multirun else args.overrides
    argv = [a for a in normalize_overrides(sys.argv[1:]) if a not in args.overrides] + overrides
    args.overrides = overrides
    if args.help or "--version" in sys.argv[1:]:
        if rank == 0:
            print_and_exit(version_text("compoptim-run") if "--version" in sys.argv[1:] else help_text())
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
            if message is None and not args.multirun:
                message = check_resume(args.overrides, world.Get_size())
            if message is None and output_dir is not None:
                message = prepare_output_dir(output_dir, args.multirun, resume=is_resume(args.overrides))
            release_stamp(root, stamp, used=None if message else output_dir)
        message = world.bcast(message, root=0)
        if message:
            if rank == 0:
                print(f"compoptim-run: error: {message}", file=sys.stderr)
            raise AgreedExit(2)
        if args.multirun and rank == 0 and output_dir is not None:
            print(f"sweep directory: {output_dir}", flush=True)
    # A sweep runs every job even when some do not finish, and under mpirun its shared files
    # come from rank 0 only (unless another sweeper is chosen).
    sweeper = ["hydra/sweeper=rank_zero"] if args.multirun and not any(
        a.startswith("hydra/sweeper=") for a in argv) else []
    sys.argv = [sys.argv[0], *argv, *sweeper, *(WORKER_OVERRIDES if rank else [])]
    _hydra_entry()


@hydra.main(version_base="1.3", config_path="pkg://compoptim.conf", config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    from compoptim.cli.job import run_job  # torch and the training layers, only for a real run

    return run_job(cfg, MPI.COMM_WORLD, _COMMAND)


if __name__ == "__main__":
    main()
