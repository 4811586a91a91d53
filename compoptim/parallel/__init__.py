"""Models whose parameters are split over nodes: the stage split of a model's block sequence,
the stages' placement on the topology, and torch.distributed started from the MPI world."""

from compoptim.parallel.placement import Placement, place_stages
from compoptim.parallel.split import Split, balanced_split, block_costs, manual_split, parameter_costs

__all__ = ["Placement", "Split", "balanced_split", "block_costs", "manual_split", "parameter_costs", "place_stages"]
