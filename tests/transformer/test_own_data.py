"""Your own data: `train --task translate|classify --data FILE`, from Python too.

Bad files are refused with one line naming the file, the line and what is wrong; the
example files train; held-out splits are carved by seed or given as files.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from transformer.cli import main
from transformer.data import DataFileError, carve_splits, check_pairs, example_file, read_pairs
from transformer.runs import load_model
from transformer.train import train

TINY = ["--preset", "tiny", "--no-progress", "--no-plots", "--batch-size", "16", "--samples", "2"]


def _file(tmp_path: Path, text: str, name: str = "d.tsv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- reading and checking ----------------------------------------------------------------------


def test_read_pairs_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = _file(tmp_path, "one\t1\n\n  two \t 2\n")
    pairs, lines = read_pairs(path, "translate")
    assert pairs == [("one", "1"), ("two", "2")] and lines == [1, 3]


@pytest.mark.parametrize("text, kind, message", [
    ("one\t1\ntwo 2\n", "translate",
     "d.tsv:2: no tab in 'two 2' (expected one 'source<TAB>target' a line)"),
    ("a\tb\tc\n", "translate",
     "d.tsv:1: 2 tabs in 'a\\tb\\tc' (expected exactly one: one 'source<TAB>target' a line)"),
    ("one\t1\nthree\t\n", "translate", "d.tsv:2: the target is empty in 'three\\t'"),
    ("\tpos\n", "classify", "d.tsv:1: the text is empty in '\\tpos'"),
    ("", "classify", "d.tsv: the file is empty (expected one 'text<TAB>label' a line)"),
    ("\n  \n", "translate", "d.tsv: the file is empty (expected one 'source<TAB>target' a line)"),
])
def test_bad_file_lines_are_named(tmp_path, text, kind, message):
    path = _file(tmp_path, text)
    with pytest.raises(DataFileError) as err:
        read_pairs(path, kind)
    assert str(err.value) == f"{tmp_path}/{message}"


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataFileError, match=r"nope.tsv: the data file does not exist$"):
        read_pairs(tmp_path / "nope.tsv", "translate")
    bad = tmp_path / "latin.tsv"
    bad.write_bytes(b"ok\t1\ncaf\xe9\t2\n")
    with pytest.raises(DataFileError, match=r"latin.tsv:2: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        read_pairs(bad, "translate")


def test_python_lists_get_the_same_checks():
    assert check_pairs([("a", "b"), [" c ", "d"]], "translate") == [("a", "b"), ("c", "d")]
    with pytest.raises(DataFileError, match=r"^data\[1\]: expected a pair of strings \(text, label\), got \('x',\)$"):
        check_pairs([("a", "pos"), ("x",)], "classify", "data")
    with pytest.raises(DataFileError, match=r"^data\[0\]: the label is empty in 'a\\t '$"):
        check_pairs([("a", " ")], "classify", "data")
    with pytest.raises(DataFileError, match=r"^data: the list is empty"):
        check_pairs([], "translate", "data")


def test_carved_splits_are_seeded_and_disjoint():
    pairs = [(f"in{i}", f"out{i}") for i in range(50)] + [("in3", "again")]
    a, b, c = (carve_splits(pairs, seed) for seed in (0, 0, 1))
    assert a == b and a != c
    assert (len(a.val), len(a.test)) in ((5, 5), (5, 6), (6, 5))  # 10% of 50 inputs each; in3 twice
    inputs = [{s for s, _ in part} for part in (a.train, a.val, a.test)]
    assert not (inputs[0] & inputs[1] or inputs[0] & inputs[2] or inputs[1] & inputs[2])
    assert sorted(a.train + a.val + a.test) == sorted(pairs)
    with pytest.raises(DataFileError, match="2 distinct inputs are too few to carve validation and test"):
        carve_splits([("a", "1"), ("b", "2")], 0, source="d.tsv")


# ---- the command line ----------------------------------------------------------------------------


def test_cli_bad_files_one_line(capsys, tmp_path):
    path = _file(tmp_path, "good\tpos\nfine\tpos\nmeh\tmaybe\nbad\tneg\nawful\tneg\n")
    code, _, err = _cli(capsys, "train", "--task", "classify", "--data", str(path), "--out", str(tmp_path / "r"), *TINY)
    assert code == 2 and err == (f"error: {path}:3: the label 'maybe' appears only once; every label needs "
                                 "at least two examples (to learn it and to check it)\n")
    path = _file(tmp_path, "one\t1\ntwo\n")
    code, _, err = _cli(capsys, "train", "--task", "translate", "--data", str(path), *TINY)
    assert code == 2 and err == (f"error: {path}:2: no tab in 'two' (expected one 'source<TAB>target' "
                                 "a line)\n")
    code, _, err = _cli(capsys, "train", "--task", "translate", *TINY)
    assert code == 2 and err == ("error: the translate task learns from your data: give --data FILE "
                                 "(one 'source<TAB>target' a line)\n")
    code, _, err = _cli(capsys, "train", "--task", "reverse", "--data", str(path), *TINY)
    assert code == 2 and err == "error: --data is for the tasks translate and classify, not 'reverse'\n"


def test_train_translate_on_the_example_file(capsys, tmp_path):
    out = tmp_path / "numbers"
    code, text, _ = _cli(capsys, "train", "--task", "translate", "--data", str(example_file("numbers.tsv")),
                         "--steps", "4", "--eval-every", "2", "--out", str(out), *TINY)
    assert code == 0 and "exact_match" in text and f"translate --checkpoint {out}" in text
    code, text, _ = _cli(capsys, "translate", "--checkpoint", str(out), "forty two", "seven")
    lines = text.splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith("forty two -> ")
    code, text, _ = _cli(capsys, "eval", "--checkpoint", str(out))
    assert code == 0 and "translate (seq2seq)" in text


def test_train_classify_on_the_example_file_with_words(capsys, tmp_path):
    out = tmp_path / "sentiment"
    code, text, _ = _cli(capsys, "train", "--task", "classify", "--data", str(example_file("sentiment.tsv")),
                         "--tokens", "word", "--steps", "4", "--eval-every", "2", "--out", str(out), *TINY)
    assert code == 0 and "accuracy" in text
    loaded = load_model(out)
    assert loaded.problem.vocab.level == "word" and loaded.problem.label_names == ("neg", "pos")
    code, text, err = _cli(capsys, "classify", "--checkpoint", str(out), "the film was great",
                           "the zebra was great", "the food was awful")
    lines = text.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("the film was great -> ") and lines[0].split(" -> ")[1].split()[0] in ("neg", "pos")
    assert err == "error: input 2 'the zebra was great' skipped: it has words the model never saw: 'zebra'\n"


def test_held_out_files_and_python_lists(tmp_path):
    train_pairs = [(w, w[::-1]) for w in ("abc", "bca", "cab", "abcd", "dcba", "bad", "dab", "cad", "acd", "bd")]
    valid = _file(tmp_path, "ab\tba\ncd\tdc\n", "valid.tsv")
    result = train("translate", "tiny", run_dir=tmp_path / "py", data=train_pairs, valid_data=str(valid),
                   steps=2, eval_every=2, batch_size=4, progress=False, plots=False, log=None)
    loaded = load_model(tmp_path / "py", load_data=True)
    assert result.step == 2
    assert loaded.problem.splits.val == [("ab", "ba"), ("cd", "dc")]  # given, not carved
    assert len(loaded.problem.splits.test) == 1 and len(loaded.problem.splits.train) == 9  # 10% carved
    labelled = [("yes", "y"), ("yeah", "y"), ("no", "n"), ("nope", "n"), ("sure", "y"), ("nah", "n")]
    bad_valid = _file(tmp_path, "yes\ty\nmaybe\tm\n", "bad_valid.tsv")
    with pytest.raises(ValueError, match=r"bad_valid.tsv:2: the label 'm' is not one of the training labels \(n, y\)"):
        train("classify", "tiny", run_dir=tmp_path / "cl", data=labelled, valid_data=str(bad_valid), steps=1,
              progress=False, plots=False, log=None)
