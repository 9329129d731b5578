"""classify: brackets, an encoder reads the string and a head predicts balanced / not.

Loss: cross-entropy of the class logits. Metric: accuracy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from minitensor import functional as F

from ..data import PAD_ID, classify_loader, collate_classify, make_splits
from ..task_models import TransformerClassifier
from .base import Problem


class ClassifyProblem(Problem):
    """brackets: an encoder reads the string, a head predicts balanced / not."""

    kind = "classify"
    score_key = "accuracy"
    num_classes = 2
    label_names: tuple[str, ...] = ("unbalanced", "balanced")  # label id -> what it means

    def load_data(self):
        c = self.cfg
        self.splits = make_splits(self.task, c.n_train, c.n_val, c.n_test, seed=c.seed)

    def _loader(self, examples, batch_size, seed, shuffle):
        return classify_loader(examples, self.vocab, batch_size, add_bos=True, seed=seed, shuffle=shuffle)

    def train_loader(self, seed):
        return self._loader(self.splits.train, self.cfg.batch_size, seed, True)

    def max_len(self):
        return max(len(s) for part in (self.splits.train, self.splits.val, self.splits.test)
                   for s, _ in part) + 8

    def model_config(self, overrides):
        return super().model_config({**overrides, "num_decoder_layers": 0})

    def build_model(self, model_cfg):
        return TransformerClassifier(model_cfg, num_classes=self.num_classes, pooling=self.cfg.pooling)

    def logits(self, model, batch):
        return model(batch.tokens, batch.pad_mask)  # (B, C)

    def loss(self, model, batch, label_smoothing):
        return F.cross_entropy(self.logits(model, batch), batch.labels, label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int((~batch.pad_mask).sum())

    def evaluate(self, model, split, limit=None):
        loss_sum, n, correct = 0.0, 0, 0
        for batch in self.eval_batches(self.examples(split), 2 * self.cfg.batch_size):
            logits = self.logits(model, batch)
            loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum").item())
            correct += int((logits.data.argmax(-1) == batch.labels).sum())
            n += len(batch)
        return {"loss": loss_sum / max(n, 1), "accuracy": correct / max(n, 1)}

    def predict(self, model, texts: Sequence[str]) -> list[tuple[int, float]]:
        """(label, probability of that label) per text."""
        items = [(self.vocab.encode(t, add_bos=True), 0) for t in texts]
        batch = collate_classify(items)
        probs = self.logits(model, batch).softmax(-1).data  # (B, C)
        return [(int(p.argmax()), float(p.max())) for p in probs]

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.predict(model, [t for t, _ in examples])
        width = max(len(t) for t, _ in examples)
        name = self.label_names
        return [f"{t:<{width}} -> {name[p]} ({prob:.2f})  {'✓' if p == y else '✗ (expected ' + name[y] + ')'}"
                for (t, y), (p, prob) in zip(examples, preds)]

    def attention_inputs(self, model):
        text = self.splits.test[0][0]
        tokens = np.array([self.vocab.encode(text, add_bos=True)], dtype=np.int64)
        tok = [self.vocab.id_to_token(i) for i in tokens[0]]
        label, prob = self.predict(model, [text])[0]
        self.attention_caption = f"input {text!r} -> {self.label_names[label]} ({prob:.2f})"
        return (tokens, tokens == PAD_ID), {"": (tok, tok)}
