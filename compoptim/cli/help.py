"""compoptim-run --help, generated from the conf tree so it never goes stale."""

from __future__ import annotations

from omegaconf import OmegaConf

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
