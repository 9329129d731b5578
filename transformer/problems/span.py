"""span: kv_span, an encoder reads query | context and points at the answer's first/last token.

Loss: the mean of the start and end cross-entropies (positions outside the context are
masked). Metric: exact match of the best span.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from minitensor import functional as F

from .. import metrics as M
from ..data import PAD_ID, SPAN_SEPARATOR, SpanExample, collate_span, encode_span, make_splits, span_loader
from ..task_models import SpanQAModel
from .base import Problem


class SpanProblem(Problem):
    """kv_span: an encoder reads query | context and points at the answer's first/last token."""

    kind = "span"
    score_key = "span_exact_match"

    def load_data(self):
        c = self.cfg
        self.splits = make_splits(self.task, c.n_train, c.n_val, c.n_test, seed=c.seed)

    def _loader(self, examples, batch_size, seed, shuffle):
        return span_loader(examples, self.vocab, batch_size, seed=seed, shuffle=shuffle)

    def train_loader(self, seed):
        return self._loader(self.splits.train, self.cfg.batch_size, seed, True)

    def max_len(self):
        return max(len(e.query) + len(e.context) + 1 for part in (self.splits.train, self.splits.val,
                                                                    self.splits.test) for e in part) + 16

    def model_config(self, overrides):
        return super().model_config({**overrides, "num_decoder_layers": 0})

    def build_model(self, model_cfg):
        return SpanQAModel(model_cfg)

    def logits(self, model, batch):
        # The answer lies in the context: every other position's logit is masked.
        return model(batch.tokens, batch.pad_mask, batch.context_mask)  # (B, S) each

    def loss(self, model, batch, label_smoothing):
        start, end = self.logits(model, batch)
        # No smoothing here: it would put probability on the masked, impossible positions.
        return (F.cross_entropy(start, batch.start) + F.cross_entropy(end, batch.end)) * 0.5

    def batch_tokens(self, batch):
        return int((~batch.pad_mask).sum())

    def evaluate(self, model, split, limit=None):
        loss_sum, n, hits = 0.0, 0, 0.0
        for batch in self.eval_batches(self.examples(split), 2 * self.cfg.batch_size):
            start, end = self.logits(model, batch)
            loss_sum += 0.5 * float((F.cross_entropy(start, batch.start, reduction="sum")
                                     + F.cross_entropy(end, batch.end, reduction="sum")).item())
            s, e = M.best_span(start.data, end.data, batch.context_mask)
            hits += M.span_exact_match(s, e, batch.start, batch.end) * len(batch)
            n += len(batch)
        return {"loss": loss_sum / max(n, 1), "span_exact_match": hits / max(n, 1)}

    def answer(self, model, contexts: Sequence[str], queries: Sequence[str]) -> list[str]:
        """The predicted answer string per (context, query)."""
        items = [encode_span(SpanExample(c, q, 0, 0), self.vocab) for c, q in zip(contexts, queries)]
        batch = collate_span(items)
        start, end = self.logits(model, batch)
        s, e = M.best_span(start.data, end.data, batch.context_mask)
        return [self.vocab.decode(it.ids[a:b + 1]) for it, a, b in zip(items, s, e)]

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.answer(model, [e.context for e in examples], [e.query for e in examples])
        marks = ["✓" if p == e.answer else f"✗ (expected {e.answer})" for e, p in zip(examples, preds)]
        return [f"{e.query}{SPAN_SEPARATOR}{e.context} -> {p or '(empty)'}  {m}"
                for e, p, m in zip(examples, preds, marks)]

    def attention_inputs(self, model):
        e = self.splits.test[0]
        ids = self.vocab.encode(e.query + SPAN_SEPARATOR + e.context)
        tokens = np.array([ids], dtype=np.int64)
        tok = [self.vocab.id_to_token(i) for i in ids]
        pred = self.answer(model, [e.context], [e.query])[0]
        self.attention_caption = f"input {e.query + SPAN_SEPARATOR + e.context!r} -> answer {pred!r}"
        return (tokens, tokens == PAD_ID), {"": (tok, tok)}
