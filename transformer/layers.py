"""One encoder layer and one decoder layer (the paper's Figure 1 boxes), as torch.nn's.

Each sub-layer is wrapped in the paper's "Add & Norm" box. Post-norm (the paper,
``norm_first=False``) computes ``x = LayerNorm(x + Dropout(Sublayer(x)))``; pre-norm
(``norm_first=True``) computes ``x = x + Dropout(Sublayer(LayerNorm(x)))``.

Submodule names are torch's (``self_attn``, ``multihead_attn``, ``linear1``,
``linear2``, ``norm1..3``, ``dropout1..3``), so state dict keys match
``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` exactly. That is why
the boxes are methods (``_sa_block``, ``_mha_block``, ``_ff_block``, ``_add_norm``)
rather than separate ``SublayerConnection`` modules: a wrapper module would add a level
to every key.
"""
from __future__ import annotations

from typing import Callable

from minitensor import Tensor, nn
from minitensor import functional as F

from .attention import KVCache, MultiheadAttention


def get_activation(activation: str | Callable) -> Callable:
    """"relu" -> F.relu, "gelu" -> F.gelu (exact, as torch), a callable as it is."""
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(f"activation should be 'relu', 'gelu' or a callable, not {activation!r}")


def _layer_norm(d_model: int, eps: float, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(d_model, eps=eps, bias=bias)


class _FeedForwardAndNorms(nn.Module):
    """Shared pieces: the position-wise feed-forward box FFN(x) = W2 act(W1 x + b1) + b2
    (with dropout after the activation, as torch) and the Add & Norm wiring."""

    # Activations the feed-forward block runs fused with linear1 and dropout
    # (F.linear_activation); any other callable, or a replaced linear1 or dropout module,
    # runs the modules one by one.
    _FUSED_ACTIVATIONS = ((F.relu, "relu"), (F.gelu, "gelu"))

    def _init_ffn(self, d_model, dim_feedforward, dropout, bias):
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)

    def _ff_block(self, x: Tensor) -> Tensor:
        fused = next((name for fn, name in self._FUSED_ACTIVATIONS if fn is self.activation), None)
        if fused is None or type(self.linear1) is not nn.Linear or type(self.dropout) is not nn.Dropout:
            x = self.linear1(x)                     # (B, T, d_ff)
            x = self.dropout(self.activation(x))    # (B, T, d_ff)
        else:  # the same three steps as one op (same numbers, same random draws): one pass
            x = F.linear_activation(x, self.linear1.weight, self.linear1.bias, fused,
                                    self.dropout.p, self.dropout.training)   # (B, T, d_ff)
        return self.linear2(x)                      # (B, T, D)

    def _add_norm(self, x: Tensor, sublayer: Callable[[Tensor], Tensor], norm: nn.LayerNorm,
                  dropout: nn.Dropout) -> Tensor:
        """The Add & Norm box around ``sublayer``, post-norm or pre-norm.

        Post-norm, LayerNorm(x + Dropout(y)), is one op (``F.add_norm``) instead of three
        (one pass over the activations instead of three, each way); pre-norm's residual
        x + Dropout(y) is one op too (``F.add_dropout``). Both take the ``norm`` and
        ``dropout`` modules' parameters and p, and give the same numbers and random
        stream as calling the modules. A norm or dropout replaced by another kind of
        module is called as it is.
        """
        if type(norm) is nn.LayerNorm and type(dropout) is nn.Dropout:
            p = dropout.p if dropout.training else 0.0
            if self.norm_first:
                return F.add_dropout(x, sublayer(norm(x)), p)                # (B, T, D)
            return F.add_norm(x, sublayer(x), norm.normalized_shape, norm.weight, norm.bias,
                              norm.eps, p)                                  # (B, T, D)
        # a norm or dropout replaced by another module (an RMSNorm, say): call it as it is
        if self.norm_first:
            return x + dropout(sublayer(norm(x)))   # (B, T, D)
        return norm(x + dropout(sublayer(x)))       # (B, T, D)


class TransformerEncoderLayer(_FeedForwardAndNorms):
    """Self-attention, then feed-forward, each inside Add & Norm (torch.nn's signature).

    Args:
        d_model: model size D.
        nhead: attention heads.
        dim_feedforward: inner size of the feed-forward network.
        dropout: dropout probability (residual branches, FFN and attention weights).
        activation: "relu", "gelu" or a callable.
        layer_norm_eps: LayerNorm epsilon.
        batch_first: (B, T, D) inputs instead of torch's default (T, B, D).
        norm_first: pre-norm instead of the paper's post-norm.
        bias: biases in the linear layers and LayerNorms.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self._init_ffn(d_model, dim_feedforward, dropout, bias)
        self.norm_first = norm_first
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = get_activation(activation)

    def forward(self, src: Tensor, src_mask=None, src_key_padding_mask=None, is_causal: bool = False,
                *, cache: dict | None = None) -> Tensor:
        """src: (B, T, D) if batch_first else (T, B, D) (or unbatched (T, D)) -> same shape.

        ``src_mask`` (T, T) / (B*H, T, T) and ``src_key_padding_mask`` (B, T) follow torch's
        convention (bool True = blocked; float added). ``cache`` ({"self_attn": KVCache})
        is for incremental decoding with a causal stack (TransformerLM).
        """
        kv = None if cache is None else cache.setdefault("self_attn", KVCache())

        def self_attention(x):
            return self.self_attn(x, x, x, attn_mask=src_mask, key_padding_mask=src_key_padding_mask,
                                  need_weights=False, is_causal=is_causal, cache=kv)[0]  # (B, T, D)

        x = self._add_norm(src, self_attention, self.norm1, self.dropout1)   # (B, T, D)
        x = self._add_norm(x, self._ff_block, self.norm2, self.dropout2)     # (B, T, D)
        return x


class TransformerDecoderLayer(_FeedForwardAndNorms):
    """Masked self-attention, attention over the encoder memory, then feed-forward, each
    inside Add & Norm (torch.nn's signature; arguments as ``TransformerEncoderLayer``)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first)
        self._init_ffn(d_model, dim_feedforward, dropout, bias)
        self.norm_first = norm_first
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm3 = _layer_norm(d_model, layer_norm_eps, bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = get_activation(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False,
                *, cache: dict | None = None) -> Tensor:
        """tgt: (B, T, D) / (T, B, D), memory: (B, S, D) / (S, B, D) -> tgt's shape.

        ``cache`` ({"self_attn": KVCache, "multihead_attn": KVCache(static=True)}) makes
        decoding incremental: pass only the new target positions; the memory's keys and
        values are projected once.
        """
        self_kv = cross_kv = None
        if cache is not None:
            self_kv = cache.setdefault("self_attn", KVCache())
            cross_kv = cache.setdefault("multihead_attn", KVCache(static=True))

        def self_attention(x):
            return self.self_attn(x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                                  need_weights=False, is_causal=tgt_is_causal, cache=self_kv)[0]

        def cross_attention(x):
            return self.multihead_attn(x, memory, memory, attn_mask=memory_mask,
                                       key_padding_mask=memory_key_padding_mask, need_weights=False,
                                       is_causal=memory_is_causal, cache=cross_kv)[0]

        x = self._add_norm(tgt, self_attention, self.norm1, self.dropout1)   # (B, T, D)
        x = self._add_norm(x, cross_attention, self.norm2, self.dropout2)    # (B, T, D)
        x = self._add_norm(x, self._ff_block, self.norm3, self.dropout3)     # (B, T, D)
        return x
