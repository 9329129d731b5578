"""The training loop: `Trainer`, one step, the fit loop, and what they are made of.

One step, top to bottom::

    batch = stream.next()                    # seeded, resumable position in the data
    loss = problem.loss(model, batch)        # label-smoothed cross-entropy, PAD ignored
    loss.backward()
    clip_grad_norm_(params, clip_grad)
    lr = lr_at(step)                         # warmup, then 1/sqrt (the paper) or cosine
    optimizer.step()                         # AdamW; weight decay only on ndim >= 2

Every `eval_every` steps (and at the end) the model is evaluated on the validation
split and a checkpoint is written atomically (see checkpoint.py). The four kinds of
task share the loop through the `Problem` interface (see problems/).

Determinism: the data, the model's initial weights, dropout and the data order all
come from `TrainConfig.seed`; evaluation saves and restores every random state it
could touch. So the same seed gives the same `metrics.jsonl`, and a run of 2N steps
equals a run of N steps resumed for N more, bit for bit (the checkpoint holds the
weights, AdamW's moments, the scheduler, minitensor's RNG and the loader position).
(With the cosine schedule, which the presets use, the lr depends on `steps`: a run
resumed with a larger `steps` follows the longer schedule from there on; resuming a
run that was interrupted, with the same `steps`, is exact for every schedule.)
Wall-clock numbers (tokens/s) go to the progress bar and summary.json, never to
metrics.jsonl.

Several processes: under `mpiexec -n N` each rank trains on its shard of every global
batch and the gradients are averaged before clipping (distributed.py); only rank 0
(`world.is_writer`) logs, evaluates and writes files, and the stopping rules below are
agreed by all ranks at the same step.

Stopping: Ctrl-C is deferred to the end of the current step, then a checkpoint is
written and `TrainingInterrupted` raised; a NaN/Inf loss, gradient norm or weight
raises `NonFiniteLossError` naming the step, without touching the last good
checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import minitensor as mt
from minitensor import kernels, nn

from . import checkpoint as ckpt
from . import distributed, runs
from .capture import capture_attention
from .config import ConfigError, TrainConfig
from .data.stream import BatchStream, copy_state
from .plots import plot_attention_maps, plot_loss_curves
from .progress import TrainProgress
from .problems import make_problem
from .runs import METRICS_FILE, TrainResult, round_float, round_floats
from .schedule import lr_at, make_optimizer


class NonFiniteLossError(RuntimeError):
    """The loss (or the gradients, or the weights) became NaN/Inf; training stopped.

    Attributes:
        step: the step at which it happened.
        checkpoint: the last good checkpoint folder, or None.
    """

    def __init__(self, message: str, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; a checkpoint of the last completed step was written.

    Attributes:
        step: the last completed step.
        checkpoint: the checkpoint folder written (None if the state was mid-step).
    """

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"interrupted at step {step}")
        self.step, self.checkpoint = step, checkpoint


# ---- process state: RNG, Ctrl-C -------------------------------------------------------------


@contextlib.contextmanager
def preserved_rng(*generators: np.random.Generator) -> Iterator[None]:
    """Run a block without changing minitensor's RNG (or the given Generators)."""
    state = copy_state(mt.get_rng_state())
    others = [copy_state(g.bit_generator.state) for g in generators]
    try:
        yield
    finally:
        mt.set_rng_state(state)
        for g, s in zip(generators, others):
            g.bit_generator.state = s


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag checked between steps (a second one interrupts now).

    A KeyboardInterrupt in the middle of `optimizer.step()` would leave half-updated
    weights; deferring it to the step boundary keeps the saved checkpoint consistent.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hits: list[int] = []

    def handler(signum, frame):
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the trainer ---------------------------------------------------------------------------


Callback = Callable[["Trainer", int, float], None]


class Trainer:
    """Builds data, model and optimizer from configs and runs the training loop.

    Args:
        cfg: the TrainConfig (validated here).
        model_overrides: TransformerConfig fields (d_model, nhead, ...) from the preset/CLI.
        run_dir: where checkpoints, metrics.jsonl and plots go.
        (use `Trainer.resume(run_dir)` to continue a saved run)
        callbacks: called as cb(trainer, step, loss) after every completed step; a
            callback may raise KeyboardInterrupt to stop the run (as Ctrl-C does).
        log: a stream for one-line status messages, "stderr" (the default), or None
            to silence them.
        world: the MPI ranks to train with (default: `distributed.world()`, one process
            unless launched by mpiexec); see distributed.py for what each rank does.
    """

    RESUMABLE_OVERRIDES = ("steps", "eval_every", "log_every", "target", "plots", "progress",
                           "eval_examples", "keep_checkpoints", "threads")

    def __init__(self, cfg: TrainConfig, model_overrides: dict | None = None,
                 run_dir: str | os.PathLike = "runs/dates", callbacks: Sequence[Callback] = (),
                 log: Any = "stderr", world: distributed.World | None = None,
                 _resume_from: ckpt.Checkpoint | None = None):
        self.world = world or distributed.world()
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self._log = log
        self.resumed_from = _resume_from
        cfg.validate()
        self.cfg = cfg
        self.problem = make_problem(cfg, None if _resume_from is None else _resume_from.vocab)
        try:
            self.problem.load_data()
        except (ValueError, FileNotFoundError) as exc:  # e.g. an empty text file, too many examples
            raise ConfigError(str(exc)) from None
        self.vocab = self.problem.vocab
        mt.manual_seed(cfg.seed)
        try:
            self.model_cfg = self.problem.model_config(model_overrides or {})
        except (TypeError, ValueError) as exc:  # e.g. d_model not divisible by nhead
            raise ConfigError(str(exc)) from None
        self.model = self.problem.build_model(self.model_cfg)
        self.optimizer = make_optimizer(self.model, cfg)
        self.stream = BatchStream(self.problem.train_loader(seed=cfg.seed + 1))
        self.step = 0
        self._acc = {"loss_sum": 0.0, "count": 0, "tokens": 0}
        self.last_val: dict = {}
        self.checkpoint_path: Path | None = None
        if _resume_from is not None:
            self._restore(_resume_from)
        self.world.broadcast_parameters(list(self.model.parameters()))  # rank 0's weights everywhere
        self._interrupted: Callable[[], bool] = lambda: False  # Ctrl-C seen here (set by fit)
        self._ranks_stop = False  # Ctrl-C seen on some rank, agreed at the last step

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, overrides: dict | None = None,
               callbacks: Sequence[Callback] = (), log: Any = "stderr",
               world: distributed.World | None = None) -> Trainer:
        """A Trainer that continues the run in `run_dir` from its latest checkpoint.

        The run's saved configs are used as they are; `overrides` may change only the
        options in RESUMABLE_OVERRIDES (e.g. a larger `steps` to train longer), plus
        `task`, which must match the checkpoint's.

        Raises:
            CheckpointError: no checkpoint, or one for another task.
            ConfigError: an override that would change the run (e.g. lr).
        """
        found = ckpt.load_checkpoint(run_dir)
        try:
            saved = TrainConfig.from_dict(found.config["train"])
        except (ConfigError, TypeError) as exc:
            raise ckpt.CheckpointError(f"checkpoint {str(found.path)!r} has a bad train config: {exc}") from None
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        task = overrides.pop("task", saved.task)
        if task != saved.task:
            raise ckpt.CheckpointError(f"checkpoint in {str(found.run_dir)!r} is for task "
                                       f"{saved.task!r}, not {task!r}")
        fixed = sorted(k for k, v in overrides.items()
                       if k not in cls.RESUMABLE_OVERRIDES and v != getattr(saved, k, v))
        if fixed:
            names = ", ".join("--" + k.replace("_", "-") for k in fixed)
            allowed = ", ".join("--" + k.replace("_", "-") for k in cls.RESUMABLE_OVERRIDES)
            raise ConfigError(f"{names} cannot change when resuming (the run's settings are fixed); "
                              f"these can: {allowed}")
        for k, v in overrides.items():
            if k in cls.RESUMABLE_OVERRIDES:
                setattr(saved, k, v)
        return cls(saved, dict(found.config["model"]), found.run_dir, callbacks, log, world,
                   _resume_from=found)

    def config_dict(self) -> dict:
        task = self.problem.task
        return {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict(),
                "task": {"name": self.cfg.task, "kind": self.problem.kind,
                         "options": task.options() if task is not None else {}}}

    # -- state ------------------------------------------------------------------------------
    def _restore(self, found: ckpt.Checkpoint) -> None:
        self.model.load_state_dict(found.model_state)
        self.optimizer.load_state_dict(found.optimizer_state)
        st = found.state
        self.step = int(st["step"])
        self.stream.load_state_dict(st["loader"])
        mt.set_rng_state(st["rng"])
        self._acc = dict(st["log_acc"])
        self.last_val = dict(st.get("val", {}))
        self.checkpoint_path = found.path
        if self.world.is_writer:
            runs.truncate_metrics(self.metrics_path, self.step)

    def _state(self) -> dict:
        return {"rng": copy_state(mt.get_rng_state()), "loader": self.stream.state_dict(),
                "scheduler": {"step": self.step, "lr": lr_at(self.step, self.cfg) if self.step else 0.0,
                              "schedule": self.cfg.schedule},
                "log_acc": dict(self._acc), "val": self.last_val}

    def save(self) -> Path:
        """Write a checkpoint of the current (consistent) state; returns its folder."""
        bad = [n for n, p in self.model.named_parameters() if not np.isfinite(p.data).all()]
        if bad:
            raise NonFiniteLossError(f"weights became non-finite ({bad[0]}) at step {self.step}",
                                     self.step, self.checkpoint_path)
        if not self.world.is_writer:  # rank 0 writes it; the other ranks only know where
            self.checkpoint_path = ckpt.checkpoint_folder(self.run_dir, self.step)
            return self.checkpoint_path
        self.checkpoint_path = ckpt.save_checkpoint(
            self.run_dir, self.step, self.model.state_dict(), self.optimizer.state_dict(),
            self.config_dict(), self.vocab, self._state(), keep=self.cfg.keep_checkpoints)
        return self.checkpoint_path

    # -- metrics log ----------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def _write_record(self, record: dict) -> None:
        if self.world.is_writer:
            runs.append_record(self.metrics_path, record)

    def records(self) -> list[dict]:
        return runs.read_metrics(self.metrics_path)

    def _say(self, msg: str) -> None:
        if self._log is not None and self.world.is_writer:  # "stderr": whatever sys.stderr is at the time
            print(msg, file=sys.stderr if self._log == "stderr" else self._log, flush=True)

    # -- one step ---------------------------------------------------------------------------
    def train_step(self, batch: Any) -> float:
        """Forward, backward, clip, AdamW update. Returns the loss; raises on NaN/Inf."""
        # One call of ours: the kernels' BLAS settings once for the step, not per product.
        with kernels.get().blas_scope():
            return self._train_step(batch)

    def _train_step(self, batch: Any) -> float:
        step = self.step + 1
        self.model.train()
        if self.world.distributed:
            value = self._sharded_backward(batch, step)
        else:
            loss = self.problem.loss(self.model, batch, self.cfg.label_smoothing)
            value = float(loss.item())
            if not math.isfinite(value):
                raise NonFiniteLossError(f"loss is {value} at step {step}", step, self.checkpoint_path)
            self.optimizer.zero_grad()
            loss.backward()
        if self.cfg.clip_grad > 0:
            norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad).item())
            if not math.isfinite(norm):
                raise NonFiniteLossError(f"gradient norm is {norm} at step {step}", step, self.checkpoint_path)
        lr = lr_at(step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.step = step
        return value

    def _sharded_backward(self, batch: Any, step: int) -> float:
        """With several ranks: backward on this rank's shard, then the global batch's loss
        and mean gradient on every rank (see distributed.py). Returns the global loss."""
        world, params = self.world, list(self.model.parameters())
        shard = distributed.shard_batch(batch, world.rank, world.size)
        weight = distributed.loss_weight(shard)
        mt.set_rng_state(distributed.dropout_state(self.cfg.seed, world.rank, step))
        self.optimizer.zero_grad()
        value = 0.0
        if weight > 0:  # a batch smaller than the world leaves some ranks without rows
            loss = self.problem.loss(self.model, shard, self.cfg.label_smoothing)
            value = float(loss.item())
            if math.isfinite(value):
                loss.backward()
        totals = world.reduce_step(value, weight, self._interrupted(), params)
        if totals.failed_ranks:
            raise NonFiniteLossError(f"loss is not finite at step {step} (on {totals.failed_ranks} of "
                                     f"{world.size} ranks)", step, self.checkpoint_path)
        world.average_gradients(params, weight / totals.weight, totals.grad_ranks)
        self._ranks_stop = totals.stop
        return totals.loss

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, split: str = "val", limit: int | None = None) -> dict:
        """Metrics on a split; leaves every random state and the train/eval mode as it was."""
        was_training = self.model.training
        with preserved_rng(self.stream.loader.rng), mt.no_grad():
            self.model.eval()
            try:
                return self.problem.evaluate(self.model, split, limit)
            finally:
                self.model.train(was_training)

    def _eval_and_checkpoint(self) -> dict:
        # Rank 0 evaluates; the others need its metrics for --target (the same decision).
        val = self.world.broadcast(self.evaluate("val", self.cfg.eval_examples) if self.world.is_writer else None)
        self.last_val = val
        self._write_record({"step": self.step, "split": "val", **round_floats(val)})
        self.save()
        if self.cfg.plots and self.world.is_writer:
            self.plot_curves()
        return val

    # -- plots ----------------------------------------------------------------------------------
    def plot_curves(self) -> Path:
        return plot_loss_curves(self.records(), self.run_dir / runs.PLOTS / "loss.png",
                                title=f"{self.cfg.task} ({self.cfg.preset})")

    def plot_attention(self) -> list[Path]:
        """Attention heatmaps of one test input, one PNG per attention module."""
        spec = self.problem.attention_inputs(self.model)
        if spec is None:
            return []
        inputs, label_rules = spec
        with preserved_rng(self.stream.loader.rng), mt.no_grad():
            self.model.eval()
            maps = capture_attention(self.model, *inputs)
            self.model.train()
        labels = {}
        for name in maps:
            for key, lab in label_rules.items():
                if key in name:
                    labels[name] = lab
                    break
        return plot_attention_maps(maps, self.run_dir / runs.PLOTS, labels,
                                   caption=self.problem.attention_caption)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train up to cfg.steps, evaluating/checkpointing every eval_every steps.

        Then evaluate on the test split, draw the plots and write summary.json.

        Raises:
            NonFiniteLossError: NaN/Inf loss; the last good checkpoint is kept.
            TrainingInterrupted: Ctrl-C (or a callback's KeyboardInterrupt); a
                checkpoint of the last completed step is written first.
        """
        all_ranks_stop = (NonFiniteLossError, TrainingInterrupted, distributed.RanksDivergedError)
        with kernels.threads(self.world.threads(self.cfg.threads)), self.world.abort_on_error(*all_ranks_stop):
            return self._fit()

    def _fit(self) -> TrainResult:
        cfg = self.cfg
        if self.world.is_writer:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        t_start, cpu_start = time.perf_counter(), time.process_time()
        train_time, tokens = 0.0, 0
        # also says when Numba compiles kernels; with MPI only rank 0 shows a bar
        bar = TrainProgress(cfg, self.step, self._say, show=self.world.is_writer)
        stopped_early = False
        target_key = self.problem.score_key
        consistent = True
        try:
            with _deferred_sigint() as interrupted:
                self._interrupted = interrupted
                if self.step == 0 and self.resumed_from is None and self.world.is_writer:
                    runs.clear_run_dir(self.run_dir, self._say)
                while self.step < cfg.steps:
                    t0 = time.perf_counter()
                    consistent = False
                    batch = self.stream.next()
                    loss = self.train_step(batch)
                    consistent = True
                    if self.step % distributed.CHECK_EVERY == 0:
                        self.world.check_in_sync(list(self.model.named_parameters()), self.step)
                    n_tok = self.problem.batch_tokens(batch)
                    # Kernel compilation (first run only) is not training speed: leave it out.
                    dt = time.perf_counter() - t0 - bar.take_compile_seconds()
                    train_time, tokens = train_time + dt, tokens + n_tok
                    self._acc["loss_sum"] += loss
                    self._acc["count"] += 1
                    self._acc["tokens"] += n_tok
                    if self.step % cfg.log_every == 0:
                        self._write_record({"step": self.step, "split": "train",
                                            "loss": round_float(self._acc["loss_sum"] / self._acc["count"]),
                                            "lr": round_float(lr_at(self.step, cfg)), "tokens": self._acc["tokens"]})
                        self._acc = {"loss_sum": 0.0, "count": 0, "tokens": 0}
                    bar.update(loss, lr_at(self.step, cfg), tokens / max(train_time, 1e-9))
                    for cb in self.callbacks:
                        cb(self, self.step, loss)
                    if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                        val = self._eval_and_checkpoint()
                        bar.write(f"step {self.step} val: " + _fmt(val))
                        if cfg.target and _reached(val, target_key, cfg.target):
                            stopped_early = self.step < cfg.steps
                            break
                    # With MPI, Ctrl-C counts once agreed in a step's Allreduce: all ranks stop together.
                    if self._ranks_stop if self.world.distributed else interrupted():
                        raise KeyboardInterrupt
                self.world.check_in_sync(list(self.model.named_parameters()), self.step)
                if self.world.broadcast(self.world.is_writer and (  # rank 0 reads; all ranks act
                        self.checkpoint_path is None or ckpt.load_checkpoint(self.run_dir).step != self.step)):
                    self._eval_and_checkpoint()  # e.g. resumed at the final step
        except KeyboardInterrupt:
            bar.close()
            path = None
            if consistent:
                try:
                    path = self.save()
                except NonFiniteLossError:
                    path = None
            raise TrainingInterrupted(self.step, path) from None
        except NonFiniteLossError as exc:
            bar.close()
            exc.checkpoint = self.checkpoint_path
            self._write_record({"step": exc.step, "split": "error", "error": str(exc)})
            raise
        bar.close()
        test = self.world.broadcast(self.evaluate("test") if self.world.is_writer else None)
        if self.cfg.plots and self.world.is_writer:
            self.plot_curves()
            try:
                self.plot_attention()
            except ImportError:  # pragma: no cover - model code without capture_attention
                pass
        wall = time.perf_counter() - t_start
        result = TrainResult(self.step, self.run_dir, self.checkpoint_path, self.last_val, test, wall,
                             train_time, tokens / max(train_time, 1e-9), stopped_early,
                             time.process_time() - cpu_start)
        if self.world.is_writer:
            runs.write_summary(self.run_dir, self.cfg, result,
                               int(sum(p.data.size for p in self.model.parameters())), self.world.size)
        return result


def _reached(val: dict, key: str, target: float) -> bool:
    if key not in val:
        return False
    return val[key] <= target if key == "perplexity" else val[key] >= target


def _fmt(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4f}" if k not in ("bleu", "perplexity") else f"{k}={v:.2f}")
            if k == "loss":  # beside the bar's label-smoothed training loss, which is higher
                parts[-1] += " (plain cross-entropy)"
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)
