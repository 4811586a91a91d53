"""What a pipeline stage measures of itself: the activation bytes it exchanges with its
neighbouring stages and the time it computes, so that the rest of a schedule's step is the
bubble (waiting for the other stages).

``StageMeter.wrap(module)`` returns the module the engine runs. Its forward is timed by the
wrapper; its backward runs from the moment the gradient of its output arrives (a stamp on
the output) to the last of: the gradient of its input (a stamp on the input, where the
input needs one) and the gradients accumulated into its parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn


class _OnBackward(torch.autograd.Function):
    """Identity that calls ``event()`` when the gradient of its output passes through it
    (not for the engine's meta tensors)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, event: Callable[[], None]) -> torch.Tensor:
        ctx.event = event
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if not grad.is_meta:
            ctx.event()
        return grad, None


class _Timed(nn.Module):
    def __init__(self, inner: nn.Module, meter: StageMeter) -> None:
        super().__init__()
        self.inner, self.meter = inner, meter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        meter = self.meter
        start = time.perf_counter()
        if x.requires_grad:  # a later stage: the gradient of x is this stage's last backward work
            x = _OnBackward.apply(x, meter.backward_progressed)
        out = self.inner(x)
        if not out.is_meta:  # the engine's shape inference runs the stage on meta tensors once
            meter.busy_s += time.perf_counter() - start
            meter.microbatch_bytes = _nbytes(x) * (not meter.first) + _nbytes(out) * (not meter.last)
        return _OnBackward.apply(out, meter.backward_started) if out.requires_grad else out


class StageMeter:
    """Stage ``stage`` of ``stages``: activation bytes sent and received (a later stage
    receives its input and sends back its gradient; an earlier one sends its output and
    receives that gradient), from the tensors' sizes (the engine's shape inference, at the
    first step, moves only shapes), and busy time."""

    def __init__(self, stage: int, stages: int) -> None:
        self.first, self.last = stage == 0, stage == stages - 1
        self.bytes_sent = self.bytes_received = 0
        self.microbatch_bytes = 0  # one microbatch's activation (input and/or output) bytes
        self.busy_s = 0.0
        self._open: float | None = None  # when the backward now running started
        self._latest = 0.0

    def wrap(self, module: nn.Module) -> nn.Module:
        for p in module.parameters():
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(lambda _p: self.backward_progressed())
        return _Timed(module, self)

    def backward_started(self) -> None:
        self.close()
        self._open = self._latest = time.perf_counter()

    def count_step(self, microbatches: int) -> None:
        """A training step moved, for each microbatch, the stage's input (received) and its
        gradient (sent back) and its output (sent) and that gradient (received): the engine's
        buffers have fixed shapes, those of the first step's microbatches."""
        self.bytes_sent += microbatches * self.microbatch_bytes
        self.bytes_received += microbatches * self.microbatch_bytes

    def backward_progressed(self) -> None:
        self._latest = time.perf_counter()

    def close(self) -> None:
        """End the backward interval in progress (called at the next one and after a step)."""
        if self._open is not None:
            self.busy_s += self._latest - self._open
            self._open = None


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
