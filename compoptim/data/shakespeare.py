"""Character-level text (Tiny Shakespeare or any text file) for next-character prediction."""

from __future__ import annotations

from pathlib import Path

import torch

from compoptim.data.base import Dataset
from compoptim.errors import UserError


def load_shakespeare(path: str = "data/shakespeare/input.txt", context: int = 64, test_fraction: float = 0.1,
                     stride: int | None = None) -> Dataset:
    """The text's characters are the vocabulary (sorted, so the ids are reproducible). The
    first (1 - test_fraction) of the text is for training, the rest for testing, each cut
    into windows of ``context`` characters every ``stride`` (default: context) characters;
    the target of each position is the next character (nanoGPT's setup). Use with model=char_gpt."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"dataset=shakespeare: cannot read the text file {file.resolve()} "
                        f"({getattr(exc, 'strerror', None) or exc.__class__.__name__}); set dataset.path=FILE "
                        f"(e.g. Tiny Shakespeare's input.txt)") from None
    if context < 1:
        raise UserError(f"dataset.context must be >= 1; got {context}")
    if not 0 < test_fraction < 1:
        raise UserError(f"dataset.test_fraction must be > 0 and < 1; got {test_fraction:g}")
    stride = stride or context
    vocab = sorted(set(text))
    ids = torch.tensor(_encode(text, vocab), dtype=torch.int64)
    cut = int(len(ids) * (1 - test_fraction))
    x_train, y_train = _windows(ids[:cut], context, stride)
    x_test, y_test = _windows(ids[cut:], context, context)
    if len(y_train) == 0 or len(y_test) == 0:
        raise UserError(f"dataset=shakespeare: {file} has {len(text)} characters, too short for context {context}")
    return Dataset("shakespeare", x_train, y_train, x_test, y_test, num_classes=len(vocab), task="language")


def _encode(text: str, vocab: list[str]) -> list[int]:
    index = {ch: i for i, ch in enumerate(vocab)}
    return [index[ch] for ch in text]


def _windows(ids: torch.Tensor, context: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.arange(0, max(0, len(ids) - context), stride)
    offsets = torch.arange(context)
    x = ids[starts.view(-1, 1) + offsets]
    y = ids[starts.view(-1, 1) + offsets + 1]
    return x, y
