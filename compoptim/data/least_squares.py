"""A heterogeneous least-squares problem with a closed-form optimum: the oracle for exact
methods (gradient tracking, BEER reach x*; D-PSGD stops at a step-size-dependent bias)."""

from __future__ import annotations

import torch


def heterogeneous_least_squares(n: int = 8, d: int = 10, rows: int = 20, seed: int = 0
                                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, b, x*): node i's f_i(x) = 0.5 ||A_i x - b_i||^2 with A (n, rows, d) and b (n, rows),
    b_i shifted per node so the local optima differ; x* = (sum A_i^T A_i)^-1 sum A_i^T b_i
    minimises sum_i f_i (float64)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, rows, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, rows, generator=g, dtype=torch.float64) + 3 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    x_star = torch.linalg.solve(torch.einsum("nki,nkj->ij", a, a), torch.einsum("nki,nk->i", a, b))
    return a, b, x_star
