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


BLOCK_CASES = [("lenet5", {}, (1, 28, 28), 10, 5), ("mlp", {"hidden": [16, 8]}, (1, 8, 8), 10, 3),
               ("logreg", {}, (1, 8, 8), 10, 1), ("cnn1d", {}, (40,), 10, 4), ("resnet20", {}, (3, 32, 32), 10, 11),
               ("resnet18", {}, (3, 32, 32), 10, 10), ("char_gpt", {"layers": 3, "width": 32}, (16,), 20, 5)]


@pytest.mark.parametrize("name, settings, shape, classes, count", BLOCK_CASES, ids=[c[0] for c in BLOCK_CASES])
def test_every_models_blocks_applied_in_order_are_its_forward(name, settings, shape, classes, count):
    """The pipeline's view of a model: its blocks, in order, compute exactly its forward (in
    float64, in training mode: BatchNorm with batch statistics), hold each of its parameters,
    and leave its parameters and state dict as they were."""
    torch.manual_seed(0)
    model = build_model({"name": name, **settings}, shape, classes).double()
    keys, params = list(model.state_dict()), list(model.parameters())
    blocks = model.blocks()
    assert len(blocks) == count and model.blocks() is blocks
    x = torch.randint(0, classes, (4, *shape)) if name == "char_gpt" else torch.randn(4, *shape, dtype=torch.float64)
    out = x
    for block in blocks:
        out = block(out)
    assert torch.equal(out, model(x))
    held = {id(p) for b in blocks for p in b.parameters()}
    assert held == {id(p) for p in params}
    assert list(model.state_dict()) == keys and list(model.parameters()) == params
