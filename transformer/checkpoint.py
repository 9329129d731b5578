"""The checkpoint format: one folder of safetensors + JSON, written atomically.

The checkpoints of a run directory (see runs.py for the rest of it)::

    runs/dates/
        checkpoints/
            LATEST                 the name of the newest complete checkpoint
            step-00001200/
                model.safetensors  the model's state_dict (mt.save)
                optimizer.safetensors  every array of the optimizer's state_dict
                config.json        {"model": TransformerConfig, "train": TrainConfig,
                                    "task": {"name", "kind", "options"}, "num_classes"}
                vocab.json         the Vocab (Vocab.save)
                state.json         step, RNG states, data-loader position, scheduler
                                   state, the optimizer's non-array state, metrics

A checkpoint is written in full into a hidden temporary folder, flushed to disk, then
renamed into place, and only then does LATEST (itself replaced atomically) point at
it; older checkpoints are deleted last. A crash at any moment leaves LATEST naming a
complete checkpoint. No pickle anywhere: arrays go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import minitensor as mt
from minitensor import io as mt_io
from minitensor.io import atomic_write, join_arrays, split_arrays
from .data import Vocab

PathLike = str | os.PathLike[str]

FORMAT = "transformer.checkpoint"
VERSION = 1
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"
FILES = ("model.safetensors", "optimizer.safetensors", "config.json", "vocab.json", "state.json")
_STATE = "state.json"  # written last: its presence marks a complete checkpoint folder


class CheckpointError(mt_io.CheckpointError):
    """A checkpoint is missing, incomplete, or does not fit what it is used for.

    A kind of `minitensor.io.CheckpointError` (one hierarchy: catching that one also
    catches this), hence a ValueError.
    """


# ---- writing -------------------------------------------------------------------------


def _write_json(path: Path, doc: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_folder(run_dir: PathLike, step: int) -> Path:
    """Where the checkpoint of `step` lives in a run directory (written or not)."""
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def save_checkpoint(
    run_dir: PathLike,
    step: int,
    model_state: dict[str, np.ndarray],
    optimizer_state: dict,
    config: dict,
    vocab: Vocab,
    state: dict,
    keep: int = 1,
) -> Path:
    """Write one checkpoint atomically and make it the latest.

    Args:
        run_dir: the run directory (created if needed).
        step: the optimizer step the checkpoint holds (names the folder).
        model_state: the model's state_dict (name -> array).
        optimizer_state: the optimizer's state_dict (arrays and plain values).
        config: JSON-serialisable {"model": ..., "train": ..., "task": ...}.
        vocab: the vocabulary.
        state: JSON-serialisable training state (RNG states, loader position, ...).
        keep: how many checkpoints to keep (the newest ones; >= 1).

    Returns:
        The checkpoint folder.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_folder(run_dir, step).name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        opt_json, opt_arrays = split_arrays(optimizer_state)
        mt.save(dict(model_state), tmp / "model.safetensors", metadata={"format": FORMAT, "step": str(step)})
        mt.save(opt_arrays, tmp / "optimizer.safetensors", metadata={"format": FORMAT, "step": str(step)})
        for f in ("model.safetensors", "optimizer.safetensors"):
            _fsync(tmp / f)
        _write_json(tmp / "config.json", {"format": FORMAT, "version": VERSION, **config})
        vocab.save(tmp / "vocab.json")
        _write_json(tmp / _STATE, {"step": step, **state, "optimizer": opt_json})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the previous checkpoint is untouched
        raise
    final = root / name
    if final.exists():  # the same step saved again (e.g. end of run right after an eval)
        old = root / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    atomic_write(root / LATEST, name + "\n")
    _prune(root, keep=max(1, keep), current=name)
    return final


def _prune(root: Path, keep: int, current: str) -> None:
    """Delete all but the newest `keep` checkpoints (never `current`) and stale temp folders."""
    steps = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for name in steps[:-keep] if keep else steps:
        if name != current:
            shutil.rmtree(root / name, ignore_errors=True)
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith((".tmp-", ".old-")) and not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)


# ---- reading ---------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A loaded checkpoint: everything needed to rebuild, evaluate or resume a run.

    Attributes:
        path: the checkpoint folder.
        run_dir: the run directory holding it.
        config: config.json as a dict ("model", "train", "task", ...).
        vocab: the Vocab.
        state: state.json (step, rng, loader, scheduler, ...), optimizer arrays joined in.
        model_state: name -> array.
    """

    path: Path
    run_dir: Path
    config: dict
    vocab: Vocab
    state: dict
    model_state: dict[str, np.ndarray]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def task_name(self) -> str:
        return self.config["task"]["name"]

    @property
    def optimizer_state(self) -> dict:
        return self.state["optimizer"]


def _is_complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES)


def find_checkpoint(path: PathLike) -> Path:
    """Resolve a run directory, its checkpoints folder, or a checkpoint folder.

    Raises:
        CheckpointError: nothing loadable there (the message says what is missing).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {str(p)!r} does not exist")
    if not p.is_dir():
        raise CheckpointError(f"checkpoint {str(p)!r} is a file; pass the run directory")
    if _is_complete(p):
        return p
    root = p / CHECKPOINTS if (p / CHECKPOINTS).is_dir() else p
    latest = root / LATEST
    if latest.is_file():
        candidate = root / latest.read_text(encoding="utf-8").strip()
        if _is_complete(candidate):
            return candidate
    # No usable LATEST (e.g. a crash between two renames): the newest complete folder.
    complete = sorted(c for c in root.glob("step-*") if c.is_dir() and _is_complete(c))
    if complete:
        return complete[-1]
    if root.is_dir() and any(root.glob("step-*")):
        raise CheckpointError(f"checkpoint in {str(p)!r} is incomplete (expected files: {', '.join(FILES)})")
    raise CheckpointError(f"no checkpoint in {str(p)!r} (expected a run directory written by "
                          "`python -m transformer train`)")


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Load the latest complete checkpoint of a run directory (or a checkpoint folder).

    Raises:
        CheckpointError: missing, incomplete or unreadable checkpoint.
    """
    folder = find_checkpoint(path)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        state = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        vocab = Vocab.load(folder / "vocab.json")
        model_state = dict(mt.load(folder / "model.safetensors"))
        opt_arrays = dict(mt.load(folder / "optimizer.safetensors"))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {str(folder)!r} is unreadable: {exc}") from None
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{str(folder)!r} is not a transformer checkpoint (format {config.get('format')!r})")
    if config.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint {str(folder)!r} has version {config['version']}; this code reads <= {VERSION}")
    try:
        state["optimizer"] = join_arrays(state.get("optimizer", {}), opt_arrays)
    except mt_io.CheckpointError as exc:
        raise CheckpointError(f"checkpoint {str(folder)!r}: the optimizer file is incomplete "
                              f"({exc})") from None
    model_state = {k: np.asarray(v) for k, v in model_state.items()}
    run_dir = folder.parent.parent if folder.parent.name == CHECKPOINTS else folder.parent
    return Checkpoint(folder, run_dir, config, vocab, state, model_state)
