"""`BatchStream`: endless training batches with a position that a checkpoint can hold.

Resuming a run bit for bit needs the exact next batch: the stream saves the loader
Generator's state at the start of the current epoch and how far into the epoch it is,
and replays the epoch's shuffle on load.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from .batching import BatchLoader


class BatchStream:
    """Endless batches from a BatchLoader, with a position that can be saved and restored.

    The loader draws each epoch's order from its Generator; the stream remembers the
    Generator's state at the start of the current epoch and how many batches of the
    epoch it handed out, which is enough to rebuild the exact same next batch.
    """

    def __init__(self, loader: BatchLoader):
        self.loader = loader
        self.epoch = 0
        self.pos = 0
        self._order: list[np.ndarray] | None = None
        self._epoch_rng: dict | None = None

    def _start_epoch(self) -> None:
        self._epoch_rng = copy_state(self.loader.rng.bit_generator.state)
        self._order = self.loader.epoch_indices()
        self.pos = 0

    def next(self) -> Any:
        """The next batch (a new epoch starts when one runs out)."""
        if self._order is None:
            self._start_epoch()
        elif self.pos >= len(self._order):
            self.epoch += 1
            self._start_epoch()
        idx = self._order[self.pos]
        self.pos += 1
        return self.loader.collate([self.loader.items[i] for i in idx])

    def state_dict(self) -> dict:
        rng = self._epoch_rng if self._order is not None else self.loader.rng.bit_generator.state
        return {"epoch": self.epoch, "pos": self.pos, "started": self._order is not None,
                "rng": copy_state(rng)}

    def load_state_dict(self, state: dict) -> None:
        self.loader.rng.bit_generator.state = copy_state(state["rng"])
        self.epoch = int(state["epoch"])
        if state["started"]:
            self._start_epoch()  # replays the epoch's shuffle from its saved starting state
            self.pos = int(state["pos"])
        else:
            self._order, self._epoch_rng, self.pos = None, None, 0


def copy_state(state: dict) -> dict:
    """A deep copy of a JSON-like RNG state (a bit generator's `.state`, minitensor's RNG state)."""
    return json.loads(json.dumps(state))
