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
    if context < 1:
        raise UserError(f"dataset.context must be >= 1 (characters per sample); got {context}")
    if not 0 < test_fraction < 1:  # also refuses nan
        raise UserError(f"dataset.test_fraction must be > 0 and < 1 (the share of the text kept for testing); "
                        f"got {test_fraction:g}")
    if stride is not None and stride < 1:
        raise UserError(f"dataset.stride must be >= 1 (characters between window starts) or null (= context); "
                        f"got {stride}")
    text = _read_text(Path(path).expanduser())
    stride = stride or context
    vocab = sorted(set(text))
    ids = torch.tensor(_encode(text, vocab), dtype=torch.int64)
    cut = int(len(ids) * (1 - test_fraction))
    if context >= len(ids):
        raise UserError(f"dataset=shakespeare: {Path(path).expanduser().resolve()} has {len(text)} characters, "
                        f"too short for dataset.context={context}")
    x_train, y_train = _windows(ids[:cut], context, stride)
    x_test, y_test = _windows(ids[cut:], context, context)
    if len(y_train) == 0 or len(y_test) == 0:
        raise UserError(f"dataset=shakespeare: {Path(path).expanduser().resolve()} has {len(text)} characters, "
                        f"too short for dataset.context={context} with dataset.test_fraction={test_fraction:g}")
    return Dataset("shakespeare", x_train, y_train, x_test, y_test, num_classes=len(vocab), task="language")


def _read_text(file: Path) -> str:
    """The UTF-8 text of ``file``; a file that is missing, a directory, unreadable, empty or not
    UTF-8 text is a UserError naming it and what is wrong."""
    shown = file.resolve()
    hint = "set dataset.path=FILE (a UTF-8 text file, e.g. Tiny Shakespeare's input.txt)"
    if file.is_dir():
        raise UserError(f"dataset=shakespeare: {shown} is a directory, not a text file; {hint}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"dataset=shakespeare: cannot read the text file {shown} ({exc.strerror or exc}); "
                        f"{hint}") from None
    if not data:
        raise UserError(f"dataset=shakespeare: {shown} is empty (0 bytes); {hint}")
    nul = data.find(b"\0")
    if nul >= 0:
        raise UserError(f"dataset=shakespeare: {shown} is a binary file, not text (a NUL byte at offset {nul}); "
                        f"{hint}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"dataset=shakespeare: {shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start}); convert it to UTF-8 or {hint}") from None


def _encode(text: str, vocab: list[str]) -> list[int]:
    index = {ch: i for i, ch in enumerate(vocab)}
    return [index[ch] for ch in text]


def _windows(ids: torch.Tensor, context: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.arange(0, max(0, len(ids) - context), stride)
    offsets = torch.arange(context)
    x = ids[starts.view(-1, 1) + offsets]
    y = ids[starts.view(-1, 1) + offsets + 1]
    return x, y
