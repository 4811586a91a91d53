"""Synthetic convex problems with a knob for how different the nodes' local optima are."""

from __future__ import annotations

import math

import torch

from compoptim.cores import memory_shortfall
from compoptim.data.base import Dataset
from compoptim.errors import UserError

PROBLEMS = ("classification", "least_squares")


def load_synthetic(problem: str = "classification", features: int = 20, classes: int = 5, samples: int = 4000,
                   groups: int = 16, heterogeneity: float = 1.0, noise: float = 0.1, seed: int = 0,
                   image_shape: list[int] | None = None) -> Dataset:
    """Samples come from ``groups`` groups; group g has its own true model
    W_g = W_0 + heterogeneity * N(0, I): with heterogeneity 0 all nodes share one optimum,
    larger values pull the local optima apart. x ~ N(0, I).

    - classification: y = argmax(W_g x + noise), logistic-regression-shaped;
    - least_squares: y = w_g^T x + noise (one output; the model is linear, loss MSE).
    The partition splits by group (``dataset/partition=label``, this dataset's default in
    conf/dataset/synthetic.yaml, gives each node its own groups), so the knob controls the
    heterogeneity across nodes. 20% of each group is test.
    ``image_shape`` (e.g. [3, 32, 32]) presents x as images of that shape (features = their
    size): a CIFAR-shaped set for image models without any files.
    """
    if image_shape is not None:
        image_shape = [int(v) for v in image_shape]
        if not image_shape or min(image_shape) < 1:
            raise UserError(f"dataset.image_shape must be positive sizes like [3, 32, 32]; got {image_shape}")
        features = math.prod(image_shape)
    if problem not in PROBLEMS:
        raise UserError(f"dataset.problem must be one of {', '.join(PROBLEMS)}; got {problem}")
    for key, value, low in (("features", features, 1), ("classes", classes, 2), ("samples", samples, 10),
                            ("groups", groups, 1)):
        if value < low:
            raise UserError(f"dataset.{key} must be >= {low}; got {value}")
    for key, value in (("heterogeneity", heterogeneity), ("noise", noise)):
        if not 0 <= value < math.inf:  # also refuses nan
            raise UserError(f"dataset.{key} must be >= 0 and finite; got {value:g}")
    outputs = classes if problem == "classification" else 1
    # x, the groups' models, the scores and the split copies, in float32
    short = memory_shortfall(4 * (3 * samples * features + (groups + 1) * outputs * features + 2 * samples * outputs))
    if short:
        raise UserError(f"dataset=synthetic with samples={samples}, features={features}, classes={classes}, "
                        f"groups={groups} does not fit {short}")
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(outputs, features, generator=g)
    models = base + heterogeneity * torch.randn(groups, outputs, features, generator=g)
    group = torch.arange(samples) % groups
    x = torch.randn(samples, features, generator=g)
    scores = torch.einsum("nof,nf->no", models[group], x) + noise * torch.randn(samples, outputs, generator=g)
    y = scores.argmax(dim=1) if problem == "classification" else scores[:, 0]
    test = torch.arange(samples) % 5 == 0
    task = "classification" if problem == "classification" else "regression"
    if image_shape is not None:
        x = x.view(samples, *image_shape)
    return Dataset(f"synthetic_{problem}", x[~test], y[~test], x[test], y[test],
                   num_classes=outputs if problem == "classification" else 1, task=task, strata=group[~test])
