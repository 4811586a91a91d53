"""Communicators: neighbour exchange of byte payloads and metric reductions."""

from compoptim.comm.base import Communicator
from compoptim.comm.local import LocalCommunicator, run_local

__all__ = ["Communicator", "LocalCommunicator", "run_local"]
