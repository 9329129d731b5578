"""Ready-made model + training settings per task: tiny, small, base.

    tiny   a few seconds on 2 CPU cores: for tests and smoke runs; learns little.
    small  the CLI default: reaches the task's target (see TARGETS) in minutes on 2 cores.
    base   wider and longer, for when there is time to spare.

A preset is two dicts of overrides: `model` for `TransformerConfig` fields and `train`
for `TrainConfig` fields. The vocabulary sizes and max_len are not set here; the
trainer fills them in from the task's data. Flags given on the command line win over
the preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRESET_NAMES = ("tiny", "small", "base")

# What `small` is tuned to reach on the task's held-out test split.
TARGETS: dict[str, tuple[str, float]] = {
    "reverse": ("exact_match", 0.99),
    "copy": ("exact_match", 0.99),
    "sort": ("exact_match", 0.99),
    "dates": ("exact_match", 0.99),
    "add": ("exact_match", 0.98),
    "brackets": ("accuracy", 0.98),
    "kv_span": ("span_exact_match", 0.98),
}


@dataclass(frozen=True)
class Preset:
    """Overrides for `TransformerConfig` (`model`) and `TrainConfig` (`train`)."""

    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


# Shared by every task; per-task tables below override single entries.
_COMMON: dict[str, Preset] = {
    "tiny": Preset(
        model=dict(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                   dim_feedforward=64, dropout=0.0),
        train=dict(steps=40, batch_size=32, lr=3e-3, warmup=10, eval_every=20, log_every=5,
                   n_train=512, n_val=64, n_test=64, eval_examples=64),
    ),
    # Measured on the reverse task: the paper's schedule (noam) with a 2e-3 peak stalls
    # around 96-98% exact match and spikes now and then; warmup + cosine decay to 0
    # anneals to 100% in ~2,300 steps. `target` stops a run once validation gets there.
    "small": Preset(
        model=dict(d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                   dim_feedforward=256, dropout=0.0),
        train=dict(steps=2500, batch_size=64, lr=2e-3, schedule="cosine", warmup=200,
                   eval_every=250, log_every=20, n_train=20000, n_val=500, n_test=1000,
                   eval_examples=500, target=0.998),
    ),
    "base": Preset(
        model=dict(d_model=128, nhead=8, num_encoder_layers=3, num_decoder_layers=3,
                   dim_feedforward=512, dropout=0.1),
        train=dict(steps=8000, batch_size=64, lr=1e-3, schedule="cosine", warmup=400,
                   eval_every=500, log_every=50, n_train=50000, n_val=1000, n_test=2000,
                   eval_examples=1000),
    ),
}

_TASK: dict[str, dict[str, Preset]] = {
    "reverse": {
        "small": Preset(train=dict(n_test=1000)),
    },
    "dates": {
        "small": Preset(train=dict(n_test=2000)),
        "base": Preset(train=dict(n_test=2000)),
    },
    "add": {
        # Carries make addition slower to learn than reverse: 99.2% test exact match
        # after 4,000 steps (97.6% at 2,750).
        "small": Preset(train=dict(steps=4000)),
    },
    "brackets": {
        # Checking nesting needs depth: near-miss negatives keep every bracket count, and
        # a bidirectional encoder seems to peel about one nesting level per layer. With 4
        # layers accuracy stalls near 86-89%, with 8 it reaches 95% at 8,000 steps and
        # 99.8% (val) / 99.9% (test) at 12,000 of a 16,000-step cosine schedule.
        "small": Preset(model=dict(num_encoder_layers=8, dim_feedforward=128, norm_first=True),
                        train=dict(lr=1e-3, batch_size=128, n_train=100000, steps=16000,
                                   eval_every=1000, target=0.995)),
    },
    "kv_span": {
        # Matching a query key against the context's keys takes 4 pre-norm layers and a
        # high lr held long enough: with a 10,000-step cosine schedule exact match jumps
        # from 66% to 99.6% between steps 1,000 and 2,000. The same run squeezed into 5,000
        # steps decays the lr too early and stalls near 45% (2 layers or lr 1e-3: 50-57%).
        # When the jump comes depends on the seed: seed 2 at ~4,500 steps, seed 1 at ~7,000
        # (test 99.5% and 99.2%); hence the long schedule and the early stop.
        "small": Preset(model=dict(num_encoder_layers=4, norm_first=True),
                        train=dict(lr=2e-3, batch_size=128, n_train=100000, steps=10000,
                                   eval_every=1000, target=0.99)),
    },
    "intents": {
        # Fine-tuning a pretrained encoder (transformer/pretrained/): a few epochs of the
        # 255 training sentences at BERT's usual settings (small lr, AdamW 0.999 / 1e-8).
        "tiny": Preset(train=dict(steps=2, batch_size=8, eval_every=2, lr=5e-5, warmup=1)),
        "small": Preset(model=dict(dropout=0.1),
                        train=dict(steps=80, batch_size=16, lr=5e-5, warmup=8, eval_every=16,
                                   beta2=0.999, adam_eps=1e-8, label_smoothing=0.0, target=0.0)),
    },
    "lm": {
        "tiny": Preset(train=dict(block_size=32)),
        # The packaged text is ~30 KB: a few hundred windows, so dropout and a short run.
        "small": Preset(model=dict(num_decoder_layers=2, dropout=0.2),
                        train=dict(block_size=64, steps=1500, lr=1e-3, target=0.0)),
        "base": Preset(model=dict(num_decoder_layers=4), train=dict(block_size=128)),
    },
}


def get_preset(task: str, name: str) -> Preset:
    """The preset `name` for `task`: the common settings with the task's overrides.

    Raises:
        ValueError: unknown preset name.
    """
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESET_NAMES)}")
    base = _COMMON[name]
    extra = _TASK.get(task, {}).get(name, Preset())
    return Preset(model={**base.model, **extra.model}, train={**base.train, **extra.train})
