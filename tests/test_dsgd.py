"""D-PSGD against its oracles: torch.optim.SGD for n = 1, and the matrix form X' = WX - eta*M."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compoptim.comm import run_local
from compoptim.compress import CompressContext, Identity
from compoptim.errors import UserError
from compoptim.optim import DSGD, FlatParameters
from compoptim.topology import complete, ring

F64 = CompressContext(dtype=torch.float64)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 5e-4), (0.5, 1e-2)])
def test_single_node_equals_torch_sgd(momentum, weight_decay):
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    ours = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    ours.load_state_dict(ref.state_dict())
    torch_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
    data = [(torch.randn(8, 10), torch.randint(0, 3, (8,))) for _ in range(15)]

    def node(comm):
        flat = FlatParameters(ours)
        opt = DSGD(flat, comm, Identity(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
        for x, y in data:
            flat.zero_grad()
            F.cross_entropy(ours(x), y).backward()
            opt.step()
        return opt.t

    assert run_local(ring(1), node) == [15]
    for x, y in data:
        torch_opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        torch_opt.step()
    for p, q in zip(ref.parameters(), ours.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=0)


@pytest.mark.parametrize("topology", [ring(5), complete(4), ring(2)], ids=lambda t: f"{t.name}{t.n}")
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matrix_form_oracle(topology, momentum):
    """Least squares f_i(x) = 0.5||A_i x - b_i||^2 with a different (A_i, b_i) per node."""
    n, d, eta, lam, steps = topology.n, 6, 0.05, 1e-3, 20
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(n, 9, d, generator=gen, dtype=torch.float64)
    b = torch.randn(n, 9, generator=gen, dtype=torch.float64)
    x0 = torch.randn(d, generator=gen, dtype=torch.float64)

    def grad(i, x):
        return a[i].T @ (a[i] @ x - b[i])

    # Oracle: X^{t+1} = W X^t - eta M^{t+1}, M^{t+1} = mu M^t + G(X^t) + lam X^t.
    w = torch.tensor(topology.matrix())
    x_ref = x0.repeat(n, 1)
    m_ref = torch.zeros_like(x_ref)
    for _ in range(steps):
        g = torch.stack([grad(i, x_ref[i]) for i in range(n)]) + lam * x_ref
        m_ref = momentum * m_ref + g
        x_ref = w @ x_ref - eta * m_ref

    def node(comm):
        model = nn.Linear(d, 1, bias=False).double()
        flat = FlatParameters(model)
        flat.params.copy_(x0)
        opt = DSGD(flat, comm, Identity(F64), lr=eta, momentum=momentum, weight_decay=lam)
        for _ in range(steps):
            flat.zero_grad()
            flat.grads.copy_(grad(comm.rank, flat.params))
            opt.step()
        return flat.params.clone(), comm.bytes_sent

    results = run_local(topology, node)
    for i, (x, sent) in enumerate(results):
        torch.testing.assert_close(x, x_ref[i], rtol=1e-12, atol=1e-12)
        assert sent == steps * len(topology.neighbors(i)) * d * 8


def test_complete_graph_mean_iterate_is_sgd_on_averaged_gradient():
    """With W = J the average evolves as x_bar' = x_bar - eta * mean_i g_i(x_i)."""
    n, d, eta = 4, 5, 0.1
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(n, 7, d, generator=gen, dtype=torch.float64)
    b = torch.randn(n, 7, generator=gen, dtype=torch.float64)

    def node(comm):
        model = nn.Linear(d, 1, bias=False).double()
        flat = FlatParameters(model)
        flat.params.zero_()
        opt = DSGD(flat, comm, Identity(F64), lr=eta)
        history = []
        for _ in range(5):
            g = a[comm.rank].T @ (a[comm.rank] @ flat.params - b[comm.rank])
            x_bar = comm.allreduce_(flat.params.clone(), "mean")
            g_bar = comm.allreduce_(g.clone(), "mean")
            flat.grads.copy_(g)
            opt.step()
            history.append((x_bar, g_bar, comm.allreduce_(flat.params.clone(), "mean")))
        return history

    for x_bar, g_bar, x_bar_next in run_local(complete(n), node)[0]:
        torch.testing.assert_close(x_bar_next, x_bar - eta * g_bar, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0.0}, r"optimizer.lr must be > 0"),
        ({"lr": 0.1, "momentum": 1.0}, r"optimizer.momentum must be >= 0 and < 1"),
        ({"lr": 0.1, "weight_decay": -1}, r"optimizer.weight_decay must be >= 0"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(kwargs, message):
    def node(comm):
        DSGD(FlatParameters(nn.Linear(2, 1)), comm, Identity(), **kwargs)

    with pytest.raises(UserError, match=message):
        run_local(ring(1), node)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_state_dict_resumes_bit_exactly(momentum):
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(7, generator=gen) for _ in range(10)]

    def run(split):
        def node(comm):
            model = nn.Linear(7, 1, bias=False)
            flat = FlatParameters(model)
            flat.params.fill_(0.5)
            opt = DSGD(flat, comm, Identity(), lr=0.1, momentum=momentum, weight_decay=0.01)
            for g in grads[:split]:
                flat.grads.copy_(g)
                opt.step()
            state, x = opt.state_dict(), flat.params.clone()
            # a fresh optimizer resumed from the saved state
            model2 = nn.Linear(7, 1, bias=False)
            flat2 = FlatParameters(model2)
            flat2.params.copy_(x)
            opt2 = DSGD(flat2, comm, Identity(), lr=0.1, momentum=momentum, weight_decay=0.01)
            opt2.load_state_dict(state)
            for g in grads[split:]:
                flat2.grads.copy_(g)
                opt2.step()
            return flat2.params.clone(), opt2.t

        return run_local(ring(1), node)[0]

    straight, resumed = run(0), run(4)
    assert resumed[1] == straight[1] == 10
    assert torch.equal(straight[0], resumed[0])
