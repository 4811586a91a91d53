"""Bit packing and narrow index types: the pieces of honest wire formats."""

from __future__ import annotations

import torch

# Byte order of bits inside a packed byte: entry j of a group of 8 goes to bit j.
_BIT_WEIGHTS: dict[torch.device, torch.Tensor] = {}


def index_dtype(numel: int) -> torch.dtype:
    """The narrowest integer type that holds indices 0..numel-1 (1, 2, 4 or 8 bytes)."""
    if numel <= 2**8:
        return torch.uint8
    if numel <= 2**16:
        return torch.uint16
    if numel <= 2**31:
        return torch.int32
    return torch.int64


def packed_nbytes(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack ``codes`` (integers < 2**bits) into ``packed_nbytes(len, bits)`` bytes, LSB first."""
    n = codes.numel()
    if bits == 8:
        return codes.to(torch.uint8)
    if 8 % bits == 0:  # 1, 2, 4 bits: whole codes per byte, no bit expansion
        per_byte = 8 // bits
        padded = torch.zeros(packed_nbytes(n, bits) * per_byte, dtype=torch.uint8, device=codes.device)
        padded[:n] = codes
        groups = padded.view(-1, per_byte)
        out = groups[:, 0].clone()
        for j in range(1, per_byte):
            out |= groups[:, j] << (j * bits)
        return out
    # Any other width: expand to bits, then pack 8 bits per byte.
    shifts = torch.arange(bits, device=codes.device, dtype=torch.int32)
    bitmatrix = ((codes.to(torch.int32).unsqueeze(1) >> shifts) & 1).to(torch.uint8).view(-1)
    padded = torch.zeros(packed_nbytes(n, bits) * 8, dtype=torch.uint8, device=codes.device)
    padded[: bitmatrix.numel()] = bitmatrix
    return (padded.view(-1, 8) * _weights(codes.device)).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """The first ``n`` codes of ``bits`` bits each from ``pack_bits`` output (uint8 codes up
    to 8 bits, int32 codes above: a wider code must not wrap)."""
    if bits == 8:
        return packed[:n]
    mask = (1 << bits) - 1
    if 8 % bits == 0:
        shifts = torch.arange(0, 8, bits, device=packed.device, dtype=torch.uint8)
        return ((packed.unsqueeze(1) >> shifts) & mask).view(-1)[:n]
    allbits = ((packed.unsqueeze(1) >> torch.arange(8, device=packed.device, dtype=torch.uint8)) & 1).view(-1)
    bitmatrix = allbits[: n * bits].view(n, bits).to(torch.int32)
    weights = (1 << torch.arange(bits, device=packed.device, dtype=torch.int32))
    codes = (bitmatrix * weights).sum(dim=1, dtype=torch.int32)
    return codes.to(torch.uint8) if bits <= 8 else codes


def _weights(device: torch.device) -> torch.Tensor:
    w = _BIT_WEIGHTS.get(device)
    if w is None:
        w = _BIT_WEIGHTS[device] = (1 << torch.arange(8, device=device, dtype=torch.int32)).to(torch.uint8)
    return w


_TABLES: dict[tuple, torch.Tensor] = {}


def byte_table(bits: int, value_of_code, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A (256, 8 // bits) table: row b holds the values of the codes packed in byte b, so a
    packed buffer decodes with one gather, ``table[packed].view(-1)`` (``bits`` divides 8).

    ``value_of_code`` maps a tensor of codes to values; tables are cached per arguments.
    """
    key = (bits, value_of_code, dtype, device)
    table = _TABLES.get(key)
    if table is None:
        every_byte = torch.arange(256, dtype=torch.uint8)
        codes = unpack_bits(every_byte, bits, 256 * 8 // bits).view(256, 8 // bits)
        table = _TABLES[key] = value_of_code(codes).to(dtype=dtype, device=device)
    return table
