"""A BERT-family encoder built from the project's own modules.

BERT is the paper's encoder with three changes a reader can point at:

* learned position embeddings and a "token type" (segment) embedding added to the word
  embeddings, then one LayerNorm (and dropout) before the first layer;
* GELU (the exact, erf form) instead of ReLU in the feed-forward box;
* LayerNorm epsilon 1e-12 instead of 1e-5.

Everything else is exactly the paper's post-norm encoder layer, so each layer here IS a
``transformer.TransformerEncoderLayer`` (q/k/v packed into ``in_proj_weight``, batch
first); loading.py maps a Hugging Face checkpoint's keys onto it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minitensor as mt
from minitensor import Tensor, nn

from ..layers import TransformerEncoderLayer
from ..stacks import TransformerEncoder


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face ``config.json`` that fix a BERT encoder's shape."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    pad_token_id: int = 0


class BertEmbeddings(nn.Module):
    """word + position + token type embeddings, LayerNorm, dropout: ids (B, T) -> (B, T, D).

    Submodule names are Hugging Face's (``word_embeddings``, ``position_embeddings``,
    ``token_type_embeddings``), except ``norm`` for their ``LayerNorm``.
    """

    def __init__(self, cfg: BertConfig, dropout: float):
        super().__init__()
        d = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, d)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, d)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, d)
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: np.ndarray, token_type_ids: np.ndarray | None = None) -> Tensor:
        ids = np.asarray(input_ids)                                         # (B, T)
        positions = np.arange(ids.shape[-1])                                # (T,)
        types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)  # (B, T, D)
        x = x + self.token_type_embeddings(types)                           # (B, T, D)
        return self.dropout(self.norm(x))                                   # (B, T, D)


class BertEncoder(nn.Module):
    """Embeddings, then ``num_hidden_layers`` post-norm ``TransformerEncoderLayer``s.

    Args:
        cfg: the checkpoint's shape.
        dropout: dropout probability everywhere (0 for inference; the checkpoint's
            ``hidden_dropout_prob`` is a sensible value for fine-tuning).
        with_pooler: also build BERT's pooler (Linear + tanh on the first token), which
            sentence embeddings do not use.

    ``forward(input_ids (B, T), attention_mask (B, T) 1 = real / 0 = padding)`` returns
    the last hidden states (B, T, D). ``embed(input_ids)`` and ``encode(x, mask)`` are its
    two halves (gradcheck differentiates through ``encode`` from the embeddings).
    """

    def __init__(self, cfg: BertConfig, dropout: float = 0.0, with_pooler: bool = False):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg, dropout)
        layer = TransformerEncoderLayer(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                                        dropout, cfg.hidden_act, cfg.layer_norm_eps, batch_first=True,
                                        norm_first=False)
        self.encoder = TransformerEncoder(layer, cfg.num_hidden_layers)
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size) if with_pooler else None

    def embed(self, input_ids: np.ndarray, token_type_ids: np.ndarray | None = None) -> Tensor:
        return self.embeddings(input_ids, token_type_ids)                   # (B, T, D)

    def encode(self, x: Tensor, attention_mask: np.ndarray | None = None) -> Tensor:
        """Embedded input (B, T, D) -> last hidden states (B, T, D)."""
        pad = None if attention_mask is None else np.asarray(attention_mask) == 0  # True = padding
        return self.encoder(x, src_key_padding_mask=pad)                    # (B, T, D)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None,
                token_type_ids: np.ndarray | None = None) -> Tensor:
        return self.encode(self.embed(input_ids, token_type_ids), attention_mask)  # (B, T, D)

    def pooled(self, hidden: Tensor) -> Tensor:
        """BERT's pooler: tanh(Linear(first token)), (B, T, D) -> (B, D)."""
        if self.pooler is None:
            raise ValueError("BertEncoder.pooled: built without the pooler (with_pooler=False)")
        return self.pooler(hidden[:, 0]).tanh()


def mean_pool(hidden: Tensor, attention_mask: np.ndarray) -> Tensor:
    """Mean of the real tokens' states (CLS and SEP included, padding excluded).

    hidden (B, T, D), attention_mask (B, T) of 1/0 -> (B, D). As sentence-transformers:
    sum(h * mask) / max(sum(mask), 1e-9).
    """
    mask = np.asarray(attention_mask)[..., None].astype(hidden.dtype)      # (B, T, 1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)                             # (B, 1)
    return (hidden * mt.tensor(mask)).sum(axis=1) / mt.tensor(counts)      # (B, D)


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x / max(||x||, eps) along the last axis (torch.nn.functional.normalize's rule)."""
    norms = (x * x).sum(axis=-1, keepdims=True).sqrt()                      # (B, 1)
    return x / mt.maximum(norms, mt.tensor(np.array(eps, dtype=x.dtype)))  # (B, D)
