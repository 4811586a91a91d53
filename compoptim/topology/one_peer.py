"""The one-peer exponential schedule: every round each node talks to at most one peer.

For n a power of two, round k pairs i with i XOR 2^k (k = 0..log2(n)-1): each round is a
perfect matching with W_k = (I + P_k)/2, and the product of one period is exactly
11^T/n (Ying et al. 2021, "Exponential Graph is Provably Efficient for Decentralized Deep
Training", NeurIPS, one-peer exponential graph, in its undirected hypercube form).

For other n, the edges {i, i + 2^k mod n} of each distinct hop form cycles; a cycle is split into
two matchings (alternate edges) plus, for odd length, one matching holding the closing
edge. The union over a period is the static exponential graph, so the schedule is
connected over its period though never within one round (n > 2).
"""

from __future__ import annotations

import math

import numpy as np

from compoptim.topology.graphs import from_pairs, hops


def one_peer_rounds(n: int) -> list[np.ndarray]:
    """Adjacency matrices of one period; each row has at most one 1."""
    if n == 1:
        return [np.zeros((1, 1))]
    if n & (n - 1) == 0:
        return [from_pairs(n, ((i, i ^ hop) for i in range(n))) for hop in hops(n)]
    rounds = []
    # Hops h and n - h give the same undirected edges (n = 6: hop 4 is hop 2): use each once.
    distinct = [h for h in hops(n) if n - h not in hops(n) or h <= n - h]
    for hop in distinct:
        matchings: list[list[tuple[int, int]]] = [[], [], []]
        for start in range(math.gcd(n, hop)):
            length = n // math.gcd(n, hop)
            walk = [(start + m * hop) % n for m in range(length)]
            if length == 2:  # hop = n/2: the "cycle" is a single edge
                matchings[0].append((walk[0], walk[1]))
                continue
            for m in range(length - 1):
                matchings[m % 2].append((walk[m], walk[m + 1]))
            closing = (walk[-1], walk[0])
            matchings[1 if length % 2 == 0 else 2].append(closing)
        rounds += [from_pairs(n, pairs) for pairs in matchings if pairs]
    return rounds
