import pytest
import torch
from torch import nn

from compoptim.optim import FlatParameters


def test_parameters_and_grads_are_views_of_flat_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    before = [p.detach().clone() for p in model.parameters()]
    flat = FlatParameters(model)
    assert flat.numel == sum(b.numel() for b in before)
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)
    flat.params.add_(1.0)
    assert torch.equal(next(model.parameters()), before[0] + 1.0)

    for _ in range(2):  # twice: zero_grad must keep the views attached
        flat.zero_grad()
        model(torch.randn(8, 5)).pow(2).sum().backward()
        flat.check_attached()
        expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.equal(flat.grads, expected)
        assert flat.grads.abs().sum() > 0


def test_detached_grad_is_detected():
    model = nn.Linear(3, 2)
    flat = FlatParameters(model)
    model.weight.grad = torch.zeros(2, 3)
    with pytest.raises(RuntimeError, match="no longer a view"):
        flat.check_attached()
