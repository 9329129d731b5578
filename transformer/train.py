"""Training: `TrainConfig`, the `Trainer` loop, evaluation, resumable run directories.

One step, top to bottom::

    batch = stream.next()                    # seeded, resumable position in the data
    loss = problem.loss(model, batch)        # label-smoothed cross-entropy, PAD ignored
    loss.backward()
    clip_grad_norm_(params, clip_grad)
    lr = lr_at(step)                         # warmup, then 1/sqrt (the paper) or cosine
    optimizer.step()                         # AdamW; weight decay only on ndim >= 2

Every `eval_every` steps (and at the end) the model is evaluated on the validation
split and a checkpoint is written atomically (see checkpoint.py). Four kinds of task
share the loop through a small `Problem` interface:

    seq2seq   copy/reverse/sort/add/dates: loss, token accuracy, exact match by greedy
              decoding, BLEU (dates)
    classify  brackets: loss, accuracy
    span      kv_span: loss, exact span match
    lm        character LM over text files: loss, perplexity

Determinism: the data, the model's initial weights, dropout and the data order all
come from `TrainConfig.seed`; evaluation saves and restores every random state it
could touch. So the same seed gives the same `metrics.jsonl`, and a run of 2N steps
equals a run of N steps resumed for N more, bit for bit (the checkpoint holds the
weights, AdamW's moments, the scheduler, minitensor's RNG and the loader position).
(With the cosine schedule, which the presets use, the lr depends on `steps`: a run
resumed with a larger `steps` follows the longer schedule from there on; resuming a
run that was interrupted, with the same `steps`, is exact for every schedule.)
Wall-clock numbers (tokens/s) go to the progress bar and summary.json, never to
metrics.jsonl.

Stopping: Ctrl-C is deferred to the end of the current step, then a checkpoint is
written and `TrainingInterrupted` raised; a NaN/Inf loss, gradient norm or weight
raises `NonFiniteLossError` naming the step, without touching the last good
checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import minitensor as mt
from minitensor import functional as F
from minitensor import kernels, nn, optim
from minitensor.optim.lr_scheduler import cosine_with_warmup, noam_lr

from . import checkpoint as ckpt
from . import metrics as M
from .config import TransformerConfig
from .data import (BOS_ID, EOS_ID, PAD_ID, TASKS, BatchLoader, Vocab, classify_loader,
                   load_corpus, lm_loader, make_splits, make_task, seq2seq_loader, span_loader)
from .data.tasks import SPAN_SEPARATOR, SpanExample, Task
from .presets import PRESET_NAMES, get_preset

LM_TASK = "lm"
SCHEDULES = ("noam", "cosine", "constant")
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


class ConfigError(ValueError):
    """A training option has a bad value (the message names the option)."""


class NonFiniteLossError(RuntimeError):
    """The loss (or the gradients, or the weights) became NaN/Inf; training stopped.

    Attributes:
        step: the step at which it happened.
        checkpoint: the last good checkpoint folder, or None.
    """

    def __init__(self, message: str, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; a checkpoint of the last completed step was written.

    Attributes:
        step: the last completed step.
        checkpoint: the checkpoint folder written (None if the state was mid-step).
    """

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"interrupted at step {step}")
        self.step, self.checkpoint = step, checkpoint


def _opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field that carries its CLI help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Everything about a training run except the model's shape (see TransformerConfig).

    Defaults here are the `small` preset's; `resolve_configs` applies a preset and
    then explicit overrides.
    """

    task: str = _opt("dates", "task to train: " + ", ".join([*TASKS, LM_TASK]))
    preset: str = _opt("small", "model/training preset: " + ", ".join(PRESET_NAMES))
    task_options: dict = _opt({}, "task options, e.g. {'max_len': 10} (see transformer.data.tasks)")
    text: list = _opt([], "UTF-8 text files for the 'lm' task (default: the packaged text)")
    seed: int = _opt(0, "seed for the data, the initial weights, dropout and the data order")
    steps: int = _opt(2000, "number of optimizer steps (total, including resumed ones)")
    batch_size: int = _opt(64, "examples per batch")
    lr: float = _opt(2e-3, "peak learning rate (reached at the end of warmup)")
    schedule: str = _opt("noam", "learning-rate schedule: noam (the paper's warmup then 1/sqrt), "
                                 "cosine (warmup then cosine decay), constant (after warmup)")
    warmup: int = _opt(200, "warmup steps (linear increase to lr)")
    min_lr_ratio: float = _opt(0.0, "cosine schedule: final lr as a fraction of lr")
    weight_decay: float = _opt(0.01, "AdamW weight decay, on weights with ndim >= 2 only")
    beta1: float = _opt(0.9, "AdamW beta1")
    beta2: float = _opt(0.98, "AdamW beta2 (0.98 as in the paper)")
    adam_eps: float = _opt(1e-9, "AdamW epsilon (1e-9 as in the paper)")
    label_smoothing: float = _opt(0.1, "label smoothing of the training loss (0.1 in the paper)")
    clip_grad: float = _opt(1.0, "clip the gradient norm to this value (0: no clipping)")
    eval_every: int = _opt(250, "evaluate and checkpoint every N steps")
    eval_examples: int = _opt(500, "validation examples decoded at each evaluation")
    log_every: int = _opt(20, "write the mean training loss to metrics.jsonl every N steps")
    n_train: int = _opt(20000, "training examples drawn from the task")
    n_val: int = _opt(500, "validation examples (evaluation during training)")
    n_test: int = _opt(1000, "held-out test examples (final evaluation)")
    block_size: int = _opt(64, "'lm' task: context length in characters")
    pooling: str = _opt("cls", "classification tasks: 'cls' reads the BOS position's output, "
                               "'mean' averages over all positions")
    target: float = _opt(0.0, "stop early once the main validation score reaches this (0: never)")
    keep_checkpoints: int = _opt(1, "how many checkpoints to keep in the run directory")
    threads: int = _opt(1, "CPU threads for the kernels and BLAS while training (0: leave the "
                           "defaults). 1 is safe on cores shared with other jobs; 2 is ~25% "
                           "faster for the small preset on an idle 2-core machine")
    plots: bool = _opt(True, "write PNG plots (loss curves, attention heatmaps)")
    progress: bool = _opt(True, "show a progress bar on stderr")

    def validate(self) -> None:
        """Raise ConfigError naming the first bad option."""
        if self.task not in TASKS and self.task != LM_TASK:
            raise ConfigError(f"unknown task {self.task!r}; choose one of: {', '.join([*TASKS, LM_TASK])}")
        if self.preset not in PRESET_NAMES:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESET_NAMES)}")
        if self.pooling not in ("cls", "mean"):
            raise ConfigError(f"--pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.threads < 0:
            raise ConfigError(f"--threads must be >= 0, got {self.threads}")
        positive = ("steps", "batch_size", "eval_every", "eval_examples", "log_every", "n_train",
                    "n_val", "n_test", "block_size", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.warmup < 0 or (self.schedule == "noam" and self.warmup < 1):
            raise ConfigError(f"--warmup must be >= 1 for the noam schedule (>= 0 otherwise), "
                              f"got {self.warmup}")
        checks = [("min_lr_ratio", 0 <= self.min_lr_ratio <= 1),
                  ("label_smoothing", 0 <= self.label_smoothing < 1),
                  ("weight_decay", self.weight_decay >= 0), ("clip_grad", self.clip_grad >= 0),
                  ("beta1", 0 <= self.beta1 < 1), ("beta2", 0 <= self.beta2 < 1),
                  ("adam_eps", self.adam_eps > 0),
                  ("target", 0 <= self.target <= 1 or self.task == LM_TASK)]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"--{name.replace('_', '-')} has an invalid value {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"TrainConfig: unknown fields {unknown}")
        return cls(**d)


def resolve_configs(task: str = "dates", preset: str = "small", train: dict | None = None,
                    model: dict | None = None) -> tuple[TrainConfig, dict]:
    """Apply a preset, then explicit overrides.

    Args:
        task: the task name.
        preset: tiny | small | base.
        train: TrainConfig overrides (values that are None are ignored).
        model: TransformerConfig overrides (None values ignored).

    Returns:
        (TrainConfig, model overrides dict); the vocabulary sizes and max_len are
        filled in by the Trainer from the data.
    """
    if preset not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESET_NAMES)}")
    p = get_preset(task, preset)
    values = {**p.train, **{k: v for k, v in (train or {}).items() if v is not None}}
    values.update(task=task, preset=preset)
    cfg = TrainConfig.from_dict(values)
    cfg.validate()
    model_over = {**p.model, **{k: v for k, v in (model or {}).items() if v is not None}}
    return cfg, model_over


# ---- learning rate -----------------------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step `step` (1-based: the first update is step 1).

    noam: the paper's d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), rescaled so
    that its peak (at step == warmup) is `lr` (d_model then cancels out).
    cosine: linear warmup, then cosine decay to lr * min_lr_ratio at `steps`
    (`optim.lr_scheduler.cosine_with_warmup`). constant: linear warmup, then lr.
    """
    if cfg.schedule == "noam":
        return cfg.lr * noam_lr(step, 1, cfg.warmup) / noam_lr(cfg.warmup, 1, cfg.warmup)
    if cfg.schedule == "cosine":
        total = max(cfg.steps, cfg.warmup + 1)
        return cfg.lr * cosine_with_warmup(step - 1, cfg.warmup, total, cfg.min_lr_ratio)
    return cfg.lr * min(1.0, step / cfg.warmup) if cfg.warmup else cfg.lr


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> optim.Optimizer:
    """AdamW with two parameter groups: weight decay on ndim >= 2 only (nanoGPT's rule)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps,
                       weight_decay=cfg.weight_decay)


# ---- resumable batches -------------------------------------------------------------------


class BatchStream:
    """Endless batches from a BatchLoader, with a position that can be saved and restored.

    The loader draws each epoch's order from its Generator; the stream remembers the
    Generator's state at the start of the current epoch and how many batches of the
    epoch it handed out, which is enough to rebuild the exact same next batch.
    """

    def __init__(self, loader: BatchLoader):
        self.loader = loader
        self.epoch = 0
        self.pos = 0
        self._order: list[np.ndarray] | None = None
        self._epoch_rng: dict | None = None

    def _start_epoch(self) -> None:
        self._epoch_rng = _copy_state(self.loader.rng.bit_generator.state)
        self._order = self.loader.epoch_indices()
        self.pos = 0

    def next(self) -> Any:
        """The next batch (a new epoch starts when one runs out)."""
        if self._order is None:
            self._start_epoch()
        elif self.pos >= len(self._order):
            self.epoch += 1
            self._start_epoch()
        idx = self._order[self.pos]
        self.pos += 1
        return self.loader.collate([self.loader.items[i] for i in idx])

    def state_dict(self) -> dict:
        rng = self._epoch_rng if self._order is not None else self.loader.rng.bit_generator.state
        return {"epoch": self.epoch, "pos": self.pos, "started": self._order is not None,
                "rng": _copy_state(rng)}

    def load_state_dict(self, state: dict) -> None:
        self.loader.rng.bit_generator.state = _copy_state(state["rng"])
        self.epoch = int(state["epoch"])
        if state["started"]:
            self._start_epoch()  # replays the epoch's shuffle from its saved starting state
            self.pos = int(state["pos"])
        else:
            self._order, self._epoch_rng, self.pos = None, None, 0


def _copy_state(state: dict) -> dict:
    return json.loads(json.dumps(state))


# ---- problems: the per-kind parts of training --------------------------------------------


def _first_eos_cut(ids: Sequence[int]) -> list[int]:
    out = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i not in (BOS_ID, PAD_ID):
            out.append(i)
    return out


class Problem:
    """What differs between task kinds: data, model, loss, evaluation, prediction."""

    kind: str = ""
    score_key: str = ""  # the main validation score (for --target and the summary)

    def __init__(self, task_name: str, vocab: Vocab, cfg: TrainConfig, task: Task | None = None):
        self.task_name, self.vocab, self.cfg, self.task = task_name, vocab, cfg, task
        self.splits: Any = None

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
        """(capture_attention inputs, {module-name prefix: (query tokens, key tokens)})."""
        return None

    def eval_batches(self, examples: list, batch_size: int) -> Iterator[Any]:
        loader = self._loader(examples, batch_size, seed=0, shuffle=False)
        return iter(loader)

    def _loader(self, examples, batch_size, seed, shuffle) -> BatchLoader:
        raise NotImplementedError


class Seq2SeqProblem(Problem):
    """copy / reverse / sort / add / dates: an encoder-decoder maps a string to a string."""

    kind = "seq2seq"
    score_key = "exact_match"

    def load_data(self) -> None:
        c = self.cfg
        self.splits = make_splits(self.task, c.n_train, c.n_val, c.n_test, seed=c.seed)

    def _loader(self, examples, batch_size, seed, shuffle):
        return seq2seq_loader(examples, self.vocab, batch_size, seed=seed, shuffle=shuffle)

    def train_loader(self, seed):
        return self._loader(self.splits.train, self.cfg.batch_size, seed, True)

    def max_len(self) -> int:
        longest = max(max(len(self.vocab.encode(s)), len(self.vocab.encode(t)))
                      for part in (self.splits.train, self.splits.val, self.splits.test) for s, t in part)
        return longest + 8  # room for BOS/EOS and slightly longer inputs at inference

    def model_config(self, overrides):
        overrides = {"share_vocab": True, "tie_embeddings": True, **overrides}
        return super().model_config(overrides)

    def build_model(self, model_cfg):
        from . import Seq2SeqTransformer
        return Seq2SeqTransformer(model_cfg)

    def loss(self, model, batch, label_smoothing):
        logits = model(batch.src, batch.tgt_in, src_pad_mask=batch.src_pad_mask,
                       tgt_pad_mask=batch.tgt_pad_mask)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1),
                               ignore_index=PAD_ID, label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int((~batch.src_pad_mask).sum()) + batch.ntokens

    def decode(self, model, sources: Sequence[str], beam: int = 1, batch_size: int = 256) -> list[str]:
        """Greedy (beam == 1) or beam-search translations of source strings."""
        from . import beam_search, greedy_decode

        out: list[str] = []
        extra = 8
        for i in range(0, len(sources), batch_size):
            chunk = sources[i:i + batch_size]
            enc = [self.vocab.encode(s) for s in chunk]
            if any(len(e) == 0 for e in enc):
                raise ValueError("cannot translate an empty input")
            width = max(len(e) for e in enc)
            src = np.full((len(enc), width), PAD_ID, dtype=np.int64)
            for j, e in enumerate(enc):
                src[j, :len(e)] = e
            # Decoder positions: BOS + generated tokens must fit in the model's max_len.
            max_len = min(model.cfg.max_len - 1, max(width + extra, self._target_len_hint()))
            if beam > 1:
                rows = [beam_search(model, src[j:j + 1], beam_size=beam, max_len=max_len,
                                    bos_id=BOS_ID, eos_id=EOS_ID) for j in range(len(enc))]
                ids = [_as_id_list(r) for r in rows]
            else:
                res = greedy_decode(model, src, max_len=max_len, bos_id=BOS_ID, eos_id=EOS_ID,
                                    src_pad_mask=src == PAD_ID)
                ids = [_as_id_list(r) for r in _as_array(res)]
            out += [self.vocab.decode(_first_eos_cut(r)) for r in ids]
        return out

    def _target_len_hint(self) -> int:
        if self.splits is None:
            return 0
        return max(len(t) for t in (e[1] for e in self.splits.train[:2000])) + 2

    def evaluate(self, model, split, limit=None):
        examples = self.examples(split)
        loss_sum, n_tok, correct_tok = 0.0, 0, 0
        for batch in self.eval_batches(examples, 2 * self.cfg.batch_size):
            logits = model(batch.src, batch.tgt_in, src_pad_mask=batch.src_pad_mask,
                           tgt_pad_mask=batch.tgt_pad_mask)
            flat = logits.reshape(-1, logits.shape[-1])
            loss_sum += float(F.cross_entropy(flat, batch.tgt_out.reshape(-1), ignore_index=PAD_ID,
                                              reduction="sum").item())
            c, t = M.token_accuracy(logits.data.argmax(-1), batch.tgt_out, PAD_ID)
            correct_tok, n_tok = correct_tok + c, n_tok + t
        decoded = examples[:limit] if limit else examples
        preds = self.decode(model, [s for s, _ in decoded])
        refs = [t for _, t in decoded]
        out = {"loss": loss_sum / max(n_tok, 1), "token_accuracy": correct_tok / max(n_tok, 1),
               "exact_match": M.exact_match(preds, refs), "n_decoded": len(decoded)}
        if self.task_name == "dates" and M.bleu_available():
            out["bleu"] = M.bleu(preds, refs)
        return out

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.decode(model, [s for s, _ in examples])
        width = max(len(s) for s, _ in examples)
        return [f"{s:<{width}} -> {p or '(empty)'}  {'✓' if p == t else '✗ (expected ' + t + ')'}"
                for (s, t), p in zip(examples, preds)]

    def attention_inputs(self, model):
        src_text, _ = self.splits.test[0]
        pred = self.decode(model, [src_text])[0]
        src = np.array([self.vocab.encode(src_text)], dtype=np.int64)
        tgt_in = np.array([[BOS_ID, *self.vocab.encode(pred)][: model.cfg.max_len]], dtype=np.int64)
        s_tok = [self.vocab.id_to_token(i) for i in src[0]]
        t_tok = [self.vocab.id_to_token(i) for i in tgt_in[0]]
        labels = {"encoder": (s_tok, s_tok), "self_attn": (t_tok, t_tok), "multihead_attn": (t_tok, s_tok)}
        return (src, tgt_in), labels


def _as_array(x) -> np.ndarray:
    if isinstance(x, mt.Tensor):
        return x.data
    if isinstance(x, tuple):  # (ids, scores) style returns
        return _as_array(x[0])
    return np.asarray(x)


def _as_id_list(x) -> list[int]:
    a = _as_array(x)
    return [int(i) for i in a.reshape(-1)]


class ClassifyProblem(Problem):
    """brackets: an encoder reads the string, a head predicts balanced / not."""

    kind = "classify"
    score_key = "accuracy"
    num_classes = 2

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
        from . import TransformerClassifier
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
        from .data import collate_classify
        items = [(self.vocab.encode(t, add_bos=True), 0) for t in texts]
        batch = collate_classify(items)
        probs = self.logits(model, batch).softmax(-1).data  # (B, C)
        return [(int(p.argmax()), float(p.max())) for p in probs]

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.predict(model, [t for t, _ in examples])
        width = max(len(t) for t, _ in examples)
        name = {1: "balanced", 0: "unbalanced"}
        return [f"{t:<{width}} -> {name[p]} ({prob:.2f})  {'✓' if p == y else '✗'}"
                for (t, y), (p, prob) in zip(examples, preds)]

    def attention_inputs(self, model):
        text = self.splits.test[0][0]
        tokens = np.array([self.vocab.encode(text, add_bos=True)], dtype=np.int64)
        tok = [self.vocab.id_to_token(i) for i in tokens[0]]
        return (tokens, tokens == PAD_ID), {"": (tok, tok)}


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
        from . import SpanQAModel
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
        from .data import collate_span, encode_span
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
        return (tokens, tokens == PAD_ID), {"": (tok, tok)}


class LMProblem(Problem):
    """A character-level decoder-only language model over text files."""

    kind = "lm"
    score_key = "perplexity"

    def load_data(self):
        self.corpus = load_corpus(self.cfg.text or None, vocab=self.vocab if len(self.vocab) > 4 else None)
        self.vocab = self.corpus.vocab
        for split in ("train", "val"):
            n = len(getattr(self.corpus, split))
            if n < self.cfg.block_size + 1:
                raise ConfigError(f"the text's {split} split has {n} characters, fewer than "
                                  f"block_size + 1 = {self.cfg.block_size + 1}; give more text "
                                  "or a smaller --block-size")

    def train_loader(self, seed):
        return lm_loader(self.corpus.train, self.cfg.batch_size, self.cfg.block_size, seed=seed)

    def max_len(self):
        return self.cfg.block_size

    def model_config(self, overrides):
        return super().model_config({"tie_embeddings": True, **overrides, "num_encoder_layers": 0})

    def build_model(self, model_cfg):
        from . import TransformerLM
        return TransformerLM(model_cfg)

    def loss(self, model, batch, label_smoothing):
        logits = model(batch.x)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1),
                               label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int(batch.x.size)

    def evaluate(self, model, split, limit=None):
        ids = getattr(self.corpus, split)
        loader = lm_loader(ids, 2 * self.cfg.batch_size, self.cfg.block_size, shuffle=False)
        loss_sum, n = 0.0, 0
        for i, batch in enumerate(loader):
            if limit and i * loader.batch_size >= max(limit, loader.batch_size):
                break
            logits = model(batch.x)
            loss_sum += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1),
                                              reduction="sum").item())
            n += batch.y.size
        mean = loss_sum / max(n, 1)
        return {"loss": mean, "perplexity": M.perplexity(mean)}

    def generate(self, model, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
                 top_k: int | None = None) -> str:
        from . import sample
        ids = self.vocab.encode(prompt)
        if not ids:
            raise ValueError("the prompt is empty")
        # The KV cache covers max_len positions; past that, crop the context instead.
        fits = len(ids) + max_new_tokens <= model.cfg.max_len
        out = sample(model, np.array([ids], dtype=np.int64), max_new_tokens=max_new_tokens,
                     temperature=temperature, top_k=top_k, use_cache=fits)
        return self.vocab.decode(_as_id_list(out)[len(ids):])

    def show(self, model, n):
        prompt = self.vocab.decode(self.corpus.val[: min(32, len(self.corpus.val))])
        text = self.generate(model, prompt, max_new_tokens=120, temperature=0.8, top_k=10)
        return [f"{prompt!r} -> {text!r}"]

    def attention_inputs(self, model):
        x = np.asarray(self.corpus.val[: min(24, self.cfg.block_size)], dtype=np.int64)[None]
        tok = [self.vocab.id_to_token(i) for i in x[0]]
        return (x,), {"": (tok, tok)}


_KINDS = {"seq2seq": Seq2SeqProblem, "classify": ClassifyProblem, "span": SpanProblem, "lm": LMProblem}


def make_problem(cfg: TrainConfig, vocab: Vocab | None = None) -> Problem:
    """The Problem for cfg.task, with its task options applied (data not loaded yet)."""
    if cfg.task == LM_TASK:
        return LMProblem(LM_TASK, vocab or Vocab.from_alphabet(""), cfg)
    try:
        task = make_task(cfg.task, **cfg.task_options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return _KINDS[task.kind](cfg.task, vocab or task.vocab(), cfg, task)


# ---- the trainer ---------------------------------------------------------------------------


@contextlib.contextmanager
def preserved_rng(*generators: np.random.Generator) -> Iterator[None]:
    """Run a block without changing minitensor's RNG (or the given Generators)."""
    state = _copy_state(mt.get_rng_state())
    others = [_copy_state(g.bit_generator.state) for g in generators]
    try:
        yield
    finally:
        mt.set_rng_state(state)
        for g, s in zip(generators, others):
            g.bit_generator.state = s


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag checked between steps (a second one interrupts now).

    A KeyboardInterrupt in the middle of `optimizer.step()` would leave half-updated
    weights; deferring it to the step boundary keeps the saved checkpoint consistent.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hits: list[int] = []

    def handler(signum, frame):
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class TrainResult:
    """What `Trainer.fit` returns."""

    step: int
    run_dir: Path
    checkpoint: Path | None
    val: dict
    test: dict
    wall_time: float
    train_time: float
    tokens_per_sec: float
    stopped_early: bool = False
    cpu_time: float = 0.0  # process CPU seconds (user + system): less noisy than wall time


Callback = Callable[["Trainer", int, float], None]


class Trainer:
    """Builds data, model and optimizer from configs and runs the training loop.

    Args:
        cfg: the TrainConfig (validated here).
        model_overrides: TransformerConfig fields (d_model, nhead, ...) from the preset/CLI.
        run_dir: where checkpoints, metrics.jsonl and plots go.
        (use `Trainer.resume(run_dir)` to continue a saved run)
        callbacks: called as cb(trainer, step, loss) after every completed step; a
            callback may raise KeyboardInterrupt to stop the run (as Ctrl-C does).
        log: a stream for one-line status messages, "stderr" (the default), or None
            to silence them.
    """

    RESUMABLE_OVERRIDES = ("steps", "eval_every", "log_every", "target", "plots", "progress",
                           "eval_examples", "keep_checkpoints", "threads")

    def __init__(self, cfg: TrainConfig, model_overrides: dict | None = None,
                 run_dir: str | os.PathLike = "runs/dates", callbacks: Sequence[Callback] = (),
                 log: Any = "stderr", _resume_from: ckpt.Checkpoint | None = None):
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self._log = log
        self.resumed_from = _resume_from
        cfg.validate()
        self.cfg = cfg
        self.problem = make_problem(cfg, None if _resume_from is None else _resume_from.vocab)
        try:
            self.problem.load_data()
        except (ValueError, FileNotFoundError) as exc:  # e.g. an empty text file, too many examples
            raise ConfigError(str(exc)) from None
        self.vocab = self.problem.vocab
        mt.manual_seed(cfg.seed)
        try:
            self.model_cfg = self.problem.model_config(model_overrides or {})
        except (TypeError, ValueError) as exc:  # e.g. d_model not divisible by nhead
            raise ConfigError(str(exc)) from None
        self.model = self.problem.build_model(self.model_cfg)
        self.optimizer = make_optimizer(self.model, cfg)
        self.stream = BatchStream(self.problem.train_loader(seed=cfg.seed + 1))
        self.step = 0
        self._acc = {"loss_sum": 0.0, "count": 0, "tokens": 0}
        self.last_val: dict = {}
        self.checkpoint_path: Path | None = None
        if _resume_from is not None:
            self._restore(_resume_from)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, overrides: dict | None = None,
               callbacks: Sequence[Callback] = (), log: Any = "stderr") -> Trainer:
        """A Trainer that continues the run in `run_dir` from its latest checkpoint.

        The run's saved configs are used as they are; `overrides` may change only the
        options in RESUMABLE_OVERRIDES (e.g. a larger `steps` to train longer), plus
        `task`, which must match the checkpoint's.

        Raises:
            CheckpointError: no checkpoint, or one for another task.
            ConfigError: an override that would change the run (e.g. lr).
        """
        found = ckpt.load_checkpoint(run_dir)
        try:
            saved = TrainConfig.from_dict(found.config["train"])
        except (ConfigError, TypeError) as exc:
            raise ckpt.CheckpointError(f"checkpoint {str(found.path)!r} has a bad train config: {exc}") from None
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        task = overrides.pop("task", saved.task)
        if task != saved.task:
            raise ckpt.CheckpointError(f"checkpoint in {str(found.run_dir)!r} is for task "
                                       f"{saved.task!r}, not {task!r}")
        fixed = sorted(k for k, v in overrides.items()
                       if k not in cls.RESUMABLE_OVERRIDES and v != getattr(saved, k, v))
        if fixed:
            names = ", ".join("--" + k.replace("_", "-") for k in fixed)
            allowed = ", ".join("--" + k.replace("_", "-") for k in cls.RESUMABLE_OVERRIDES)
            raise ConfigError(f"{names} cannot change when resuming (the run's settings are fixed); "
                              f"these can: {allowed}")
        for k, v in overrides.items():
            if k in cls.RESUMABLE_OVERRIDES:
                setattr(saved, k, v)
        return cls(saved, dict(found.config["model"]), found.run_dir, callbacks, log, _resume_from=found)

    def config_dict(self) -> dict:
        task = self.problem.task
        return {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict(),
                "task": {"name": self.cfg.task, "kind": self.problem.kind,
                         "options": task.options() if task is not None else {}}}

    # -- state ------------------------------------------------------------------------------
    def _restore(self, found: ckpt.Checkpoint) -> None:
        self.model.load_state_dict(found.model_state)
        self.optimizer.load_state_dict(found.optimizer_state)
        st = found.state
        self.step = int(st["step"])
        self.stream.load_state_dict(st["loader"])
        mt.set_rng_state(st["rng"])
        self._acc = dict(st["log_acc"])
        self.last_val = dict(st.get("val", {}))
        self.checkpoint_path = found.path
        self._truncate_log(self.step)

    def _state(self) -> dict:
        return {"rng": _copy_state(mt.get_rng_state()), "loader": self.stream.state_dict(),
                "scheduler": {"step": self.step, "lr": lr_at(self.step, self.cfg) if self.step else 0.0,
                              "schedule": self.cfg.schedule},
                "log_acc": dict(self._acc), "val": self.last_val}

    def save(self) -> Path:
        """Write a checkpoint of the current (consistent) state; returns its folder."""
        bad = [n for n, p in self.model.named_parameters() if not np.isfinite(p.data).all()]
        if bad:
            raise NonFiniteLossError(f"weights became non-finite ({bad[0]}) at step {self.step}",
                                     self.step, self.checkpoint_path)
        self.checkpoint_path = ckpt.save_checkpoint(
            self.run_dir, self.step, self.model.state_dict(), self.optimizer.state_dict(),
            self.config_dict(), self.vocab, self._state(), keep=self.cfg.keep_checkpoints)
        return self.checkpoint_path

    # -- metrics log ----------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def _write_record(self, record: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop records after `step` (written after the checkpoint we resume from)."""
        if not self.metrics_path.exists():
            return
        keep = [line for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        ckpt.write_atomic_text(self.metrics_path, "".join(line + "\n" for line in keep))

    def _clear_run_dir(self) -> None:
        """A fresh run in an old run directory replaces the old run's files."""
        old = self.run_dir / ckpt.CHECKPOINTS
        if old.exists():
            self._say(f"note: starting a fresh run in {self.run_dir}; the previous checkpoint there is "
                      "replaced (use --resume to continue it instead)")
            shutil.rmtree(old)
        for name in (METRICS_FILE, SUMMARY_FILE):
            (self.run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / "plots", ignore_errors=True)

    def records(self) -> list[dict]:
        return read_metrics(self.metrics_path)

    def _say(self, msg: str) -> None:
        if self._log is not None:  # "stderr": whatever sys.stderr is at the time
            print(msg, file=sys.stderr if self._log == "stderr" else self._log, flush=True)

    # -- one step ---------------------------------------------------------------------------
    def train_step(self, batch: Any) -> float:
        """Forward, backward, clip, AdamW update. Returns the loss; raises on NaN/Inf."""
        step = self.step + 1
        self.model.train()
        loss = self.problem.loss(self.model, batch, self.cfg.label_smoothing)
        value = float(loss.item())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss is {value} at step {step}", step, self.checkpoint_path)
        self.optimizer.zero_grad()
        loss.backward()
        if self.cfg.clip_grad > 0:
            norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad).item())
            if not math.isfinite(norm):
                raise NonFiniteLossError(f"gradient norm is {norm} at step {step}", step, self.checkpoint_path)
        lr = lr_at(step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.step = step
        return value

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, split: str = "val", limit: int | None = None) -> dict:
        """Metrics on a split; leaves every random state and the train/eval mode as it was."""
        was_training = self.model.training
        with preserved_rng(self.stream.loader.rng), mt.no_grad():
            self.model.eval()
            try:
                return self.problem.evaluate(self.model, split, limit)
            finally:
                self.model.train(was_training)

    def _eval_and_checkpoint(self) -> dict:
        val = self.evaluate("val", self.cfg.eval_examples)
        self.last_val = val
        self._write_record({"step": self.step, "split": "val", **_round_floats(val)})
        self.save()
        if self.cfg.plots:
            self.plot_curves()
        return val

    # -- plots ----------------------------------------------------------------------------------
    def plot_curves(self) -> Path:
        from .plots import plot_loss_curves
        return plot_loss_curves(self.records(), self.run_dir / "plots" / "loss.png",
                                title=f"{self.cfg.task} ({self.cfg.preset})")

    def plot_attention(self) -> list[Path]:
        """Attention heatmaps of one test input, one PNG per attention module."""
        from . import capture_attention
        from .plots import plot_attention_maps

        spec = self.problem.attention_inputs(self.model)
        if spec is None:
            return []
        inputs, label_rules = spec
        with preserved_rng(self.stream.loader.rng), mt.no_grad():
            self.model.eval()
            maps = capture_attention(self.model, *inputs)
            self.model.train()
        labels = {}
        for name in maps:
            for key, lab in label_rules.items():
                if key in name:
                    labels[name] = lab
                    break
        return plot_attention_maps(maps, self.run_dir / "plots", labels)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train up to cfg.steps, evaluating/checkpointing every eval_every steps.

        Then evaluate on the test split, draw the plots and write summary.json.

        Raises:
            NonFiniteLossError: NaN/Inf loss; the last good checkpoint is kept.
            TrainingInterrupted: Ctrl-C (or a callback's KeyboardInterrupt); a
                checkpoint of the last completed step is written first.
        """
        with kernels.threads(self.cfg.threads):
            return self._fit()

    def _fit(self) -> TrainResult:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        t_start, cpu_start = time.perf_counter(), time.process_time()
        train_time, tokens = 0.0, 0
        bar = _progress(cfg, self.step)
        stopped_early = False
        target_key = self.problem.score_key
        consistent = True
        try:
            with _deferred_sigint() as interrupted:
                if self.step == 0 and self.resumed_from is None:
                    self._clear_run_dir()
                while self.step < cfg.steps:
                    t0 = time.perf_counter()
                    consistent = False
                    batch = self.stream.next()
                    loss = self.train_step(batch)
                    consistent = True
                    n_tok = self.problem.batch_tokens(batch)
                    dt = time.perf_counter() - t0
                    train_time, tokens = train_time + dt, tokens + n_tok
                    self._acc["loss_sum"] += loss
                    self._acc["count"] += 1
                    self._acc["tokens"] += n_tok
                    if self.step % cfg.log_every == 0:
                        self._write_record({"step": self.step, "split": "train",
                                            "loss": _round(self._acc["loss_sum"] / self._acc["count"]),
                                            "lr": _round(lr_at(self.step, cfg)), "tokens": self._acc["tokens"]})
                        self._acc = {"loss_sum": 0.0, "count": 0, "tokens": 0}
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"loss={loss:.3f} lr={lr_at(self.step, cfg):.2e} "
                                            f"tok/s={tokens / max(train_time, 1e-9):,.0f}", refresh=False)
                    for cb in self.callbacks:
                        cb(self, self.step, loss)
                    if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                        val = self._eval_and_checkpoint()
                        if bar is not None:
                            bar.write(f"step {self.step}: " + _fmt(val))
                        else:
                            self._say(f"step {self.step}: " + _fmt(val))
                        if cfg.target and _reached(val, target_key, cfg.target):
                            stopped_early = self.step < cfg.steps
                            break
                    if interrupted():
                        raise KeyboardInterrupt
                if self.checkpoint_path is None or ckpt.load_checkpoint(self.run_dir).step != self.step:
                    self._eval_and_checkpoint()  # e.g. resumed at the final step
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            path = None
            if consistent:
                try:
                    path = self.save()
                except NonFiniteLossError:
                    path = None
            raise TrainingInterrupted(self.step, path) from None
        except NonFiniteLossError as exc:
            if bar is not None:
                bar.close()
            exc.checkpoint = self.checkpoint_path
            self._write_record({"step": exc.step, "split": "error", "error": str(exc)})
            raise
        if bar is not None:
            bar.close()
        test = self.evaluate("test")
        if self.cfg.plots:
            self.plot_curves()
            try:
                self.plot_attention()
            except ImportError:  # pragma: no cover - model code without capture_attention
                pass
        wall = time.perf_counter() - t_start
        result = TrainResult(self.step, self.run_dir, self.checkpoint_path, self.last_val, test, wall,
                             train_time, tokens / max(train_time, 1e-9), stopped_early,
                             time.process_time() - cpu_start)
        self._write_summary(result)
        return result

    def _write_summary(self, r: TrainResult) -> None:
        doc = {"task": self.cfg.task, "preset": self.cfg.preset, "step": r.step, "val": r.val,
               "test": r.test, "wall_time_s": round(r.wall_time, 2), "train_time_s": round(r.train_time, 2),
               "tokens_per_sec": round(r.tokens_per_sec, 1), "stopped_early": r.stopped_early,
               "cpu_time_s": round(r.cpu_time, 2),
               "parameters": int(sum(p.data.size for p in self.model.parameters())),
               "checkpoint": str(r.checkpoint) if r.checkpoint else None}
        ckpt.write_atomic_text(self.run_dir / SUMMARY_FILE, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _reached(val: dict, key: str, target: float) -> bool:
    if key not in val:
        return False
    return val[key] <= target if key == "perplexity" else val[key] >= target


def _round(x: float) -> float:
    # Full precision would also be deterministic; 8 significant digits keep the log readable.
    return float(f"{x:.8g}")


def _round_floats(d: dict) -> dict:
    return {k: _round(v) if isinstance(v, float) else v for k, v in d.items()}


def _fmt(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4f}" if k not in ("bleu", "perplexity") else f"{k}={v:.2f}")
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)


def _progress(cfg: TrainConfig, start: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.task}", unit="step",
                dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a metrics.jsonl file."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- loading a trained model -------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, ready for evaluation or inference."""

    model: nn.Module
    problem: Problem
    checkpoint: ckpt.Checkpoint

    @property
    def kind(self) -> str:
        return self.problem.kind


def load_model(path: str | os.PathLike, load_data: bool = False) -> LoadedModel:
    """Rebuild the model of a run directory (or checkpoint folder) in eval mode.

    Args:
        path: run directory or checkpoint folder.
        load_data: also regenerate the task's splits (needed for `evaluate`).

    Raises:
        CheckpointError: missing/incomplete checkpoint or a state dict that does not fit.
    """
    found = ckpt.load_checkpoint(path)
    cfg = TrainConfig.from_dict(found.config["train"])
    problem = make_problem(cfg, found.vocab)
    if load_data:
        problem.load_data()
    try:
        model_cfg = TransformerConfig.from_dict(found.config["model"])
    except (TypeError, ValueError) as exc:
        raise ckpt.CheckpointError(f"checkpoint {str(found.path)!r}: bad model config ({exc})") from None
    model = problem.build_model(model_cfg)
    try:
        model.load_state_dict(found.model_state)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ckpt.CheckpointError(f"checkpoint {str(found.path)!r} does not fit its model: {exc}") from None
    model.eval()
    return LoadedModel(model, problem, found)


def evaluate_checkpoint(path: str | os.PathLike, split: str = "test", limit: int | None = None) -> dict:
    """Metrics of a saved model on a split of its task (regenerated from the saved seed)."""
    lm = load_model(path, load_data=True)
    with mt.no_grad():
        return lm.problem.evaluate(lm.model, split, limit)


def train(task: str = "dates", preset: str = "small", run_dir: str | os.PathLike | None = None,
          resume: bool = False, model: dict | None = None, callbacks: Sequence[Callback] = (),
          log: Any = "stderr", **train_overrides: Any) -> TrainResult:
    """One-call training: preset + overrides -> Trainer -> fit().

    Args:
        task, preset: see `resolve_configs`.
        run_dir: the run directory (default runs/TASK).
        resume: continue the run in run_dir (train_overrides may only change
            Trainer.RESUMABLE_OVERRIDES, e.g. steps).
        model: TransformerConfig overrides (fresh runs only).
        callbacks, log: see `Trainer`.
        **train_overrides: TrainConfig fields.

    Example:
        >>> train("reverse", "tiny", run_dir="runs/rev", steps=50, progress=False)
    """
    run_dir = run_dir or Path("runs") / task
    if resume:
        trainer = Trainer.resume(run_dir, {"task": task, **train_overrides}, callbacks, log)
    else:
        cfg, model_over = resolve_configs(task, preset, train_overrides, model)
        trainer = Trainer(cfg, model_over, run_dir, callbacks, log)
    return trainer.fit()
