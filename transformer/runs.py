"""The run directory: its metrics log, its summary, its checkpoints, and the trained model.

A run directory looks like this::

    runs/dates/
        metrics.jsonl              one JSON record per log/eval event (see trainer.py)
        summary.json               final metrics, wall time, tokens/s
        plots/loss.png, plots/attention_*.png
        checkpoints/               see checkpoint.py (the checkpoint folder's format)

This module reads and writes the run-level files; checkpoint.py owns the format of
one checkpoint folder (safetensors + JSON, written atomically) and finding the latest.
`load_model` turns a run directory back into a model and its Problem.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import minitensor as mt
from minitensor import nn
from minitensor.io import atomic_write

from . import checkpoint as ckpt
from .config import TrainConfig, TransformerConfig
from .problems import Problem, make_problem

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
PLOTS = "plots"


# ---- the metrics log -------------------------------------------------------------------


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a metrics.jsonl file."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_record(path: Path, record: dict) -> None:
    """Add one record (a line of JSON, keys sorted) to a metrics log."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (written after the checkpoint we resume from)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step]
    atomic_write(path, "".join(line + "\n" for line in keep))


def round_float(x: float) -> float:
    # Full precision would also be deterministic; 8 significant digits keep the log readable.
    return float(f"{x:.8g}")


def round_floats(d: dict) -> dict:
    return {k: round_float(v) if isinstance(v, float) else v for k, v in d.items()}


def clear_run_dir(run_dir: Path, say: Callable[[str], None]) -> None:
    """A fresh run in an old run directory replaces the old run's files."""
    old = run_dir / ckpt.CHECKPOINTS
    if old.exists():
        say(f"note: starting a fresh run in {run_dir}; the previous checkpoint there is "
            "replaced (use --resume to continue it instead)")
        shutil.rmtree(old)
    for name in (METRICS_FILE, SUMMARY_FILE):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / PLOTS, ignore_errors=True)


# ---- the summary -----------------------------------------------------------------------


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


def write_summary(run_dir: Path, cfg: TrainConfig, r: TrainResult, parameters: int,
                  world_size: int = 1) -> None:
    """summary.json: the final metrics and timings of a run (wall-clock numbers live here only).

    `world_size` is the number of MPI ranks that trained it (1: one process).
    """
    doc = {"task": cfg.task, "preset": cfg.preset, "step": r.step, "val": r.val,
           "test": r.test, "wall_time_s": round(r.wall_time, 2), "train_time_s": round(r.train_time, 2),
           "tokens_per_sec": round(r.tokens_per_sec, 1), "stopped_early": r.stopped_early,
           "cpu_time_s": round(r.cpu_time, 2),
           "parameters": parameters, "world_size": world_size,
           "checkpoint": str(r.checkpoint) if r.checkpoint else None}
    atomic_write(run_dir / SUMMARY_FILE, json.dumps(doc, indent=1, sort_keys=True) + "\n")


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
