"""Random-k sparsification with shared randomness: only the values travel."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.randomness import derived_seed
from compoptim.compress.sparse import check_keep, keep_count
from compoptim.compress.wire import PayloadBuffer, WireFormat

# Index sets of recent draws, kept to decode the neighbours' payloads of the same round.
_CACHED_DRAWS = 4


def sample_without_replacement(n: int, k: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """k distinct indices of 0..n-1, uniformly over k-subsets, sorted ascending.

    For k well below n: draw indices with replacement and keep the first k distinct ones
    in draw order (sequential sampling that skips repeats is uniform over subsets), in
    O(k log k) instead of the O(n) of a full permutation.
    """
    if 8 * k > n:
        return torch.randperm(n, generator=generator, device=device)[:k].sort().values
    while True:
        m = k + 2 * k * k // n + 64  # about twice the expected number of repeats, plus a margin
        draws = torch.randint(0, n, (m,), generator=generator, device=device)
        values, inverse = torch.unique(draws, return_inverse=True)
        if values.numel() >= k:
            first = torch.full((values.numel(),), m, dtype=torch.int64, device=device)
            first.scatter_reduce_(0, inverse, torch.arange(m, device=device), reduce="amin")
            return values[first.argsort()[:k]].sort().values


class RandomK(Compressor):
    """C(x) = (d/k) * x restricted to k uniformly random coordinates (without replacement).

    Unbiased with omega = d/k - 1 (Stich et al. 2018; Wangni et al. 2018); with
    ``compressor.rescale=true`` it becomes the classic contractive rand-k, delta = k/d.

    The coordinates of draw t come from a generator seeded with (run seed, t), identical on
    every node: sender and receiver regenerate the same index set, so the payload is an
    8-byte draw number plus k values (32 bits/value for fp32) and no indices. All nodes
    sample the same coordinates in the same round.
    """

    name = "randomk"
    unbiased = True

    def __init__(self, ctx: CompressContext | None = None, ratio: float = 0.01, k: int | None = None) -> None:
        super().__init__(ctx)
        check_keep(ratio, k)
        self.ratio, self.k = ratio, k
        self.draws = 0
        self._indices: dict[tuple[int, int, str], torch.Tensor] = {}
        self._payloads = PayloadBuffer()

    def _keep(self, numel: int) -> int:
        return keep_count(numel, self.ratio, self.k)

    def omega(self, numel: int) -> float:
        return numel / self._keep(numel) - 1.0

    def _wire(self, numel: int) -> WireFormat:
        return WireFormat([("draw", torch.int64, 1), ("values", self.dtype, self._keep(numel))])

    def payload_nbytes(self, numel: int) -> int:
        return self._wire(numel).nbytes

    def index_set(self, draw: int, numel: int, device: torch.device) -> torch.Tensor:
        key = (draw, numel, str(device))
        idx = self._indices.get(key)
        if idx is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(derived_seed(self.ctx.seed, 0x52414E44, draw))
            idx = sample_without_replacement(numel, self._keep(numel), gen, device)
            if len(self._indices) >= _CACHED_DRAWS:
                self._indices.pop(next(iter(self._indices)))
            self._indices[key] = idx
        return idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        wire = self._wire(x.numel())
        payload = self._payloads.get(wire.nbytes, x.device)
        fields = wire.views(payload)
        fields["draw"].fill_(self.draws)
        torch.index_select(x, 0, self.index_set(self.draws, x.numel(), x.device), out=fields["values"])
        self.draws += 1
        return payload

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        numel = out.numel()
        fields = self._wire(numel).views(payload)
        idx = self.index_set(int(fields["draw"].item()), numel, payload.device)
        out.index_add_(0, idx, fields["values"], alpha=weight * numel / self._keep(numel))

    def state_dict(self) -> dict[str, Any]:
        return {"draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.draws = int(state["draws"])
