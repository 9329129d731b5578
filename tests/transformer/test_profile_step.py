"""train --profile: a few real steps under the profiler, the table and trace.json."""
from __future__ import annotations

import io
import json

from minitensor.profiler import Roofline
from transformer.config import resolve_configs
from transformer.profile_step import TRACE_FILE, profile_training
from transformer.trainer import Trainer

FAST = dict(n_train=64, n_val=16, n_test=16, eval_examples=16, batch_size=8, log_every=2,
            progress=False, plots=False, task_options={"max_len": 6})


def test_profile_training_writes_table_and_trace(tmp_path):
    cfg, model_over = resolve_configs("reverse", "tiny", FAST, {"dropout": 0.1})
    trainer = Trainer(cfg, model_over, tmp_path / "run", log=None)
    out = io.StringIO()
    prof, trace = profile_training(trainer, steps=2, warmup=1, out=out,
                                   roofline=Roofline(1e11, 1e10, "test"))
    assert trainer.step == 3                              # warm-up + profiled steps trained
    assert trace == tmp_path / "run" / TRACE_FILE
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e["name"] == "train_step" for e in events) == 2
    names = {e["name"] for e in events}
    assert {"Linear (forward)", "Linear (backward)", "Attention (forward)",
            "CrossEntropy (backward)"} <= names
    table = out.getvalue()
    assert "train_step" in table and "Linear" in table and "% roof" in table


def test_cli_train_profile(tmp_path, capsys):
    from transformer.cli import main
    out = tmp_path / "rev"
    code = main(["train", "--task", "reverse", "--task-opt", "max_len=6", "--preset", "tiny",
                 "--no-progress", "--no-plots", "--n-train", "64", "--n-val", "16", "--n-test", "16",
                 "--batch-size", "8", "--out", str(out), "--profile", "2"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "profile of 2 training steps" in printed and "train_step" in printed
    events = json.loads((out / TRACE_FILE).read_text())["traceEvents"]
    assert sum(e["name"] == "train_step" for e in events) == 2
