"""The time-to-quality bench compares like with like: its PyTorch twin trains the same
model as ``python -m transformer train`` (checked here from the same weights and
batches), and both of its scripts run end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_twin_trains_the_same_model_from_the_same_weights():
    """20 steps of our Trainer and of the twin from our initial weights, on the same
    batches: the losses agree to float32 rounding (measured: <= 2e-7 relative; training
    is chaotic, so they drift apart later, ~1e-5 by step 50)."""
    torch = pytest.importorskip("torch")
    from bench.time_to_quality_torch import _configs, adamw, build, load_ours, train_step
    from minitensor import kernels
    from transformer.trainer import Trainer

    cfg, over = _configs(0, 0.99, 50, 20)
    cfg.threads = 1
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, over, run_dir, log=None)
        twin = build(torch, trainer.problem.model_config(over))
        load_ours(torch, twin, trainer.model.state_dict())
        twin.train()
        opt = adamw(torch, twin, cfg)
        ours, theirs = [], []
        with kernels.threads(1):
            for step in range(1, 21):
                batch = trainer.stream.next()
                ours.append(trainer.train_step(batch))
                theirs.append(train_step(torch, twin, opt, batch, cfg, step))
    ours, theirs = np.array(ours), np.array(theirs)
    assert ours[-1] < ours[0] - 1.0          # it learned something: a real comparison
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_both_scripts_run():
    """``python -m bench.time_to_quality`` at 20 steps: both libraries train, evaluate
    twice and report their times."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-m", "bench.time_to_quality", "--seeds", "0",
                          "--steps", "20", "--eval-every", "10", "--threads", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
    for lib in ("minitensor", "torch"):
        assert summary[lib]["steps"] == [20] and summary[lib]["median_s"] > 0
