"""Decentralized optimizers on flat buffers: local rules x gradient estimates x combine
orders x gossip schemes, and the named algorithms composed from them (``algorithms.py``)."""

from compoptim.optim.algorithms import ALGORITHMS, build_optimizer
from compoptim.optim.base import DecentralizedOptimizer
from compoptim.optim.decentralized import Decentralized
from compoptim.optim.flat import FlatParameters
from compoptim.optim.rules import RULES

__all__ = ["ALGORITHMS", "RULES", "Decentralized", "DecentralizedOptimizer", "FlatParameters", "build_optimizer"]
