"""Data-parallel training over MPI (transformer/distributed.py).

The first tests need no MPI: sharding, the loss weights, and that a plain run never
imports mpi4py. The others launch `mpiexec -n 2` / `-n 3` on a small worker script
(written below) and skip cleanly when mpi4py or mpiexec is missing. Every run is the
tiny preset shrunk to a few steps in float64 with dropout 0, on the NumPy backend
(no Numba compilation in the subprocesses), so that N ranks can be compared with one
process to ~1e-12.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from transformer import distributed
from transformer.data import PAD_ID
from transformer.data.batching import LMBatch, collate_classify, collate_seq2seq

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per launch; a hang (ranks out of step) fails instead of blocking CI


# ---- no MPI needed --------------------------------------------------------------------------


@pytest.mark.parametrize("n, size", [(8, 2), (7, 3), (2, 3), (1, 1)])
def test_shards_are_disjoint_and_cover_the_batch(n, size):
    rng = np.random.default_rng(0)
    pairs = [(list(rng.integers(4, 20, size=rng.integers(1, 6))), list(rng.integers(4, 20, size=rng.integers(1, 6))))
             for _ in range(n)]
    batch = collate_seq2seq(pairs)
    shards = [distributed.shard_batch(batch, r, size) for r in range(size)]
    assert [len(s) for s in shards] == [hi - lo for lo, hi in (distributed.shard_bounds(n, r, size)
                                                               for r in range(size))]
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
    np.testing.assert_array_equal(np.concatenate([s.src for s in shards]), batch.src)
    np.testing.assert_array_equal(np.concatenate([s.tgt_out for s in shards]), batch.tgt_out)
    assert sum(s.ntokens for s in shards) == batch.ntokens
    assert all(s.src.shape[1] == batch.src.shape[1] for s in shards)  # the global padded width


def test_weighted_shard_losses_equal_the_global_loss():
    # What makes N ranks equal one process: sum_r w_r * mean_r / W == the global mean, with
    # padding (ignore_index) and label smoothing (seq2seq), per example (classify), all (lm).
    rng = np.random.default_rng(1)
    vocab = 12
    pairs = [(list(rng.integers(4, vocab, size=rng.integers(1, 7))), list(rng.integers(4, vocab, size=rng.integers(1, 7))))
             for _ in range(7)]
    seq = collate_seq2seq(pairs)
    seq_logits = rng.standard_normal(seq.tgt_out.shape + (vocab,))

    def seq_loss(b, lo, hi):
        logits = mt.tensor(seq_logits[lo:hi])
        return F.cross_entropy(logits.reshape(-1, vocab), b.tgt_out.reshape(-1), ignore_index=PAD_ID,
                               label_smoothing=0.1).item()

    cls = collate_classify([(list(rng.integers(4, vocab, size=3)), int(rng.integers(0, 2))) for _ in range(7)])
    cls_logits = rng.standard_normal((7, 2))

    def cls_loss(b, lo, hi):
        return F.cross_entropy(mt.tensor(cls_logits[lo:hi]), b.labels, label_smoothing=0.1).item()

    ids = rng.integers(0, vocab, size=(7, 6))
    lm = LMBatch(x=ids, y=np.roll(ids, -1, axis=1))
    lm_logits = rng.standard_normal((7, 6, vocab))

    def lm_loss(b, lo, hi):
        return F.cross_entropy(mt.tensor(lm_logits[lo:hi]).reshape(-1, vocab), b.y.reshape(-1)).item()

    for batch, loss in ((seq, seq_loss), (cls, cls_loss), (lm, lm_loss)):
        for size in (2, 3):
            shards = [(distributed.shard_batch(batch, r, size), *distributed.shard_bounds(len(batch), r, size))
                      for r in range(size)]
            weights = [distributed.loss_weight(s) for s, _, _ in shards]
            combined = sum(w * loss(s, lo, hi) for w, (s, lo, hi) in zip(weights, shards)) / sum(weights)
            assert sum(weights) == distributed.loss_weight(batch)
            assert abs(combined - loss(batch, 0, len(batch))) < 1e-13


def test_world_size_from_the_launcher_environment(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_world_size() == 1 and distributed.launched_rank() == 0
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert distributed.launched_world_size() == 4 and distributed.launched_rank() == 3
    w = distributed.World()  # the one-process world: collectives return their input
    assert (w.rank, w.size, w.is_writer, w.distributed) == (0, 1, True, False)
    assert w.broadcast({"a": 1}) == {"a": 1}
    assert w.threads(0) == 0 and w.threads(3) == 3  # 0: the libraries' defaults, as kernels.threads
    w.comm, w.local_size = object(), 2  # as if 2 ranks shared this 8-core machine
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert w.threads(0) == 4 and w.threads(3) == 3  # 0: the rank's share of the cores


def test_each_rank_has_its_own_dropout_stream():
    states = {(rank, step): json.dumps(distributed.dropout_state(7, rank, step))
              for rank in range(3) for step in range(1, 4)}
    assert len(set(states.values())) == len(states)  # every (rank, step) its own stream
    assert json.dumps(distributed.dropout_state(7, 1, 2)) == states[(1, 2)]  # from (seed, rank, step) alone
    assert distributed.dropout_state(8, 1, 2) != distributed.dropout_state(7, 1, 2)


def test_a_plain_run_never_imports_mpi4py(tmp_path):
    code = ("import sys; from transformer.train import train; "
            f"train('reverse', 'tiny', run_dir={str(tmp_path / 'run')!r}, steps=2, eval_every=2, n_train=32, "
            "n_val=8, n_test=8, eval_examples=8, progress=False, plots=False, log=None); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'")
    env = {k: v for k, v in _env().items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=TIMEOUT)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 1


# ---- with mpiexec ------------------------------------------------------------------------------

WORKER = r'''
"""Train a tiny float64 model with the given options; rank 0 saves the final weights."""
import json, sys
import numpy as np
import minitensor as mt
from transformer import problems
from transformer.config import resolve_configs
from transformer.trainer import Trainer

opts = json.loads(sys.argv[1])
for kind in problems.KINDS.values():  # float64 models, so that N ranks == 1 process to ~1e-12
    kind.build_model = (lambda build: lambda self, cfg: build(self, cfg).double())(kind.build_model)

callbacks = []
perturb = opts.pop("perturb_rank_at_step", None)
if perturb is not None:  # a test hook: change one rank's weights behind the trainer's back
    def nudge(trainer, step, loss):
        if trainer.world.rank == perturb[0] and step == perturb[1]:
            next(iter(trainer.model.parameters())).data[0] += 1e-3
    callbacks.append(nudge)
nan = opts.pop("nan_rank_at_step", None)
if nan is not None:  # a test hook: one rank's loss becomes NaN
    def nan_loss(trainer, step, loss):
        if trainer.world.rank == nan[0] and step == nan[1] - 1:
            original = trainer.problem.loss
            trainer.problem.loss = lambda *a: original(*a) * float("nan")
    callbacks.append(nan_loss)

out, run_dir, task = opts.pop("out"), opts.pop("run_dir"), opts.pop("task", "reverse")
if opts.pop("resume", False):
    trainer = Trainer.resume(run_dir, opts, callbacks=callbacks, log=None)
else:
    # adam_eps 1e-5, not the paper's 1e-9: see EQUIVALENCE in test_mpi.py
    base = dict(n_train=64, n_val=8, n_test=8, eval_examples=8, log_every=2, progress=False,
                plots=False, adam_eps=1e-5, task_options={"max_len": 6} if task == "reverse" else {})
    dropout = opts.pop("model_dropout", 0.0)
    cfg, model = resolve_configs(task, "tiny", {**base, **opts}, {"dropout": dropout})
    trainer = Trainer(cfg, model, run_dir, callbacks=callbacks, log=None)
try:
    trainer.fit()
except Exception as exc:
    if trainer.world.is_writer:
        print(f"{type(exc).__name__}: {exc}", flush=True)
    sys.exit(3)
if trainer.world.is_writer:
    np.savez(out, **trainer.model.state_dict())
'''


# EQUIVALENCE: N ranks and one process sum the same gradient terms in a different order,
# so the gradients agree to ~1e-17. Some weights have an exactly zero gradient: the
# attention key bias (softmax(q.(k + b)) adds the same q.b to every score of a row) and
# the span head's bias (the same for every position), so backward computes roundoff for
# them, which differs with the order. AdamW divides a gradient by its own root mean
# square plus adam_eps: with the paper's 1e-9 that noise becomes steps of ~lr * 1e-8 and
# those weights differ by ~1e-10 after 20 steps (measured), while every other weight
# agrees to ~1e-16. adam_eps = 1e-5 keeps the noise at roundoff size, so all weights
# can be held to 1e-12 (measured: < 2e-14).


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MINITENSOR_BACKEND"] = "numpy"  # the MPI logic is what is tested here, not the kernels
    return env


def _mpiexec() -> str:
    pytest.importorskip("mpi4py")
    path = shutil.which("mpiexec")
    if path is None:
        pytest.skip("mpiexec not found (pip install 'minitensor[mpi]')")
    return path


def run_worker(tmp_path: Path, name: str, ranks: int | None, **opts) -> subprocess.CompletedProcess:
    """Run the worker with `ranks` MPI ranks (None: a plain process, no mpiexec)."""
    script = tmp_path / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    opts = {"out": str(tmp_path / f"{name}.npz"), "run_dir": str(tmp_path / name), **opts}
    cmd = [sys.executable, str(script), json.dumps(opts)]
    if ranks is not None:
        cmd = [_mpiexec(), "-n", str(ranks), *cmd]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def weights(tmp_path: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(tmp_path / f"{name}.npz") as f:
        return dict(f)


def assert_close_weights(a: dict, b: dict, tol: float = 1e-12) -> None:
    assert a.keys() == b.keys()
    worst = max(a, key=lambda k: np.abs(a[k] - b[k]).max())
    assert np.abs(a[worst] - b[worst]).max() < tol, \
        f"largest difference {np.abs(a[worst] - b[worst]).max():.3g} in {worst}"


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("task", ["reverse", "brackets", "kv_span", "lm"])
def test_two_ranks_equal_one_process(tmp_path, task):
    # One global batch of 8 split 4 + 4; seq2seq has padding and label smoothing 0.1.
    _mpiexec()
    opts = dict(task=task, steps=20, batch_size=8, eval_every=10)
    ok(run_worker(tmp_path, "one", None, **opts))
    ok(run_worker(tmp_path, "two", 2, **opts))
    assert_close_weights(weights(tmp_path, "one"), weights(tmp_path, "two"))
    a, b = records(tmp_path / "one"), records(tmp_path / "two")
    assert [(r["step"], r["split"]) for r in a] == [(r["step"], r["split"]) for r in b]
    for ra, rb in zip(a, b):  # the logged loss is the global batch's mean, tokens the global count
        assert ra.get("tokens") == rb.get("tokens")
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-7)
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2


def test_three_ranks_with_an_uneven_batch(tmp_path):
    # 7 rows over 3 ranks: shards of 2, 2 and 3, weighted by their target tokens.
    _mpiexec()
    opts = dict(steps=20, batch_size=7, eval_every=10)
    ok(run_worker(tmp_path, "one", None, **opts))
    ok(run_worker(tmp_path, "three", 3, **opts))
    assert_close_weights(weights(tmp_path, "one"), weights(tmp_path, "three"))


def test_a_batch_smaller_than_the_world(tmp_path):
    # 2 rows over 3 ranks: rank 0 (the writer) gets none and adds zeros to the Allreduce.
    _mpiexec()
    opts = dict(steps=6, batch_size=2, eval_every=3)
    ok(run_worker(tmp_path, "one", None, **opts))
    ok(run_worker(tmp_path, "three", 3, **opts))
    assert_close_weights(weights(tmp_path, "one"), weights(tmp_path, "three"))


def test_resume_across_world_sizes(tmp_path):
    # 10 steps on 2 ranks, then 10 more in one process == 20 steps in one process.
    _mpiexec()
    ok(run_worker(tmp_path, "one", None, steps=20, batch_size=8, eval_every=5))
    ok(run_worker(tmp_path, "split", 2, steps=10, batch_size=8, eval_every=5))
    ok(run_worker(tmp_path, "split", None, resume=True, steps=20))
    assert_close_weights(weights(tmp_path, "one"), weights(tmp_path, "split"))
    a, b = records(tmp_path / "one"), records(tmp_path / "split")
    assert [(r["step"], r["split"]) for r in a] == [(r["step"], r["split"]) for r in b]  # no duplicates
    # and back: 1 process -> 3 ranks
    ok(run_worker(tmp_path, "half", None, steps=10, batch_size=8, eval_every=5))
    ok(run_worker(tmp_path, "half", 3, resume=True, steps=20))
    assert_close_weights(weights(tmp_path, "one"), weights(tmp_path, "half"))


def test_resume_with_dropout_on_two_ranks_is_bit_exact(tmp_path):
    # The per-rank dropout streams come from (seed, rank, step): nothing to save, so
    # 6 + 6 steps on 2 ranks == 12 steps on 2 ranks, bit for bit, with dropout on.
    _mpiexec()
    opts = dict(steps=12, batch_size=8, eval_every=6, model_dropout=0.2)
    ok(run_worker(tmp_path, "full", 2, **opts))
    ok(run_worker(tmp_path, "half", 2, **{**opts, "steps": 6}))
    ok(run_worker(tmp_path, "half", 2, resume=True, steps=12))
    a, b = weights(tmp_path, "full"), weights(tmp_path, "half")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert records(tmp_path / "full") == records(tmp_path / "half")


def test_cli_rank_zero_writes_and_speaks_once(tmp_path):
    out = tmp_path / "run"
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "transformer", "train", "--task", "reverse",
           "--preset", "tiny", "--steps", "4", "--eval-every", "2", "--log-every", "1", "--n-train", "64",
           "--n-val", "8", "--n-test", "8", "--eval-examples", "8", "--no-progress", "--samples", "2",
           "--keep-checkpoints", "1", "--out", str(out)]
    proc = ok(subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT))
    lines = (proc.stdout + proc.stderr).splitlines()
    for start in ("training reverse", "step 2 val:", "step 4 val:", "final (4 steps", "run folder",
                  "checkpoint "):
        assert sum(line.lstrip().startswith(start) for line in lines) == 1, (start, lines)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "metrics.jsonl", "plots", "summary.json"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["LATEST", "step-00000004"]
    steps = [(r["step"], r["split"]) for r in records(out)]
    assert len(steps) == len(set(steps)) == 6  # train 1..4, val 2 and 4: each once
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2


def test_checksum_catches_a_diverged_rank(tmp_path):
    proc = run_worker(tmp_path, "bad", 2, steps=5, batch_size=8, eval_every=5, perturb_rank_at_step=[1, 3])
    assert proc.returncode != 0
    assert "RanksDivergedError" in proc.stdout and "at step 5" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count("RanksDivergedError") == 1  # raised on both ranks, said once


def test_nan_on_one_rank_stops_every_rank(tmp_path):
    proc = run_worker(tmp_path, "nan", 2, steps=8, batch_size=8, eval_every=2, nan_rank_at_step=[1, 3])
    assert proc.returncode != 0
    assert "NonFiniteLossError: loss is not finite at step 3 (on 1 of 2 ranks)" in proc.stdout, \
        proc.stdout + proc.stderr
    run = tmp_path / "nan"
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step-00000002"  # the last good one
    assert [r["step"] for r in records(run) if r["split"] == "error"] == [3]


def test_ctrl_c_on_the_launcher_stops_every_rank_and_saves_once(tmp_path):
    out = tmp_path / "run"
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "transformer", "train", "--task", "reverse",
           "--preset", "tiny", "--steps", "100000", "--eval-every", "100000", "--log-every", "1",
           "--n-train", "64", "--n-val", "8", "--n-test", "8", "--no-progress", "--samples", "0",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ((out / "metrics.jsonl").exists() and len(records(out)) >= 3):
            assert time.monotonic() < deadline and proc.poll() is None, "training did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does to mpiexec
        text, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in text.splitlines() if line.startswith("interrupted at step")]
    assert len(lines) == 1, text
    step = int(lines[0].split()[3].rstrip(";"))
    assert (out / "checkpoints" / "LATEST").read_text().strip() == f"step-{step:08d}"
    assert max(r["step"] for r in records(out)) == step
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]


def test_bench_mpi_runs(tmp_path):
    # The bench's code paths (1 rank x 2 threads, 2 ranks x 1 thread, the model) at toy size.
    _mpiexec()
    proc = ok(subprocess.run([sys.executable, "-m", "bench.mpi", "--configs", "toy", "--rounds", "1",
                              "--steps", "1"], env=_env(), cwd=ROOT, capture_output=True, text=True,
                             timeout=TIMEOUT))
    assert "| toy | 8,082 |" in proc.stdout and "| toy | 25 Gbit/s |" in proc.stdout, proc.stdout
