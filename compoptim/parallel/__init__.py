"""Models whose parameters are split over nodes: the stage split of a model's block sequence."""

from compoptim.parallel.split import Split, balanced_split, block_costs, manual_split, parameter_costs

__all__ = ["Split", "balanced_split", "block_costs", "manual_split", "parameter_costs"]
