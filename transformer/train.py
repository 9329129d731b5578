"""`train()`: one call from a task name to a trained model in a run directory.

    >>> train("reverse", "tiny", run_dir="runs/rev", steps=50, progress=False)

It resolves the configs (config.py), builds a `Trainer` (trainer.py) or resumes one
from the run directory's checkpoint (runs.py, checkpoint.py), and runs `fit()`. The
task kinds it can train live in problems/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .config import resolve_configs
from .distributed import World
from .runs import TrainResult
from .trainer import Callback, Trainer


def train(task: str = "dates", preset: str = "small", run_dir: str | os.PathLike | None = None,
          resume: bool = False, model: dict | None = None, callbacks: Sequence[Callback] = (),
          log: Any = "stderr", world: World | None = None, **train_overrides: Any) -> TrainResult:
    """One-call training: preset + overrides -> Trainer -> fit().

    Args:
        task, preset: see `resolve_configs`.
        run_dir: the run directory (default runs/TASK).
        resume: continue the run in run_dir (train_overrides may only change
            Trainer.RESUMABLE_OVERRIDES, e.g. steps).
        model: TransformerConfig overrides (fresh runs only).
        callbacks, log: see `Trainer`.
        world: the MPI ranks (default: detected; see distributed.py). Under
            `mpiexec -n N python script.py` every rank calls train() alike.
        **train_overrides: TrainConfig fields.

    Example:
        >>> train("reverse", "tiny", run_dir="runs/rev", steps=50, progress=False)
    """
    run_dir = run_dir or Path("runs") / task
    if resume:
        trainer = Trainer.resume(run_dir, {"task": task, **train_overrides}, callbacks, log, world)
    else:
        cfg, model_over = resolve_configs(task, preset, train_overrides, model)
        trainer = Trainer(cfg, model_over, run_dir, callbacks, log, world)
    return trainer.fit()
