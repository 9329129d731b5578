"""Tests for the command line (`python -m transformer ...`).

Most tests call `cli.main([...])` in-process (fast) and read stdout/stderr with
capsys; a few run a real subprocess for what only a process can show: the
`__main__` entry point, exit statuses, and a real Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transformer import checkpoint as ckpt
from transformer.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "eval", "translate", "generate", "classify", "answer", "gradcheck"]
TINY = ["--preset", "tiny", "--no-progress", "--no-plots", "--n-train", "96", "--n-val", "16",
        "--n-test", "16", "--batch-size", "16", "--samples", "3"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory) -> Path:
    """A tiny trained reverse run, shared by the inference tests."""
    out = tmp_path_factory.mktemp("cli") / "rev"
    assert main(["train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "4",
                 "--eval-every", "2", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def brackets_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "br"
    assert main(["train", "--task", "brackets", "--steps", "2", "--eval-every", "2", "--out", str(out), *TINY]) == 0
    return out


# ---- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_for_every_command(capsys, command):
    argv = ["--help"] if command is None else [command, "--help"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    assert out.startswith("usage: python -m transformer")
    if command is None:
        for c in COMMANDS:
            assert c in out


def test_every_flag_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_train_flags_include_the_documented_ones():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    flags = {s for a in sub.choices["train"]._actions for s in a.option_strings}
    for flag in ("--task", "--preset", "--steps", "--out", "--resume", "--seed", "--batch-size",
                 "--lr", "--eval-every", "--no-plots", "--text", "--d-model", "--warmup"):
        assert flag in flags


# ---- bad input: one line, exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize("argv, fragments", [
    (["train", "--task", "nope"], ["--task", "nope"]),
    (["train", "--steps", "-1"], ["--steps", "must be >= 1"]),
    (["train", "--steps", "ten"], ["--steps", "expected an integer"]),
    (["train", "--lr", "0"], ["--lr", "must be > 0"]),
    (["train", "--lr", "nan"], ["--lr"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--preset", "huge"], ["--preset"]),
    (["train", "--task", "reverse", "--text", "a.txt"], ["--text is for the lm task"]),
    (["train", "--task-opt", "oops"], ["KEY=VALUE"]),
    (["frobnicate"], ["frobnicate"]),
    ([], ["required"]),
    (["translate", "hello"], ["--checkpoint"]),
    (["generate", "--checkpoint", "x", "--prompt", "a", "--temperature", "0"], ["--temperature"]),
])
def test_bad_flags_exit_2_with_one_line(capsys, argv, fragments):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_bad_values_found_after_parsing_exit_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=0", "--out", str(tmp_path / "x"), *TINY)
    assert_one_line_error(code, err, "max_len")
    code, _, err = run_cli(capsys, "train", "--task", "reverse", "--task-opt", "colour=3", "--out", str(tmp_path / "x"), *TINY)
    assert_one_line_error(code, err, "unknown option")
    code, _, err = run_cli(capsys, "train", "--d-model", "30", "--nhead", "4", "--out", str(tmp_path / "x"), *TINY)
    assert_one_line_error(code, err, "divisible")


def test_empty_text_file_exit_2(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--text", str(empty), "--out", str(tmp_path / "lm"), *TINY)
    assert_one_line_error(code, err, "empty.txt", "empty")
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--text", str(tmp_path / "missing.txt"),
                           "--out", str(tmp_path / "lm"), *TINY)
    assert_one_line_error(code, err, "not found")


def test_missing_checkpoint_exit_2(capsys, tmp_path):
    for argv in (["eval", "--checkpoint", str(tmp_path / "nothing")],
                 ["translate", "--checkpoint", str(tmp_path), "abc"],
                 ["train", "--resume", "--out", str(tmp_path / "nothing"), *TINY]):
        code, _, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, "checkpoint")


def test_mismatched_checkpoint_exit_2(capsys, reverse_run, brackets_run):
    code, _, err = run_cli(capsys, "translate", "--checkpoint", str(brackets_run), "(())")
    assert_one_line_error(code, err, "classify model", "`classify`")
    code, _, err = run_cli(capsys, "classify", "--checkpoint", str(reverse_run), "abc")
    assert_one_line_error(code, err, "seq2seq model", "`translate`")
    code, _, err = run_cli(capsys, "train", "--resume", "--task", "dates", "--out", str(reverse_run), *TINY)
    assert_one_line_error(code, err, "task 'reverse', not 'dates'")
    # Unreadable inputs are skipped with one line each (see test_cli_output.py); exit 1.
    code, out, err = run_cli(capsys, "translate", "--checkpoint", str(reverse_run), "ABC")
    assert code == 1 and out == "" and err.strip() == (
        "error: input 1 'ABC' skipped: it has characters the model never saw: 'ABC'")
    code, out, err = run_cli(capsys, "translate", "--checkpoint", str(reverse_run), "abc" * 50)
    assert code == 1 and out == "" and "longer than the model's limit" in err


def test_corrupt_checkpoint_exit_2(capsys, tmp_path, reverse_run):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(reverse_run, bad)
    folder = ckpt.find_checkpoint(bad)
    (folder / "model.safetensors").write_bytes(b"\x00garbage")
    code, _, err = run_cli(capsys, "eval", "--checkpoint", str(bad))
    assert_one_line_error(code, err, "unreadable")


# ---- commands that work -------------------------------------------------------------------------


def test_train_prints_samples_and_final_metrics(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "2",
                             "--eval-every", "2", "--out", str(tmp_path / "r"), *TINY)
    assert code == 0, err
    assert "samples (test split):" in out
    samples = out.split("samples (test split):")[1].split("final")[0].strip().splitlines()
    assert len(samples) == 3 and all(" -> " in s and ("✓" in s or "✗" in s) for s in samples)
    assert "final (2 steps" in out and "tokens/s" in out and "exact_match" in out
    assert (tmp_path / "r" / "metrics.jsonl").exists()


def test_resume_continues(capsys, tmp_path):
    argv = ["train", "--task", "reverse", "--task-opt", "max_len=6", "--eval-every", "2", "--out", str(tmp_path / "r"), *TINY]
    assert run_cli(capsys, *argv, "--steps", "2")[0] == 0
    code, out, _ = run_cli(capsys, "train", "--resume", "--steps", "4", "--out", str(tmp_path / "r"), "--no-progress",
                           "--samples", "0")
    assert code == 0 and out.startswith("resuming reverse (tiny)") and "steps 2 -> 4" in out
    assert ckpt.load_checkpoint(tmp_path / "r").step == 4
    code, _, err = run_cli(capsys, "train", "--resume", "--lr", "0.5", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "--lr cannot change")


def test_eval_translate_classify(capsys, reverse_run, brackets_run):
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", str(reverse_run))
    assert code == 0 and "exact_match" in out and "test split" in out
    code, out, _ = run_cli(capsys, "translate", "--checkpoint", str(reverse_run), "--plain", "abc", "xyz")
    assert code == 0 and out.count("\n") == 2  # one line per input (an untrained model may say "")
    code, out, _ = run_cli(capsys, "translate", "--checkpoint", str(reverse_run), "--beam", "3", "abc")
    assert code == 0 and out.count("\n") == 1 and out.startswith("abc -> ")
    code, out, _ = run_cli(capsys, "classify", "--checkpoint", str(brackets_run), "--plain", "([])", "(]")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and all(l.split("\t")[0] in ("balanced", "unbalanced") for l in lines)


def test_answer_and_generate(capsys, tmp_path):
    span = tmp_path / "span"
    assert run_cli(capsys, "train", "--task", "kv_span", "--steps", "2", "--eval-every", "2", "--out", str(span), *TINY)[0] == 0
    code, out, _ = run_cli(capsys, "answer", "--checkpoint", str(span), "--context", "a=17;qx=5;b=203", "--query", "qx",
                           "--plain")
    assert code == 0 and out.strip() and set(out.strip()) <= set("abcdefghijklmnopqrstuvwxyz0123456789=;")
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    lm = tmp_path / "lm"
    assert run_cli(capsys, "train", "--task", "lm", "--text", str(text), "--steps", "2", "--eval-every", "2",
                   "--block-size", "16", "--out", str(lm), *TINY)[0] == 0
    code, out, _ = run_cli(capsys, "generate", "--checkpoint", str(lm), "--prompt", "the ", "--max-new-tokens", "20",
                           "--temperature", "0.8", "--top-k", "5")
    assert code == 0 and out.startswith("the ") and len(out.rstrip("\n")) == 24
    code, _, err = run_cli(capsys, "answer", "--checkpoint", str(lm), "--context", "a=1", "--query", "a")
    assert_one_line_error(code, err, "lm model", "`generate`")


def test_nan_exits_1_keeping_checkpoint(capsys, tmp_path, monkeypatch):
    from transformer.problems import Seq2SeqProblem
    real = Seq2SeqProblem.loss
    calls = []

    def poisoned(self, model, batch, ls):
        calls.append(1)
        loss = real(self, model, batch, ls)
        return loss * float("inf") if len(calls) >= 3 else loss

    monkeypatch.setattr(Seq2SeqProblem, "loss", poisoned)
    code, _, err = run_cli(capsys, "train", "--task", "reverse", "--task-opt", "max_len=6", "--steps", "6",
                           "--eval-every", "2", "--out", str(tmp_path / "nan"), *TINY)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "step 3" in lines[0] and "last good checkpoint" in lines[0]
    assert ckpt.load_checkpoint(tmp_path / "nan").step == 2


def test_gradcheck_command(capsys):
    code, out, _ = run_cli(capsys, "gradcheck", "--no-layers")
    assert code == 0
    lines = out.strip().splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["op", "max abs err", "ok"]
    assert lines[-1].endswith("passed") and "FAIL" not in out


# ---- real processes ---------------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_module_entry_point_and_exit_status():
    proc = subprocess.run([sys.executable, "-m", "transformer", "train", "--steps", "-1"],
                          capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_ctrl_c_saves_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "sigint"
    proc = subprocess.Popen(
        [sys.executable, "-m", "transformer", "train", "--task", "reverse", "--task-opt", "max_len=6",
         "--steps", "100000", "--eval-every", "100000", "--log-every", "1", "--out", str(out), *TINY],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        log = out / "metrics.jsonl"
        while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
            time.sleep(0.1)
        assert log.exists(), "training did not start"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted at step ") and "--resume" in lines[0]
    step = int(lines[0].split("interrupted at step ")[1].split(";")[0])
    found = ckpt.load_checkpoint(out)
    assert found.step == step >= 3
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == step
