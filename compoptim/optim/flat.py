"""One contiguous buffer for all parameters and one for all gradients.

The model's parameters become views into ``params`` and their ``.grad`` views into
``grads``, so autograd accumulates straight into the flat gradient buffer and every
optimizer and communication step works on two long vectors instead of per-tensor loops.
"""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    """``grads=False`` skips the gradient buffer for a model that is only evaluated."""

    def __init__(self, model: nn.Module, grads: bool = True) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters")
        dtypes = {p.dtype for p in params}
        devices = {p.device for p in params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise ValueError(f"flat buffers need one dtype and one device; got {dtypes} on {devices}")
        self.numel = sum(p.numel() for p in params)
        dtype, device = dtypes.pop(), devices.pop()
        self.params = torch.empty(self.numel, dtype=dtype, device=device)
        self.grads = torch.zeros(self.numel if grads else 0, dtype=dtype, device=device)
        offset = 0
        for p in params:
            n = p.numel()
            self.params[offset : offset + n].copy_(p.detach().reshape(-1))
            p.data = self.params[offset : offset + n].view_as(p)
            if grads:
                p.grad = self.grads[offset : offset + n].view_as(p)
            offset += n
        self._tensors = params
        # The parameter shapes in buffer order, for per-layer and low-rank compressors.
        self.shapes = tuple(tuple(p.shape) for p in params)

    def zero_grad(self) -> None:
        # Zero in place: autograd then accumulates into the views, keeping them attached.
        self.grads.zero_()

    def check_attached(self) -> None:
        """Raise if autograd or user code replaced a view (would silently detach training)."""
        grads = self.grads.untyped_storage().data_ptr()
        params = self.params.untyped_storage().data_ptr()
        for p in self._tensors:
            if p.grad is None or p.grad.untyped_storage().data_ptr() != grads:
                raise RuntimeError("a parameter's .grad is no longer a view of the flat gradient buffer")
            if p.untyped_storage().data_ptr() != params:
                raise RuntimeError("a parameter is no longer a view of the flat parameter buffer")
