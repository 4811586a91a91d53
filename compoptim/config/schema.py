"""Typed schemas for the primary config and each config-group option.

Each YAML option in conf/<group>/ extends its schema from the ``schema/<group>`` group, so
a wrong type or unknown key fails at composition with the key's full name. Value ranges
are checked by the constructors that use them (one clear line naming the key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

# The config groups users choose from, in the order the docs list them.
GROUPS = ("optimizer", "compressor", "topology", "model", "dataset", "backend", "logger")


class WeightRule(Enum):
    auto = "auto"  # uniform on a regular graph, Metropolis-Hastings otherwise
    uniform = "uniform"
    metropolis_hastings = "metropolis_hastings"


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
    logger: Any = MISSING


@dataclass
class OptimizerBaseConfig:
    name: str = MISSING
    lr: float = 0.1


@dataclass
class CommunicationConfig(OptimizerBaseConfig):
    """How a rule-based optimizer communicates (see compoptim/optim/composed.py)."""

    comm_set: list[str] = field(default_factory=lambda: ["x"])  # x, plus the rule's moments (m, v, ...)
    gossip: str = "auto"  # auto (exact, or choco with a compressor) | exact | choco | allreduce | local
    gamma: float = 1.0  # CHOCO consensus step
    gamma_y: float | None = None  # the tracker's consensus step (None: gamma)
    order: str = "atc"  # atc: adapt then combine | cta: combine then adapt
    period: int = 1  # gossip=local: steps between averaging
    tracking: bool = False  # gradient tracking
    l1: float = 0.0  # l1 regularisation, applied by its proximal step
    overlap: bool | None = None  # send x_t while the gradient is computed (cta + exact); None: whenever possible


@dataclass
class SGDFamilyConfig(CommunicationConfig):
    name: str = MISSING
    lr: float = 0.1
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class AdamFamilyConfig(CommunicationConfig):
    name: str = MISSING
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class AdagradConfig(CommunicationConfig):
    name: str = "adagrad"
    lr: float = 0.01
    eps: float = 1e-10
    weight_decay: float = 0.0
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0


@dataclass
class HeavyBallConfig(CommunicationConfig):
    name: str = MISSING
    lr: float = 0.02
    beta: float = 0.9


@dataclass
class DamscoConfig(CommunicationConfig):
    name: str = "damsco"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class DadamConfig(CommunicationConfig):
    name: str = "dadam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999, 0.9])
    eps: float = 1e-8


@dataclass
class DeepSqueezeConfig:
    name: str = "deepsqueeze"
    lr: float = 0.1
    gamma: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class BEERConfig:
    name: str = "beer"
    lr: float = 0.1
    gamma: float = 0.1


@dataclass
class DoCoMConfig:
    name: str = "docom"
    lr: float = 0.1
    gamma: float = 0.2
    beta: float = 0.1


@dataclass
class AdaptiveConfig:
    name: str = MISSING
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    eps: float = 1e-6
    gamma: float = 1.0


@dataclass
class CompressorConfig:
    name: str = MISSING
    error_feedback: bool = False  # v = x + e, send C(v), e <- v - C(v)


@dataclass
class CastConfig(CompressorConfig):
    dtype: str = "float16"  # float16 | bfloat16


@dataclass
class TopKConfig(CompressorConfig):
    ratio: float = 0.01  # fraction of entries kept
    k: int | None = None  # entries kept (per layer with per_layer); overrides ratio
    per_layer: bool = False


@dataclass
class UnbiasedCompressorConfig(CompressorConfig):
    rescale: bool = False  # divide by 1 + omega: contractive, delta = 1/(1 + omega)


@dataclass
class RandomKConfig(UnbiasedCompressorConfig):
    ratio: float = 0.01
    k: int | None = None


@dataclass
class QSGDConfig(UnbiasedCompressorConfig):
    levels: int = 7  # s
    bucket_size: int = 512  # entries per norm; 0: the whole vector


@dataclass
class LowRankConfig(CompressorConfig):
    rank: int = 2


@dataclass
class NoGraphConfig:
    name: str = MISSING


@dataclass
class GraphConfig:
    name: str = MISSING
    weights: WeightRule = WeightRule.auto
    lazy: float = 0.0  # W <- lazy*I + (1 - lazy)*W


@dataclass
class TorusConfig(GraphConfig):
    rows: int | None = None  # None: chosen (near-square)
    cols: int | None = None


@dataclass
class ErdosRenyiConfig(GraphConfig):
    p: float = 0.5
    seed: int = 0


@dataclass
class EdgeListConfig(GraphConfig):
    path: str = ""  # required; the builder names it when empty


@dataclass
class MPIBackendConfig:
    name: str = "mpi"
    cuda_aware: bool | None = None  # None: ask the MPI library (MPIX_Query_cuda_support)
    timeout_s: float | None = None  # per neighbour exchange; None: wait as long as it takes


@dataclass
class NoLoggerConfig:
    name: str = "none"


@dataclass
class TensorBoardConfig:
    name: str = "tensorboard"
    dir: str = "tensorboard"  # inside the run directory


@dataclass
class LocalBackendConfig:
    name: str = "local"
    nodes: int = 4


@dataclass
class LeNet5Config:
    name: str = "lenet5"


@dataclass
class MLPConfig:
    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [200, 200])


@dataclass
class PartitionConfig:
    partition: str = "iid"  # iid | label | dirichlet | shards
    classes_per_node: int | None = None  # label: classes per node (None: ceil(classes / n))
    alpha: float = 0.5  # dirichlet concentration
    shards_per_node: int = 2  # shards


@dataclass
class DigitsConfig(PartitionConfig):
    name: str = "digits"
    test_fraction: float = 0.2
    split_seed: int = 0  # fixed train/test split, independent of the run's seed


@dataclass
class TorchvisionConfig(PartitionConfig):
    name: str = MISSING
    root: str = "data"
    download: bool = False


@dataclass
class CIFARConfig(TorchvisionConfig):
    augment: bool = True  # random crop (4-pixel padding) + horizontal flip, batched on the device


@dataclass
class ShakespeareConfig(PartitionConfig):
    name: str = "shakespeare"
    path: str = "data/shakespeare/input.txt"
    context: int = 64
    test_fraction: float = 0.1
    stride: int | None = None


@dataclass
class SyntheticConfig(PartitionConfig):
    name: str = "synthetic"
    problem: str = "classification"  # classification | least_squares
    features: int = 20
    classes: int = 5
    samples: int = 4000
    groups: int = 16
    heterogeneity: float = 1.0
    noise: float = 0.1
    seed: int = 0
    image_shape: list[int] | None = None  # e.g. [3, 32, 32]: CIFAR-shaped inputs


@dataclass
class ModelConfig:
    name: str = MISSING


@dataclass
class ResNet18Config:
    name: str = "resnet18"
    bn_stats: str = "averaged"  # averaged | local


@dataclass
class CharGPTConfig:
    name: str = "char_gpt"
    layers: int = 2
    heads: int = 4
    width: int = 128
    dropout: float = 0.0


_SCHEMAS = {
    "optimizer": {"sgd_family": SGDFamilyConfig, "adam_family": AdamFamilyConfig, "adagrad": AdagradConfig,
                  "heavy_ball": HeavyBallConfig, "damsco": DamscoConfig, "dadam": DadamConfig,
                  "deepsqueeze": DeepSqueezeConfig, "beer": BEERConfig, "docom": DoCoMConfig,
                  "adaptive": AdaptiveConfig},
    "compressor": {"plain": CompressorConfig, "cast": CastConfig, "topk": TopKConfig,
                   "unbiased": UnbiasedCompressorConfig, "randomk": RandomKConfig, "qsgd": QSGDConfig,
                   "lowrank": LowRankConfig},
    "topology": {"graph": GraphConfig, "torus": TorusConfig, "erdos_renyi": ErdosRenyiConfig,
                 "edges": EdgeListConfig, "none": NoGraphConfig},
    "model": {"lenet5": LeNet5Config, "mlp": MLPConfig, "plain": ModelConfig, "resnet18": ResNet18Config,
              "char_gpt": CharGPTConfig},
    "dataset": {"digits": DigitsConfig, "torchvision": TorchvisionConfig, "cifar10": CIFARConfig,
                "shakespeare": ShakespeareConfig, "synthetic": SyntheticConfig},
    "backend": {"mpi": MPIBackendConfig, "local": LocalBackendConfig},
    "logger": {"none": NoLoggerConfig, "tensorboard": TensorBoardConfig},
}


def register_schemas() -> None:
    # ${mul:a,b}: experiment presets scale epochs with the local steps (lodadac: 250 * K).
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    for group, schemas in _SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
