"""The pipeline split heuristic: exact against an exhaustive search, and its balance on every
model of the zoo."""

import itertools
import random

import pytest
import torch

from compoptim.errors import UserError
from compoptim.models import build_model
from compoptim.parallel import balanced_split, block_costs, manual_split, parameter_costs
from tests.test_models import BLOCK_CASES


def exhaustive(costs, stages):
    """The smallest largest-stage cost over every way to cut ``costs`` into ``stages`` parts."""
    n = len(costs)
    return min(max(sum(costs[a:b]) for a, b in zip((0, *cuts), (*cuts, n)))
               for cuts in itertools.combinations(range(1, n), stages - 1))


def test_the_split_is_the_best_of_all_contiguous_splits():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 9)
        costs = [rng.choice([0.0, rng.random(), float(rng.randint(1, 5))]) for _ in range(n)]
        stages = rng.randint(1, n)
        split = balanced_split(costs, stages)
        assert split.stages == stages and split.bounds[0] == 0 and split.bounds[-1] == n
        assert all(c >= 1 for c in split.blocks_per_stage())
        assert max(split.stage_costs()) == pytest.approx(exhaustive(costs, stages), abs=1e-12)


def test_ties_take_the_earliest_cuts_and_the_balance_is_max_over_mean():
    split = balanced_split([1, 1, 1, 1], 2)
    assert split.bounds == (0, 2, 4) and split.balance == 1.0
    assert balanced_split([4, 1, 1, 1, 1], 2).bounds == (0, 1, 5)
    uneven = balanced_split([3, 1], 2)
    assert uneven.stage_costs() == [3.0, 1.0] and uneven.balance == 1.5


def test_bad_splits_are_one_line():
    with pytest.raises(UserError, match=r"parallel.stages=4 is more stages than the model's 3 blocks; allowed: 1 to 3"):
        balanced_split([1, 2, 3], 4)
    with pytest.raises(UserError, match=r"parallel.stages must be >= 1; got 0"):
        balanced_split([1, 2, 3], 0)
    for counts in ([2, 2], [3, 0, 2], [], [1, 1, 1, 1, 1, 1]):
        with pytest.raises(UserError, match=r"must give every stage at least one block and cover the model's 5 blocks"):
            manual_split(counts, [1.0] * 5)
    assert manual_split([2, 3], [1, 1, 1, 1, 1]).bounds == (0, 2, 5)


@pytest.mark.parametrize("name, settings, shape, classes, count", BLOCK_CASES, ids=[c[0] for c in BLOCK_CASES])
def test_the_zoo_models_split_as_well_as_possible(name, settings, shape, classes, count):
    """Every model, 2 and 4 stages where it has the blocks: parameter counts and measured times
    both give the exhaustive optimum; the balance (max stage cost / mean) is printed (-s)."""
    torch.manual_seed(0)
    model = build_model({"name": name, **settings}, shape, classes)
    blocks = model.blocks()
    x = torch.randint(0, classes, (8, *shape)) if name == "char_gpt" else torch.randn(8, *shape)
    measured = block_costs(blocks, x, repeats=1)
    assert len(measured) == count and all(c > 0 for c in measured)
    for costs, kind in ((parameter_costs(blocks), "parameters"), (measured, "time")):
        for stages in (2, 4):
            if stages > count:
                continue
            split = balanced_split(costs, stages)
            assert max(split.stage_costs()) == pytest.approx(exhaustive(costs, stages))
            print(f"{name}: {stages} stages by {kind}: blocks {split.blocks_per_stage()}, balance {split.balance:.2f}")
