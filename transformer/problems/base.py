"""The `Problem` interface: what differs between task kinds, seen from the training loop.

A Problem holds one task's data and knows, for its kind of model, the five steps a
training run needs::

    data      load_data, train_loader, eval_batches, max_len
    model     model_config (the kind's TransformerConfig defaults), build_model
    loss      loss(model, batch, label_smoothing), batch_tokens
    metrics   evaluate(model, split, limit) -> {"loss": ..., score_key: ...}
    predict   show (a few test lines), attention_inputs (for the heatmaps), and a
              kind-specific call: decode / predict / answer / generate

One kind per module: seq2seq.py, classify.py, span.py, lm.py.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import minitensor as mt
from minitensor import nn

from ..config import TrainConfig, TransformerConfig
from ..data import PAD_ID, BatchLoader, Task, Vocab


class Problem:
    """What differs between task kinds: data, model, loss, evaluation, prediction."""

    kind: str = ""
    score_key: str = ""  # the main validation score (for --target and the summary)

    def __init__(self, task_name: str, vocab: Vocab, cfg: TrainConfig, task: Task | None = None):
        self.task_name, self.vocab, self.cfg, self.task = task_name, vocab, cfg, task
        self.splits: Any = None
        self.attention_caption = ""  # set by attention_inputs

    # data
    def load_data(self) -> None:
        raise NotImplementedError

    def train_loader(self, seed: int) -> BatchLoader:
        raise NotImplementedError

    def max_len(self) -> int:
        raise NotImplementedError

    # model
    def build_model(self, model_cfg: TransformerConfig) -> nn.Module:
        raise NotImplementedError

    def model_config(self, overrides: dict) -> TransformerConfig:
        values = {"dropout": 0.0, **overrides}
        values.update(src_vocab_size=len(self.vocab), tgt_vocab_size=len(self.vocab),
                      pad_id=PAD_ID)
        values.setdefault("max_len", self.max_len())
        return TransformerConfig.from_dict(values)

    # training
    def loss(self, model: nn.Module, batch: Any, label_smoothing: float) -> mt.Tensor:
        raise NotImplementedError

    def batch_tokens(self, batch: Any) -> int:
        raise NotImplementedError

    # evaluation
    def evaluate(self, model: nn.Module, split: str, limit: int | None = None) -> dict:
        raise NotImplementedError

    def examples(self, split: str) -> list:
        return getattr(self.splits, split)

    def show(self, model: nn.Module, n: int) -> list[str]:
        """A few "input -> prediction ✓/✗" lines from the test split."""
        return []

    def attention_inputs(self, model: nn.Module) -> tuple[tuple, dict[str, tuple]] | None:
        """(capture_attention inputs, {module-name prefix: (query tokens, key tokens)}).

        Also sets ``self.attention_caption``, the example's input and output for the titles."""
        return None

    def eval_batches(self, examples: list, batch_size: int) -> Iterator[Any]:
        loader = self._loader(examples, batch_size, seed=0, shuffle=False)
        return iter(loader)

    def _loader(self, examples, batch_size, seed, shuffle) -> BatchLoader:
        raise NotImplementedError


def as_array(x) -> np.ndarray:
    """A decoder's output (Tensor, array, or an (ids, scores) tuple) as an ndarray."""
    if isinstance(x, mt.Tensor):
        return x.data
    if isinstance(x, tuple):  # (ids, scores) style returns
        return as_array(x[0])
    return np.asarray(x)


def as_id_list(x) -> list[int]:
    """A decoder's output as a flat list of Python ints."""
    a = as_array(x)
    return [int(i) for i in a.reshape(-1)]
