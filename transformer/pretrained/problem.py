"""sentence_classify: fine-tune a BERT encoder (all-MiniLM-L6-v2) with a classification head.

The Problem the trainer runs for the ``intents`` task. The text goes through the
checkpoint's own WordPiece tokenizer; the model is ``SentenceClassifier``, its encoder
loaded from the installed model package when ``--init minilm`` (else the same shape,
randomly initialised: the no-pretraining baseline). The model shape comes from the
checkpoint's config.json, so the preset's d_model, layers, ... are not used; its
``dropout`` is. Loss: cross-entropy of the class logits. Metric: accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from minitensor import functional as F

from ..config import ConfigError, TransformerConfig
from ..data.batching import BatchLoader
from ..data.vocab import PAD_ID
from ..problems.base import Problem
from .bert import BertEncoder
from .classifier import SentenceClassifier
from .intents import IntentsTask
from .loading import PretrainedError, load_encoder, read_config
from .sentence import default_model_path
from .wordpiece import WordPieceTokenizer

INITS = ("none", "minilm")


@dataclass
class SentenceBatch:
    """A padded batch of tokenised sentences: ids and mask (B, T), labels (B,)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


class SentenceClassifyProblem(Problem):
    """intents: a BERT encoder reads the sentence, a Linear head names its label."""

    kind = "sentence_classify"
    score_key = "accuracy"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.folder = default_model_path()
            self.tokenizer = WordPieceTokenizer(self.folder)
        except PretrainedError as exc:
            raise ConfigError(f"task {self.task_name!r}: {exc}") from None
        self.labels = self.task.labels

    # data
    def load_data(self):
        self.splits = _Splits(*self.task.splits(self.cfg.seed))

    def _collate(self, items: list[tuple[list[int], int]]) -> SentenceBatch:
        padded = self.tokenizer.pad([ids for ids, _ in items])
        return SentenceBatch(padded.input_ids, padded.attention_mask,
                             np.array([label for _, label in items], dtype=np.int64))

    def _loader(self, examples, batch_size, seed, shuffle):
        ids = self.tokenizer.ids([text for text, _ in examples])
        items = [(seq, label) for seq, (_, label) in zip(ids, examples)]
        return BatchLoader(items, np.array([len(s) for s in ids]), self._collate, batch_size,
                           np.random.default_rng(seed), shuffle)

    def train_loader(self, seed):
        return self._loader(self.splits.train, self.cfg.batch_size, seed, True)

    def max_len(self):
        return self.tokenizer.max_length

    # model
    def model_config(self, overrides):
        bert = read_config(self.folder)
        return TransformerConfig(
            d_model=bert.hidden_size, nhead=bert.num_attention_heads,
            num_encoder_layers=bert.num_hidden_layers, num_decoder_layers=0,
            dim_feedforward=bert.intermediate_size, dropout=overrides.get("dropout", 0.1),
            activation=bert.hidden_act, layer_norm_eps=bert.layer_norm_eps,
            src_vocab_size=bert.vocab_size, tgt_vocab_size=bert.vocab_size,
            max_len=bert.max_position_embeddings, pad_id=PAD_ID, positional="learned")

    def build_model(self, model_cfg):
        if self.cfg.init == "minilm":
            encoder = load_encoder(self.folder, dropout=model_cfg.dropout).train()
        else:
            encoder = BertEncoder(read_config(self.folder), dropout=model_cfg.dropout)
        return SentenceClassifier(encoder, len(self.labels), model_cfg.dropout)

    # training
    def loss(self, model, batch, label_smoothing):
        return F.cross_entropy(model(batch.input_ids, batch.attention_mask), batch.labels,
                               label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int(batch.attention_mask.sum())

    # evaluation
    def evaluate(self, model, split, limit=None):
        examples = self.examples(split)[:limit]
        loss_sum, correct = 0.0, 0
        for batch in self.eval_batches(examples, 2 * self.cfg.batch_size):
            logits = model(batch.input_ids, batch.attention_mask)              # (B, C)
            loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum").item())
            correct += int((logits.data.argmax(-1) == batch.labels).sum())
        n = max(len(examples), 1)
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def predict(self, model, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label name, its probability) per text."""
        batch = self.tokenizer(texts)
        probs = model(batch.input_ids, batch.attention_mask).softmax(-1).data   # (B, C)
        return [(self.labels[int(p.argmax())], float(p.max())) for p in probs]

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.predict(model, [t for t, _ in examples])
        width = max(len(t) for t, _ in examples)
        return [f"{t:<{width}} -> {p} ({prob:.2f})  {'✓' if p == self.labels[y] else '✗'}"
                for (t, y), (p, prob) in zip(examples, preds)]


def make_pretrained_problem(cfg, vocab=None) -> SentenceClassifyProblem:
    """The Problem of a PRETRAINED_TASKS task (problems.make_problem calls this)."""
    if cfg.task != IntentsTask.name:
        raise ConfigError(f"unknown pretrained task {cfg.task!r}")
    try:
        task = IntentsTask(**cfg.task_options)
    except TypeError:
        raise ConfigError(f"task 'intents' got unknown option(s) {', '.join(sorted(cfg.task_options))}; "
                          "valid options: val_fraction") from None
    return SentenceClassifyProblem(cfg.task, vocab or task.vocab(), cfg, task)


@dataclass
class _Splits:
    train: list
    val: list
    test: list
