"""Positional encodings (paper section 3.5): fixed sinusoids or learned vectors.

Both modules take **batch-first** input x of shape (B, T, D), add the encoding of
positions ``offset .. offset + T - 1`` (``offset`` > 0 when decoding incrementally with a
KV cache), apply dropout, and return (B, T, D). A sequence longer than ``max_len`` is a
clear error, never a silent wrap-around or a NumPy broadcasting error.
"""
from __future__ import annotations

import math

import numpy as np

import minitensor as mt
from minitensor import nn


def sinusoid_table(max_len: int, d_model: int) -> np.ndarray:
    """The paper's table, (max_len, d_model) float64:

        PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))
    """
    pos = np.arange(max_len, dtype=np.float64)[:, None]                      # (L, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)                       # (ceil(D/2),)
    angle = pos / np.power(10000.0, two_i / d_model)                         # (L, ceil(D/2))
    table = np.zeros((max_len, d_model), dtype=np.float64)                   # (L, D)
    table[:, 0::2] = np.sin(angle)                                           # even columns
    table[:, 1::2] = np.cos(angle[:, : d_model // 2])                        # odd columns
    return table


def _check_length(name: str, x, offset: int, max_len: int, d_model: int) -> None:
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name}: expected batch-first input (B, T, {d_model}), got shape {x.shape}")
    if offset + x.shape[1] > max_len:
        raise ValueError(f"{name}: positions {offset}..{offset + x.shape[1] - 1} exceed max_len "
                         f"{max_len} (input of shape {x.shape}); build the model with a larger "
                         "max_len")


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[positions], then dropout. The table is computed once and is not a
    parameter, so it is not in ``state_dict()``.

    Args:
        d_model: embedding size D.
        max_len: longest sequence supported.
        dropout: dropout probability applied after the addition (the paper uses 0.1).
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        self._table = sinusoid_table(max_len, d_model)   # (max_len, D) float64, plain array
        self._cast: dict = {}                            # dtype -> table in that dtype

    def forward(self, x, offset: int = 0):
        """x: (B, T, D) -> (B, T, D)."""
        _check_length("SinusoidalPositionalEncoding", x, offset, self.max_len, self.d_model)
        T = x.shape[1]
        table = self._cast.get(x.dtype)
        if table is None:
            table = self._cast[x.dtype] = self._table.astype(x.dtype)
        pe = mt.tensor(table[offset:offset + T])         # (T, D), a constant
        return self.dropout(x + pe)                      # (B, T, D)


class LearnedPositionalEncoding(nn.Module):
    """x + P[positions], then dropout, with P a learned (max_len, d_model) parameter
    (key ``weight``).

    Args:
        max_len: longest sequence supported.
        d_model: embedding size D.
        dropout: dropout probability applied after the addition.
    """

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.max_len = max_len
        self.d_model = d_model
        self.weight = nn.Parameter(mt.zeros(max_len, d_model))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, offset: int = 0):
        """x: (B, T, D) -> (B, T, D)."""
        _check_length("LearnedPositionalEncoding", x, offset, self.max_len, self.d_model)
        T = x.shape[1]
        pe = self.weight[offset:offset + T]              # (T, D)
        return self.dropout(x + pe)                      # (B, T, D)
