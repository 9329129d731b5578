"""Tests for transformer.data: vocabularies, tasks, splits, batching, LM text.

Task outputs are checked by independent means (Python's eval, datetime.strptime,
a separate stack checker), not by re-running the generator's own logic.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import string
from collections import Counter

import numpy as np
import pytest

from transformer.data import (
    BOS_ID,
    DATE_FORMATS,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    TASKS,
    UNK_ID,
    Vocab,
    classify_loader,
    collate_seq2seq,
    default_text,
    lm_loader,
    lm_windows,
    load_corpus,
    make_splits,
    make_task,
    read_texts,
    sample_lm_batch,
    seq2seq_loader,
    span_loader,
    tokenize_words,
)
from transformer.data.batching import bucket_indices

# ---- vocab ----------------------------------------------------------------------------


def test_special_ids_are_fixed():
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    v = Vocab.from_alphabet("abc")
    assert v.tokens[:4] == SPECIAL_TOKENS and len(v) == 7


def test_char_roundtrip_and_unknown():
    v = Vocab.from_chars(["hello", "world"])
    assert v.tokens[4:] == tuple("dehlorw")  # sorted: deterministic ids
    text = "hello world"[:5] + "low"
    assert v.decode(v.encode(text)) == text
    ids = v.encode("hex", add_bos=True, add_eos=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and ids[3] == UNK_ID
    assert v.decode(ids) == "he<unk>"
    assert v.decode(ids, strip_special=False) == "<bos>he<unk><eos>"


def test_decode_stops_at_eos_and_skips_pad():
    v = Vocab.from_alphabet("ab")
    a, b = v.token_to_id("a"), v.token_to_id("b")
    assert v.decode(np.array([BOS_ID, a, b, EOS_ID, a, PAD_ID])) == "ab"
    assert v.decode([a, PAD_ID, b]) == "ab"


def test_word_vocab_roundtrip_order_and_limits():
    texts = ["the cat sat, the end.", "the dog"]
    v = Vocab.from_words(texts)
    assert v.level == "word"
    assert v.tokens[4] == "the"  # most frequent first; ties sorted alphabetically
    assert v.tokens[5:] == tuple(sorted(v.tokens[5:]))
    assert v.decode(v.encode("the cat sat, the end.")) == "the cat sat , the end ."
    assert v.encode("the bird")[1] == UNK_ID
    assert tokenize_words("it's 5.") == ["it", "'", "s", "5", "."]
    assert len(Vocab.from_words(texts, max_size=6)) == 6
    assert "cat" not in Vocab.from_words(texts, min_freq=2)


def test_vocab_json_and_file_roundtrip(tmp_path):
    for v in (Vocab.from_chars("héllo wörld"), Vocab.from_words("a b b c")):
        assert Vocab.from_json(v.to_json()) == v
        path = tmp_path / f"{v.level}.json"
        v.save(path)
        assert Vocab.load(path) == v
    assert sorted(p.name for p in tmp_path.iterdir()) == ["char.json", "word.json"]  # no temp left
    with pytest.raises(ValueError, match="transformer.vocab"):
        Vocab.from_json(json.dumps({"tokens": ["a"]}))


def test_vocab_rejects_bad_tokens():
    with pytest.raises(ValueError, match="first tokens"):
        Vocab(("a", "b"))
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(SPECIAL_TOKENS + ("a", "a"))


# ---- tasks: correctness checked independently ------------------------------------------


def _draw(name, n=300, seed=0, **options):
    return make_task(name, **options).samples(np.random.default_rng(seed), n)


def test_copy_reverse_sort():
    for name, check in [
        ("copy", lambda s, t: s == t),
        ("reverse", lambda s, t: "".join(reversed(s)) == t),
        ("sort", lambda s, t: Counter(s) == Counter(t) and all(a <= b for a, b in zip(t, t[1:]))),
    ]:
        pairs = _draw(name, min_len=2, max_len=9)
        assert all(check(s, t) for s, t in pairs), name
        assert all(set(s) <= set(string.ascii_lowercase) and 2 <= len(s) <= 9 for s, _ in pairs)
        assert {len(s) for s, _ in pairs} == set(range(2, 10))


def test_add_evaluates():
    pairs = _draw("add", max_digits=3)
    for src, tgt in pairs:
        assert re.fullmatch(r"\d{1,3}\+\d{1,3}", src)
        assert eval(src) == int(tgt)  # noqa: S307 - the source is digits and "+"
    assert {len(src.split("+")[0]) for src, _ in pairs} == {1, 2, 3}


# An independent parser per format: strptime pattern after normalising ordinals,
# two-digit years and case; weekday names are checked separately.
_STRPTIME = {
    "weekday_month_d_y": "%A, %B %d, %Y",
    "d_mon_yy": "%d %b %Y",
    "us_mm_dd_yyyy": "%m/%d/%Y",
    "y_month_dth": "%Y %B %d",
    "month_dth_y": "%B %d, %Y",
    "d_month_y": "%d %B %Y",
    "mon_d_y": "%b %d %Y",
    "eu_dd_mm_yyyy": "%d.%m.%Y",
    "yyyy_mm_dd_slash": "%Y/%m/%d",
    "wkd_d_mon_y": "%a %d %b %Y",
    "dth_of_month_y": "%d of %B, %Y",
    "month_upper": "%B %d, %Y",
    "compact_yyyymmdd": "%Y%m%d",
    "d_mon_y_dash": "%d-%b-%Y",
    "month_d_apostrophe_yy": "%B %d, %Y",
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _parse_date(fmt_name: str, text: str) -> dt.date:
    s = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)
    # strptime maps 00-68 to 20xx; the task's documented pivot is 50: 50-99 -> 19xx.
    if fmt_name in ("d_mon_yy", "month_d_apostrophe_yy"):
        s = re.sub(r"'?(\d\d)$", lambda m: str((1900 if int(m[1]) >= 50 else 2000) + int(m[1])), s)
    parsed = dt.datetime.strptime(s.title(), _STRPTIME[fmt_name]).date()
    weekday = re.match(r"([a-z]+)\b", text.lower())
    if weekday and fmt_name.startswith(("weekday", "wkd")):
        assert _WEEKDAYS[parsed.weekday()].startswith(weekday[1]), text
    return parsed


def test_dates_every_format_parses_back():
    assert len(DATE_FORMATS) >= 12 and set(_STRPTIME) == set(DATE_FORMATS)
    for fmt_name in DATE_FORMATS:
        for src, tgt in _draw("dates", n=60, formats=[fmt_name]):
            assert _parse_date(fmt_name, src).isoformat() == tgt, (fmt_name, src)
            assert 1950 <= int(tgt[:4]) <= 2049
    example = {name: f(dt.date(2024, 3, 5)) for name, f in DATE_FORMATS.items()}
    assert example["weekday_month_d_y"] == "Tuesday, March 5, 2024"
    assert example["d_mon_yy"] == "5 mar 24" and example["wkd_d_mon_y"] == "tue 5 mar 2024"


def test_dates_are_a_function_of_the_source():
    # Every (format, date) over the whole range gives a different string, so the
    # target is determined by the source and a model can reach 100%.
    seen: dict[str, dt.date] = {}
    day, end = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
    while day <= end:
        for f in DATE_FORMATS.values():
            s = f(day)
            assert seen.setdefault(s, day) == day, s
        day += dt.timedelta(days=1)


def _balanced_by_stack(text: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for c in text:
        if c in "([{":
            stack.append(c)
        elif not stack or stack[-1] != pairs[c]:
            return False
        else:
            stack.pop()
    return not stack


def test_brackets_labels_and_balance():
    examples = _draw("brackets", n=2000, max_len=12)
    assert all(int(_balanced_by_stack(t)) == y for t, y in examples)
    labels = Counter(y for _, y in examples)
    assert 0.45 < labels[1] / len(examples) < 0.55
    assert all(len(t) % 2 == 0 and 2 <= len(t) <= 12 for t, _ in examples)
    # Near misses: most unbalanced strings have equal counts of every bracket kind,
    # so counting alone cannot classify them.
    negatives = [t for t, y in examples if y == 0]
    counted = [all(t.count(o) == t.count(c) for o, c in ("()", "[]", "{}")) for t in negatives]
    assert np.mean(counted) > 0.5


def test_kv_span_answers():
    examples = _draw("kv_span", n=500)
    for ex in examples:
        pairs = dict(item.split("=") for item in ex.context.split(";"))
        assert len(pairs) == ex.context.count(";") + 1  # keys are distinct
        assert ex.context[ex.start : ex.end + 1] == pairs[ex.query] == ex.answer


def test_task_vocab_covers_every_character():
    for name in TASKS:
        task = make_task(name)
        v = task.vocab()
        for ex in task.samples(np.random.default_rng(1), 200):
            texts = {"span": ex[:2], "classify": ex[:1], "seq2seq": ex}[task.kind]
            assert all(UNK_ID not in v.encode(t) for t in texts), (name, ex)


def test_determinism():
    for name in TASKS:
        assert _draw(name, n=50, seed=3) == _draw(name, n=50, seed=3), name
        assert _draw(name, n=50, seed=3) != _draw(name, n=50, seed=4), name


def test_unknown_task_and_option_messages():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; choose one of: add, brackets, copy"):
        make_task("nope")
    msg = r"task 'add' got unknown option\(s\) max_len; valid options: max_digits"
    with pytest.raises(ValueError, match=msg):
        make_task("add", max_len=3)
    with pytest.raises(ValueError, match="max_len=2 is smaller than min_len=5"):
        make_task("copy", min_len=5, max_len=2)
    with pytest.raises(ValueError, match="unknown or empty formats"):
        make_task("dates", formats=["nonsense"])


# ---- splits -----------------------------------------------------------------------------


def test_splits_are_disjoint_and_deterministic():
    for name in TASKS:
        task = make_task(name)
        sp = make_splits(task, 300, 100, 100, seed=7)
        keys = [{task.key(ex) for ex in part} for part in (sp.train, sp.val, sp.test)]
        assert [len(k) for k in keys] == [300, 100, 100]  # distinct within each split
        assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2]), name
        assert make_splits(task, 300, 100, 100, seed=7) == sp
    task = make_task("copy")
    assert make_splits(task, 50, 5, 5, seed=1).train == make_splits(task, 50, 9, 9, seed=1).train


def test_splits_small_space():
    task = make_task("add", max_digits=1)  # exactly 100 distinct inputs
    sp = make_splits(task, 80, 10, 10)
    assert len({s for s, _ in sp.train + sp.val + sp.test}) == 100
    with pytest.raises(ValueError, match=r"has only 100 distinct inputs but 101 examples were requested"):
        make_splits(task, 81, 10, 10)
    with pytest.raises(ValueError, match="nearly exhausted"):
        make_splits(make_task("copy", max_len=2), 600, 0, 0, max_draws=1000)


# ---- batching ---------------------------------------------------------------------------


def test_seq2seq_batch_layout():
    batch = collate_seq2seq([([5, 6, 7], [8]), ([5], [9, 10, 11])])
    assert batch.src.dtype == np.int64 and batch.src.shape == (2, 3)
    np.testing.assert_array_equal(batch.src, [[5, 6, 7], [5, 0, 0]])
    np.testing.assert_array_equal(batch.tgt_in, [[BOS_ID, 8, 0, 0], [BOS_ID, 9, 10, 11]])
    np.testing.assert_array_equal(batch.tgt_out, [[8, EOS_ID, 0, 0], [9, 10, 11, EOS_ID]])
    np.testing.assert_array_equal(batch.src_pad_mask, [[False] * 3, [False, True, True]])
    np.testing.assert_array_equal(batch.tgt_pad_mask, [[False, False, True, True], [False] * 4])
    assert batch.src_pad_mask.dtype == bool and batch.ntokens == 6
    with pytest.raises(ValueError, match="empty input"):
        collate_seq2seq([([], [1])])


def test_seq2seq_loader_epoch_covers_all_once_and_buckets():
    task = make_task("reverse", max_len=20)
    examples = make_splits(task, 1000, 0, 0).train
    vocab = task.vocab()
    loader = seq2seq_loader(examples, vocab, batch_size=32, seed=0, bucket_chunks=10)
    batches = list(loader)
    assert len(batches) == len(loader) == 32
    decoded = [vocab.decode(row) for b in batches for row in b.src]
    assert sorted(decoded) == sorted(s for s, _ in examples)  # each example exactly once
    for b in batches:
        assert b.ntokens == int((b.tgt_out != PAD_ID).sum())
        assert np.array_equal(b.src_pad_mask, b.src == PAD_ID)
        targets = [vocab.decode(row) for row in b.tgt_out]
        assert targets == [s[::-1] for s in (vocab.decode(row) for row in b.src)]
    # Bucketing: far less padding than the same batches in random order.
    pad_bucketed = sum(b.src_pad_mask.sum() for b in batches)
    plain = seq2seq_loader(examples, vocab, batch_size=32, seed=0, bucket_chunks=0)
    assert pad_bucketed < 0.5 * sum(b.src_pad_mask.sum() for b in plain)


def test_loader_determinism_and_drop_last():
    examples = make_splits(make_task("copy"), 100, 0, 0).train
    vocab = make_task("copy").vocab()
    run = lambda seed: [b.src.tolist() for b in seq2seq_loader(examples, vocab, 16, seed=seed)]  # noqa: E731
    assert run(5) == run(5) and run(5) != run(6)
    loader = seq2seq_loader(examples, vocab, 16, seed=5, drop_last=True)
    first, second = list(loader), list(loader)
    assert len(first) == len(loader) == 6 and all(len(b) == 16 for b in first)
    assert [b.src.tolist() for b in first] != [b.src.tolist() for b in second]  # epochs differ
    batches = bucket_indices(np.zeros(10), 4, np.random.default_rng(0), shuffle=False)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_classify_and_span_batches():
    task = make_task("brackets")
    vocab = task.vocab()
    examples = task.samples(np.random.default_rng(0), 50)
    b = next(iter(classify_loader(examples, vocab, 50, add_bos=True, shuffle=False, bucket_chunks=0)))
    assert b.tokens.shape[0] == 50 and b.labels.dtype == np.int64
    assert (b.tokens[:, 0] == BOS_ID).all()
    assert [vocab.decode(r) for r in b.tokens] == [t for t, _ in examples]
    assert b.labels.tolist() == [y for _, y in examples]

    task = make_task("kv_span")
    vocab = task.vocab()
    examples = task.samples(np.random.default_rng(0), 40)
    b = next(iter(span_loader(examples, vocab, 40, shuffle=False, bucket_chunks=0)))
    for row, ex in enumerate(examples):
        answer = vocab.decode(b.tokens[row, b.start[row] : b.end[row] + 1])
        assert answer == ex.answer
        assert vocab.decode(b.tokens[row][b.context_mask[row]]) == ex.context
        assert vocab.decode(b.tokens[row][~b.pad_mask[row]]) == f"{ex.query}|{ex.context}"


# ---- LM text ----------------------------------------------------------------------------


def test_default_text_and_corpus():
    text = default_text()
    assert 20_000 <= len(text.encode("utf-8")) <= 40_000
    corpus = load_corpus(val_fraction=0.1, test_fraction=0.1)
    total = len(corpus.train) + len(corpus.val) + len(corpus.test)
    assert total == len(text)
    joined = np.concatenate([corpus.train, corpus.val, corpus.test])
    assert corpus.vocab.decode(joined) == text  # contiguous, no overlap, no gaps


def test_lm_windows_shift_by_one():
    ids = np.arange(23)
    x, y = lm_windows(ids, 5)
    assert x.shape == y.shape == (4, 5) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert lm_windows(ids, 5, stride=1)[0].shape == (18, 5)
    loader = lm_loader(ids, batch_size=3, block_size=5, seed=0)
    starts = sorted(int(b.x[i, 0]) for b in loader for i in range(len(b)))
    assert starts == [0, 5, 10, 15]  # each window once per epoch
    batch = sample_lm_batch(ids, 8, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(batch.y, batch.x + 1)
    with pytest.raises(ValueError, match="block_size=30 needs at least 31"):
        lm_loader(ids, 2, 30)


def test_text_file_errors(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="text file not found: .*nope.txt"):
        read_texts(missing)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="text file .*empty.txt' is empty"):
        read_texts([empty])
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt' is not valid UTF-8 \(bad byte 0xe9 at offset 3\)"):
        read_texts(latin)
    with pytest.raises(ValueError, match="no text files given"):
        read_texts([])
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("abc", encoding="utf-8")
    b.write_text("déf\n", encoding="utf-8")
    assert read_texts([a, str(b)]) == "abc\ndéf\n"
    corpus = load_corpus([a, b], val_fraction=0.0, test_fraction=0.0)
    assert corpus.vocab.decode(corpus.train) == "abc\ndéf\n"
