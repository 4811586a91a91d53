import pytest
import torch

from compoptim.errors import UserError
from compoptim.models import MODELS, build_model


def test_lenet5_has_the_classic_parameter_count():
    model = build_model({"name": "lenet5"}, (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 61706


# Every registered model, by what this file tests it on: one registered without a place here
# fails test_every_registered_model_is_tested, so none ships untested.
IMAGE_MODELS = ["lenet5", "logreg", "mlp", "resnet18", "resnet20"]
SEQUENCE_MODELS = ["char_gpt"]  # test_char_gpt_predicts_every_next_character
SIGNAL_MODELS = ["cnn1d"]  # tests/test_mnist1d.py::test_cnn1d_is_the_papers_cnn


def test_every_registered_model_is_tested():
    assert set(MODELS) == {*IMAGE_MODELS, *SEQUENCE_MODELS, *SIGNAL_MODELS}


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_model_maps_inputs_to_class_logits(name, shape):
    model = build_model({"name": name}, shape, 7)
    assert model(torch.randn(5, *shape)).shape == (5, 7)
    assert model.bn_stats == "averaged"  # the trainer reads it from the model


def test_bn_stats_is_a_resnet18_setting_read_from_the_model():
    assert build_model({"name": "resnet18", "bn_stats": "local"}, (3, 32, 32), 10).bn_stats == "local"
    with pytest.raises(UserError, match=r"model=lenet5 has no setting 'bn_stats'"):
        build_model({"name": "lenet5", "bn_stats": "local"}, (1, 28, 28), 10)


def test_model_errors():
    with pytest.raises(UserError, match=r"unknown model 'vgg'; available: char_gpt, cnn1d, lenet5, logreg, mlp"):
        build_model({"name": "vgg"}, (1, 28, 28), 10)
    with pytest.raises(UserError, match=r"model\.hidden widths must all be >= 1"):
        build_model({"name": "mlp", "hidden": [10, 0]}, (1, 28, 28), 10)


def test_resnet20_is_fixup_sized_and_resnet18_has_batchnorm():
    r20 = build_model({"name": "resnet20"}, (3, 32, 32), 10)
    assert 0.26e6 < sum(p.numel() for p in r20.parameters()) < 0.28e6
    assert not list(r20.buffers())  # no BatchNorm: nothing that gossip would miss
    r18 = build_model({"name": "resnet18"}, (3, 32, 32), 10)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in r18.modules())
    with pytest.raises(UserError, match=r"model\.bn_stats must be averaged or local"):
        build_model({"name": "resnet18", "bn_stats": "global"}, (3, 32, 32), 10)


def test_char_gpt_predicts_every_next_character():
    model = build_model({"name": "char_gpt", "layers": 1, "width": 32, "heads": 4}, (16,), 30)
    out = model(torch.randint(0, 30, (3, 16)))
    assert out.shape == (3, 16, 30)
    with pytest.raises(UserError, match="char_gpt needs character sequences"):
        build_model({"name": "char_gpt"}, (1, 28, 28), 10)
    with pytest.raises(UserError, match=r"must be a multiple of model\.heads"):
        build_model({"name": "char_gpt", "width": 30, "heads": 4}, (16,), 10)
