"""A small GPT for character-level language modelling (nanoGPT-style, Karpathy 2022)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from compoptim.errors import UserError, check_range
from compoptim.models.base import Model, Part


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and a 4x MLP, both residual."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))
        self.heads, self.dropout = heads, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                              dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


class CharGPT(Model):
    """Token + position embeddings, ``layers`` blocks, a final LayerNorm and a head tied to
    the token embedding. Input (batch, context) character ids; output (batch, context, vocab).
    The context length and vocabulary come from the dataset."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, layers: int = 2, heads: int = 4,
                 width: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise UserError(f"char_gpt needs character sequences (dataset=shakespeare); got inputs {input_shape}")
        for key, value, low in (("layers", layers, 0), ("heads", heads, 1), ("width", width, 1)):
            if value < low:
                raise UserError(f"model.{key} must be >= {low}; got {value}")
        if width % heads:
            raise UserError(f"model.width ({width}) must be a multiple of model.heads ({heads})")
        check_range("model.dropout", dropout, 0.0, 1.0)
        context = input_shape[0]
        self.tokens = nn.Embedding(num_classes, width)
        self.positions = nn.Embedding(context, width)
        self.layers = nn.Sequential(*(Block(width, heads, dropout) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes, bias=False)
        self.head.weight = self.tokens.weight  # weight tying, as nanoGPT
        for name, p in self.named_parameters():
            if p.dim() >= 2 and "positions" not in name:
                nn.init.normal_(p, std=0.02)
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.layers(self.embed(ids))))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))

    def make_blocks(self) -> list[nn.Module]:
        # embeddings, each transformer block, the final norm and head. The head's weight IS the
        # token embedding's (tied): a split that puts them on different stages must keep the two
        # copies equal (sum their gradients), as Megatron-style pipelines do.
        return [Part(lambda p, ids: CharGPT.embed(p, ids), tokens=self.tokens, positions=self.positions),
                *self.layers, Part(lambda p, x: p.head(p.ln(x)), ln=self.ln, head=self.head)]
