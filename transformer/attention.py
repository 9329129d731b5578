"""Multi-head attention (paper section 3.2.2), a drop-in for ``torch.nn.MultiheadAttention``.

Same constructor, forward arguments, mask semantics and parameter names/shapes as
PyTorch (``in_proj_weight`` (3E, E), ``in_proj_bias`` (3E,), ``out_proj.weight``,
``out_proj.bias``; ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when
kdim/vdim differ from embed_dim), so a torch state dict loads as is.

Also here: ``KVCache``, the per-module key/value store for incremental decoding.
"""
from __future__ import annotations

import numpy as np

import minitensor as mt
from minitensor import Tensor, nn
from minitensor import functional as F
from minitensor import masks as core_masks

from .masks import to_additive


class KVCache:
    """Keys and values of one ``MultiheadAttention`` kept across decoding steps.

    * ``static=False`` (self-attention): every call appends the new positions' keys
      and values, so step t attends to positions 0..t without recomputing them.
    * ``static=True`` (cross-attention): the first call projects ``key``/``value`` (the
      encoder memory) once; later calls reuse them and ignore ``key``/``value``.

    ``k`` and ``v`` are (B, S, E) tensors, the heads side by side as the projections
    make them (None before the first call).
    """

    def __init__(self, static: bool = False):
        self.static = static
        self.k: Tensor | None = None  # (B, S, E)
        self.v: Tensor | None = None  # (B, S, E)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[1]

    def reorder(self, index) -> None:
        """Keep batch rows ``index`` (B',) in that order (beam search's parent beams)."""
        if self.k is not None:
            index = np.asarray(index, dtype=np.int64)
            self.k = mt.as_tensor(self.k.data[index])  # (B', S, E): a fresh array already
            self.v = mt.as_tensor(self.v.data[index])  # (B', S, E)


class MultiheadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).

    Args:
        embed_dim: model size E (query size and output size).
        num_heads: number of heads H; E must be divisible by H.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the input and output projections.
        batch_first: inputs/outputs are (N, L, E) instead of torch's default (L, N, E).
        kdim, vdim: key/value feature sizes (default E); when they differ from E the
            projections are three separate parameters, as in torch.

    Differences from torch (documented, deliberate):
        * A query whose keys are all masked outputs zeros (weights all zero) and gets
          zero gradient; torch returns NaN there.
        * ``is_causal=True`` without ``attn_mask`` builds the causal mask (torch raises).
        * With dropout > 0 in training, returned weights are before dropout (torch's
          are after).
    """

    _capture_hook = None  # set per instance, temporarily, by transformer.capture

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, kdim: int | None = None, vdim: int | None = None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(mt.zeros(3 * E, E))        # (3E, E)
        else:
            self.q_proj_weight = nn.Parameter(mt.zeros(E, E))             # (E, E)
            self.k_proj_weight = nn.Parameter(mt.zeros(E, self.kdim))     # (E, kdim)
            self.v_proj_weight = nn.Parameter(mt.zeros(E, self.vdim))     # (E, vdim)
        if bias:
            self.in_proj_bias = nn.Parameter(mt.zeros(3 * E))             # (3E,)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(E, E, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's init: xavier_uniform_ on the input projection(s), zero biases."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.constant_(self.in_proj_bias, 0.0)
            nn.init.constant_(self.out_proj.bias, 0.0)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")

    # ------------------------------------------------------------------ forward
    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False, *, cache: KVCache | None = None):
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: (L, N, E), or (N, L, E) if batch_first, or unbatched (L, E).
            key: (S, N, kdim) / (N, S, kdim) / (S, kdim).
            value: (S, N, vdim) / (N, S, vdim) / (S, vdim).
            key_padding_mask: (N, S) (or (S,) unbatched); bool True = ignore that key,
                float = added to the scores.
            need_weights: also return the attention weights (materialized kernel);
                False (without dropout) lets the fused kernel run.
            attn_mask: (L, S) or (N * num_heads, L, S); bool True = may NOT attend,
                float = added to the scores.
            average_attn_weights: return weights averaged over heads (N, L, S) instead
                of per head (N, H, L, S).
            is_causal: hint that attn_mask is the causal mask (then the fused kernel
                skips the masked half); without attn_mask the causal mask is built.
            cache: a ``KVCache`` for incremental decoding (batch-first inputs with
                the new positions only; see ``KVCache``). Not in torch.
        Returns:
            (attn_output shaped like query, attn_weights or None). A query whose keys are
            all masked gives zeros (and zero weights), never NaN.
        """
        # 1. Make everything batch-first (N, L, E); remember how to undo it.
        is_batched = query.ndim == 3
        self._check_shapes(query, key, value, key_padding_mask, is_batched)
        self_attn, kv_same = query is key and key is value, key is value
        if not is_batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)  # (1, L|S, E)
            if key_padding_mask is not None:
                key_padding_mask = _unsqueeze_mask(key_padding_mask)                    # (1, S)
        elif not self.batch_first:
            query, key, value = (query.transpose(0, 1), key.transpose(0, 1),
                                 value.transpose(0, 1))                                 # (N, L|S, E)
        N, L, E = query.shape

        # 2. Project: q = query W^Q + b^Q, k = key W^K + b^K, v = value W^V + b^V. The
        #    heads stay side by side in the last axis: (N, T, E) is H heads of hd features.
        past = len(cache) if cache is not None and not cache.static else 0
        q, k, v = self._project_qkv(query, key, value, self_attn, kv_same, cache)    # see there
        S = L if k is None else k.shape[1]

        # 3. Masks -> one additive float mask (0 = visible, -inf = blocked), (N|1, H|1, L, S).
        hook = self._capture_hook
        want_weights = need_weights or hook is not None
        # is_causal alone (no padding, no cache offset) lets the kernel skip the masked half.
        use_causal_kernel = (is_causal and key_padding_mask is None and not want_weights
                             and past == 0 and L == S)
        mask = None
        if not use_causal_kernel:
            if is_causal and attn_mask is None:
                attn_mask = core_masks.causal_mask(L, S, past)                          # (L, S)
            mask = self._merge_masks(attn_mask, key_padding_mask, N, L, S, query.dtype)

        # 4. Attend, every head at once: softmax(q_h k_h^T / sqrt(hd) + mask) v_h; the
        #    Function splits the heads and merges them back (out (N, L, E)).
        dropout_p = self.dropout if self.training else 0.0
        out = F.multi_head_attention(q, k, v, self.num_heads, attn_mask=mask, dropout_p=dropout_p,
                                     is_causal=use_causal_kernel, need_weights=want_weights)
        weights = None
        if want_weights:
            out, weights = out                                                          # (N, L, E), (N, H, L, S)
            if hook is not None:
                hook(self, weights.data)

        # 5. Output projection W^O.
        out = self.out_proj(out)                                                        # (N, L, E)

        # 6. Back to the caller's layout; average the weights over heads if asked.
        if not is_batched:
            out = out.reshape(L, E)                                                     # (L, E)
        elif not self.batch_first:
            out = out.transpose(0, 1)                                                   # (L, N, E)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)                                              # (N, L, S)
        if not is_batched:
            weights = weights.reshape(*weights.shape[1:])                               # (L, S) | (H, L, S)
        return out, weights

    # ------------------------------------------------------------------ helpers
    def _project_qkv(self, query: Tensor, key: Tensor, value: Tensor, self_attn: bool,
                     kv_same: bool, cache: KVCache | None):
        """The input projections, packed as far as they can be, and the KV cache.

        Returns (q, k, v) as ``F.multi_head_attention`` takes them: (N, L, 3E), None, None
        (self-attention, one product with in_proj_weight); (N, L, E), (N, S, 2E), None
        (key is value: k and v in one product); or three (N, L|S, E) tensors. With a
        cache, k and v are separate and hold every cached position too.
        """
        packed = self._qkv_same_embed_dim
        if cache is None:
            if packed and self_attn:
                return F.linear(query, self.in_proj_weight, self.in_proj_bias), None, None  # (N, L, 3E)
            if packed and kv_same:
                return self._project(query, 0), self._project(key, 1, count=2), None   # (N, L, E), (N, S, 2E)
            return self._project(query, 0), self._project(key, 1), self._project(value, 2)
        if cache.static and cache.k is not None:                       # cross-attention, memory cached
            return self._project(query, 0), cache.k, cache.v                            # (N, L, E), 2 x (N, S, E)
        if packed and self_attn:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, axis=-1)  # 3 x (N, L, E)
        else:
            q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        if len(cache) and not cache.static:
            k = mt.cat([cache.k, k], axis=1)                                            # (N, P+S, E)
            v = mt.cat([cache.v, v], axis=1)                                            # (N, P+S, E)
        cache.k, cache.v = k, v
        return q, k, v

    def _project(self, x: Tensor, which: int, count: int = 1) -> Tensor:
        """x (N, T, in) -> x W_which^T + b_which (N, T, E); which = 0 (q), 1 (k), 2 (v).
        ``count=2`` (packed in_proj_weight only) projects with ``which`` and the next one
        in one product: (N, T, 2E), e.g. k and v side by side."""
        E = self.embed_dim
        rows = slice(which * E, (which + count) * E)
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[rows]                                               # (count*E, E)
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[which]     # (E, in)
        b = None if self.in_proj_bias is None else self.in_proj_bias[rows]              # (count*E,)
        return F.linear(x, w, b)                                                        # (N, T, count*E)

    def _merge_masks(self, attn_mask, key_padding_mask, N: int, L: int, S: int, dtype):
        """attn_mask (L, S) | (N*H, L, S) and key_padding_mask (N, S), torch convention,
        -> one additive ndarray broadcastable to (N, H, L, S), or None."""
        H = self.num_heads
        mask = to_additive(attn_mask, dtype)
        if mask is not None:
            if mask.ndim == 2:
                if mask.shape != (L, S):
                    raise ValueError(f"MultiheadAttention: the 2-D attn_mask has shape {mask.shape}, "
                                     f"but should be {(L, S)}")
                mask = mask[None, None]                                                 # (1, 1, L, S)
            elif mask.ndim == 3:
                if mask.shape != (N * H, L, S):
                    raise ValueError(f"MultiheadAttention: the 3-D attn_mask has shape {mask.shape}, "
                                     f"but should be {(N * H, L, S)}")
                mask = mask.reshape(N, H, L, S)                                         # (N, H, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be 2-D or 3-D, got shape "
                                 f"{mask.shape}")
        kpm = to_additive(key_padding_mask, dtype)
        if kpm is not None:
            if kpm.shape != (N, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask has shape {kpm.shape}, "
                                 f"expected {(N, S)}")
            kpm = kpm[:, None, None, :]                                                 # (N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm                                  # (N, H|1, L, S)
        return mask

    def _check_shapes(self, query, key, value, key_padding_mask, is_batched: bool) -> None:
        dims = 3 if is_batched else 2
        if query.ndim not in (2, 3):
            raise ValueError(f"MultiheadAttention: query must be 2-D (unbatched) or 3-D, got "
                             f"shape {query.shape}")
        if key.ndim != dims or value.ndim != dims:
            raise ValueError(f"MultiheadAttention: for {dims}-D query {query.shape}, key and value "
                             f"must be {dims}-D too, got {key.shape} and {value.shape}")
        for name, t, d in (("query", query, self.embed_dim), ("key", key, self.kdim),
                           ("value", value, self.vdim)):
            if t.shape[-1] != d:
                raise ValueError(f"MultiheadAttention: {name} has {t.shape[-1]} features "
                                 f"(shape {t.shape}), expected {d}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key {key.shape} and value {value.shape} "
                             "differ in sequence/batch dims")
        if key_padding_mask is not None and np.ndim(_data(key_padding_mask)) != dims - 1:
            raise ValueError(f"MultiheadAttention: key_padding_mask must be {dims - 1}-D for a "
                             f"{dims}-D query, got shape {np.shape(_data(key_padding_mask))}")


def _data(mask):
    return mask.data if isinstance(mask, Tensor) else np.asarray(mask)


def _unsqueeze_mask(mask):
    m = _data(mask)
    return m[None]
