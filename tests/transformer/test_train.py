"""Tests for transformer.train / checkpoint / metrics / plots / presets / selftest.

Every run here is the `tiny` preset shrunk further (a few steps, a few hundred
examples, no progress bar), so the whole file takes seconds. What is checked is the
machinery, not learning (that is test_learning.py, marked slow): bit-exact resume,
determinism, NaN stop, Ctrl-C, atomic checkpoints, the metrics log, plots.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import minitensor as mt
from transformer import checkpoint as ckpt
from transformer import metrics as M
from transformer.presets import PRESET_NAMES, get_preset
from transformer.config import ConfigError, TrainConfig, resolve_configs
from transformer.data import BatchStream
from transformer.runs import load_model, read_metrics
from transformer.schedule import lr_at, make_optimizer
from transformer.train import train
from transformer.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

FAST = dict(n_train=96, n_val=16, n_test=16, eval_examples=16, batch_size=16, log_every=2,
            progress=False, plots=False)


def make_trainer(tmp_path: Path, name: str = "run", task: str = "reverse", callbacks=(), model=None,
                 **over) -> Trainer:
    opts = {**FAST, "task_options": {"max_len": 6} if task == "reverse" else {}, **over}
    cfg, model_over = resolve_configs(task, "tiny", opts, {"dropout": 0.1, **(model or {})})
    return Trainer(cfg, model_over, tmp_path / name, callbacks=callbacks, log=None)


def weights(trainer: Trainer) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in trainer.model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


# ---- resume, determinism -----------------------------------------------------------------


def test_resume_is_bit_exact(tmp_path):
    # 2N steps in one go == N steps, a fresh process-like restart, N more steps.
    # Dropout is on, so minitensor's RNG state must be restored too.
    n = 6
    full = make_trainer(tmp_path, "full", steps=2 * n, eval_every=3)
    full.fit()
    half = make_trainer(tmp_path, "half", steps=n, eval_every=3)
    half.fit()
    mt.manual_seed(12345)  # scramble the global generator: resume must restore it
    resumed = Trainer.resume(tmp_path / "half", {"steps": 2 * n}, log=None)
    assert resumed.step == n
    resumed.fit()
    assert resumed.step == 2 * n
    assert_same_weights(weights(full), weights(resumed))
    # The optimizer's moments too, and the metrics logs line for line.
    sa, sb = full.optimizer.state_dict(), resumed.optimizer.state_dict()
    for i in sa["state"]:
        for key, v in sa["state"][i].items():
            assert np.array_equal(np.asarray(v), np.asarray(sb["state"][i][key]))
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == (tmp_path / "half" / "metrics.jsonl").read_text()


@pytest.mark.parametrize("schedule", ["noam", "cosine"])
def test_resume_after_interrupt_mid_epoch_is_bit_exact(tmp_path, schedule):
    # Interrupt at a step that is not an eval step and in the middle of an epoch
    # (96 examples / 16 = 6 batches per epoch): the loader position must be restored.
    def stop_at(step):
        def cb(trainer, s, loss):
            if s == step:
                raise KeyboardInterrupt
        return cb

    full = make_trainer(tmp_path, "full", steps=11, eval_every=4, schedule=schedule)
    full.fit()
    part = make_trainer(tmp_path, "part", steps=11, eval_every=4, schedule=schedule,
                        callbacks=[stop_at(8 + 1)])
    with pytest.raises(TrainingInterrupted) as info:
        part.fit()
    assert info.value.step == 9 and info.value.checkpoint is not None
    resumed = Trainer.resume(tmp_path / "part", log=None)
    assert resumed.step == 9
    resumed.fit()
    assert_same_weights(weights(full), weights(resumed))
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == (tmp_path / "part" / "metrics.jsonl").read_text()


def test_same_seed_same_metrics_log(tmp_path):
    logs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_trainer(tmp_path, name, steps=4, eval_every=2, seed=seed).fit()
        logs.append((tmp_path / name / "metrics.jsonl").read_text())
    assert logs[0] == logs[1]
    assert logs[0] != logs[2]


def test_fresh_run_replaces_an_old_run(tmp_path):
    make_trainer(tmp_path, "r", steps=4, eval_every=2).fit()
    make_trainer(tmp_path, "r", steps=2, eval_every=2).fit()
    assert ckpt.load_checkpoint(tmp_path / "r").step == 2
    assert max(r["step"] for r in read_metrics(tmp_path / "r" / "metrics.jsonl")) == 2


def test_resume_refuses_other_task_and_fixed_options(tmp_path):
    make_trainer(tmp_path, "r", steps=2, eval_every=2).fit()
    with pytest.raises(ckpt.CheckpointError, match="task 'reverse', not 'add'"):
        Trainer.resume(tmp_path / "r", {"task": "add"}, log=None)
    with pytest.raises(ConfigError, match="--lr cannot change"):
        Trainer.resume(tmp_path / "r", {"lr": 0.5}, log=None)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        Trainer.resume(tmp_path / "missing", log=None)


# ---- NaN, Ctrl-C, atomic writes -------------------------------------------------------------


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, "nan", steps=10, eval_every=2)
    real_loss = type(trainer.problem).loss

    def poisoned(self, model, batch, ls):
        loss = real_loss(self, model, batch, ls)
        return loss * float("nan") if trainer.step + 1 >= 5 else loss

    monkeypatch.setattr(type(trainer.problem), "loss", poisoned)
    before = None
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    assert info.value.step == 5
    assert "step 5" in str(info.value)
    found = ckpt.load_checkpoint(tmp_path / "nan")
    assert found.step == 4 and info.value.checkpoint == found.path
    # The weights in the checkpoint are finite and equal to the model's (no update was applied).
    for k, v in found.model_state.items():
        assert np.isfinite(v).all()
        before = trainer.model.state_dict()[k]
        assert np.array_equal(v, before)
    assert read_metrics(tmp_path / "nan" / "metrics.jsonl")[-1]["split"] == "error"


def test_huge_lr_diverges_without_overwriting_the_checkpoint(tmp_path):
    # lr = 1e6 blows the weights up; whatever step notices it, the saved checkpoint
    # must be the last good one (finite weights), never a poisoned one.
    trainer = make_trainer(tmp_path, "lr", steps=40, eval_every=1, lr=1e6, clip_grad=0.0)
    with pytest.raises(NonFiniteLossError):
        trainer.fit()
    found = ckpt.load_checkpoint(tmp_path / "lr")
    assert all(np.isfinite(v).all() for v in found.model_state.values())


def test_keyboard_interrupt_writes_checkpoint(tmp_path):
    def interrupt(trainer, step, loss):
        if step == 3:
            raise KeyboardInterrupt

    trainer = make_trainer(tmp_path, "ctrlc", steps=10, eval_every=5, callbacks=[interrupt])
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit()
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.step == 3
    found = ckpt.load_checkpoint(tmp_path / "ctrlc")
    assert found.step == 3 and found.path == info.value.checkpoint
    assert_same_weights(found.model_state, weights(trainer))


def test_failed_checkpoint_write_keeps_previous_one(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, "atomic", steps=4, eval_every=2)
    trainer.fit()
    good = ckpt.load_checkpoint(tmp_path / "atomic")
    real_save = mt.save

    def crash_midway(state, path, metadata=None):
        Path(path).write_bytes(b"half a file")  # a partial write, then the "crash"
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.mt, "save", crash_midway)
    trainer.step += 1
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    monkeypatch.setattr(ckpt.mt, "save", real_save)
    again = ckpt.load_checkpoint(tmp_path / "atomic")
    assert again.step == good.step == 4
    assert_same_weights(again.model_state, good.model_state)
    leftovers = [p.name for p in (tmp_path / "atomic" / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_checkpoint_falls_back_when_latest_is_missing(tmp_path):
    make_trainer(tmp_path, "r", steps=4, eval_every=2, keep_checkpoints=2).fit()
    root = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000004"]
    (root / "LATEST").unlink()
    assert ckpt.load_checkpoint(tmp_path / "r").step == 4
    assert ckpt.load_checkpoint(root / "step-00000002").step == 2
    (root / "step-00000004" / "model.safetensors").unlink()  # incomplete: skipped
    assert ckpt.load_checkpoint(tmp_path / "r").step == 2


def test_checkpoint_contents(tmp_path):
    trainer = make_trainer(tmp_path, "r", steps=2, eval_every=2)
    trainer.fit()
    found = ckpt.load_checkpoint(tmp_path / "r")
    assert set(found.config) >= {"model", "train", "task", "format", "version"}
    assert found.config["task"] == {"name": "reverse", "kind": "seq2seq",
                                   "options": {"min_len": 1, "max_len": 6, "alphabet": "abcdefghijklmnopqrstuvwxyz"}}
    assert found.vocab == trainer.vocab
    assert set(found.state) >= {"step", "rng", "loader", "scheduler", "optimizer", "log_acc"}
    json.dumps(found.config)  # plain JSON
    loaded = load_model(tmp_path / "r")
    assert not loaded.model.training
    assert_same_weights(loaded.model.state_dict(), weights(trainer))


def test_split_and_join_arrays_roundtrip():
    state = {"state": {0: {"step": 3, "exp_avg": np.arange(3.0)}, 2: {"m": np.ones((2, 2), np.float32)}},
             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.98), "params": [0, 2]}]}
    doc, arrays = mt.io.split_arrays(state)
    back = mt.io.join_arrays(json.loads(json.dumps(doc)), arrays)
    assert back["state"][0]["step"] == 3 and np.array_equal(back["state"][0]["exp_avg"], np.arange(3.0))
    assert back["state"][2]["m"].dtype == np.float32
    assert back["param_groups"][0]["betas"] == [0.9, 0.98]


# ---- pieces of the loop -----------------------------------------------------------------------


def test_batch_stream_state_roundtrip(tmp_path):
    trainer = make_trainer(tmp_path)
    stream = trainer.stream
    for _ in range(8):  # into the second epoch (6 batches per epoch)
        stream.next()
    state = json.loads(json.dumps(stream.state_dict()))
    expected = [stream.next().src for _ in range(7)]
    other = BatchStream(trainer.problem.train_loader(seed=999))
    other.load_state_dict(state)
    got = [other.next().src for _ in range(7)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_lr_schedules():
    cfg = TrainConfig(lr=1e-3, warmup=100, steps=1000, schedule="noam")
    assert lr_at(100, cfg) == pytest.approx(1e-3)
    assert lr_at(50, cfg) == pytest.approx(5e-4)
    assert lr_at(400, cfg) == pytest.approx(5e-4)  # 1/sqrt decay after warmup
    d, w = 64, 100  # the paper's formula, rescaled to peak at lr
    paper = lambda s: d ** -0.5 * min(s ** -0.5, s * w ** -1.5)  # noqa: E731
    for s in (1, 37, 100, 555):
        assert lr_at(s, cfg) == pytest.approx(1e-3 * paper(s) / paper(w))
    cos = TrainConfig(lr=1e-3, warmup=10, steps=110, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(1, cos) == pytest.approx(1e-3 / 11)  # never 0: the first step trains
    assert lr_at(11, cos) == pytest.approx(1e-3)
    assert lr_at(61, cos) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(111, cos) == pytest.approx(1e-4)
    const = TrainConfig(lr=1e-3, warmup=4, schedule="constant")
    assert [lr_at(s, const) for s in (1, 4, 500)] == pytest.approx([2.5e-4, 1e-3, 1e-3])


def test_weight_decay_only_on_matrices(tmp_path):
    trainer = make_trainer(tmp_path)
    opt = make_optimizer(trainer.model, trainer.cfg)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == trainer.cfg.weight_decay > 0 and no_decay["weight_decay"] == 0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len({id(p) for p in trainer.model.parameters()})


@pytest.mark.parametrize("bad, message", [
    ({"steps": 0}, "--steps must be >= 1"), ({"lr": 0.0}, "--lr must be > 0"),
    ({"lr": float("nan")}, "--lr must be > 0"), ({"batch_size": -1}, "--batch-size"),
    ({"schedule": "linear"}, "unknown schedule"), ({"label_smoothing": 1.0}, "--label-smoothing"),
])
def test_bad_config_values(bad, message):
    with pytest.raises(ConfigError, match=message):
        resolve_configs("reverse", "tiny", bad)


def test_unknown_task_preset_and_task_option():
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        resolve_configs("nope", "tiny")
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_configs("reverse", "huge")
    cfg, model = resolve_configs("reverse", "tiny", {**FAST, "task_options": {"max_length": 3}})
    with pytest.raises(ConfigError, match="unknown option"):
        Trainer(cfg, model, "/nonexistent/never-written", log=None)


def test_presets_cover_every_task():
    for task in ("copy", "reverse", "sort", "add", "dates", "brackets", "kv_span", "lm"):
        for name in PRESET_NAMES:
            p = get_preset(task, name)
            cfg, _ = resolve_configs(task, name)
            assert cfg.steps >= 1 and p.model["d_model"] % p.model["nhead"] == 0


# ---- metrics log and plots ---------------------------------------------------------------------


def test_metrics_log_format(tmp_path):
    make_trainer(tmp_path, "log", steps=4, eval_every=2).fit()
    records = read_metrics(tmp_path / "log" / "metrics.jsonl")
    train_recs = [r for r in records if r["split"] == "train"]
    val_recs = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in train_recs] == [2, 4] and [r["step"] for r in val_recs] == [2, 4]
    for r in train_recs:
        assert set(r) == {"step", "split", "loss", "lr", "tokens"}
        assert r["loss"] > 0 and r["lr"] > 0 and r["tokens"] > 0
    for r in val_recs:
        assert {"loss", "token_accuracy", "exact_match"} <= set(r)
        assert 0 <= r["exact_match"] <= 1 and 0 <= r["token_accuracy"] <= 1
    summary = json.loads((tmp_path / "log" / "summary.json").read_text())
    assert summary["step"] == 4 and summary["tokens_per_sec"] > 0 and "exact_match" in summary["test"]


def test_plots_are_written(tmp_path):
    make_trainer(tmp_path, "plots", steps=2, eval_every=2, plots=True).fit()
    pngs = sorted((tmp_path / "plots" / "plots").glob("*.png"))
    names = [p.name for p in pngs]
    assert "loss.png" in names
    assert any("encoder" in n and "self_attn" in n for n in names)
    assert any("multihead_attn" in n for n in names)  # cross-attention
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


@pytest.mark.parametrize("task", ["brackets", "kv_span", "lm", "dates"])
def test_other_task_kinds_run(tmp_path, task):
    over = dict(steps=2, eval_every=2, n_train=64, batch_size=8, plots=True)
    if task == "lm":
        over.update(block_size=16, batch_size=4)
    trainer = make_trainer(tmp_path, task, task=task, **over)
    result = trainer.fit()
    key = {"brackets": "accuracy", "kv_span": "span_exact_match", "lm": "perplexity", "dates": "exact_match"}[task]
    assert key in result.val and key in result.test
    if task == "dates":
        assert "bleu" in result.val
    assert (tmp_path / task / "plots" / "loss.png").exists()
    assert trainer.problem.show(trainer.model, 2)
    assert load_model(tmp_path / task).kind == trainer.problem.kind


def test_lm_rejects_empty_text(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    cfg, model = resolve_configs("lm", "tiny", {**FAST, "text": [str(empty)]})
    with pytest.raises(ConfigError, match="is empty"):
        Trainer(cfg, model, tmp_path / "lm", log=None)


def test_train_function(tmp_path):
    result = train("reverse", "tiny", run_dir=tmp_path / "fn", log=None, **{**FAST, "steps": 2, "eval_every": 2})
    assert result.step == 2 and result.checkpoint is not None
    result = train("reverse", "tiny", run_dir=tmp_path / "fn", resume=True, log=None, steps=4)
    assert result.step == 4


# ---- metrics ------------------------------------------------------------------------------------


def test_metric_functions():
    pred = np.array([[5, 6, 2, 0], [5, 7, 2, 9]])
    tgt = np.array([[5, 6, 2, 0], [5, 6, 2, 0]])
    assert M.token_accuracy(pred, tgt) == (5, 6)
    assert M.sequence_exact_match(pred, tgt) == (1, 2)
    assert M.exact_match(["a", "b"], ["a", "c"]) == 0.5
    assert M.accuracy(np.array([1, 0, 1]), np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert M.perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert M.perplexity(1e6) == math.inf
    assert M.bleu(["2024-03-05"], ["2024-03-05"]) == pytest.approx(100.0)
    assert 0 < M.bleu(["2024-03-05", "1999-01-01"], ["2024-03-05", "1999-01-02"]) < 100
    start = np.array([[0.0, 5.0, 1.0, 9.0]])
    end = np.array([[0.0, 1.0, 4.0, 0.5]])
    allowed = np.array([[False, True, True, True]])
    s, e = M.best_span(start, end, allowed)
    assert (s[0], e[0]) == (3, 3)  # start <= end enforced: (3, 2) is not a span
    assert M.span_exact_match(s, e, np.array([3]), np.array([3])) == 1.0


def test_selftest_gradchecks_every_registered_op():
    from minitensor.ops import REGISTRY
    from transformer.selftest import check_ops, format_table

    results = check_ops()
    assert [r.name for r in results] == list(REGISTRY)
    table = format_table(results)
    assert all(r.ok for r in results), table
    assert table.splitlines()[0].split("|")[0].strip() == "op"
