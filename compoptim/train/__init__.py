"""The training loop and what it writes: metrics, summary, resolved config."""

from compoptim.train.trainer import Trainer

__all__ = ["Trainer"]
