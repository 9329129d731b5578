"""Attention wrappers (the Functions of ``ops/attention.py``): ``scaled_dot_product_attention``
(torch's semantics), ``multi_head_sdpa`` (every head at once on heads-merged tensors) and
``attention_with_weights`` (materialized, also returning the weights), with their mask
and shape helpers.
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..errors import DTypeError, ShapeError
from ..ops import attention as A
from ..tensor import Tensor
from ._checks import _broadcast_shape, _check_float
from .elementwise import masked_fill
from .fused import dropout, softmax
from .linalg import matmul
from .shape import expand, transpose

def _additive_mask(name: str, attn_mask, dtype) -> np.ndarray | None:
    """torch SDPA masks -> an additive float array (bool: True means *may attend*)."""
    if attn_mask is None:
        return None
    m = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
    if m.dtype == np.bool_:
        return np.where(m, np.asarray(0, dtype), np.asarray(-np.inf, dtype))
    if m.dtype.kind != "f":
        raise DTypeError(f"{name}: attn_mask must be bool or float, got dtype {m.dtype}")
    return m.astype(dtype, copy=False)


def _attention_shapes(name: str, q: Tensor, k: Tensor, v: Tensor, mask):
    for label, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ShapeError(f"{name}: {label} must be at least 2-D (..., T, D), got {t.shape}")
        _check_float(name, t)
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"{name}: query and key embedding sizes differ: {q.shape} vs {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{name}: key and value lengths differ: {k.shape} vs {v.shape}")
    lead = _broadcast_shape(name, q.shape[:-2], k.shape[:-2], v.shape[:-2])
    scores = lead + (q.shape[-2], k.shape[-2])
    if mask is not None and _broadcast_shape(name, mask.shape, scores) != scores:
        raise ShapeError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores' shape {scores}")
    return lead


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: (..., Tq, D); key: (..., Tk, D); value: (..., Tk, Dv).
        attn_mask: bool (True = MAY attend) or float (added to the scores), broadcastable
            to (..., Tq, Tk).
        dropout_p: dropout on the attention weights (uses the materialized path).
        is_causal: query i attends keys j <= i. Not combined with attn_mask (as torch).
        scale: defaults to 1/sqrt(D).
    Returns:
        (..., Tq, Dv). A query row that can see no key gives zeros (never NaN).
    """
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
    mask = _additive_mask("scaled_dot_product_attention", attn_mask, query.dtype)
    lead = _attention_shapes("scaled_dot_product_attention", query, key, value, mask)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if dropout_p > 0.0:
        return _attention_materialized(query, key, value, mask, is_causal, scale, dropout_p)[0]
    tq, tk = query.shape[-2], key.shape[-2]
    b, h = _batch_heads(lead)
    q4 = _to_4d(query, lead, b, h)
    k4 = _to_4d(key, lead, b, h)
    v4 = _to_4d(value, lead, b, h)
    if mask is not None:
        full = np.broadcast_to(mask, lead + (tq, tk))
        mask = full.reshape(b, h, tq, tk) if len(lead) != 2 else full
    out = A.ScaledDotProductAttention.apply(q4, k4, v4, mask=mask, is_causal=bool(is_causal),
                                             scale=scale)
    return out.reshape(*lead, tq, value.shape[-1])


def multi_head_sdpa(query: Tensor, key: Tensor | None, value: Tensor | None, num_heads: int,
                    attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                    scale: float | None = None) -> Tensor:
    """Scaled dot-product attention of every head, on batch-first tensors whose last axis
    holds the heads side by side (what a projection produces): no split/merge needed.

    Args:
        query: (B, L, H*D); key: (B, S, H*D); value: (B, S, H*Dv), one float dtype.
            Packed forms, as one projection makes them (their gradient is then one
            array too, not three slices summed): ``key=None, value=None`` with query
            (B, L, 3*H*D) holding q, k, v side by side (self-attention); or
            ``value=None`` with key (B, S, H*D + H*Dv) holding k, v side by side.
        num_heads: H.
        attn_mask: as ``scaled_dot_product_attention``'s (bool True = MAY attend, or
            float added to the scores), broadcastable to (B, H, L, S).
        dropout_p: dropout on the attention weights (pass 0 outside training).
        is_causal: query i attends keys j <= i. Not combined with attn_mask.
        scale: defaults to 1/sqrt(D).
    Returns:
        (B, L, H*Dv): head h's output in columns h*Dv:(h+1)*Dv. Equal to splitting the
        heads, ``scaled_dot_product_attention`` on (B, H, T, D), and merging them back.
    """
    name = "multi_head_sdpa"
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {dropout_p}")
    if key is None and value is not None:
        raise ValueError(f"{name}: value without key (a packed query holds all three)")
    inputs = [t for t in (query, key, value) if t is not None]
    layout = {1: "qkv", 2: "q,kv", 3: "q,k,v"}[len(inputs)]
    for t in inputs:
        if t.ndim != 3:
            raise ShapeError(f"{name}: inputs must be 3-D (B, T, features), got {t.shape}")
        _check_float(name, t)
        if t.dtype != query.dtype:
            raise DTypeError(f"{name}: query, key and value must have one dtype, got "
                             f"{[str(x.dtype) for x in inputs]}")
    # The shapes of q, k and v once unpacked (k always has q's width).
    if layout == "qkv":
        e = query.shape[-1] // 3
        q_shape = k_shape = v_shape = query.shape[:-1] + (e,)
        packed_ok = query.shape[-1] == 3 * e
    elif layout == "q,kv":
        q_shape, e = query.shape, query.shape[-1]
        k_shape, v_shape = key.shape[:-1] + (e,), key.shape[:-1] + (key.shape[-1] - e,)
        packed_ok = key.shape[-1] > e
    else:
        q_shape, k_shape, v_shape, packed_ok = query.shape, key.shape, value.shape, True
    if not packed_ok:
        raise ShapeError(f"{name}: packed input of shape {inputs[-1].shape} does not hold q, k "
                         f"and v side by side ({layout} layout)")
    for label, shape in (("query", q_shape), ("key", k_shape), ("value", v_shape)):
        if shape[-1] % num_heads:
            raise ShapeError(f"{name}: {label} has {shape[-1]} features, not divisible by "
                             f"num_heads ({num_heads})")
    if q_shape[-1] != k_shape[-1]:
        raise ShapeError(f"{name}: query and key embedding sizes differ: {q_shape} vs {k_shape}")
    if k_shape[:2] != v_shape[:2] or q_shape[0] != k_shape[0]:
        raise ShapeError(f"{name}: batch or key length differ: query {q_shape}, key {k_shape}, "
                         f"value {v_shape}")
    (b, tq, width), tk = q_shape, k_shape[1]
    mask = _additive_mask(name, attn_mask, query.dtype)
    if is_causal:
        mask = np.where(np.tril(np.ones((tq, tk), dtype=bool)), 0.0, -np.inf).astype(query.dtype)
    scores = (b, num_heads, tq, tk)
    if mask is not None and _broadcast_shape(name, mask.shape, scores) != scores:
        raise ShapeError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores' shape {scores}")
    scale = 1.0 / math.sqrt(width // num_heads) if scale is None else float(scale)
    # A seed only when there is dropout: the random stream then matches the separate
    # ops' (dropout draws no seed at p = 0).
    seed = _random.next_seed() if dropout_p > 0.0 else 0
    return A.MultiHeadSDPA.apply(*inputs, layout=layout, num_heads=int(num_heads), mask=mask,
                                  scale=scale, dropout_p=float(dropout_p), seed=seed)


def _batch_heads(lead: tuple) -> tuple[int, int]:
    if len(lead) == 0:
        return 1, 1
    if len(lead) == 1:
        return lead[0], 1
    return int(np.prod(lead[:-1])), lead[-1]


def _to_4d(t: Tensor, lead: tuple, b: int, h: int) -> Tensor:
    if t.shape[:-2] != lead:
        t = expand(t, *lead, *t.shape[-2:])
    return t.reshape(b, h, *t.shape[-2:])


def attention_with_weights(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                           dropout_p: float = 0.0, is_causal: bool = False,
                           scale: float | None = None) -> tuple[Tensor, Tensor]:
    """Like ``scaled_dot_product_attention`` but materialized, also returning the weights.

    Returns:
        (out (..., Tq, Dv), weights (..., Tq, Tk)); weights are after softmax and before
        dropout; a query row that can see no key has all-zero weights.
    """
    if is_causal and attn_mask is not None:
        raise ValueError("attention_with_weights: pass either attn_mask or is_causal=True, not both")
    mask = _additive_mask("attention_with_weights", attn_mask, query.dtype)
    _attention_shapes("attention_with_weights", query, key, value, mask)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return _attention_materialized(query, key, value, mask, is_causal, scale, dropout_p)


def _attention_materialized(q, k, v, mask, is_causal, scale, dropout_p):
    tq, tk = q.shape[-2], k.shape[-2]
    if is_causal:
        mask = np.where(np.tril(np.ones((tq, tk), dtype=bool)), 0.0, -np.inf).astype(q.dtype)
    scores = matmul(q, transpose(k, -1, -2)) * scale                    # (..., Tq, Tk)
    if mask is None:
        weights = softmax(scores, -1)
    else:
        # Rows with no visible key would be softmax(-inf, ..., -inf) = NaN. Give them a
        # harmless all-zero mask instead, then zero their weights: output 0, gradient 0.
        blocked_row = np.all(np.isneginf(mask), axis=-1, keepdims=True)  # (..., Tq, 1)
        safe_mask = np.where(blocked_row, np.asarray(0, mask.dtype), mask)
        weights = softmax(scores + Tensor._make(safe_mask, None), -1)
        if blocked_row.any():
            weights = masked_fill(weights, np.broadcast_to(blocked_row, weights.shape), 0.0)
    dropped = dropout(weights, dropout_p, training=dropout_p > 0.0)
    return matmul(dropped, v), weights
