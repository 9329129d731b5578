"""What the command line prints: `input -> output` lines, skipped inputs, the run's files
after training, the Ctrl-C resume hint, the compile notice, the loss labels, the plots."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest

from minitensor import kernels
from transformer import trainer as trainer_module
from transformer.cli import main
from transformer.config import TrainConfig
from transformer.plots import describe_attention, plot_attention_maps
from transformer.progress import COMPILING_MESSAGE, CompileWatch, TrainProgress

TINY = ["--preset", "tiny", "--no-progress", "--n-train", "96", "--n-val", "16", "--n-test", "16",
        "--batch-size", "16"]


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "rev"
    assert main(["train", "--task", "reverse", "--task-opt", "max_len=8", "--steps", "30", "--eval-every", "30",
                 "--no-plots", "--samples", "0", "--out", str(out), *TINY]) == 0
    return out


def test_translate_prints_input_arrow_output_and_plain(capsys, reverse_run):
    code, out, err = _cli(capsys, "translate", "--checkpoint", str(reverse_run), "abc", "hgf")
    lines = out.splitlines()
    assert code == 0 and err == "" and len(lines) == 2
    assert lines[0].startswith("abc -> ") and lines[1].startswith("hgf -> ")
    code, plain, _ = _cli(capsys, "translate", "--checkpoint", str(reverse_run), "--plain", "abc", "hgf")
    assert code == 0 and plain.splitlines() == [line.split(" -> ", 1)[1] for line in lines]


def test_unreadable_inputs_are_skipped_by_position_and_the_rest_answered(capsys, reverse_run):
    code, out, err = _cli(capsys, "translate", "--checkpoint", str(reverse_run), "abc", "ab#c!", "", "hg")
    assert code == 1
    assert err.splitlines() == ["error: input 2 'ab#c!' skipped: it has characters the model never saw: '#!'",
                                "error: input 3 '' skipped: it is empty"]
    assert [line.split(" -> ")[0] for line in out.splitlines()] == ["abc", "hg"]


@pytest.mark.parametrize("beam", [1, 2, 3, 4])
def test_translate_beam_on_many_inputs_equals_one_at_a_time(capsys, reverse_run, beam):
    texts = ["ab", "abcdefgh", "h", "dcbaef", "ggg"]
    code, out, _ = _cli(capsys, "translate", "--checkpoint", str(reverse_run), "--beam", str(beam), *texts)
    assert code == 0
    alone = [_cli(capsys, "translate", "--checkpoint", str(reverse_run), "--beam", str(beam), t)[1] for t in texts]
    assert out.splitlines() == [a.rstrip("\n") for a in alone]
    if beam == 1:
        greedy = _cli(capsys, "translate", "--checkpoint", str(reverse_run), *texts)[1]
        assert out == greedy


def test_end_of_training_names_the_files_and_next_commands(capsys, tmp_path):
    out = tmp_path / "run"
    code, text, _ = _cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "2",
                         "--eval-every", "2", "--samples", "0", "--plots", "--out", str(out), *TINY)
    assert code == 0
    tail = text[text.index(f"run folder {out}:"):].splitlines()
    assert tail[1].split() == ["checkpoint", str(out / "checkpoints" / "step-00000002")]
    assert tail[2].startswith(f"  metrics log  {out / 'metrics.jsonl'}")
    assert tail[3].split() == ["summary", str(out / "summary.json")]
    assert tail[4].startswith(f"  plots        {out / 'plots'}/  (loss.png, attention_*.png (3 files))")
    assert tail[5] == "next:" and tail[6].startswith(f"  python -m transformer translate --checkpoint {out} ")
    assert f"train --resume --out {out} --steps 4" in tail[8]


def test_ctrl_c_message_names_the_out_to_resume(capsys, tmp_path, monkeypatch):
    @contextlib.contextmanager
    def ctrl_c_after_first_step():
        yield lambda: True

    monkeypatch.setattr(trainer_module, "_deferred_sigint", ctrl_c_after_first_step)
    out = tmp_path / "my run"
    code, _, err = _cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "50",
                        "--no-plots", "--out", str(out), *TINY)
    assert code == 130
    assert err.strip() == (f"interrupted at step 1; checkpoint saved to {out / 'checkpoints' / 'step-00000001'}; "
                           f"continue with `python -m transformer train --resume --out '{out}'`")


def test_loss_labels_say_smoothed_vs_plain(capsys, tmp_path):
    code, out, _ = _cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "2",
                        "--eval-every", "2", "--samples", "0", "--no-plots", "--out", str(tmp_path / "r"), *TINY)
    assert code == 0
    assert "step 2 val: loss=" in out and "(plain cross-entropy)" in out
    bar = TrainProgress(TrainConfig(progress=True, steps=3), 0, print)
    bar.update(0.731, 1e-3, 1234.0)
    bar.bar.refresh()
    bar.close()
    assert "train loss 0.731 (label-smoothed)" in capsys.readouterr().err


def test_compile_seconds_leave_the_bar_clock(capsys):
    bar = TrainProgress(TrainConfig(progress=True, steps=3), 0, print)
    start = bar.bar.start_t
    bar.watch.on_start(None)   # what numba's "numba:compile" event calls
    time.sleep(0.05)
    bar.watch.on_start(None)   # a nested compilation counts once
    bar.watch.on_end(None)
    bar.watch.on_end(None)
    seconds = bar.take_compile_seconds()
    assert seconds >= 0.05 and bar.bar.start_t == pytest.approx(start + seconds)
    assert bar.take_compile_seconds() == 0.0
    bar.close()
    err = capsys.readouterr().err
    assert err.count(COMPILING_MESSAGE) == 1


@pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")
def test_compile_watch_hears_numba_compile_and_not_a_warm_function():
    import numba

    said = []
    with kernels.use("numba"):
        watch = CompileWatch(said.append)
        try:
            fresh = numba.njit(lambda x: x + 1)  # not cached: compiles on its first call
            fresh(1)
            assert said == [COMPILING_MESSAGE] and watch.take_seconds() > 0
            fresh(2)                            # compiled already: nothing to say or count
            assert said == [COMPILING_MESSAGE] and watch.take_seconds() == 0.0
        finally:
            watch.close()
    fresh(2.5)  # a new signature after close: the watch no longer listens
    assert said == [COMPILING_MESSAGE]


def test_attention_plot_names_axes_tokens_and_example(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn = []
    real_save = Figure.savefig

    def keep(fig, *args, **kwargs):
        drawn.append(fig)
        return real_save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    w = np.full((1, 2, 3, 4), 0.25)
    name = "transformer.decoder.layers.1.multihead_attn"
    labels = {name: (["<bos>", "a", "b"], ["b", " ", "a", "<eos>"])}
    (path,) = plot_attention_maps({name: w}, tmp_path, labels, caption="input 'ab' -> output 'ba'")
    assert path.exists() and path.stat().st_size > 0
    fig = drawn[0]
    heads = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert len(heads) == 2 and len(fig.axes) == 3  # two heads and a colorbar
    assert fig.axes[2].get_ylabel() == "attention weight"
    assert fig.get_suptitle() == "decoder layer 1: cross-attention\ninput 'ab' -> output 'ba'"
    assert heads[0].get_ylabel().startswith("query") and heads[0].get_xlabel().startswith("key")
    assert [t.get_text() for t in heads[0].get_yticklabels()] == ["BOS", "a", "b"]
    assert [t.get_text() for t in heads[0].get_xticklabels()] == ["b", "␣", "a", "EOS"]
    # nothing is cut off: every tick label lies inside the figure
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for t in heads[0].get_xticklabels() + heads[0].get_yticklabels():
        b = t.get_window_extent(renderer)
        assert b.x0 >= box.x0 - 1 and b.y0 >= box.y0 - 1 and b.x1 <= box.x1 + 1 and b.y1 <= box.y1 + 1
    assert describe_attention("transformer.encoder.layers.0.self_attn")[0] == "encoder layer 0: self-attention"
    assert describe_attention("transformer.decoder.layers.2.self_attn")[0] == "decoder layer 2: self-attention (causal)"
