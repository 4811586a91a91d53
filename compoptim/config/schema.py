"""Typed schemas for the primary config and each config-group option.

The run's own settings (seed, trainer) are declared here. Every group option's schema is
generated from its registry entry's signature (``generate.py``): each option is available
as ``<group>=<name>`` from the ConfigStore, and a yaml option in conf/<group>/ (published
values, or another name) extends ``schema/<group>/<entry>``. A wrong type or unknown key
fails at composition with the key's full name; value ranges are checked by the
constructors that use them (one clear line naming the key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from compoptim.config import snapshot
from compoptim.config.generate import schema_class

CONFIG_MODULE = "compoptim.conf"

# The config groups users choose from, in the order the docs list them.
GROUPS = ("optimizer", "compressor", "topology", "model", "dataset", "backend", "network", "parallel", "logger")


class Device(Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 32  # per node
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    device: Device = Device.cpu
    threads: int | None = None  # torch intra-op threads per rank; None: cores / local ranks
    lr_schedule: str = "constant"  # constant | step | cosine
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs
    lr_milestones: list[int] = field(default_factory=list)  # step: epochs after which lr *= lr_decay
    lr_decay: float = 0.1
    checkpoint_every: int = 0  # epochs between checkpoints (0: only when a stop signal arrives)
    on_nonfinite: str = "stop"  # stop: end the run as diverged | skip: drop that step's gradient
    save_model: bool = True  # write the final averaged model's state dict to model.pt
    # samples of each node's shard for train_objective f(x̄) and grad_norm_sq (its first ones, a fixed
    # subsample); null: the whole shard; 0: not measured (NaN)
    objective_samples: int | None = None
    # test accuracy of the averaged model whose first crossing summary.json reports (time_to_target:
    # epoch, step, wall and simulated time, bytes); null: not reported
    target_acc: float | None = None


@dataclass
class RunConfig:
    seed: int = 0
    nodes: int | None = None  # the number of nodes this configuration is meant for (checked); None: any
    resume: bool = False  # continue the run in hydra.run.dir from its newest complete checkpoint
    experiment: Any = None  # free-form settings of an experiment preset (conf/experiment/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optimizer: Any = MISSING
    compressor: Any = MISSING
    topology: Any = MISSING
    model: Any = MISSING
    dataset: Any = MISSING
    backend: Any = MISSING
    network: Any = MISSING
    parallel: Any = MISSING
    logger: Any = MISSING


def yaml_options(group: str) -> list[str]:
    """The options of ``group`` that have a yaml file in conf/ (published values that differ
    from the factory's defaults, or another name for an entry, like fp16 for cast)."""
    folder = resources.files(CONFIG_MODULE).joinpath(*group.split("/"))
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def group_options(group: str) -> list[str]:
    """Every option of a config group: each registered name, and each yaml file."""
    return sorted(set(snapshot.load().get(group, ())) | set(yaml_options(group)))


def register_schemas() -> None:
    """Store ``schema/<group>/<name>`` for every registered entry (what yaml options extend),
    and ``<group>/<name>`` itself where no yaml file of that name exists. The fields come from
    the snapshot of the registries (``snapshot.py``): no factory module is imported here."""
    # ${mul:a,b}: experiment presets scale epochs with the local steps (lodadac: 250 * K).
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    cs = ConfigStore.instance()
    if "run_schema.yaml" in cs.repo:  # stored already in this process: every composition calls this
        return
    cs.store(name="run_schema", node=RunConfig)
    for group, options in snapshot.load().items():
        with_yaml = set(yaml_options(group))
        for name, fields in options.items():
            node = schema_class(group, name, [tuple(f) for f in fields])
            cs.store(group=f"schema/{group}", name=name, node=node)
            if name not in with_yaml:
                cs.store(group=group, name=name, node=node)
