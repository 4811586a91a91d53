"""One training step of a pipeline stage on torch.distributed.pipelining's schedules."""

from __future__ import annotations

import torch


def pipeline_step(schedule, stage_index: int, stages: int, x: torch.Tensor, y: torch.Tensor,
                  losses: list[torch.Tensor] | None = None) -> None:
    """Run ``schedule`` (e.g. ``ScheduleGPipe``) for one batch on this rank's stage: the first
    stage feeds the inputs, the last the targets (and collects each microbatch's loss into
    ``losses``), the stages between neither (they receive activations and gradients from
    their neighbours). Gradients accumulate into the stage's parameters."""
    if stage_index == 0:
        schedule.step(x, target=y if stages == 1 else None, losses=losses if stages == 1 else None)
    elif stage_index == stages - 1:
        schedule.step(target=y, losses=losses)
    else:
        schedule.step()
