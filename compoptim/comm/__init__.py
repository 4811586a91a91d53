"""Communicators: neighbour exchange of byte payloads and metric reductions."""

from compoptim.comm.base import Communicator
from compoptim.comm.local import LocalCommunicator, local_network, run_local, run_nodes

__all__ = ["Communicator", "LocalCommunicator", "local_network", "run_local", "run_nodes"]
