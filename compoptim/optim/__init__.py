"""Decentralized optimizers on flat buffers: local rules x gradient estimates x gossip schemes."""

from compoptim.optim.base import DecentralizedOptimizer
from compoptim.optim.composed import RuleOptimizer
from compoptim.optim.flat import FlatParameters
from compoptim.optim.registry import OPTIMIZERS, build_optimizer

__all__ = ["OPTIMIZERS", "DecentralizedOptimizer", "FlatParameters", "RuleOptimizer", "build_optimizer"]
