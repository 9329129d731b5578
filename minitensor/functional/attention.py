"""Attention wrappers, both on the one ``Attention`` Function of ``ops/attention.py``:

    scaled_dot_product_attention   torch's signature and semantics on (..., L, D) tensors
    multi_head_attention           every head at once on heads-merged (B, T, H*D) tensors,
                                   as projections make them; optionally returns the weights

Masks become additive with ``minitensor/masks.py``; here are the input checks and the
reshapes between the caller's layout and the Function's heads-merged one.
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..errors import DTypeError, ShapeError
from ..masks import additive_mask
from ..ops import attention as A
from ..tensor import Tensor
from ._checks import _broadcast_shape, _check_float
from .shape import expand


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
    _check_mask_fits(name, mask, lead + (q.shape[-2], k.shape[-2]))
    return lead


def _check_mask_fits(name: str, mask, scores: tuple) -> None:
    """The error names the mask, its shape and the shape it should broadcast to."""
    if mask is None:
        return
    try:
        fits = np.broadcast_shapes(mask.shape, scores) == scores
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores' shape {scores} (..., L, S): L = {scores[-2]} "
                         f"queries, S = {scores[-1]} keys")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: (..., Tq, D); key: (..., Tk, D); value: (..., Tk, Dv).
        attn_mask: bool (True = MAY attend) or float (added to the scores), broadcastable
            to (..., Tq, Tk).
        dropout_p: dropout on the attention weights (then the weights are materialized).
        is_causal: query i attends keys j <= i. Not combined with attn_mask (as torch).
        scale: defaults to 1/sqrt(D).
    Returns:
        (..., Tq, Dv). A query row that can see no key gives zeros (never NaN).
    """
    name = "scaled_dot_product_attention"
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either attn_mask or is_causal=True, not both")
    _check_dropout(name, dropout_p)
    mask = additive_mask(attn_mask, query.dtype, true_means="attend", name=name,
                         label="attn_mask")
    lead = _attention_shapes(name, query, key, value, mask)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    tq, tk, dv = query.shape[-2], key.shape[-2], value.shape[-1]
    b, h = _batch_heads(lead)
    q4 = _to_4d(query, lead, b, h)                                          # (B, H, Tq, D)
    k4 = _to_4d(key, lead, b, h)                                            # (B, H, Tk, D)
    v4 = _to_4d(value, lead, b, h)                                          # (B, H, Tk, Dv)
    if mask is not None:
        full = np.broadcast_to(mask, lead + (tq, tk))
        mask = full.reshape(b, h, tq, tk) if len(lead) != 2 else full
    # The Function takes the heads side by side: (B, H, T, D) -> (B, T, H*D).
    q3, k3, v3 = (t.transpose(1, 2).reshape(b, t.shape[2], h * t.shape[3]) for t in (q4, k4, v4))
    out = A.Attention.apply(q3, k3, v3, layout="q,k,v", num_heads=h, mask=mask,
                            is_causal=bool(is_causal), scale=scale, dropout_p=float(dropout_p),
                            seed=_seed(dropout_p))                          # (B, Tq, H*Dv)
    out = out.reshape(b, tq, h, dv).transpose(1, 2)                         # (B, H, Tq, Dv)
    return out.reshape(*lead, tq, dv)


def multi_head_attention(query: Tensor, key: Tensor | None, value: Tensor | None, num_heads: int,
                         attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                         scale: float | None = None, need_weights: bool = False):
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
        need_weights: also return the attention weights (then they are materialized).
    Returns:
        out (B, L, H*Dv): head h's output in columns h*Dv:(h+1)*Dv. Equal to splitting the
        heads, ``scaled_dot_product_attention`` on (B, H, T, D), and merging them back.
        With ``need_weights``: (out, weights (B, H, L, S)), the weights after softmax and
        before dropout, differentiable; a query that sees no key has all-zero weights.
    """
    name = "multi_head_attention"
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either attn_mask or is_causal=True, not both")
    _check_dropout(name, dropout_p)
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
    mask = additive_mask(attn_mask, query.dtype, true_means="attend", name=name,
                         label="attn_mask")
    _check_mask_fits(name, mask, (b, num_heads, tq, tk))
    scale = 1.0 / math.sqrt(width // num_heads) if scale is None else float(scale)
    return A.Attention.apply(*inputs, layout=layout, num_heads=int(num_heads), mask=mask,
                             is_causal=bool(is_causal), scale=scale, dropout_p=float(dropout_p),
                             seed=_seed(dropout_p), need_weights=bool(need_weights))


def _check_dropout(name: str, dropout_p: float) -> None:
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {dropout_p}")


def _seed(dropout_p: float) -> int:
    """A seed for the dropout mask, drawn only when there is dropout: the random stream
    then matches the separate ops' (dropout draws no seed at p = 0)."""
    return _random.next_seed() if dropout_p > 0.0 else 0


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
