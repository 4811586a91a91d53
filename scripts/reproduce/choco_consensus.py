"""CHOCO-Gossip: the consensus rate vs the consensus step gamma (Koloskova, Stich & Jaggi,
"Decentralized Stochastic Optimization and Gossip Algorithms with Compressed Communication",
ICML 2019, Algorithm 1, Theorem 2, Section 5's average-consensus experiments).

    python scripts/reproduce/choco_consensus.py          # ~3 min here; rewrites its section
    python scripts/reproduce/choco_consensus.py --smoke  # a few steps (CI)

The paper: average consensus on a ring of 25 nodes, d = 2000, with top-1% / rand-1% / qsgd
compression: CHOCO-Gossip converges linearly for a small enough gamma (Theorem 2: the rate
grows with gamma up to the stability limit), and every step preserves the average
(W symmetric, doubly stochastic). Here the same ring, d and top-1%, no gradients: x_i^0 is
node i's own N(0, 1) draw (float64), and each node runs compoptim's ChocoGossip alone. We
report the linear rate per step (fitted on the log error), the error at the end, and the
largest drift of the average |x_bar^t - x_bar^0|.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from common import Reproduction, table

from compoptim.comm import run_local
from compoptim.compress import CompressContext, build_compressor
from compoptim.optim.gossip import ChocoGossip
from compoptim.topology import ring

N, D, RATIO = 25, 2000, 0.01
EVERY = 10  # steps between recorded errors


def consensus(gamma: float, steps: int, compressor: dict) -> tuple[np.ndarray, float]:
    """(e_t = (1/n) sum_i ||x_i^t - x_bar^0||^2 / e_0 every EVERY steps, the largest drift of
    the average relative to the entries' size, max_t ||x_bar^t - x_bar^0||_inf / max_i ||x_i^t||_inf)."""
    start = [torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i in range(N)]
    x_bar0 = torch.stack(start).mean(0)
    e0 = torch.stack([((x - x_bar0) ** 2).sum() for x in start]).mean().item()
    errors = np.zeros((N, steps // EVERY + 1))
    snapshots = [[None] * (steps // EVERY + 1) for _ in range(N)]

    def node(comm):
        x = start[comm.rank].clone()
        c = build_compressor(compressor, CompressContext(dtype=torch.float64, seed=0, rank=comm.rank))
        gossip = ChocoGossip(comm, c, gamma, x)
        for t in range(steps + 1):
            if t % EVERY == 0:
                errors[comm.rank, t // EVERY] = ((x - x_bar0) ** 2).sum().item()
                snapshots[comm.rank][t // EVERY] = x.clone()
            if t < steps:
                gossip(x, t)

    run_local(ring(N), node)
    drift = 0.0
    for k in range(len(snapshots[0])):
        nodes = torch.stack([snapshots[i][k] for i in range(N)])
        drift = max(drift, ((nodes.mean(0) - x_bar0).abs().max() / nodes.abs().max()).item())
    return errors.mean(0) / e0, drift


FLOOR = 1e-20  # below, e_t is float64 round-off (exact gossip gets there within a few hundred steps)


def rate(errors: np.ndarray) -> float:
    """Linear rate per step: exp of the slope of log e_t over the second half of the steps
    before e_t reaches round-off (NaN if not finite)."""
    above = errors[: int(np.argmax(errors < FLOOR))] if np.any(errors < FLOOR) else errors
    half = above[len(above) // 2 :]
    if len(half) < 2 or not np.all(np.isfinite(half)) or np.any(half <= 0):
        return float("nan")
    slope = np.polyfit(np.arange(len(half)) * EVERY, np.log(half), 1)[0]
    return float(math.exp(slope))


def main(argv=None) -> None:
    rep = Reproduction("choco_consensus", __doc__, argv)
    steps = 50 if rep.smoke else 4000
    gammas = [0.05] if rep.smoke else [0.005, 0.01, 0.02, 0.04, 0.08, 0.2]
    topk = {"name": "topk", "ratio": RATIO}
    runs = {f"top-1%, γ = {g}": consensus(g, steps, topk) for g in gammas}
    runs["exact gossip (no compression, γ = 1)"] = consensus(1.0, steps, {"name": "none"})
    fig, ax = plt.subplots(figsize=(7, 4.2))
    rows = []
    for label, (errors, drift) in runs.items():
        ax.semilogy(np.arange(len(errors)) * EVERY, np.minimum(errors, 1e6), label=label)
        r = rate(errors)
        end = errors[-1]
        verdict = "diverges" if not math.isfinite(end) or end > 1 else "converges"
        rows.append([label, "n/a" if math.isnan(r) else f"{r:.5f}", f"{end:.2e}", f"{drift:.1e}", verdict])
    ax.set_xlabel("step")
    ax.set_ylabel("(1/n) Σ ||x_i - x̄⁰||² / initial (clipped at 1e6)")
    ax.set_title(f"CHOCO-Gossip, ring of {N}, d = {D}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    figure = rep.figure_path()
    fig.savefig(figure, dpi=120)
    plt.close(fig)
    rep.write_section(f"""
{steps} steps; the initial vectors are fixed draws (seeds 0–{N - 1}), the top-k has no randomness,
so each row is one deterministic run. Rate: e_(t+1)/e_t fitted over the second half of the steps
before round-off (e_t < 1e-20). Drift of the average: max over t of ‖x̄ᵗ − x̄⁰‖∞ / maxᵢ‖xᵢᵗ‖∞.

{table(["gossip", "rate per step", "error at the end", "drift of the average", ""], rows)}

![CHOCO-Gossip consensus vs gamma](figures/{figure.name})
""")


if __name__ == "__main__":
    main()
