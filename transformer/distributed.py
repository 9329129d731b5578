"""Data-parallel training over MPI (mpi4py): the world, its collectives, and batch sharding.

Launched as ``mpiexec -n N python -m transformer train ...``, every rank runs the same
trainer on the same data stream. One step, seen from rank r of N::

    batch = stream.next()                   # the same global batch on every rank
    shard = shard_batch(batch, r, N)        # rows [r*B//N, (r+1)*B//N): disjoint, covering
    loss_r = problem.loss(model, shard)     # a mean over w_r targets (tokens or examples)
    loss_r.backward()
    W = Allreduce(w_r)                      # with the loss and the NaN / Ctrl-C flags
    grad = Allreduce(grad_r * w_r / W)      # one flat buffer: the global batch's mean gradient
    clip, optimizer.step()                  # identical on every rank

Weighting each rank's mean by its share w_r / W of the global targets is what makes
N ranks equal one process on the same global batch, whatever the padding, label
smoothing or an uneven split (see `loss_weight`). Rank 0 broadcasts its initial
parameters; every few hundred steps, and at the end, `check_in_sync` compares cheap
parameter checksums across ranks. Only rank 0 (`is_writer`) logs, evaluates and
writes files; what the others must know of its results (validation metrics, for
example) comes through `broadcast`.

A plain run never imports mpi4py: `world()` reads the launcher's environment
variables first and builds a one-process `World` whose collectives do nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

import minitensor as mt

from .config import ConfigError
from .data.batching import LMBatch, Seq2SeqBatch
from .data.vocab import PAD_ID

# What MPI launchers put in each rank's environment: MPICH/Hydra and Intel MPI set
# PMI_SIZE, Open MPI sets OMPI_COMM_WORLD_SIZE. Reading them costs nothing, importing
# mpi4py (which initializes MPI) costs ~0.1 s and needs the `mpi` extra.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")

# How often (in steps) the ranks compare parameter checksums; also done at the end.
CHECK_EVERY = 200

# Salt of the per-rank dropout streams, so they never coincide with the seed's other uses.
_DROPOUT_STREAM = 0x64726F70  # "drop"


class RanksDivergedError(RuntimeError):
    """The ranks' parameters are no longer identical (raised on every rank alike)."""


def launched_world_size() -> int:
    """The world size an MPI launcher announced in the environment (1 if none)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def launched_rank() -> int:
    """This process's rank as the launcher announced it (0 if none); needs no mpi4py."""
    for name in LAUNCHER_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


# ---- sharding ----------------------------------------------------------------------------------


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [lo, hi) of an n-row global batch that `rank` of `size` takes (sizes differ by <= 1)."""
    return rank * n // size, (rank + 1) * n // size


def shard_batch(batch: Any, rank: int, size: int) -> Any:
    """This rank's disjoint slice of a global batch (any of the batch dataclasses).

    Every array whose first axis is the batch axis is sliced; the padded width stays
    the global batch's, so each row is computed on exactly the shapes one process
    would use. `Seq2SeqBatch.ntokens` is recounted for the slice.

    Args:
        batch: a Seq2SeqBatch, ClassifyBatch, SpanBatch or LMBatch with B rows.
        rank, size: this rank and the world size.

    Returns:
        A batch of the same type with rows shard_bounds(B, rank, size) (maybe 0 rows).
    """
    n = len(batch)
    lo, hi = shard_bounds(n, rank, size)
    changes = {f.name: value[lo:hi] for f in dataclasses.fields(batch)
               if isinstance(value := getattr(batch, f.name), np.ndarray) and value.ndim and len(value) == n}
    if isinstance(batch, Seq2SeqBatch):
        changes["ntokens"] = int((changes["tgt_out"] != PAD_ID).sum())
    return dataclasses.replace(batch, **changes)


def loss_weight(batch: Any) -> int:
    """How many terms the problem's training loss averages over, for this batch.

    The problems' losses (problems/*.py) are means: seq2seq over the non-PAD target
    tokens (ignore_index=PAD, with or without label smoothing), lm over every target
    position, classify and span over the examples. A rank's mean, weighted by this
    count over the global count, is its exact share of the global batch's mean.
    """
    if isinstance(batch, Seq2SeqBatch):
        return int(batch.ntokens)
    if isinstance(batch, LMBatch):
        return int(batch.y.size)
    return len(batch)


def dropout_state(seed: int, rank: int, step: int) -> dict:
    """The RNG state rank `rank` uses for step `step`'s dropout masks.

    Derived from (seed, rank, step) alone, a rank's dropout stream needs no saving:
    a run resumed with any number of ranks continues it from the step counter.
    """
    return np.random.PCG64([_DROPOUT_STREAM, seed, rank, step]).state


# ---- the world -------------------------------------------------------------------------------


@dataclass
class StepTotals:
    """What the ranks add up each step: the global loss and the flags."""

    loss: float          # the global batch's mean loss
    weight: float        # the global count the loss averages over
    failed_ranks: int    # ranks whose loss was NaN/Inf
    stop: bool           # some rank asked to stop (Ctrl-C)
    grad_ranks: np.ndarray  # (P,) per parameter, how many ranks have a gradient for it


class World:
    """The ranks of one training run: rank, size, and the collectives the trainer uses.

    `World()` with no communicator is the one-process world (every collective returns
    its input); `world()` builds the right one.

    Attributes:
        rank: this process's rank, 0..size-1.
        size: the number of ranks.
        local_size: ranks on this machine (for the thread count).
        comm: the mpi4py communicator, or None in one process.
    """

    def __init__(self, comm: Any = None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.local_size = 1
        if comm is not None and self.size > 1:
            from mpi4py import MPI
            node = comm.Split_type(MPI.COMM_TYPE_SHARED)
            self.local_size = node.Get_size()
            node.Free()

    @property
    def is_writer(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.comm is not None

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size}, local_size={self.local_size})"

    def threads(self, requested: int) -> int:
        """Kernel + BLAS threads for this rank: `requested`, or (0) cores / ranks on this machine.

        In one process 0 means "leave the libraries' defaults", as `kernels.threads` reads
        it; with several ranks per machine those defaults (one thread per core in each
        rank) would oversubscribe the cores, so 0 becomes the rank's fair share.
        """
        if requested > 0 or not self.distributed:
            return requested
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // self.local_size)

    # -- collectives --------------------------------------------------------------------------
    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (a small dict, list or number) on every rank."""
        return value if not self.distributed else self.comm.bcast(value if self.is_writer else None, root=0)

    def broadcast_parameters(self, params: Sequence[mt.Tensor]) -> None:
        """Overwrite every rank's parameters with rank 0's (one flat message)."""
        if not self.distributed:
            return
        flat = _flatten([p.data for p in params])
        self.comm.Bcast(flat, root=0)
        _unflatten(flat, [p.data for p in params])

    def reduce_step(self, loss: float, weight: int, stop: bool, params: Sequence[mt.Tensor]) -> StepTotals:
        """Add up the ranks' weighted losses, weights and flags (one small float64 Allreduce).

        Args:
            loss: this rank's mean loss (NaN/Inf marks a failed rank; ignored if weight is 0).
            weight: the count this rank's loss averages over (`loss_weight` of its shard).
            stop: this rank wants to stop after the step (e.g. Ctrl-C).
            params: the parameters (which of them have a gradient is counted too).
        """
        failed = not math.isfinite(loss)
        local = np.array([0.0 if failed else loss * weight, weight, failed, stop,
                          *(p.grad is not None for p in params)], dtype=np.float64)
        if self.distributed:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, local, op=MPI.SUM)
        total_loss, total_weight, n_failed, n_stop = local[:4]
        return StepTotals(total_loss / max(total_weight, 1.0), total_weight, int(n_failed), n_stop > 0,
                          local[4:])

    def average_gradients(self, params: Sequence[mt.Tensor], share: float, grad_ranks: np.ndarray) -> None:
        """Replace each rank's gradients by the global batch's: sum over ranks of share_r * grad_r.

        One Allreduce over a flat buffer of every gradient. A parameter without a
        gradient on this rank (an empty shard) contributes zeros; one without a
        gradient on every rank keeps `grad = None`, as it would in one process
        (so AdamW does not decay it).

        Args:
            params: the model's parameters, in the same order on every rank.
            share: this rank's weight / the global weight (from `reduce_step`).
            grad_ranks: (P,) ranks with a gradient per parameter (from `reduce_step`).
        """
        if not self.distributed:
            return
        from mpi4py import MPI
        dtype = params[0].data.dtype
        grads = [p.grad.data if p.grad is not None else np.zeros(p.shape, dtype) for p in params]
        flat = _flatten(grads)
        flat *= share
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        out = [np.empty(p.shape, dtype) for p in params]
        _unflatten(flat, out)
        for p, g, n in zip(params, out, grad_ranks):
            p.grad = mt.Tensor(g) if n > 0 else None

    def check_in_sync(self, named_params: Sequence[tuple[str, mt.Tensor]], step: int) -> None:
        """Raise RanksDivergedError (on every rank) unless all ranks hold the same parameters.

        The checksum is each parameter's sum and sum of squares in float64; one
        Allreduce(MAX) of (c, -c) gives the largest and smallest value over ranks.
        """
        if not self.distributed:
            return
        from mpi4py import MPI
        sums = np.array([[p.data.sum(dtype=np.float64), np.square(p.data, dtype=np.float64).sum()]
                         for _, p in named_params]).reshape(-1)
        both = np.concatenate([sums, -sums])
        self.comm.Allreduce(MPI.IN_PLACE, both, op=MPI.MAX)
        highest, lowest = both[: len(sums)], -both[len(sums):]
        differ = [named_params[i // 2][0] for i in np.flatnonzero(highest != lowest)]
        if differ:
            names = ", ".join(dict.fromkeys(differ))
            raise RanksDivergedError(
                f"the {self.size} ranks' parameters differ at step {step} ({names}); "
                "data-parallel training needs identical parameters on every rank "
                "(was a rank's model or optimizer changed outside the trainer?)")

    @contextlib.contextmanager
    def abort_on_error(self, *collective: type[BaseException]) -> Iterator[None]:
        """Turn an error raised on one rank only into MPI_Abort of the whole job.

        Errors of the `collective` types are raised by every rank at the same point
        (a NaN, Ctrl-C, diverged ranks) and end the ranks cleanly. Any other error may
        hit one rank while the others wait in a collective forever: print it and abort.
        """
        try:
            yield
        except collective:
            raise
        except BaseException:
            if not self.distributed:
                raise
            # sys.__stderr__: the CLI silences ranks > 0, but not their last words
            traceback.print_exc(file=sys.__stderr__)
            print(f"rank {self.rank}: aborting all {self.size} ranks", file=sys.__stderr__, flush=True)
            self.comm.Abort(1)


def _flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0)


def _unflatten(flat: np.ndarray, into: Sequence[np.ndarray]) -> None:
    start = 0
    for a in into:
        a[...] = flat[start:start + a.size].reshape(a.shape)
        start += a.size


_WORLD: World | None = None


def world(force: bool = False) -> World:
    """The world of this process (built once).

    mpi4py is imported only when a launcher announced several ranks, or `force` is
    given (e.g. ``--distributed``, to exercise the MPI path with ``mpiexec -n 1``).

    Raises:
        ConfigError: several ranks (or `force`) but mpi4py is not installed.
    """
    global _WORLD
    if _WORLD is not None and (_WORLD.distributed or not force):
        return _WORLD
    if launched_world_size() > 1 or force:
        try:
            from mpi4py import MPI
        except ImportError:
            raise ConfigError("training on several MPI ranks needs mpi4py: "
                              "pip install 'minitensor[mpi]' (mpi4py and mpich)") from None
        _WORLD = World(MPI.COMM_WORLD)
    else:
        _WORLD = World()
    return _WORLD
