"""The in-epoch progress bar: on a terminal only, so logs, CI and SLURM get the per-epoch
lines unchanged."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
# The bar's running loss costs a device sync: refreshed every this many steps.
_LOSS_EVERY = 10


class EpochProgress:
    """Wraps one epoch's batches: steps, rate, ETA and the running loss of this node."""

    def __init__(self, batches: Iterable[T], steps: int, epoch: int, epochs: int, enabled: bool) -> None:
        self.bar = tqdm(batches, total=steps, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False,
                        dynamic_ncols=True, file=sys.stdout) if enabled else None
        self.batches = batches if self.bar is None else self.bar
        self.steps = 0

    def __iter__(self) -> Iterator[T]:
        try:
            yield from self.batches
        finally:
            if self.bar is not None:
                self.bar.close()

    def step(self, running_loss: Callable[[], float]) -> None:
        """One step done; every ``_LOSS_EVERY`` steps the bar shows ``running_loss()``."""
        self.steps += 1
        if self.bar is not None and self.steps % _LOSS_EVERY == 0:
            self.bar.set_postfix(loss=f"{running_loss():.4f}", refresh=False)


def on_terminal() -> bool:
    return sys.stdout.isatty()
