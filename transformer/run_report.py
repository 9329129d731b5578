"""What `train` prints at the end: where the run's files are, and the commands to use them.

    run folder runs/dates:
      checkpoint   runs/dates/checkpoints/step-00002000
      metrics log  runs/dates/metrics.jsonl  (one JSON record per log/eval step)
      ...
    next:
      python -m transformer translate --checkpoint runs/dates 'Dec 25 1999'
"""
from __future__ import annotations

import shlex
from pathlib import Path

from .runs import METRICS_FILE, PLOTS, SUMMARY_FILE


def print_run_files(trainer, out: Path, checkpoint) -> None:
    """Where the run's files are, and the commands that use them."""
    plots = sorted(p.name for p in (out / PLOTS).glob("*.png"))
    attention = [p for p in plots if p.startswith("attention_")]
    if len(attention) > 1:  # one PNG per attention module: name the pattern, not every file
        plots = [p for p in plots if p not in attention] + [f"attention_*.png ({len(attention)} files)"]
    print(f"\nrun folder {out}:")
    print(f"  checkpoint   {checkpoint}")
    print(f"  metrics log  {out / METRICS_FILE}  (one JSON record per log/eval step)")
    print(f"  summary      {out / SUMMARY_FILE}")
    if plots:
        print(f"  plots        {out / PLOTS}/  ({', '.join(plots)})")
    print("next:")
    for line in next_commands(trainer, out):
        print("  " + line)


def next_commands(trainer, out: Path) -> list[str]:
    """Commands to try next: use the model on a test input, evaluate it, train it longer."""
    problem, run = trainer.problem, shlex.quote(str(out))
    base = "python -m transformer"
    first = problem.splits.test[0] if getattr(problem, "splits", None) is not None else None
    use = {
        "seq2seq": lambda: f"translate --checkpoint {run} {shlex.quote(first[0])}",
        "classify": lambda: f"classify --checkpoint {run} {shlex.quote(first[0])}",
        "span": lambda: f"answer --checkpoint {run} --context {shlex.quote(first.context)} "
                        f"--query {shlex.quote(first.query)}",
        "lm": lambda: f"generate --checkpoint {run} --prompt 'The '",
    }
    lines = []
    if problem.kind in use and (first is not None or problem.kind == "lm"):
        lines.append(f"{base} {use[problem.kind]()}")
    lines.append(f"{base} eval --checkpoint {run}")
    lines.append(f"{base} train --resume --out {run} --steps {2 * trainer.cfg.steps}   # train longer")
    return lines
