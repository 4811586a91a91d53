"""compoptim-run --help, generated from the conf tree so it never goes stale."""

from __future__ import annotations

import os
import sys

from omegaconf import OmegaConf

import compoptim
from compoptim.config import GROUPS, composer, group_options

_USAGE = """\
compoptim-run: decentralized training with compressed communication.

usage: [mpirun -np N] compoptim-run [-m] [GROUP=OPTION ...] [KEY=VALUE ...]

Each MPI rank is one node; without mpirun the run has one node.
"""

_EXAMPLES = """\
examples:
  mpirun -np 4 compoptim-run
  mpirun -np 5 compoptim-run model=mlp trainer.epochs=10 optimizer.lr=0.02 seed=1
  mpirun -np 2 compoptim-run -m seed=0,1,2          # one run directory per job
  compoptim-run --cfg job                            # print the composed config

Hydra's own flags work too: -m/--multirun, --cfg job|hydra|all, --info, --hydra-help.
"""


def version_text(program: str) -> str:
    """``<program> 0.1.0 (torch ..., hydra ..., mpi4py ..., <MPI library>)``, without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    try:
        from mpi4py import MPI

        library = MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
    except ImportError:
        library = "no MPI"
    return (f"{program} {compoptim.__version__} (torch {of('torch')}, hydra {of('hydra-core')}, "
            f"mpi4py {of('mpi4py')}, {library})")


def print_and_exit(text: str) -> None:
    """Print ``text`` and exit 0, also when the reader closed the pipe early (``--help | head``)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    sys.exit(0)


def help_text() -> str:
    with composer() as compose:
        cfg = compose()
    lines = [_USAGE, "config groups (GROUP=OPTION; * = default):"]
    for group in GROUPS:
        chosen = cfg[group].name
        options = [f"{o}*" if o == chosen else o for o in group_options(group)]
        lines.append(f"  {group:<11} {', '.join(options)}")
    lines += ["", "default config (override any key with KEY=VALUE):", ""]
    lines += ["  " + line for line in OmegaConf.to_yaml(cfg).splitlines()]
    lines += ["", _EXAMPLES]
    return "\n".join(lines)
