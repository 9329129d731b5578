"""Slow end-to-end checks that the whole stack learns (run with ``pytest -m slow``).

Each is a short version of a preset target (see transformer/presets.py TARGETS): a
smaller task that a small model masters in a minute or two on 2 CPU cores, checked
on held-out examples by greedy decoding (the Annotated Transformer's copy-task
check, with an accuracy threshold as in teenygrad's mnist test). Plus: memory stays
flat over 1,000 training steps.
"""

from __future__ import annotations

import gc
import os
import time

import pytest

from transformer.config import resolve_configs
from transformer.trainer import Trainer

pytestmark = pytest.mark.slow

QUIET = dict(progress=False, plots=False)


def fit(tmp_path, task, model, **train):
    cfg, model_over = resolve_configs(task, "small", {**QUIET, **train}, model)
    trainer = Trainer(cfg, model_over, tmp_path / task, log=None)
    t0 = time.perf_counter()
    result = trainer.fit()
    return trainer, result, time.perf_counter() - t0


def test_reverse_short_strings_reach_99_percent(tmp_path):
    # Reverse strings of 1-8 letters: >= 99% exact match on 500 held-out strings.
    _, result, seconds = fit(
        tmp_path, "reverse",
        dict(d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=128,
             norm_first=True),
        task_options={"max_len": 8}, n_train=10000, n_val=300, n_test=500, steps=1200,
        batch_size=64, lr=3e-3, warmup=200, eval_every=200, eval_examples=300, target=0.995)
    print(f"reverse(1-8): {result.step} steps in {seconds:.0f} s, {result.tokens_per_sec:,.0f} tokens/s, "
          f"test exact match {result.test['exact_match']:.4f}")
    assert result.test["exact_match"] >= 0.99


def test_two_digit_addition_reaches_98_percent(tmp_path):
    # 2-digit sums: 10,000 possible problems, 7,000 for training, the test ones unseen.
    _, result, seconds = fit(
        tmp_path, "add", {}, task_options={"max_digits": 2}, n_train=7000, n_val=300, n_test=500,
        steps=3000, batch_size=64, lr=2e-3, warmup=200, eval_every=250, eval_examples=300,
        target=0.995)
    print(f"add(2 digits): {result.step} steps in {seconds:.0f} s, test exact match {result.test['exact_match']:.4f}")
    assert result.test["exact_match"] >= 0.98


def test_kv_span_single_letter_keys_reach_98_percent(tmp_path):
    _, result, seconds = fit(
        tmp_path, "kv_span", dict(num_encoder_layers=4, norm_first=True),
        task_options={"max_pairs": 4, "max_key_len": 1, "max_value_digits": 2}, n_train=20000,
        n_val=300, n_test=500, steps=2000, batch_size=128, lr=2e-3, warmup=100, eval_every=250,
        target=0.995)
    print(f"kv_span(1-letter keys): {result.step} steps in {seconds:.0f} s, "
          f"test span exact match {result.test['span_exact_match']:.4f}")
    assert result.test["span_exact_match"] >= 0.98


def test_brackets_up_to_10_chars_reach_98_percent(tmp_path):
    # Nesting depth <= 5 here, so 6 pre-norm layers (the full task uses 8 for depth 8).
    _, result, seconds = fit(
        tmp_path, "brackets", dict(num_encoder_layers=6, dim_feedforward=128, norm_first=True),
        task_options={"max_len": 10}, n_train=15000, n_val=300, n_test=500, steps=4000,
        batch_size=128, lr=1e-3, warmup=200, eval_every=250, target=0.995)
    print(f"brackets(<=10 chars): {result.step} steps in {seconds:.0f} s, test accuracy {result.test['accuracy']:.4f}")
    assert result.test["accuracy"] >= 0.98


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_memory_is_flat_over_1000_steps(tmp_path):
    samples: dict[int, int] = {}

    def measure(trainer, step, loss):
        if step in (200, 600, 1000):
            gc.collect()
            samples[step] = _rss_bytes()

    cfg, model_over = resolve_configs("reverse", "tiny", dict(
        **QUIET, task_options={"max_len": 8}, n_train=2000, n_val=32, n_test=32, steps=1000,
        eval_every=250, eval_examples=32, batch_size=32))
    Trainer(cfg, model_over, tmp_path / "mem", callbacks=[measure], log=None).fit()
    growth = samples[1000] / samples[200] - 1
    print(f"RSS after 200 steps {samples[200] / 2**20:.1f} MiB, after 600 {samples[600] / 2**20:.1f} MiB, "
          f"after 1000 {samples[1000] / 2**20:.1f} MiB: growth {100 * growth:+.2f}%")
    assert growth < 0.05
