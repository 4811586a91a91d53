"""Communicators: neighbour exchange of byte payloads and metric reductions."""

from compoptim.comm.backends import BACKENDS, LocalBackend, MPIBackend
from compoptim.comm.base import Communicator
from compoptim.comm.counters import TrafficCounters
from compoptim.comm.local import LocalCommunicator, default_workers, local_network, run_local, run_nodes
from compoptim.comm.network import NETWORKS, NetworkModel, NodeClock, SimulatedNetwork

__all__ = [
    "BACKENDS",
    "NETWORKS",
    "Communicator",
    "LocalBackend",
    "LocalCommunicator",
    "MPIBackend",
    "NetworkModel",
    "NodeClock",
    "SimulatedNetwork",
    "TrafficCounters",
    "default_workers",
    "local_network",
    "run_local",
    "run_nodes",
]
