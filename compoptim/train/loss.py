"""The training objective of each task, shared by the step and the evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def task_loss(task: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (classification; per character for language) or squared error (regression)."""
    if task == "regression":
        return F.mse_loss(output.squeeze(-1), target, reduction=reduction)
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction=reduction)


def full_gradient_(model: torch.nn.Module, task: str, x: torch.Tensor, y: torch.Tensor, chunk: int = 1024) -> float:
    """Accumulates the gradient of the mean loss over all of (x, y) into the parameters'
    ``.grad`` (the caller zeroes them), in chunks of ``chunk`` samples so memory stays that
    of one chunk; returns the mean loss (0 for no samples, with no gradient added)."""
    count = loss_terms(y)
    total = 0.0
    with torch.enable_grad():
        for start in range(0, len(y), chunk):
            loss = task_loss(task, model(x[start : start + chunk]), y[start : start + chunk], reduction="sum")
            (loss / count).backward()
            total += loss.item()
    return total / max(count, 1)


def loss_terms(y: torch.Tensor) -> int:
    """The terms a mean loss over y averages: samples, times characters per sequence for language."""
    return len(y) * (y[0].numel() if len(y) else 1)
