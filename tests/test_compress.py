"""Property tests over a registry of every compressor (the "infos" pattern): wire size,
decoding, unbiasedness, contraction, error feedback, determinism, resume, bad settings."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from compoptim.compress import (
    COMPRESSORS,
    CompressContext,
    Compressor,
    ErrorFeedback,
    Identity,
    Metered,
    Rescaled,
    build_compressor,
)
from compoptim.compress.metered import ERROR_SAMPLE_EVERY
from compoptim.errors import UserError

# A model-like layout: two matrices, a bias, a long vector (1300 entries in all).
LAYOUT = ((20, 30), (30,), (10, 37), (300,))
D = 1300
CTX = CompressContext(layout=LAYOUT, seed=3, rank=1)


def _k(ratio, d):
    return max(1, math.ceil(ratio * d - 1e-9))


def _lowrank_bytes(rank):
    # (20 x 30): r(20+30)=100 < 600 compressed; bias raw; (10 x 37): 94 < 370 compressed; vector raw
    return 4 * (rank * (20 + 30) + 30 + rank * (10 + 37) + 300)


# name -> (config, exact payload bytes for D entries, by the documented wire format)
INFOS = {
    "none": ({"name": "none"}, 4 * D),
    "fp16": ({"name": "cast", "dtype": "float16"}, 2 * D),
    "bf16": ({"name": "cast", "dtype": "bfloat16"}, 2 * D),
    "topk": ({"name": "topk", "ratio": 0.1}, _k(0.1, D) * (4 + 2)),  # fp32 value + uint16 index
    "topk_k": ({"name": "topk", "k": 7}, 7 * 6),
    "topk_layer": ({"name": "topk", "ratio": 0.1, "per_layer": True},
                   # values, then uint16 indices (600, 300, 370 > 256 entries), then uint8 (30 entries)
                   4 * (60 + 3 + 37 + 30) + 2 * (60 + 37 + 30) + 1 * 3),
    "randomk": ({"name": "randomk", "ratio": 0.1}, 8 + 4 * _k(0.1, D)),
    "randomk_rescaled": ({"name": "randomk", "ratio": 0.1, "rescale": True}, 8 + 4 * _k(0.1, D)),
    "qsgd": ({"name": "qsgd", "levels": 7}, 4 * math.ceil(D / 512) + math.ceil(D * 4 / 8)),
    "qsgd_s1_whole": ({"name": "qsgd", "levels": 1, "bucket_size": 0}, 4 + math.ceil(D * 2 / 8)),
    "qsgd_s4_rescaled": ({"name": "qsgd", "levels": 4, "bucket_size": 100, "rescale": True},
                         4 * 13 + math.ceil(D * 4 / 8)),
    "sign": ({"name": "sign"}, 4 + math.ceil(D / 8)),
    # one fp32 norm, then a sign bit and b level bits per entry (levels 0..2^(b-1))
    "gsgd": ({"name": "gsgd"}, 4 + math.ceil(D * 6 / 8)),
    "gsgd_b2": ({"name": "gsgd", "bits": 2}, 4 + math.ceil(D * 3 / 8)),
    "natural": ({"name": "natural"}, 2 + D),
    "natural_rescaled": ({"name": "natural", "rescale": True}, 2 + D),
    "lowrank": ({"name": "lowrank", "rank": 2}, _lowrank_bytes(2)),
    "lowrank_r1": ({"name": "lowrank", "rank": 1}, _lowrank_bytes(1)),
    "topk_ef": ({"name": "topk", "ratio": 0.05, "error_feedback": True}, _k(0.05, D) * 6),
}
NAMES = list(INFOS)


def make(name, ctx=CTX):
    return build_compressor(INFOS[name][0], ctx)


def vector(seed=0):
    return torch.randn(D, generator=torch.Generator().manual_seed(seed))


def counters():
    """What ``Metered`` counts into: any object with these attributes (compress/ does not
    know the communicator's ``TrafficCounters``)."""
    return SimpleNamespace(compress_time_s=0.0, encode_count=0, error_sum=0.0, error_count=0)


def test_every_registered_compressor_is_under_test():
    tested = {cfg["name"] for cfg, _ in INFOS.values()}
    assert set(COMPRESSORS) <= tested, f"add to INFOS: {sorted(set(COMPRESSORS) - tested)}"


@pytest.mark.parametrize("name", NAMES)
def test_payload_is_one_byte_buffer_of_the_documented_size(name):
    c = make(name)
    assert c.payload_nbytes(D) == INFOS[name][1]
    payload = c.encode(vector())
    assert payload.dtype == torch.uint8 and payload.dim() == 1 and payload.is_contiguous()
    assert payload.numel() == INFOS[name][1]
    assert c.bits_per_element(D) == pytest.approx(8 * INFOS[name][1] / D)


@pytest.mark.parametrize("name", NAMES)
def test_every_compressor_takes_float64(name):
    """The oracles and the least-squares experiments run in float64 (QSGD once refused it)."""
    c = build_compressor(INFOS[name][0], CompressContext(dtype=torch.float64, seed=1))
    x = vector().double()
    decoded = c.decode(c.encode(x), D)
    assert decoded.dtype == torch.float64 and decoded.shape == x.shape and torch.isfinite(decoded).all()
    assert ((decoded - x).norm() <= x.norm() * (1 + (c.omega(D) or 0)) ** 0.5 * 3)


@pytest.mark.parametrize("name", NAMES)
def test_decode_add_is_the_weighted_decode(name):
    c, x = make(name), vector()
    payload = c.encode(x)
    decoded = c.decode(payload, D).clone()
    out = torch.full((D,), 0.5)
    c.decode_add(payload, out, -0.25)
    torch.testing.assert_close(out, 0.5 - 0.25 * decoded, rtol=1e-6, atol=1e-6)


def test_identity_round_trip_is_exact():
    x = vector()
    c = make("none")
    assert torch.equal(c.decode(c.encode(x), D), x)
    c64 = Identity(CompressContext(dtype=torch.float64))
    x64 = x.double()
    assert torch.equal(c64.decode(c64.encode(x64), D), x64) and c64.payload_nbytes(D) == 8 * D


DRAWS = 1500


@pytest.mark.parametrize("name", [n for n in NAMES if make(n).unbiased])
def test_unbiased_compressors_average_to_x(name):
    """E||mean of N draws - x||^2 = E||C(x) - x||^2 / N <= omega ||x||^2 / N; we allow 3x that
    (the sum over 1300 coordinates concentrates, so a correct compressor is far inside)."""
    c, x = make(name), vector()
    total = torch.zeros(D, dtype=torch.float64)
    for _ in range(DRAWS):
        total += c.decode(c.encode(x), D).double()
    mean_error = ((total / DRAWS - x.double()).norm() ** 2).item()
    omega = c.omega(D)
    assert mean_error <= 3 * omega * x.norm().item() ** 2 / DRAWS
    # and the variance bound itself, on average over draws
    spread = sum(((c.decode(c.encode(x), D) - x).norm() ** 2).item() for _ in range(200)) / 200
    assert spread <= 1.05 * omega * x.norm().item() ** 2


@pytest.mark.parametrize("name", [n for n in NAMES if make(n).delta(D) is not None])
def test_contractive_compressors_contract(name):
    """E||C(x) - x||^2 <= (1 - delta)||x||^2: exact for deterministic compressors, over 400
    draws with 5% slack for the rescaled random ones (rand-k meets the bound with equality)."""
    c = make(name)
    if isinstance(c, ErrorFeedback):
        c = c.inner  # the memory changes what is compressed; the property is the inner one's
    delta = c.delta(D)
    assert 0 < delta <= 1
    for seed in range(3):
        x = vector(seed)
        draws = 400 if "rescaled" in name or name.startswith("gsgd") else 1
        error = sum(((c.decode(c.encode(x), D) - x).norm() ** 2).item() for _ in range(draws)) / draws
        slack = 1.05 if draws > 1 else 1 + 1e-5
        assert error <= slack * (1 - delta) * x.norm().item() ** 2


def test_declared_properties():
    assert make("topk").delta(D) == pytest.approx(_k(0.1, D) / D)
    assert make("topk_layer").delta(D) == pytest.approx(min(60 / 600, 3 / 30, 37 / 370, 30 / 300))
    assert make("randomk").omega(D) == pytest.approx(D / _k(0.1, D) - 1)
    assert make("randomk_rescaled").delta(D) == pytest.approx(_k(0.1, D) / D)
    assert make("qsgd").omega(D) == pytest.approx(min(512 / 49, math.sqrt(512) / 7))
    assert make("natural").omega(D) == 0.125
    assert make("sign").delta(D) == pytest.approx(1 / D)
    assert make("lowrank").delta(D) is None and not make("lowrank").unbiased


def test_gsgd_is_the_papers_scaled_b_bit_quantizer():
    """BEER's gsgd_b (Zhao et al. 2022): ||x||/(s tau) sign(x_i) floor(s|x_i|/||x|| + u_i) with
    s = 2^(b-1) and tau = 1 + delta (delta > 1) or 1 + delta^2, delta = sqrt(d)/s, as written
    in the paper; every decoded entry is such a level, and the mean over draws is x/tau."""
    x = vector().double()
    for bits in (2, 5, 8):
        c = build_compressor({"name": "gsgd", "bits": bits}, CompressContext(dtype=torch.float64, seed=3))
        s, norm = 2 ** (bits - 1), x.norm().item()
        delta = math.sqrt(D) / s
        tau = 1 + delta if delta > 1 else 1 + delta**2
        assert c.delta(D) == pytest.approx(1 / tau) and not c.unbiased and c.name == "gsgd"
        total = torch.zeros(D, dtype=torch.float64)
        for _ in range(DRAWS):
            decoded = c.decode(c.encode(x), D)
            levels = decoded * s * tau / torch.tensor(norm, dtype=torch.float32).double()
            torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
            low = (s * x.abs() / norm).floor()
            assert ((levels.abs().round() == low) | (levels.abs().round() == low + 1)).all()
            assert (torch.sign(levels) * torch.sign(x) >= 0).all()
            total += decoded
        mean_error = ((total / DRAWS - x / tau).norm() ** 2).item()
        assert mean_error <= 3 * (delta**2 if delta <= 1 else delta) * norm**2 / tau**2 / DRAWS


def test_gsgd_bits_are_checked():
    with pytest.raises(UserError, match=r"compressor.bits must be >= 1 and <= 24 .*got 0"):
        build_compressor({"name": "gsgd", "bits": 0}, CTX)
    with pytest.raises(UserError, match=r"compressor.rescale applies to unbiased compressors"):
        build_compressor({"name": "gsgd", "rescale": True}, CTX)


def test_lossless_is_declared_and_forwarded_by_the_wrappers():
    assert Identity.lossless and not Compressor.lossless
    assert COMPRESSORS.with_fact("lossless") == ["none"]
    for name, entry in COMPRESSORS.items():
        assert build_compressor({"name": name}, CTX).lossless == entry.facts["lossless"]
    assert ErrorFeedback(Identity()).lossless and Metered(ErrorFeedback(Identity()), counters()).lossless
    assert Rescaled(Identity()).lossless and Metered(Identity(), counters()).lossless
    assert not ErrorFeedback(make("topk")).lossless and not Metered(make("topk_ef"), counters()).lossless


def test_rescalable_is_declared_exactly_where_rescaling_applies():
    assert COMPRESSORS.with_fact("rescalable") == ["randomk", "qsgd", "natural"]
    for name, entry in COMPRESSORS.items():
        c = build_compressor({"name": name}, CTX)
        assert entry.facts["rescalable"] == (c.unbiased and not c.lossless and c.omega(D) is not None)


def test_a_compressor_must_define_decode_or_decode_add():
    with pytest.raises(TypeError, match="must define decode or decode_add"):
        type("Undecodable", (Compressor,), {"name": "x", "payload_nbytes": len, "encode": lambda self, x: x})


def test_sign_error_is_exactly_the_l1_formula():
    c, x = make("sign"), vector()
    error = ((c.decode(c.encode(x), D) - x).norm() ** 2).item()
    assert error == pytest.approx(x.norm().item() ** 2 - x.abs().sum().item() ** 2 / D, rel=1e-5)


def test_topk_keeps_the_largest_entries_per_vector_and_per_layer():
    x = vector()
    kept = make("topk").decode(make("topk").encode(x), D)
    k = _k(0.1, D)
    assert (kept != 0).sum() == k and kept.abs().min() == 0
    assert set(kept.nonzero().flatten().tolist()) == set(x.abs().topk(k).indices.tolist())
    layered = make("topk_layer").decode(make("topk_layer").encode(x), D)
    for start, length in ((0, 600), (600, 30), (630, 370), (1000, 300)):
        seg = x[start : start + length]
        assert set(layered[start : start + length].nonzero().flatten().tolist()) == \
            set(seg.abs().topk(_k(0.1, length)).indices.tolist())


@pytest.mark.parametrize("numel, per_layer", [(1000, False), (70_000, False), (70_000, True)])
def test_topk_decode_add_is_the_weighted_kept_entries_with_no_per_call_index_copy(numel, per_layer):
    """Every index width (uint8 and uint16 layers, int32 for a long vector) decodes to the
    exact weighted sum; the flat indices are the wire's own field or one kept buffer."""
    x = torch.randn(numel, generator=torch.Generator().manual_seed(3))
    shapes = [(numel - 66_200,), (200,), (66_000,)] if numel > 66_200 else [(numel,)]
    c = build_compressor({"name": "topk", "ratio": 0.05, "per_layer": per_layer}, CompressContext(layout=tuple(shapes)))
    payload = c.encode(x)
    start = torch.randn(numel, generator=torch.Generator().manual_seed(4))
    out = start.clone()
    c.decode_add(payload, out, 0.3)
    kept = c.decode(payload, numel)
    expected = start.clone()
    mask = kept != 0
    expected[mask] += 0.3 * x[mask]
    assert torch.equal(out, expected)
    plan = c._plan(numel)
    fields = plan.wire.views(payload)
    first = plan.flat_indices(fields)
    assert first.dtype == torch.int32 and first.data_ptr() == plan.flat_indices(fields).data_ptr()
    if numel > 65_536 and not per_layer:  # the payload's own int32 field: nothing copied
        assert first.data_ptr() == fields["index32"].data_ptr()


def test_lowrank_is_exact_on_a_low_rank_matrix():
    g = torch.Generator().manual_seed(0)
    x = vector()
    x[:600] = (torch.randn(20, 2, generator=g) @ torch.randn(2, 30, generator=g)).reshape(-1)
    c = make("lowrank")
    for _ in range(3):  # warm-started power iterations converge to the rank-2 subspace
        decoded = c.decode(c.encode(x), D)
    torch.testing.assert_close(decoded[:600], x[:600], rtol=1e-4, atol=1e-4)
    assert torch.equal(decoded[600:630], x[600:630])  # the bias travels raw


def test_error_feedback_with_identity_is_a_no_op():
    ef = ErrorFeedback(Identity())
    for seed in range(4):
        x = vector(seed)
        payload = ef.encode(x)
        assert torch.equal(ef.decode(payload, D), x)
        assert torch.count_nonzero(ef.memory) == 0


def test_error_feedback_accumulates_what_was_dropped():
    ef, x = make("topk_ef"), vector()
    sent = ef.decode(ef.encode(x), D).clone()
    torch.testing.assert_close(ef.memory, x - sent)
    # over many steps of the same x, the average sent converges to x
    total = sent.clone()
    steps = 200
    for _ in range(steps - 1):
        total += ef.decode(ef.encode(x), D)
    assert ((total / steps - x).norm() / x.norm()).item() < 0.1


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_and_state_dict_resumes_exactly(name):
    a, b = make(name), make(name)
    for seed in range(3):
        assert torch.equal(a.encode(vector(seed)), b.encode(vector(seed)))
    resumed = make(name)
    resumed.load_state_dict(copy.deepcopy(a.state_dict()))
    for seed in range(3, 6):
        assert torch.equal(a.encode(vector(seed)).clone(), resumed.encode(vector(seed)))


@pytest.mark.parametrize("name", NAMES)
def test_metering_changes_no_byte_and_no_property(name):
    plain, metered = make(name), Metered(make(name), counters())
    for seed in range(ERROR_SAMPLE_EVERY + 2):  # two sampled encodes among them
        assert torch.equal(plain.encode(vector(seed)), metered.encode(vector(seed)))
    assert metered.counters.error_count == (0 if plain.lossless else 2) and metered.inner.name == plain.name
    assert (metered.name, metered.unbiased, metered.lossless) == (plain.name, plain.unbiased, plain.lossless)
    assert (metered.delta(D), metered.omega(D)) == (plain.delta(D), plain.omega(D))
    assert (metered.payload_nbytes(D), metered.bits_per_element(D)) == \
        (plain.payload_nbytes(D), plain.bits_per_element(D))
    resumed = make(name)
    resumed.load_state_dict(copy.deepcopy(metered.state_dict()))
    payload = plain.encode(vector(99)).clone()
    assert torch.equal(payload, resumed.encode(vector(99)))
    torch.testing.assert_close(metered.decode(payload, D), plain.decode(payload, D), rtol=0, atol=0)


def test_metering_samples_every_16th_encode_of_the_node():
    """One counters object per node: the encodes of all its compressors are counted together,
    and the error of encode 0, 16, 32, ... is sampled, whichever compressor made it."""
    shared = counters()
    topk, qsgd = Metered(make("topk"), shared), Metered(make("qsgd"), shared)
    expected, samples = 0.0, 0
    for i in range(40):
        c, x = (topk if i < 10 else qsgd), vector(i)
        payload = c.encode(x)
        if i % ERROR_SAMPLE_EVERY == 0:
            expected += (c.decode(payload, D) - x).norm().item() / x.norm().item()
            samples += 1
    assert (shared.encode_count, shared.error_count, samples) == (40, 3, 3)
    assert shared.error_sum == pytest.approx(expected, rel=1e-6) and shared.error_sum > 0
    assert shared.compress_time_s > 0


def test_metering_skips_lossless_and_zero_encodes_without_deferring():
    shared = counters()
    Metered(Identity(), shared).encode(vector())  # encode 0: lossless, not sampled
    topk = Metered(make("topk"), shared)
    topk.encode(torch.zeros(D))  # encode 1: not a sampled one anyway
    for i in range(2, ERROR_SAMPLE_EVERY):
        topk.encode(vector(i))
    assert shared.error_count == 0
    topk.encode(torch.zeros(D))  # encode 16: ||x|| = 0, no relative error to sample
    topk.encode(vector())  # encode 17: the next sample is encode 32, not this one
    assert (shared.encode_count, shared.error_count, shared.error_sum) == (ERROR_SAMPLE_EVERY + 2, 0, 0.0)


@pytest.mark.parametrize("name", ["qsgd", "natural"])
def test_nodes_draw_privately(name):
    other_node = make(name, CompressContext(layout=LAYOUT, seed=3, rank=2))
    assert not torch.equal(make(name).encode(vector()), other_node.encode(vector()))


def test_randomk_receiver_regenerates_the_senders_indices():
    sender = make("randomk", CompressContext(seed=5, rank=0))
    receiver = make("randomk", CompressContext(seed=5, rank=3))
    x = vector()
    for _ in range(3):
        payload = sender.encode(x).clone()
        receiver.encode(vector(9))  # the receiver's own encode of the same round
        torch.testing.assert_close(receiver.decode(payload, D), sender.decode(payload, D), rtol=0, atol=0)
    assert sender.decode(payload, D).count_nonzero() == _k(0.1, D)


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"name": "topk", "ratio": 0.0}, "compressor.ratio must be > 0 and <= 1"),
        ({"name": "randomk", "ratio": 1.5}, "compressor.ratio must be > 0 and <= 1"),
        ({"name": "topk", "k": 0}, "compressor.k must be >= 1 or null"),
        ({"name": "qsgd", "levels": 0}, "compressor.levels must be >= 1"),
        ({"name": "qsgd", "bucket_size": -1}, "compressor.bucket_size must be >= 1, or 0"),
        ({"name": "lowrank", "rank": 0}, "compressor.rank must be >= 1"),
        ({"name": "cast", "dtype": "int8"}, "compressor.dtype must be one of float16, bfloat16; got int8"),
        ({"name": "topk", "rescale": True}, "compressor.rescale applies to unbiased compressors"),
        ({"name": "none", "rescale": True}, "compressor.rescale applies to unbiased compressors"),
        ({"name": "topk", "levels": 3}, "compressor=topk has no setting 'levels'"),
        ({"name": "zip"}, "unknown compressor 'zip'"),
    ],
)
def test_bad_settings_are_one_line_errors(cfg, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build_compressor(cfg, CTX)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_top_k_selection_on_cuda_equals_cpu():
    """The GPU selects with torch, the CPU with numpy: the same top k either way."""
    from compoptim.compress.topk import largest_indices

    g = torch.Generator().manual_seed(3)
    cuda_g = torch.Generator(device="cuda").manual_seed(3)
    for n, k in ((61_706, 618), (269_722, 2698), (1_000_000, 10_000), (5000, 3)):
        x = torch.randn(n, generator=g).abs()
        on_cpu = set(largest_indices(x, k, g).tolist())
        assert set(largest_indices(x.cuda(), k, cuda_g).cpu().tolist()) == on_cpu
        assert on_cpu == set(torch.topk(x, k).indices.tolist())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_same_code_on_cuda(name):
    c, x = make(name), vector().cuda()
    payload = c.encode(x)
    assert payload.is_cuda and payload.numel() == INFOS[name][1]
    assert c.decode(payload, D).is_cuda


@pytest.mark.parametrize("impl", ["dispatch", "torch", "numpy"])
def test_fast_top_k_selection_is_exact(impl):
    from compoptim.compress import topk

    select = {"dispatch": topk.largest_indices, "torch": topk._largest_indices_torch,
              "numpy": lambda x, k, g: torch.from_numpy(topk._largest_indices_numpy(x.numpy(), k))}[impl]
    g = torch.Generator().manual_seed(1)
    for n, k in ((200_000, 2_000), (300_000, 30), (100_000, 12_000), (61_706, 618), (5000, 1), (100, 7)):
        x = torch.randn(n, generator=g).abs()
        assert set(select(x, k, g).tolist()) == set(torch.topk(x, k).indices.tolist())
    ties = torch.ones(100_000)  # all equal: any k entries are a top k
    assert select(ties, 500, g).unique().numel() == 500
    spiky = torch.zeros(100_000)  # the systematic sample sees only zeros: the threshold lets all pass
    spiky[torch.randperm(100_000, generator=g)[:300]] = torch.rand(300, generator=g) + 1
    assert set(select(spiky, 300, g).tolist()) == set(spiky.nonzero().squeeze(1).tolist())
    nan = torch.randn(100_000, generator=g).abs()
    nan[::7] = float("nan")  # a diverged vector: still k distinct indices, no error
    assert select(nan, 1000, g).unique().numel() == 1000


def test_random_k_sampling_is_without_replacement_and_sorted():
    from compoptim.compress.randomk import sample_without_replacement

    g = torch.Generator().manual_seed(0)
    for n, k in ((10_000_000, 100_000), (1000, 900), (50, 1)):
        idx = sample_without_replacement(n, k, g, torch.device("cpu"))
        assert idx.numel() == k == idx.unique().numel() and torch.equal(idx, idx.sort().values)
        assert idx.min() >= 0 and idx.max() < n


def test_natural_handles_zeros_tiny_and_huge_entries():
    c = make("natural")
    x = vector()
    x[:4] = torch.tensor([0.0, 1e-40, 1e-30, -3e30])
    decoded = c.decode(c.encode(x), D)
    # top exponent E = 102 (3e30 < 2^102): entries below 2^(E-126) round to 0 or 2^-24
    assert decoded[0] == 0 and decoded[1] in (0.0, 2.0**-24)
    powers = decoded[decoded != 0].abs().log2()
    assert torch.equal(powers, powers.round())  # every non-zero is a power of two
    assert decoded[3] in (-(2.0**101), -(2.0**102)) and torch.equal(decoded.sign()[4:], x.sign()[4:])


@pytest.mark.parametrize("levels", [1, 2, 3, 7, 8, 15, 16, 127, 128, 255, 256, 1000, 2**16, 2**24 - 1])
def test_qsgd_levels_across_every_code_width_boundary(levels):
    """Each level count, codes narrower and wider than a byte: the wire size is the formula's
    (norms + ceil(d (1 + ceil(log2(s+1))) / 8) bytes), C is unbiased and E||C(x) - x||^2 <= omega ||x||^2."""
    import math

    d, draws = 2048, 64
    x = torch.randn(d, generator=torch.Generator().manual_seed(3))
    c = build_compressor({"name": "qsgd", "levels": levels, "bucket_size": 512}, CompressContext(seed=7))
    bits = 1 + math.ceil(math.log2(levels + 1))
    total, err2 = torch.zeros(d, dtype=torch.float64), 0.0
    for _ in range(draws):
        payload = c.encode(x)
        assert payload.numel() == c.payload_nbytes(d) == 4 * (d // 512) + -(-d * bits // 8)
        decoded = c.decode(payload, d)
        total += decoded.double()
        err2 += ((decoded - x).norm() ** 2 / x.norm() ** 2).item() / draws
    assert err2 <= c.omega(d) * 1.2 + 1e-12  # the variance bound (with sampling slack)
    bias = ((total / draws - x.double()).norm() / x.norm()).item()
    assert bias <= 4 * math.sqrt(c.omega(d) / draws) + 1e-6  # unbiased: the mean of draws closes in on x


def test_qsgd_refuses_levels_float32_cannot_hold():
    with pytest.raises(UserError, match=r"compressor\.levels must be >= 1 and <= 16777215"):
        build_compressor({"name": "qsgd", "levels": 2**24}, CompressContext())
