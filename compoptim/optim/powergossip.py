"""PowerGossip (Vogels, Karimireddy & Jaggi 2020, "PowerGossip: Practical Low-Rank
Communication Compression in Decentralized Deep Learning", Algorithm 1): each edge
compresses the difference of its two models with one warm-started power-iteration step.

For an edge (i, j) and a parameter matrix X (a tensor viewed as shape[0] x the rest, m x n),
let M = X_hi - X_lo be the higher-ranked node's copy minus the lower-ranked one's. Both ends
hold the same rank-r factors P (m x r) and Q (n x r), drawn alike at the start from the
edge's own generator and warm-started from round to round. Round k does half a power
iteration, alternating sides:

    k even:  Q̂ = orth(Q);  each end sends X Q̂ (m x r);  P = M Q̂;   M̂ = P Q̂^T
    k odd:   P̂ = orth(P);  each end sends X^T P̂ (n x r); Q = M^T P̂; M̂ = P̂ Q^T

(both ends subtract the same two products, so they hold the same bits), then

    x_i <- x_i + gamma * sum_j w_ij * (x_j - x_i)^,   (x_j - x_i)^ = ±M̂ of edge (i, j)

The two ends move by opposite amounts, so sum_i x_i is preserved. A tensor with one
dimension, and a matrix with r >= min(m, n) (whose factors cost as much as the matrix), are
sent whole: their M̂ is M exactly, so with r >= min(m, n) for every matrix this is exact
gossip with step gamma. orth is Gram-Schmidt; a column that vanished (the two copies
agreed along it) is redrawn from the edge's generator, at both ends alike, so the power
iteration never stalls at zero.

Bytes per edge and round: element size x (sum over compressed matrices of r*m (even k) or
r*n (odd k) + the numel of every tensor sent whole), the same in both directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.compress.randomness import derived_seed
from compoptim.errors import UserError
from compoptim.optim.gossip import Gossip


@dataclass(frozen=True)
class Block:
    """One parameter tensor in the flat vector: where it is, and how it travels."""

    offset: int
    numel: int
    rows: int  # m (shape[0]); a tensor sent whole has rows = numel, cols = 1
    cols: int  # n
    rank: int  # r used (0: sent whole)


def plan_blocks(shapes: tuple[tuple[int, ...], ...], rank: int) -> list[Block]:
    """The blocks of the flat vector: matrices with r < min(m, n) compressed, the rest sent whole."""
    blocks, offset = [], 0
    for shape in shapes:
        numel = math.prod(shape)
        rows = shape[0] if len(shape) >= 2 else numel
        cols = numel // rows if rows else 0
        compressed = len(shape) >= 2 and rank < min(rows, cols)
        blocks.append(Block(offset, numel, rows, cols, rank if compressed else 0))
        offset += numel
    return blocks


def message_numel(blocks: list[Block], even: bool) -> int:
    """Entries of one edge's message in a round: r*m (even) or r*n (odd) per compressed matrix,
    the numel of every tensor sent whole."""
    return sum((b.rank * (b.rows if even else b.cols)) if b.rank else b.numel for b in blocks)


class _Edge:
    """The factors an edge's two ends share (one P and one Q buffer, every compressed block's
    factors packed in them) and the generator they were drawn from."""

    def __init__(self, blocks: list[Block], seed: int, dtype: torch.dtype, device: torch.device) -> None:
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        compressed = [b for b in blocks if b.rank]
        self.p = torch.randn(sum(b.rows * b.rank for b in compressed), generator=self.generator, dtype=dtype,
                             device=device)
        self.q = torch.randn(sum(b.cols * b.rank for b in compressed), generator=self.generator, dtype=dtype,
                             device=device)
        self.p_views, self.q_views = {}, {}
        p_at = q_at = 0
        for k, b in enumerate(blocks):
            if b.rank:
                self.p_views[k] = self.p[p_at: p_at + b.rows * b.rank].view(b.rows, b.rank)
                self.q_views[k] = self.q[q_at: q_at + b.cols * b.rank].view(b.cols, b.rank)
                p_at, q_at = p_at + b.rows * b.rank, q_at + b.cols * b.rank


def orthonormalize_(a: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gram-Schmidt on the columns of ``a`` in place; a column with nothing left is redrawn."""
    for k in range(a.shape[1]):
        col = a[:, k]
        for _ in range(2):  # a redrawn column is projected and normalised like the others
            for prev in range(k):
                col.sub_(a[:, prev] * torch.dot(a[:, prev], col))
            norm = torch.linalg.vector_norm(col)
            if norm > 0:
                col.div_(norm)
                break
            col.copy_(torch.randn(col.shape, generator=generator, dtype=col.dtype, device=col.device))
    return a


class PowerGossip(Gossip):
    """See the module docstring. ``shapes``: the parameter tensors' shapes in the flat order."""

    def __init__(self, comm: Communicator, shapes: tuple[tuple[int, ...], ...], like: torch.Tensor, rank: int,
                 gamma: float, seed: int) -> None:
        if rank < 1:
            raise UserError(f"optimizer.rank must be >= 1 (the rank of each edge's low-rank difference); got {rank}")
        topology = comm.topology
        if topology.directed:
            raise UserError(f"optimizer.gossip=powergossip compresses each edge's difference from both ends: it needs "
                            f"an undirected topology; topology={topology.name} is directed")
        self.comm, self.gamma = comm, gamma
        self.blocks = plan_blocks(shapes, rank)
        self.trivial = all(not topology.neighbors(i, r) for i in range(topology.n) for r in range(topology.period))
        me = comm.rank
        peers = sorted({j for r in range(topology.period) for j in topology.neighbors(me, r)})
        self.edges = {j: _Edge(self.blocks, derived_seed(seed, min(me, j), max(me, j)), like.dtype, like.device)
                      for j in peers}
        self.rounds = 0  # every node gossips every round, so the parity agrees at both ends of an edge
        largest = max(message_numel(self.blocks, True), message_numel(self.blocks, False))
        self._out = {j: torch.empty(largest, dtype=like.dtype, device=like.device) for j in peers}

    def __call__(self, v: torch.Tensor, step: int) -> None:
        if self.trivial:
            return
        even = self.rounds % 2 == 0
        self.rounds += 1
        _, weights = self.comm.topology.weights(self.comm.rank, step)
        # A node without a peer this round still takes part (the in-process backend meets
        # every node at every exchange): it sends and receives nothing.
        numel = message_numel(self.blocks, even)
        mine = [self._products(v, j, even, numel) for j in weights]
        received = self.comm.exchange_edges([m.view(torch.uint8) for m in mine], step)
        for (j, w), ours, theirs in zip(weights.items(), mine, received):
            theirs = theirs.view(v.dtype)[:numel]
            # M = X_hi - X_lo at both ends (the same subtraction, so the same bits); this node
            # moves by + gamma w (x_j - x_i)^ = -/+ gamma w M̂ as it is the higher/lower one.
            higher = self.comm.rank > j
            diff = torch.sub(ours, theirs) if higher else torch.sub(theirs, ours)
            self._apply(v, j, even, diff, -self.gamma * w if higher else self.gamma * w)

    def _products(self, v: torch.Tensor, j: int, even: bool, numel: int) -> torch.Tensor:
        """This node's message to j: X Q̂ or X^T P̂ per compressed block, X for the others."""
        edge, out, at = self.edges[j], self._out[j][:numel], 0
        for k, b in enumerate(self.blocks):
            x = v[b.offset: b.offset + b.numel]
            if not b.rank:
                out[at: at + b.numel].copy_(x)
                at += b.numel
                continue
            matrix = x.view(b.rows, b.cols)
            if even:
                q_hat = orthonormalize_(edge.q_views[k], edge.generator)
                torch.matmul(matrix, q_hat, out=out[at: at + b.rows * b.rank].view(b.rows, b.rank))
                at += b.rows * b.rank
            else:
                p_hat = orthonormalize_(edge.p_views[k], edge.generator)
                torch.matmul(matrix.T, p_hat, out=out[at: at + b.cols * b.rank].view(b.cols, b.rank))
                at += b.cols * b.rank
        return out

    def _apply(self, v: torch.Tensor, j: int, even: bool, diff: torch.Tensor, scale: float) -> None:
        """v += scale * M̂ per block, keeping the new factor (P on even rounds, Q on odd) for the warm start."""
        edge, at = self.edges[j], 0
        for k, b in enumerate(self.blocks):
            x = v[b.offset: b.offset + b.numel]
            if not b.rank:
                x.add_(diff[at: at + b.numel], alpha=scale)
                at += b.numel
                continue
            matrix = x.view(b.rows, b.cols)
            if even:
                p = edge.p_views[k]
                p.copy_(diff[at: at + b.rows * b.rank].view(b.rows, b.rank))
                matrix.addmm_(p, edge.q_views[k].T, alpha=scale)  # M̂ = P Q̂^T
                at += b.rows * b.rank
            else:
                q = edge.q_views[k]
                q.copy_(diff[at: at + b.cols * b.rank].view(b.cols, b.rank))
                matrix.addmm_(edge.p_views[k], q.T, alpha=scale)  # M̂ = P̂ Q^T
                at += b.cols * b.rank

    def state_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds,
                "edges": {j: {"p": e.p.clone(), "q": e.q.clone(), "generator": e.generator.get_state()}
                          for j, e in self.edges.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rounds = int(state["rounds"])
        for j, e in self.edges.items():
            saved = state["edges"][j]
            e.p.copy_(saved["p"])
            e.q.copy_(saved["q"])
            e.generator.set_state(saved["generator"])
