import pytest
import torch

from compoptim.errors import UserError
from compoptim.models import MODELS, build_model


def test_lenet5_has_the_classic_parameter_count():
    model = build_model({"name": "lenet5"}, (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 61706


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_model_maps_inputs_to_class_logits(name, shape):
    model = build_model({"name": name}, shape, 7)
    assert model(torch.randn(5, *shape)).shape == (5, 7)


def test_model_errors():
    with pytest.raises(UserError, match=r"unknown model 'vgg'; available: lenet5, mlp"):
        build_model({"name": "vgg"}, (1, 28, 28), 10)
    with pytest.raises(UserError, match=r"model\.hidden widths must all be >= 1"):
        build_model({"name": "mlp", "hidden": [10, 0]}, (1, 28, 28), 10)
