"""Communicators: neighbour exchange of byte payloads and metric reductions."""

from compoptim.comm.backends import BACKENDS, LocalBackend, MPIBackend
from compoptim.comm.base import Communicator
from compoptim.comm.counters import TrafficCounters
from compoptim.comm.network import NETWORKS, NetworkModel, NodeClock, SimulatedNetwork
from compoptim.comm.local import LocalCommunicator, default_workers, local_network, run_local, run_nodes

__all__ = [
    "BACKENDS", "NETWORKS", "NetworkModel", "NodeClock", "SimulatedNetwork", "Communicator", "LocalBackend", "LocalCommunicator", "MPIBackend", "TrafficCounters",
    "default_workers", "local_network", "run_local", "run_nodes",
]
