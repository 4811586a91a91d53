"""The training objective of each task, shared by the step and the evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def task_loss(task: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (classification; per character for language) or squared error (regression)."""
    if task == "regression":
        return F.mse_loss(output.squeeze(-1), target, reduction=reduction)
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction=reduction)
