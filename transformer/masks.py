"""Attention masks in torch.nn's convention: boolean True = blocked (may NOT attend).

Which mask means what
=====================

==========================================  ==========  ===============  =====================
function / argument                         shape       bool True means  float values
==========================================  ==========  ===============  =====================
``causal_mask(T)``                          (T, T)      blocked          --
``square_subsequent_mask(T)``               (T, T)      --               0, -inf above diag
``padding_mask(tokens, pad_id)``            (B, S)      blocked (PAD)    --
``MultiheadAttention(attn_mask=...)``,      (L, S) or   blocked          added to the scores
``Transformer(src_mask/tgt_mask/...)``      (B*H, L, S)                  (-inf blocks)
``..._key_padding_mask``                    (B, S)      blocked          added to the scores
``F.scaled_dot_product_attention``,         (.., L, S)  **may attend**   added to the scores
``F.multi_head_attention``                  (B, H, L, S)
==========================================  ==========  ===============  =====================

The last row is the odd one out, exactly as in PyTorch: ``torch.nn.functional.
scaled_dot_product_attention`` (and ``minitensor.functional``'s) reads a boolean mask as
"True = allowed", while ``nn.MultiheadAttention`` and the Transformer modules read it as
"True = masked out". ``MultiheadAttention`` converts its masks to additive float masks
before calling the functional kernels, so the two conventions never meet. To use a
mask from this module with ``F.scaled_dot_product_attention`` directly, pass ``~mask``.

Every conversion is ``minitensor.masks``' (the core's one mask helper, which names the
convention at each call); the functions here are its torch.nn-convention faces.
"""
from __future__ import annotations

import numpy as np

from minitensor import Tensor
from minitensor import masks as core_masks


def causal_mask(size: int) -> np.ndarray:
    """(T, T) bool mask, True above the diagonal: position i may not attend to j > i.

    Args:
        size: sequence length T.
    Returns:
        np.ndarray of dtype bool, shape (T, T).
    """
    return core_masks.causal_mask(size)  # (T, T)


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
    return core_masks.causal_additive_mask(size, dtype=dtype)  # (T, T)


def to_additive(mask, dtype) -> np.ndarray | None:
    """A torch-convention mask (bool True = blocked, or float) as an additive float array.

    Bool masks become 0 where allowed and -inf where blocked; float masks are cast.
    """
    return core_masks.additive_mask(mask, dtype, true_means="blocked", name="to_additive")
