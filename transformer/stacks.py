"""The stacks and the full model: ``TransformerEncoder``, ``TransformerDecoder``,
``Transformer`` (torch.nn's signatures and state dict keys), and ``LayerCaches`` for
incremental decoding.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from minitensor import Tensor, nn

from .attention import KVCache
from .layers import TransformerDecoderLayer, TransformerEncoderLayer, _layer_norm
from .masks import square_subsequent_mask, to_additive


class LayerCaches:
    """The KV caches of every layer of a stack, for incremental decoding.

    ``layers[i]`` is the dict a layer receives as ``cache=`` (``{"self_attn": KVCache,
    "multihead_attn": KVCache}``); the layers fill it on the first call.
    """

    def __init__(self, num_layers: int):
        self.layers: list[dict] = [{} for _ in range(num_layers)]

    def __len__(self) -> int:
        """Number of positions already decoded (the length of the self-attention cache)."""
        kv = self.layers[0].get("self_attn") if self.layers else None
        return 0 if kv is None else len(kv)

    def reorder(self, index) -> None:
        """Keep batch rows ``index`` in every cache (beam search's parent beams)."""
        for layer in self.layers:
            for kv in layer.values():
                kv.reorder(index)

    def caches(self) -> list[KVCache]:
        return [kv for layer in self.layers for kv in layer.values()]


def _get_clones(module: nn.Module, n: int) -> nn.ModuleList:
    """n independent deep copies of ``module`` (distinct Parameters), as torch's."""
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


def _seq_len(x: Tensor, batch_first: bool) -> int:
    if x.ndim == 2:
        return x.shape[0]
    return x.shape[1] if batch_first else x.shape[0]


def _detect_is_causal_mask(mask, is_causal: bool | None, size: int) -> bool:
    """torch's rule: an explicit flag wins; with None, a mask equal to the square
    subsequent mask (bool or float) counts as causal."""
    if is_causal is not None:
        return bool(is_causal)
    if mask is None:
        return False
    additive = to_additive(mask, np.float64)
    return additive.shape == (size, size) and bool(np.array_equal(additive,
                                                                  square_subsequent_mask(size, np.float64)))


class TransformerEncoder(nn.Module):
    """A stack of ``num_layers`` deep copies of ``encoder_layer``, then ``norm`` (optional).

    Args:
        encoder_layer: the layer to clone (its parameters are copied, not shared).
        num_layers: number of layers.
        norm: final normalization (``Transformer`` passes a LayerNorm).
        enable_nested_tensor, mask_check: accepted for torch compatibility; ignored.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: nn.Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True):
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask=None, src_key_padding_mask=None,
                is_causal: bool | None = None, *, cache: LayerCaches | None = None) -> Tensor:
        """src (B, S, D) / (S, B, D) -> same shape. Masks as torch's."""
        batch_first = self.layers[0].self_attn.batch_first
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, batch_first))
        x = src
        for i, layer in enumerate(self.layers):
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal, cache=None if cache is None else cache.layers[i])  # (B, S, D)
        if self.norm is not None:
            x = self.norm(x)                                                                 # (B, S, D)
        return x

    def init_cache(self) -> LayerCaches:
        """Empty KV caches for incremental (causal) decoding through this stack."""
        return LayerCaches(self.num_layers)


class TransformerDecoder(nn.Module):
    """A stack of ``num_layers`` deep copies of ``decoder_layer``, then ``norm`` (optional)."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: nn.Module | None = None):
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False,
                *, cache: LayerCaches | None = None) -> Tensor:
        """tgt (B, T, D) / (T, B, D), memory (B, S, D) / (S, B, D) -> tgt's shape."""
        batch_first = self.layers[0].self_attn.batch_first
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(tgt, batch_first))
        x = tgt
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal,
                      cache=None if cache is None else cache.layers[i])                     # (B, T, D)
        if self.norm is not None:
            x = self.norm(x)                                                                 # (B, T, D)
        return x

    def init_cache(self) -> LayerCaches:
        """Empty KV caches for incremental decoding through this stack."""
        return LayerCaches(self.num_layers)


class Transformer(nn.Module):
    """The encoder-decoder model of the paper, with torch.nn.Transformer's constructor,
    forward and state dict keys (``encoder.layers.0....``, ``encoder.norm``,
    ``decoder.layers.0....``, ``decoder.norm``). No embeddings and no generator: see
    ``transformer.task_models.Seq2SeqTransformer`` for the ready-made model.

    Args:
        d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout,
        activation, layer_norm_eps, batch_first, norm_first, bias: as torch.nn.Transformer.
        custom_encoder, custom_decoder: modules used instead of the default stacks.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", custom_encoder: nn.Module | None = None,
                 custom_decoder: nn.Module | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True):
        super().__init__()
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias)
            self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                              _layer_norm(d_model, layer_norm_eps, bias))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias)
            self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                              _layer_norm(d_model, layer_norm_eps, bias))
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        """torch's init: xavier_uniform_ on every parameter with more than one dim."""
        for p in self.parameters():
            if p.ndim > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal: bool | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        """src (B, S, D) / (S, B, D), tgt (B, T, D) / (T, B, D) -> (B, T, D) / (T, B, D).

        Masks as torch's: ``*_mask`` (L, S) or (B*H, L, S), ``*_key_padding_mask`` (B, S);
        bool True = may NOT attend, float = added to the scores.
        """
        is_batched = src.ndim == 3
        batch_axis = 0 if self.batch_first else 1
        if is_batched and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise ValueError(f"Transformer: the batch number of src and tgt must be equal, got "
                             f"src {src.shape} and tgt {tgt.shape} (batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: the feature number of src {src.shape} and tgt "
                             f"{tgt.shape} must be equal to d_model ({self.d_model})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)                                    # (B, S, D)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)  # (B, T, D)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, dtype=np.float32) -> np.ndarray:
        """(sz, sz) float mask: -inf above the diagonal, 0 elsewhere (as torch)."""
        return square_subsequent_mask(sz, dtype)
