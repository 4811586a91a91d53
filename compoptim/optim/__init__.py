"""Decentralized optimizers on flat buffers."""

from compoptim.optim.base import DecentralizedOptimizer
from compoptim.optim.dsgd import DSGD
from compoptim.optim.flat import FlatParameters
from compoptim.optim.registry import OPTIMIZERS, build_optimizer

__all__ = ["DSGD", "OPTIMIZERS", "DecentralizedOptimizer", "FlatParameters", "build_optimizer"]
