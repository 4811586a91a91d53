"""Cutting a model's block sequence (``Model.blocks()``) into S contiguous pipeline stages.

A pipeline runs at the pace of its slowest stage, so the heuristic minimizes the largest
stage cost. This is the linear partition problem, solved exactly by dynamic programming in
O(S · B²) for B blocks (``balanced_split``). The costs are measured (``block_costs``: a
short timed forward and backward per block on the run's device) or, as a fallback,
parameter counts (``parameter_costs``). A split given by hand (``manual_split``) is
checked to cover the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
from torch import nn

from compoptim.errors import UserError


@dataclass(frozen=True)
class Split:
    """Stage s holds blocks ``bounds[s]`` to ``bounds[s + 1] - 1``."""

    bounds: tuple[int, ...]
    costs: tuple[float, ...]  # per block

    @property
    def stages(self) -> int:
        return len(self.bounds) - 1

    def blocks_per_stage(self) -> list[int]:
        return [b - a for a, b in zip(self.bounds, self.bounds[1:])]

    def stage_costs(self) -> list[float]:
        return [sum(self.costs[a:b]) for a, b in zip(self.bounds, self.bounds[1:])]

    @property
    def balance(self) -> float:
        """Largest stage cost over the mean: 1 is a perfect balance, S the worst."""
        costs = self.stage_costs()
        mean = sum(costs) / len(costs)
        return max(costs) / mean if mean > 0 else 1.0


def _check(costs: Sequence[float], stages: int) -> None:
    if stages < 1:
        raise UserError(f"parallel.stages must be >= 1; got {stages}")
    if stages > len(costs):
        raise UserError(f"parallel.stages={stages} is more stages than the model's {len(costs)} blocks; "
                        f"allowed: 1 to {len(costs)}")
    if any(not c >= 0 for c in costs):
        raise ValueError(f"block costs must be finite and >= 0; got {list(costs)}")


def balanced_split(costs: Sequence[float], stages: int) -> Split:
    """The contiguous split into ``stages`` non-empty stages whose largest stage cost is the
    smallest possible; among those, the one with the earliest cuts."""
    _check(costs, stages)
    n = len(costs)
    prefix = [0.0, *accumulate(costs)]
    inf = float("inf")
    # best[s][i]: the smallest largest-stage cost of the first i blocks in s stages; cut[s][i]: its last cut
    best = [[inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for s in range(1, stages + 1):
        for i in range(s, n - (stages - s) + 1):
            for j in range(s - 1, i):  # the last stage holds blocks j..i-1
                value = max(best[s - 1][j], prefix[i] - prefix[j])
                if value < best[s][i]:  # strict: the earliest cut wins a tie
                    best[s][i], cut[s][i] = value, j
    bounds, i = [n], n
    for s in range(stages, 0, -1):
        i = cut[s][i]
        bounds.append(i)
    return Split(tuple(reversed(bounds)), tuple(float(c) for c in costs))


def manual_split(blocks_per_stage: Sequence[int], costs: Sequence[float]) -> Split:
    """``parallel.split=[...]``: blocks per stage, which must cover the model's blocks exactly."""
    counts = list(blocks_per_stage)
    if not counts or any(c < 1 for c in counts) or sum(counts) != len(costs):
        raise UserError(f"parallel.split={counts} must give every stage at least one block and cover the model's "
                        f"{len(costs)} blocks exactly (its entries must sum to {len(costs)})")
    return Split((0, *accumulate(counts)), tuple(float(c) for c in costs))


def parameter_costs(blocks: Sequence[nn.Module]) -> list[float]:
    """Each block's parameter count: the fallback cost where timing is not possible."""
    return [float(sum(p.numel() for p in b.parameters())) for b in blocks]


def block_costs(blocks: Sequence[nn.Module], example: torch.Tensor, repeats: int = 5) -> list[float]:
    """Seconds of forward and backward of each block on ``example`` (a batch, on the run's
    device): the fastest of ``repeats`` timings, after one warm-up (other work on the
    machine only ever adds time, so the minimum is the steadiest estimate)."""
    costs, x = [], example
    for block in blocks:
        inp = x.detach().requires_grad_(x.is_floating_point())
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            out = block(inp)
            grads = [t for t in (inp, *block.parameters()) if t.requires_grad]
            if grads and out.requires_grad:
                torch.autograd.grad(out, grads, torch.ones_like(out), allow_unused=True)
            if out.is_cuda:
                torch.cuda.synchronize(out.device)
            times.append(time.perf_counter() - start)
        costs.append(min(times[1:]))
        x = out.detach()
    return costs
