import torch

from compoptim.compress import Identity, build_compressor


def test_identity_payload_is_the_exact_bytes():
    x = torch.randn(1001)
    c = build_compressor({"name": "none"})
    payload = c.encode(x)
    assert payload.dtype == torch.uint8 and payload.dim() == 1
    assert payload.numel() == c.payload_nbytes(x.numel()) == 4 * 1001
    assert torch.equal(c.decode(payload, x.numel()), x)
    assert c.unbiased and c.delta == 1.0


def test_identity_decode_add_is_weighted_sum():
    c = Identity()
    x, out = torch.randn(50), torch.ones(50)
    c.decode_add(c.encode(x), out, 0.25)
    torch.testing.assert_close(out, 1 + 0.25 * x, rtol=0, atol=0)


def test_identity_payload_size_follows_dtype():
    assert Identity(torch.float64).payload_nbytes(10) == 80
