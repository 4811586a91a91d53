"""Seeded generators for compressors: reproducible draws on any device, resumable."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (run seed, node, stream, draw number...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


class DeviceGenerators:
    """One torch.Generator per device, all seeded alike; created on first use on a device.

    The state of each is part of the compressor's ``state_dict``, so a resumed run draws
    exactly what the uninterrupted run would have drawn.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}
        self._pending: dict[str, torch.Tensor] = {}

    def get(self, device: torch.device) -> torch.Generator:
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            if key in self._pending:
                gen.set_state(self._pending.pop(key))
            self._generators[key] = gen
        return gen

    def state_dict(self) -> dict[str, Any]:
        return {key: gen.get_state() for key, gen in self._generators.items()} | dict(self._pending)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if key in self._generators:
                self._generators[key].set_state(value)
            else:
                self._pending[key] = value


class SavesGenerators:
    """For a compressor whose randomness is ``self.generators`` (a ``DeviceGenerators``):
    its state_dict is the generators' state, so a resumed run draws on exactly."""

    generators: DeviceGenerators

    def state_dict(self) -> dict[str, Any]:
        return {"generators": self.generators.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generators.load_state_dict(state["generators"])
