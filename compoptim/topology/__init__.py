"""Graphs and mixing matrices. Pure math: numpy only, no MPI, no torch."""

from compoptim.topology.base import Topology
from compoptim.topology.builders import BUILDERS, build_topology, complete, ring

__all__ = ["BUILDERS", "Topology", "build_topology", "complete", "ring"]
