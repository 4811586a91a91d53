"""Graphs and mixing matrices. Pure math: numpy only, no MPI, no torch."""

from compoptim.topology.base import Topology
from compoptim.topology.builders import (
    TOPOLOGIES,
    build_topology,
    complete,
    disconnected,
    erdos_renyi,
    exponential,
    from_edges,
    hypercube,
    one_peer_exponential,
    random_matching,
    ring,
    star,
    torus,
)
from compoptim.topology.weights import WEIGHT_RULES, metropolis_hastings, mixing_matrix, uniform

__all__ = [
    "TOPOLOGIES", "WEIGHT_RULES", "Topology", "build_topology", "complete", "disconnected", "erdos_renyi",
    "exponential", "from_edges", "hypercube", "metropolis_hastings", "mixing_matrix", "one_peer_exponential",
    "random_matching", "ring", "star", "torus", "uniform",
]
