"""Attention masks in torch.nn's convention: boolean True = blocked (may NOT attend).

Which mask means what
=====================

==========================================  ==========  ===============  =====================
function / argument                         shape       bool True means  float values
==========================================  ==========  ===============  =====================
``causal_mask(T)``                          (T, T)      blocked          --
``padding_mask(tokens, pad_id)``            (B, S)      blocked (PAD)    --
``MultiheadAttention(attn_mask=...)``,      (L, S) or   blocked          added to the scores
``Transformer(src_mask/tgt_mask/...)``      (B*H, L, S)                  (-inf blocks)
``..._key_padding_mask``                    (B, S)      blocked          added to the scores
``F.scaled_dot_product_attention``          (.., L, S)  **may attend**   added to the scores
==========================================  ==========  ===============  =====================

The last row is the odd one out, exactly as in PyTorch: ``torch.nn.functional.
scaled_dot_product_attention`` (and ``minitensor.functional``'s) reads a boolean mask as
"True = allowed", while ``nn.MultiheadAttention`` and the Transformer modules read it as
"True = masked out". ``MultiheadAttention`` converts its masks to additive float masks
before calling the functional kernels, so the two conventions never meet. To use a
mask from this module with ``F.scaled_dot_product_attention`` directly, pass ``~mask``.
"""
from __future__ import annotations

import numpy as np

from minitensor import Tensor


def causal_mask(size: int) -> np.ndarray:
    """(T, T) bool mask, True above the diagonal: position i may not attend to j > i.

    Args:
        size: sequence length T.
    Returns:
        np.ndarray of dtype bool, shape (T, T).
    """
    return np.triu(np.ones((size, size), dtype=bool), k=1)  # (T, T)


def padding_mask(tokens, pad_id: int) -> np.ndarray:
    """(B, S) bool key-padding mask, True where ``tokens`` equals ``pad_id``.

    Args:
        tokens: (B, S) integer ids (ndarray, Tensor or nested lists).
        pad_id: the padding id.
    Returns:
        np.ndarray of dtype bool, same shape as ``tokens``.
    """
    ids = tokens.data if isinstance(tokens, Tensor) else np.asarray(tokens)
    return ids == pad_id  # (B, S)


def square_subsequent_mask(size: int, dtype=np.float32) -> np.ndarray:
    """(T, T) float mask, -inf above the diagonal and 0 elsewhere (torch's
    ``Transformer.generate_square_subsequent_mask``)."""
    return np.triu(np.full((size, size), -np.inf, dtype=dtype), k=1)  # (T, T)


def to_additive(mask, dtype) -> np.ndarray | None:
    """A torch-convention mask (bool True = blocked, or float) as an additive float array.

    Bool masks become 0 where allowed and -inf where blocked; float masks are cast.
    """
    if mask is None:
        return None
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype == np.bool_:
        return np.where(m, np.asarray(-np.inf, dtype), np.asarray(0, dtype))
    if m.dtype.kind != "f":
        raise TypeError(f"attention masks must be bool or float, got dtype {m.dtype} "
                        f"(shape {m.shape})")
    return m.astype(dtype, copy=False)
