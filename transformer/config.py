"""The two configs of a run: `TransformerConfig` (the model's shape) and `TrainConfig`.

Every field carries its help text and, where it has one, its allowed range or choices
in the dataclass field's metadata. That metadata is the one place values are checked:
`TransformerConfig.__post_init__` and `TrainConfig.validate` read it for the Python API,
and the command line (cli.py) builds each flag's type and choices from the same fields,
so argparse reports a bad value with the very same words.

    option(default, help, min=.., max=.., choices=..)   a field with its metadata
    Range                                             an allowed interval and its check
    resolve_configs(task, preset, train, model)       preset, then explicit overrides
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .data import TASKS
from .presets import PRESET_NAMES, get_preset

LM_TASK = "lm"
# Tasks that learn from the user's own file (or list) of pairs, and the kind of model each trains.
FILE_TASKS = {"translate": "seq2seq", "classify": "classify"}
PRETRAINED_TASKS = ("intents",)  # fine-tuning all-MiniLM-L6-v2 (transformer/pretrained/)
SCHEDULES = ("noam", "cosine", "constant")
POOLINGS = ("cls", "mean")


class ConfigError(ValueError):
    """A training option has a bad value (the message names the option)."""


@dataclass(frozen=True)
class Range:
    """An allowed interval for a number: ``min <= x <= max`` (``<`` where open)."""

    min: float = -math.inf
    max: float = math.inf
    min_open: bool = False
    max_open: bool = False

    def __str__(self) -> str:
        parts = []
        if self.min != -math.inf:
            parts.append(f"{'>' if self.min_open else '>='} {self.min:g}")
        if self.max != math.inf:
            parts.append(f"{'<' if self.max_open else '<='} {self.max:g}")
        return " and ".join(parts)

    def problem(self, value: float) -> str | None:
        """None if `value` is allowed, else e.g. "must be >= 1, got 0"."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be {self}, got {value}"
        below = value <= self.min if self.min_open else value < self.min
        above = value >= self.max if self.max_open else value > self.max
        return f"must be {self}, got {value}" if below or above else None


def option(default: Any, help: str, *, min: float = -math.inf, max: float = math.inf,
           min_open: bool = False, max_open: bool = False, choices: tuple | None = None) -> Any:
    """A dataclass field that carries its help text and its allowed values."""
    meta: dict[str, Any] = {"help": help}
    if (min, max) != (-math.inf, math.inf):
        meta["range"] = Range(min, max, min_open, max_open)
    if choices is not None:
        meta["choices"] = tuple(choices)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_name(name: str) -> str:
    """The command-line flag of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _check_fields(obj: Any, describe: Callable[[str], str]) -> None:
    """Raise ConfigError for the first field of `obj` whose value its metadata forbids.

    `describe` names the field in the message (the flag ``--batch-size`` for TrainConfig).
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"unknown {f.name.replace('_', ' ')} {value!r}; "
                              f"choose one of: {', '.join(choices)}")
        allowed = f.metadata.get("range")
        problem = allowed.problem(value) if allowed is not None else None
        if problem is not None:
            raise ConfigError(f"{describe(f.name)} {problem}")


def _from_dict(cls, d: dict, error=ValueError):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise error(f"{cls.__name__}: unknown fields {unknown}")
    return cls(**d)


@dataclass
class TransformerConfig:
    """Hyperparameters shared by ``Seq2SeqTransformer``, ``TransformerLM``,
    ``TransformerClassifier`` and ``SpanQAModel``.

    Which fields each model reads:
        * Seq2SeqTransformer: everything.
        * TransformerLM (a decoder-only model): ``tgt_vocab_size`` and
          ``num_decoder_layers``.
        * TransformerClassifier, SpanQAModel (encoders): ``src_vocab_size`` and
          ``num_encoder_layers``.

    Defaults are the paper's base model (d_model 512, 8 heads, 6 + 6 layers, d_ff 2048,
    dropout 0.1, post-norm). Fields with a help text are also command-line flags.
    """

    d_model: int = option(512, "model width (embedding size)", min=1)
    nhead: int = option(8, "attention heads (must divide d_model)", min=1)
    num_encoder_layers: int = option(6, "encoder layers", min=0)
    num_decoder_layers: int = option(6, "decoder layers", min=0)
    dim_feedforward: int = option(2048, "hidden size of the position-wise feed-forward layers", min=1)
    dropout: float = option(0.1, "dropout probability", min=0, max=1, max_open=True)
    activation: str = option("relu", "feed-forward activation: relu | gelu", choices=("relu", "gelu"))
    norm_first: bool = option(False, "pre-norm (true) instead of the paper's post-norm (false)")
    layer_norm_eps: float = 1e-5
    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    max_len: int = 512                # longest sequence the positional encoding covers
    tie_embeddings: bool = option(False, "share the output projection with the target embedding")
    share_vocab: bool = False         # Seq2Seq: one embedding for src and tgt (same vocab)
    pad_id: int = 0
    positional: str = option("sinusoidal", "positional encoding: sinusoidal | learned",
                             choices=("sinusoidal", "learned"))

    def __post_init__(self) -> None:
        try:
            _check_fields(self, lambda name: name)
        except ConfigError as exc:
            raise ConfigError(f"TransformerConfig: {exc}") from None
        if self.d_model % self.nhead:
            raise ConfigError(f"TransformerConfig: d_model ({self.d_model}) must be divisible "
                              f"by nhead ({self.nhead})")
        if self.share_vocab and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError("TransformerConfig: share_vocab needs src_vocab_size == "
                              f"tgt_vocab_size, got {self.src_vocab_size} and {self.tgt_vocab_size}")

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        """Build a config from a dict; unknown keys raise a clear error."""
        return _from_dict(cls, d)


@dataclass
class TrainConfig:
    """Everything about a training run except the model's shape (see TransformerConfig).

    Defaults here are the `small` preset's; `resolve_configs` applies a preset and
    then explicit overrides.
    """

    task: str = option("dates", "task to train: " + ", ".join([*TASKS, LM_TASK, *FILE_TASKS, *PRETRAINED_TASKS]),
                       choices=(*TASKS, LM_TASK, *FILE_TASKS, *PRETRAINED_TASKS))
    preset: str = option("small", "model/training preset: " + ", ".join(PRESET_NAMES), choices=PRESET_NAMES)
    task_options: dict = option({}, "task options, e.g. {'max_len': 10} (see transformer.data.tasks)")
    text: list = option([], "UTF-8 text files for the 'lm' task (default: the packaged text)")
    # Your own data (tasks translate, classify; see data/tsv.py). A path, or from Python a
    # list of (left, right) string pairs (a list is saved in the run's config, so keep it small).
    data: Any = option("", "translate/classify: a TSV file, one 'source<TAB>target' (or "
                           "'text<TAB>label') a line; validation and test are carved from it "
                           "(10% of the inputs each, by --seed) unless given below")
    valid_data: Any = option("", "translate/classify: a TSV file for the validation split")
    test_data: Any = option("", "translate/classify: a TSV file for the test split")
    tokens: str = option("char", "translate/classify: the vocabulary's tokens: char (characters) "
                                 "or word (words and punctuation marks)", choices=("char", "word"))
    seed: int = option(0, "seed for the data, the initial weights, dropout and the data order", min=0)
    steps: int = option(2000, "number of optimizer steps (total, including resumed ones)", min=1)
    batch_size: int = option(64, "examples per batch", min=1)
    lr: float = option(2e-3, "peak learning rate (reached at the end of warmup)", min=0, min_open=True)
    schedule: str = option("noam", "learning-rate schedule: noam (the paper's warmup then 1/sqrt), "
                                   "cosine (warmup then cosine decay), constant (after warmup)",
                           choices=SCHEDULES)
    warmup: int = option(200, "warmup steps (linear increase to lr)", min=0)
    min_lr_ratio: float = option(0.0, "cosine schedule: final lr as a fraction of lr", min=0, max=1)
    weight_decay: float = option(0.01, "AdamW weight decay, on weights with ndim >= 2 only", min=0)
    beta1: float = option(0.9, "AdamW beta1", min=0, max=1, max_open=True)
    beta2: float = option(0.98, "AdamW beta2 (0.98 as in the paper)", min=0, max=1, max_open=True)
    adam_eps: float = option(1e-9, "AdamW epsilon (1e-9 as in the paper)", min=0, min_open=True)
    label_smoothing: float = option(0.1, "label smoothing of the training loss (0.1 in the paper)",
                                    min=0, max=1, max_open=True)
    clip_grad: float = option(1.0, "clip the gradient norm to this value (0: no clipping)", min=0)
    eval_every: int = option(250, "evaluate and checkpoint every N steps", min=1)
    eval_examples: int = option(500, "validation examples decoded at each evaluation", min=1)
    log_every: int = option(20, "write the mean training loss to metrics.jsonl every N steps", min=1)
    n_train: int = option(20000, "training examples drawn from the task", min=1)
    n_val: int = option(500, "validation examples (evaluation during training)", min=1)
    n_test: int = option(1000, "held-out test examples (final evaluation)", min=1)
    block_size: int = option(64, "'lm' task: context length in characters", min=1)
    pooling: str = option("cls", "classification tasks: 'cls' reads the BOS position's output, "
                                 "'mean' averages over all positions", choices=POOLINGS)
    # <= 1 too, except for the lm task, whose score is a perplexity (see `validate`).
    target: float = option(0.0, "stop early once the main validation score reaches this (0: never)", min=0)
    keep_checkpoints: int = option(1, "how many checkpoints to keep in the run directory", min=1)
    threads: int = option(1, "CPU threads for the kernels and BLAS while training (0: leave the "
                             "defaults). 1 is safe on cores shared with other jobs; 2 is ~25% "
                             "faster for the small preset on an idle 2-core machine", min=0)
    plots: bool = option(True, "write PNG plots (loss curves, attention heatmaps)")
    progress: bool = option(True, "show a progress bar on stderr")
    init: str = option("none", "start from pretrained weights: none | minilm (all-MiniLM-L6-v2, "
                               "for the intents task)", choices=("none", "minilm"))

    def validate(self) -> None:
        """Raise ConfigError naming the first bad option."""
        _check_fields(self, flag_name)
        # The two checks that depend on another field:
        if self.schedule == "noam" and self.warmup < 1:
            raise ConfigError(f"--warmup must be >= 1 for the noam schedule (>= 0 otherwise), "
                              f"got {self.warmup}")
        if self.task in FILE_TASKS and not self.data:
            left, right = ("source", "target") if self.task == "translate" else ("text", "label")
            raise ConfigError(f"the {self.task} task learns from your data: give --data FILE "
                              f"(one '{left}<TAB>{right}' a line)")
        given = [flag_name(k) for k in ("data", "valid_data", "test_data") if getattr(self, k)]
        if self.task not in FILE_TASKS and given:
            raise ConfigError(f"{given[0]} is for the tasks {' and '.join(FILE_TASKS)}, not {self.task!r}")
        if self.init != "none" and self.task not in PRETRAINED_TASKS:
            raise ConfigError(f"--init {self.init} is for the intents task, not {self.task!r}")
        if self.task != LM_TASK and self.target > 1:
            raise ConfigError(f"--target must be <= 1 for the {self.task} task (a fraction), "
                              f"got {self.target}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return _from_dict(cls, d, ConfigError)


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
