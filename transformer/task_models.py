"""Ready-made models on top of the Transformer stacks, all batch-first (B, T) token ids:

    Seq2SeqTransformer     encoder-decoder translation model (the paper's)
    TransformerLM          decoder-only language model (causal self-attention stack)
    TransformerClassifier  encoder + pooling + linear classifier
    SpanQAModel            encoder + SpanHead (start/end logits for extractive QA)

Embeddings are scaled by sqrt(d_model) before the positional encoding is added (paper
section 3.4), and every matrix is initialized with xavier_uniform_ (as the Annotated
Transformer), padding rows of the embeddings set back to zero.

Masks: ``*_pad_mask`` arguments are (B, T) bool, True at PAD (``padding_mask(tokens,
pad_id)``), the torch.nn convention. None means "no padding".
"""
from __future__ import annotations

import math

import numpy as np

import minitensor as mt
from minitensor import Tensor, nn
from minitensor import functional as F

from . import metrics
from .config import TransformerConfig
from .layers import TransformerEncoderLayer
from .masks import causal_mask
from .stacks import LayerCaches, Transformer, TransformerEncoder
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

# Logits at masked positions of SpanHead. Finite, so cross_entropy and its gradient stay
# finite (exp underflows to exactly 0 in float32 and float64); -inf would make a
# label-smoothed loss infinite. Keep label smoothing off for span losses anyway.
MASKED_LOGIT = -1e9


def _positional(cfg: TransformerConfig) -> nn.Module:
    if cfg.positional == "sinusoidal":
        return SinusoidalPositionalEncoding(cfg.d_model, cfg.max_len, cfg.dropout)
    return LearnedPositionalEncoding(cfg.max_len, cfg.d_model, cfg.dropout)


def _init_weights(model: nn.Module, skip: tuple = ()) -> None:
    """xavier_uniform_ on every matrix (except under ``skip`` prefixes), zero padding rows."""
    for name, p in model.named_parameters():
        if p.ndim > 1 and not name.startswith(skip):
            nn.init.xavier_uniform_(p)
    for m in model.modules():
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx] = 0


def _encoder_stack(cfg: TransformerConfig, num_layers: int) -> TransformerEncoder:
    """A batch-first stack of encoder layers; pre-norm stacks get the final LayerNorm
    they need (post-norm outputs are already normalized)."""
    layer = TransformerEncoderLayer(cfg.d_model, cfg.nhead, cfg.dim_feedforward, cfg.dropout,
                                    cfg.activation, cfg.layer_norm_eps, batch_first=True,
                                    norm_first=cfg.norm_first)
    norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.norm_first else None
    return TransformerEncoder(layer, num_layers, norm)


class Seq2SeqTransformer(nn.Module):
    """Embeddings * sqrt(d_model) + positions + dropout, ``Transformer`` core, generator.

    Submodules: ``src_embed``, ``tgt_embed`` (the same module when ``cfg.share_vocab``),
    ``src_pos``, ``tgt_pos``, ``transformer`` (torch-compatible keys), ``generator``
    (Linear to the target vocabulary; its weight is ``tgt_embed.weight`` when
    ``cfg.tie_embeddings``).
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.src_embed = nn.Embedding(cfg.src_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.tgt_embed = self.src_embed if cfg.share_vocab else \
            nn.Embedding(cfg.tgt_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.src_pos = _positional(cfg)
        self.tgt_pos = _positional(cfg)
        self.transformer = Transformer(cfg.d_model, cfg.nhead, cfg.num_encoder_layers,
                                       cfg.num_decoder_layers, cfg.dim_feedforward, cfg.dropout,
                                       cfg.activation, layer_norm_eps=cfg.layer_norm_eps,
                                       batch_first=True, norm_first=cfg.norm_first)
        self.generator = nn.Linear(cfg.d_model, cfg.tgt_vocab_size)
        if cfg.tie_embeddings:
            self.generator.weight = self.tgt_embed.weight
        _init_weights(self, skip=("src_pos", "tgt_pos"))

    def encode(self, src, src_pad_mask=None) -> Tensor:
        """src (B, S) ids -> memory (B, S, D)."""
        x = self.src_embed(src) * math.sqrt(self.cfg.d_model)                   # (B, S, D)
        x = self.src_pos(x)                                                     # (B, S, D)
        return self.transformer.encoder(x, src_key_padding_mask=src_pad_mask)  # (B, S, D)

    def decode(self, tgt, memory: Tensor, src_pad_mask=None, tgt_pad_mask=None,
               cache: LayerCaches | None = None) -> Tensor:
        """tgt (B, T) ids, memory (B, S, D) -> logits (B, T, V).

        With ``cache`` (from ``init_cache()``), ``tgt`` holds only the new positions;
        positions continue from ``len(cache)``; ``tgt_pad_mask`` must then cover all
        positions decoded so far (or be None).
        """
        offset = 0 if cache is None else len(cache)
        T = tgt.shape[1]
        y = self.tgt_embed(tgt) * math.sqrt(self.cfg.d_model)                   # (B, T, D)
        y = self.tgt_pos(y, offset)                                             # (B, T, D)
        tgt_mask = causal_mask(T) if cache is None else None                    # (T, T)
        h = self.transformer.decoder(y, memory, tgt_mask=tgt_mask,
                                     tgt_key_padding_mask=tgt_pad_mask,
                                     memory_key_padding_mask=src_pad_mask,
                                     tgt_is_causal=True, cache=cache)           # (B, T, D)
        return self.generator(h)                                                # (B, T, V)

    def forward(self, src, tgt_in, src_pad_mask=None, tgt_pad_mask=None) -> Tensor:
        """src (B, S), tgt_in (B, T) ids -> logits (B, T, V)."""
        memory = self.encode(src, src_pad_mask)                                 # (B, S, D)
        return self.decode(tgt_in, memory, src_pad_mask, tgt_pad_mask)          # (B, T, V)

    def init_cache(self) -> LayerCaches:
        """Empty decoder KV caches for ``decode(..., cache=...)``."""
        return self.transformer.decoder.init_cache()


class TransformerLM(nn.Module):
    """Decoder-only language model: token embedding * sqrt(d_model) + positions, a
    stack of ``cfg.num_decoder_layers`` causal self-attention layers, LM head over
    ``cfg.tgt_vocab_size`` (bias-free; tied to the embedding when ``cfg.tie_embeddings``).

    Submodules: ``tok_embed``, ``pos``, ``decoder`` (a ``TransformerEncoder`` run with a
    causal mask; final LayerNorm when pre-norm), ``lm_head``.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embed = nn.Embedding(cfg.tgt_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.pos = _positional(cfg)
        self.decoder = _encoder_stack(cfg, cfg.num_decoder_layers)
        self.lm_head = nn.Linear(cfg.d_model, cfg.tgt_vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_embed.weight
        _init_weights(self, skip=("pos",))

    def forward(self, tokens, pad_mask=None, cache: LayerCaches | None = None) -> Tensor:
        """tokens (B, T) -> logits (B, T, V); position t sees tokens 0..t only.

        With ``cache`` (from ``init_cache()``), ``tokens`` holds only the new positions.
        """
        offset = 0 if cache is None else len(cache)
        T = tokens.shape[1]
        x = self.tok_embed(tokens) * math.sqrt(self.cfg.d_model)               # (B, T, D)
        x = self.pos(x, offset)                                                 # (B, T, D)
        mask = causal_mask(T) if cache is None else None                        # (T, T)
        h = self.decoder(x, mask=mask, src_key_padding_mask=pad_mask, is_causal=True,
                         cache=cache)                                           # (B, T, D)
        return self.lm_head(h)                                                  # (B, T, V)

    def init_cache(self) -> LayerCaches:
        """Empty KV caches for incremental generation."""
        return self.decoder.init_cache()


class TransformerClassifier(nn.Module):
    """Encoder + pooling + Linear: tokens (B, S) -> class logits (B, num_classes).

    Args:
        cfg: uses ``src_vocab_size`` and ``num_encoder_layers``.
        num_classes: number of classes.
        pooling: "mean" (average over non-PAD positions) or "cls" (the first position;
            put a CLS token there).
    """

    def __init__(self, cfg: TransformerConfig, num_classes: int, pooling: str = "mean"):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"TransformerClassifier: pooling must be 'mean' or 'cls', got {pooling!r}")
        self.cfg = cfg
        self.pooling = pooling
        self.embed = nn.Embedding(cfg.src_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.pos = _positional(cfg)
        self.encoder = _encoder_stack(cfg, cfg.num_encoder_layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_model, num_classes)
        _init_weights(self, skip=("pos",))

    def forward(self, tokens, pad_mask=None) -> Tensor:
        """tokens (B, S), pad_mask (B, S) bool True at PAD -> logits (B, C)."""
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model)                   # (B, S, D)
        h = self.encoder(self.pos(x), src_key_padding_mask=pad_mask)           # (B, S, D)
        if self.pooling == "cls":
            pooled = h[:, 0]                                                    # (B, D)
        elif pad_mask is None:
            pooled = h.mean(axis=1)                                             # (B, D)
        else:
            keep = (~np.asarray(_array(pad_mask))).astype(h.dtype)[:, :, None]  # (B, S, 1)
            count = np.maximum(keep.sum(axis=1), 1.0)                           # (B, 1)
            pooled = (h * mt.tensor(keep)).sum(axis=1) / mt.tensor(count)       # (B, D)
        return self.head(self.dropout(pooled))                                  # (B, C)


class SpanHead(nn.Module):
    """Linear(D, 2) over encoder states -> start and end logits (B, S) each; positions
    where no answer may lie (PAD, or outside ``allowed``) get ``MASKED_LOGIT`` (-1e9,
    finite: softmax gives them exactly 0 and cross_entropy stays finite)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.qa_outputs = nn.Linear(d_model, 2)

    def forward(self, h: Tensor, blocked=None) -> tuple[Tensor, Tensor]:
        """h (B, S, D), blocked (B, S) bool (True = not a possible answer position)."""
        B, S, _ = h.shape
        logits = self.qa_outputs(h)                                             # (B, S, 2)
        start, end = logits[..., 0], logits[..., 1]                             # (B, S) each
        if blocked is not None:
            start = start.masked_fill(blocked, MASKED_LOGIT)                    # (B, S)
            end = end.masked_fill(blocked, MASKED_LOGIT)                        # (B, S)
        return start, end


class SpanQAModel(nn.Module):
    """Extractive QA: encoder over query + separator + context, ``SpanHead`` on top."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.src_vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        self.pos = _positional(cfg)
        self.encoder = _encoder_stack(cfg, cfg.num_encoder_layers)
        self.span_head = SpanHead(cfg.d_model)
        _init_weights(self, skip=("pos",))

    def forward(self, tokens, pad_mask=None, context_mask=None) -> tuple[Tensor, Tensor]:
        """tokens (B, S) -> (start_logits, end_logits), each (B, S).

        Args:
            pad_mask: (B, S) bool, True at PAD (masked in attention and in the logits).
            context_mask: (B, S) bool, True where an answer may lie; other positions'
                logits are masked too.
        """
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model)                   # (B, S, D)
        h = self.encoder(self.pos(x), src_key_padding_mask=pad_mask)           # (B, S, D)
        blocked = None
        if pad_mask is not None:
            blocked = np.asarray(_array(pad_mask), dtype=bool)                  # (B, S)
        if context_mask is not None:
            outside = ~np.asarray(_array(context_mask), dtype=bool)             # (B, S)
            blocked = outside if blocked is None else blocked | outside
        return self.span_head(h, blocked)


def span_loss(start_logits: Tensor, end_logits: Tensor, start, end) -> Tensor:
    """Mean of the start and end cross-entropies; start/end (B,) gold positions."""
    return (F.cross_entropy(start_logits, start) + F.cross_entropy(end_logits, end)) * 0.5


def best_span(start_logits, end_logits, max_answer_len: int = 30) -> np.ndarray:
    """argmax over start <= end < start + max_answer_len of start + end logits -> (B, 2)."""
    s = np.asarray(_array(start_logits), dtype=np.float64)                      # (B, S)
    e = np.asarray(_array(end_logits), dtype=np.float64)                        # (B, S)
    start, end = metrics.best_span(s, e, np.ones(s.shape, dtype=bool), max_answer_len)
    return np.stack([start, end], axis=1)                                       # (B, 2)


def _array(x):
    return x.data if isinstance(x, Tensor) else x


def make_model(cfg: TransformerConfig | None = None, **overrides) -> Seq2SeqTransformer:
    """The Annotated Transformer's factory: a ``Seq2SeqTransformer`` from a config
    (default: the paper's base model) with any field overridden by keyword."""
    cfg = TransformerConfig(**{**(cfg.to_dict() if cfg is not None else {}), **overrides})
    return Seq2SeqTransformer(cfg)
