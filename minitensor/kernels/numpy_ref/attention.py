"""Attention kernels in plain NumPy, all of them: the readable spec.

    attention_forward / attention_backward
        scaled dot-product attention on (B, H, T, D) arrays (what the fused
        ``scaled_dot_product_attention`` uses).
    attention_weights_forward / attention_weights_backward
        the same per head, on heads-merged (B, T, H*D) arrays as projections produce
        them, the weights kept (and returned), with dropout on them; the backward also
        takes a gradient of the weights.

The attention Function (``ops/attention.py``) uses the first pair when nobody needs the
weights and there is no dropout, the second otherwise. Everything here is materialized:
attention builds the whole (Tq, Tk) score matrix per (batch, head).
``numba_cpu/attention.py`` computes the first pair without storing it, and is tested
against this file.

Conventions of attention_forward/backward, shared by both backends:
    q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), all one float dtype.
    mask: None or a float array *added* to the scores (0 = visible, -inf = blocked),
          broadcastable to (B, H, Tq, Tk).
    is_causal: query i sees keys j <= i (top-left aligned, as torch's SDPA).
    A query row that sees no key at all gives out = 0 and zero gradients (never NaN).
    cache: dict with q, k, v, mask, is_causal, scale, out, lse (B, H, Tq) (the row
           log-sum-exp, -inf for a fully blocked row); this reference also keeps the
           probabilities "p" (B, H, Tq, Tk), the fused one never does.
"""
from __future__ import annotations

import numpy as np

from ..layouts import pack_qkv, unpack_qkv

from .pointwise import dropout_backward, dropout_forward
from .rows import softmax_backward, softmax_forward


def _scores(q, k, mask, is_causal, scale):
    """s (B, H, Tq, Tk) = q @ k^T * scale + mask, with -inf above the diagonal if causal."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)  # (B, H, Tq, Tk)
    if mask is not None:
        s = s + mask.astype(s.dtype, copy=False)
    if is_causal:
        tq, tk = s.shape[-2:]
        visible = np.arange(tk)[None, :] <= np.arange(tq)[:, None]  # (Tq, Tk), j <= i
        s = np.where(visible, s, -np.inf)
    return s


def attention_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """out (B, H, Tq, Dv) = softmax(q @ k^T * scale + mask) @ v, materialized.

        for b, h: s = q[b,h] @ k[b,h]^T * scale + mask      # (Tq, Tk) in memory
                  m = rowmax(s); e = exp(s - m); l = rowsum(e)
                  p = e / l;  out[b,h] = p @ v[b,h];  lse = m + log(l)

    Optimizations:
        - none beyond batched np.matmul: the readable spec. A fully blocked row has
          m = -inf; it is shifted by 0 instead, so e = 0, l = 0, p = 0, out = 0.
    """
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    s = _scores(q, k, mask, is_causal, scale)  # (B, H, Tq, Tk)
    m = s.max(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    m = np.where(np.isfinite(m), m, 0.0).astype(s.dtype)  # fully blocked row: shift by 0
    e = np.exp(s - m)  # (B, H, Tq, Tk), exactly 0 where blocked
    l = e.sum(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    p = e / np.where(l > 0, l, 1.0).astype(s.dtype)  # blocked row stays all zeros
    out = np.matmul(p, v)  # (B, H, Tq, Dv)
    with np.errstate(divide="ignore"):  # log(0) = -inf marks a fully blocked row
        lse = (m + np.log(l))[..., 0]  # (B, H, Tq)
    cache = dict(q=q, k=k, v=v, mask=mask, is_causal=is_causal, scale=scale,
                 out=out, lse=lse, p=p)
    return out, cache


def attention_backward(dout, cache):
    """Gradients (dq, dk, dv) of attention_forward, given dout (B, H, Tq, Dv).

        for b, h: p = exp(s - lse)                  # (or the saved p)
                  dv = p^T @ dout;  dp = dout @ v^T
                  ds = p * (dp - rowsum(dout * out))  # softmax backward
                  dq = ds @ k * scale;  dk = ds^T @ q * scale

    Optimizations:
        - rowsum(dout * out) equals rowsum(p * dp) (FlashAttention-2's D_i) and needs
          no (Tq, Tk) product.
    """
    q, k, v, out, scale = cache["q"], cache["k"], cache["v"], cache["out"], cache["scale"]
    p = cache.get("p")
    if p is None:  # a cache from the fused backend: recompute p from the saved lse
        s = _scores(q, k, cache["mask"], cache["is_causal"], scale)
        lse = cache["lse"][..., None]  # (B, H, Tq, 1)
        lse = np.where(np.isfinite(lse), lse, np.inf).astype(s.dtype)  # blocked row -> p = 0
        p = np.exp(s - lse)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)  # (B, H, Tk, Dv)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))  # (B, H, Tq, Tk)
    d_row = (dout * out).sum(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    ds = p * (dp - d_row)  # (B, H, Tq, Tk)
    scale = q.dtype.type(scale)  # a float64 scalar would promote float32 arrays
    dq = np.matmul(ds, k) * scale  # (B, H, Tq, D)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * scale  # (B, H, Tk, D)
    return dq.astype(q.dtype, copy=False), dk.astype(k.dtype, copy=False), dv.astype(v.dtype, copy=False)


# ------------------------------------------ attention over merged heads, with dropout


def _split_heads(x, h):
    """(B, T, H*D) -> (B, H, T, D) view."""
    b, t, e = x.shape
    return x.reshape(b, t, h, e // h).transpose(0, 2, 1, 3)


def _blocked_rows(mask, shape):
    """(B|1, H|1, L, 1) bool: rows of the additive mask that hide every key (or None)."""
    if mask is None:
        return None
    return np.all(np.isneginf(np.broadcast_to(mask, shape[:-2] + mask.shape[-2:])), axis=-1,
                  keepdims=True)


def attention_weights_forward(inputs, layout, num_heads, mask, scale, dropout_p, seed):
    """Scaled dot-product attention per head on heads-merged, batch-first arrays, the
    weights materialized (what a projection produces, so no head split/merge copies):

        q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv) -> out (B, L, H*Dv)
        for b, h:  s = q_h k_h^T * scale + mask                  # (L, S)
                   p = softmax(s)      (a row whose keys are all masked: p = 0)
                   out_h = dropout(p) v_h      # mask bits from (seed, index in (B, H, L, S))

    ``inputs`` hold q, k, v as ``layout`` says (see ``kernels/layouts.py``): packed as a projection
    makes them, so their gradients come back packed too, in one array each.
    mask: additive float (0 visible, -inf blocked) broadcastable to (B, H, L, S), or None.
    Same arithmetic, in the same order, as the separate ops (matmul, * scale, + mask,
    softmax, dropout, matmul). The cache keeps p (B, H, L, S), as those ops do.
    """
    # inputs as above -> out (B, L, H*Dv); cache (p, scale, dropout_p, seed, H, layout, *inputs)
    h = num_heads
    q, k, v = unpack_qkv(inputs, layout)
    qh, kh, vh = _split_heads(q, h), _split_heads(k, h), _split_heads(v, h)   # (B, H, T, D)
    s = np.matmul(qh, kh.swapaxes(-1, -2)) * q.dtype.type(scale)            # (B, H, L, S)
    blocked = _blocked_rows(mask, s.shape)
    if mask is not None:
        s = s + np.where(blocked, q.dtype.type(0), mask.astype(q.dtype, copy=False))
    p, _ = softmax_forward(s)                                               # (B, H, L, S)
    if blocked is not None:
        p = np.where(blocked, q.dtype.type(0), p)
    dropped, _ = dropout_forward(p, dropout_p, seed)
    out = np.matmul(dropped, vh)                                            # (B, H, L, Dv)
    b, l = q.shape[:2]
    out = out.transpose(0, 2, 1, 3).reshape(b, l, -1)                       # (B, L, H*Dv)
    return out, (p, scale, dropout_p, seed, h, layout, *inputs)


def attention_weights_backward(dout, dweights, cache):
    """Gradients of attention_weights_forward, one per input (packed like the inputs).

    dout (B, L, H*Dv) is the gradient of out; dweights (B, H, L, S) that of the weights p
    (None when no gradient reached them).

        for b, h:  dv_h = dropout(p)^T dout_h;  dp = dropout'(dout_h v_h^T) + dweights_h
                   ds = p * (dp - rowsum(dp * p)) * scale          # softmax backward
                   dq_h = ds k_h;  dk_h = ds^T q_h
    """
    # dout (B, L, H*Dv) -> dq (B, L, H*D), dk (B, S, H*D), dv (B, S, H*Dv), packed
    p, scale, dropout_p, seed, h, layout, *inputs = cache
    q, k, v = unpack_qkv(inputs, layout)
    qh, kh, vh = _split_heads(q, h), _split_heads(k, h), _split_heads(v, h)
    doh = _split_heads(dout, h)                                             # (B, H, L, Dv)
    dropped, _ = dropout_forward(p, dropout_p, seed)
    dvh = np.matmul(dropped.swapaxes(-1, -2), doh)                          # (B, H, S, Dv)
    dp = dropout_backward(np.matmul(doh, vh.swapaxes(-1, -2)), (dropout_p, seed))  # (B, H, L, S)
    if dweights is not None:
        dp = dp + dweights.astype(dp.dtype, copy=False)
    ds = softmax_backward(dp, (p,)) * q.dtype.type(scale)                   # (B, H, L, S)
    dqh = np.matmul(ds, kh)                                                 # (B, H, L, D)
    dkh = np.matmul(ds.swapaxes(-1, -2), qh)                                # (B, H, S, D)

    def merge(x):                                                           # (B, H, T, D) -> (B, T, H*D)
        return x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)
    return pack_qkv(merge(dqh), merge(dkh), merge(dvh), layout)
