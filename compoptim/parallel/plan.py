"""The config group ``parallel``: how a run distributes its model over the ranks.

``parallel=data`` (the default): every rank holds the whole model and its own data shard,
as in every decentralized method. ``parallel=pipeline parallel.stages=S``: the N ranks form
N/S replicas of an S-stage pipeline; a replica's S ranks share one data shard and hold
consecutive blocks of the model, and each stage's parameters are gossiped among the
replicas holding that stage (``docs/parallel.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from compoptim.errors import UserError, unknown_choice
from compoptim.registry import Registry

# The torch.distributed.pipelining schedules a run can use: one stage per rank. The
# interleaved and looped ones place several stages on each rank, which this layout does not.
SCHEDULES = ("gpipe", "1f1b")
COSTS = ("measured", "parameters")  # what the split balances: timed forward+backward, or parameter counts


@dataclass(frozen=True)
class ParallelPlan:
    name: str  # data | pipeline
    stages: int = 1
    microbatches: int = 1
    schedule: str = "gpipe"
    split: tuple[int, ...] | None = None  # blocks per stage, by hand; None: the balanced split
    cost: str = "measured"

    def __post_init__(self) -> None:
        if self.stages < 1:
            raise UserError(f"parallel.stages must be >= 1; got {self.stages}")
        if self.microbatches < 1:
            raise UserError(f"parallel.microbatches must be >= 1; got {self.microbatches}")
        if self.schedule not in SCHEDULES:
            raise UserError(unknown_choice("parallel.schedule", self.schedule, SCHEDULES)
                            + " (the interleaved schedules need several stages per rank)")
        if self.cost not in COSTS:
            raise UserError(unknown_choice("parallel.cost", self.cost, COSTS))
        if self.split is not None and len(self.split) != self.stages:
            raise UserError(f"parallel.split={list(self.split)} gives {len(self.split)} stages but "
                            f"parallel.stages={self.stages}: give one block count per stage")

    @property
    def pipelined(self) -> bool:
        """More than one stage: the engine runs. One stage is the data-parallel run itself."""
        return self.stages > 1

    def check_batch(self, batch_size: int, has_batch_norm: bool) -> None:
        """The engine splits each batch into ``microbatches`` equal parts: a microbatch's mean
        loss is then a fixed share of the batch's, and BatchNorm gets at least 2 samples."""
        if not self.pipelined:
            return
        if batch_size % self.microbatches:
            raise UserError(f"trainer.batch_size={batch_size} must be a multiple of parallel.microbatches="
                            f"{self.microbatches}: the pipeline cuts each batch into equal microbatches")
        if has_batch_norm and batch_size // self.microbatches < 2:
            raise UserError(f"this model has BatchNorm, which needs at least 2 samples per microbatch in training; "
                            f"trainer.batch_size={batch_size} / parallel.microbatches={self.microbatches} gives "
                            f"{batch_size // self.microbatches}: use fewer microbatches or a larger batch")


PARALLEL = Registry("parallel")


@PARALLEL.register("data")
def data() -> ParallelPlan:
    """Every rank holds the whole model and its own data shard (data-parallel decentralized training)."""
    return ParallelPlan("data")


@PARALLEL.register("pipeline")
def pipeline(stages: int = 2, microbatches: int = 4, schedule: str = "gpipe", split: list[int] | None = None,
             cost: str = "measured") -> ParallelPlan:
    """N ranks as N/stages replicas of a pipeline on torch.distributed.pipelining; each stage
    gossiped among its replicas. ``split``: blocks per stage (None: the balanced split of
    ``cost``); ``schedule``: gpipe or 1f1b."""
    return ParallelPlan("pipeline", stages, microbatches, schedule, None if split is None else tuple(split), cost)
