"""Where the time goes: an op profiler with FLOPs, bytes and this machine's roofline.

PyTorch's names, so habits carry over::

    from minitensor import profiler
    with profiler.profile() as prof:
        with profiler.record_function("encoder"):      # optional ranges of your own
            loss = model(x).mean()
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    prof.export_chrome_trace("trace.json")             # open in https://ui.perfetto.dev

One row per op and phase (forward, backward): calls, total and self time, FLOPs (each
op states its own, ``ops/costs.py``), bytes moved, GFLOP/s, GB/s, and the share of the
roofline (``roofline.py``: peak FLOP/s and memory bandwidth, probed once and cached).

Files: ``recorder.py`` (``profile``, ``record_function``: the events), ``averages.py``
(``key_averages`` and its table), ``trace.py`` (Chrome trace JSON), ``roofline.py``.
"""
from .averages import EventAverage, EventAverages
from .recorder import Event, ProfilerActivity, profile, record_function
from .roofline import Roofline, measure_roofline, roofline_cache_path

__all__ = ["Event", "EventAverage", "EventAverages", "ProfilerActivity", "Roofline", "measure_roofline",
           "profile", "record_function", "roofline_cache_path"]
