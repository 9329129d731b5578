"""Attention ops: ``ScaledDotProductAttention`` and ``MultiHeadSDPA``, each one Function
whose forward and backward are single kernel calls (as the fused ops of ``fused.py``).

The arithmetic lives in ``minitensor/kernels``; these classes only connect the kernels
to the graph. ``functional/attention.py`` checks inputs and builds the additive masks.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from .registry import register


@register
class ScaledDotProductAttention(Function):
    """$\\mathrm{softmax}(Q K^T \\cdot s + M) V$ for q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv).

    ``mask`` is additive (0 visible, -inf blocked) and broadcastable to (B, H, Tq, Tk).
    The Numba kernel is fused (online softmax; the Tq x Tk matrix is never stored).
    A query with no visible key outputs zeros and gets zero gradient.
    """
    @staticmethod
    def forward(ctx, q, k, v, mask=None, is_causal=False, scale=1.0):
        out, cache = kernels.get().attention_forward(q, k, v, mask, is_causal, scale)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().attention_backward(np.ascontiguousarray(g), ctx.saved_arrays[0])


@register
class MultiHeadSDPA(Function):
    """Per head h: $\\mathrm{dropout}(\\mathrm{softmax}(Q_h K_h^T \\cdot s + M)) V_h$, on
    heads-merged inputs q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv) -> (B, L, H*Dv).

    The layout projections produce, so multi-head attention needs no head split/merge
    ops. ``layout`` says how the inputs hold q, k, v: "q,k,v" (three tensors), "qkv"
    (one (B, L, 3*H*D) tensor, self-attention) or "q,kv" (q, and k and v side by side in
    one tensor); a packed input gets one gradient array, not slices to be summed.
    ``mask`` is additive (0 visible, -inf blocked), broadcastable to (B, H, L, S). The
    weights (B, H, L, S) are kept for backward; the dropout mask is regenerated from
    ``seed``. A query with no visible key outputs zeros and gets zero gradient.
    """
    @staticmethod
    def forward(ctx, *inputs, layout="q,k,v", num_heads=1, mask=None, scale=1.0, dropout_p=0.0,
                seed=0):
        out, cache = kernels.get().multi_head_sdpa_forward(inputs, layout, num_heads, mask, scale,
                                                           dropout_p, seed)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().multi_head_sdpa_backward(g, ctx.saved_arrays[0])
