"""Learning-rate schedules: a multiplier of the optimizer's lr for every step."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from compoptim.errors import UserError

SCHEDULES = ("constant", "step", "cosine")


class LRSchedule:
    """lr_t = lr * multiplier(t):

    - linear warm-up over ``warmup_epochs``: multiplier (t+1)/warmup_steps, then
    - constant: 1;
    - step: lr_decay ** (number of milestones <= the current epoch);
    - cosine: (1 + cos(pi * (t - warmup_steps) / (total_steps - warmup_steps))) / 2, from 1 to 0.
    """

    def __init__(self, kind: str, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0,
                 milestones: Sequence[int] = (), decay: float = 0.1) -> None:
        if kind not in SCHEDULES:
            raise UserError(f"trainer.lr_schedule must be one of {', '.join(SCHEDULES)}; got {kind}")
        if not 0 <= warmup_epochs <= epochs:
            raise UserError(f"trainer.warmup_epochs must be >= 0 and <= trainer.epochs ({epochs}); "
                            f"got {warmup_epochs:g}")
        if decay <= 0:
            raise UserError(f"trainer.lr_decay must be > 0; got {decay:g}")
        if kind == "step" and not milestones:
            raise UserError("trainer.lr_schedule=step needs trainer.lr_milestones (epochs), e.g. [10,20]")
        if any(m < 1 for m in milestones):
            raise UserError(f"trainer.lr_milestones must be epochs >= 1 (after which lr *= lr_decay); "
                            f"got {list(milestones)}")
        self.kind, self.steps_per_epoch = kind, steps_per_epoch
        self.total = steps_per_epoch * epochs
        self.warmup = round(warmup_epochs * steps_per_epoch)
        self.milestones = sorted(int(m) for m in milestones)
        self.decay = decay

    def multiplier(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "step":
            return self.decay ** bisect.bisect_right(self.milestones, step // self.steps_per_epoch)
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))
        return 1.0
