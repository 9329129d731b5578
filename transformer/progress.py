"""The training progress bar, and the word "compiling" while Numba compiles kernels.

The Numba backend compiles each kernel the first time it runs (then caches it on disk),
so a fresh clone's first training step takes seconds to minutes. `CompileWatch` listens
to Numba's own "numba:compile" event, which fires only on a real compilation (never for
a kernel loaded from the cache): the first one prints "compiling kernels (first run
only)", and the seconds spent compiling are handed back so that the trainer can keep
them out of tokens/s and the bar's ETA. With a warm cache (or the NumPy backend) it says
nothing.

    bar = TrainProgress(cfg, start_step, say)
    ... one step ...
    compile_s = bar.take_compile_seconds()   # compiled during that step
    bar.update(loss, lr, tokens_per_sec)     # the bar's clock skips compile_s
    bar.write("step 250 val: ...")
    bar.close()
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from tqdm import tqdm

from minitensor import kernels

COMPILE_EVENT = "numba:compile"
COMPILING_MESSAGE = "compiling kernels (first run only; later runs load them from Numba's cache)"


class CompileWatch:
    """Counts the seconds Numba spends compiling; says so once, when it starts.

    A numba.core.event listener for "numba:compile" (only fired on a cache miss).
    Nested compilations (a kernel calling another) are counted once, by their outermost.
    """

    def __init__(self, say: Callable[[str], None]):
        self._say, self._said = say, False
        self._depth, self._started, self._seconds = 0, 0.0, 0.0
        self._lock = threading.Lock()
        self._listener = None
        if kernels.backend_name() == "numba":
            self._listener = _numba_listener(self)
            self._listener.register()

    def on_start(self, event) -> None:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._started = time.perf_counter()
            first = not self._said
            self._said = True
        if first:
            self._say(COMPILING_MESSAGE)

    def on_end(self, event) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._seconds += time.perf_counter() - self._started

    @property
    def compiled(self) -> bool:
        """True once a compilation was seen."""
        return self._said

    def take_seconds(self) -> float:
        """Seconds of compilation finished since the last call."""
        with self._lock:
            seconds, self._seconds = self._seconds, 0.0
        return seconds

    def close(self) -> None:
        if self._listener is not None:
            self._listener.unregister()
            self._listener = None


def _numba_listener(watch: CompileWatch):
    """A numba.core.event.Listener (numba wants that class) forwarding to `watch`."""
    from numba.core import event  # numba is loaded already: it is the active backend

    class Forward(event.Listener):
        def on_start(self, e):
            watch.on_start(e)

        def on_end(self, e):
            watch.on_end(e)

        def register(self):
            event.register(COMPILE_EVENT, self)

        def unregister(self):
            event.unregister(COMPILE_EVENT, self)

    return Forward()


class TrainProgress:
    """A tqdm bar over the steps (or none, with cfg.progress off) plus a CompileWatch.

    Messages (`write`) go above the bar, or to `say` when there is no bar.
    """

    def __init__(self, cfg, start: int, say: Callable[[str], None], show: bool = True):
        self._say = say
        self.bar = None
        if cfg.progress and show:
            self.bar = tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.task}", unit="step",
                            dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        self.watch = CompileWatch(self.write)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            self._say(message)

    def take_compile_seconds(self) -> float:
        """Seconds compiled since the last call; the bar's clock is moved past them."""
        seconds = self.watch.take_seconds()
        if seconds and self.bar is not None:
            # tqdm's rate and ETA come from start_t and last_print_t: shift both, so the
            # compile time counts as if the bar had been paused.
            self.bar.start_t += seconds
            self.bar.last_print_t += seconds
        return seconds

    def update(self, loss: float, lr: float, tokens_per_sec: float) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        # The training loss is label-smoothed (so it cannot reach 0); the evaluation
        # lines print the plain cross-entropy. Say which is which.
        self.bar.set_postfix_str(f"train loss {loss:.3f} (label-smoothed) lr={lr:.2e} "
                                 f"tok/s={tokens_per_sec:,.0f}", refresh=False)

    def close(self) -> None:
        self.watch.close()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
