"""Vocabularies: map text to integer ids and back, character- or word-level.

The four special tokens and their ids are defined here, once, and every other
module imports them from here:

    PAD_ID = 0   padding (ignored by losses, masked out of attention)
    BOS_ID = 1   beginning of sequence (first decoder input)
    EOS_ID = 2   end of sequence (last decoder target; decoding stops here)
    UNK_ID = 3   any token the vocabulary does not know

A `Vocab` is an immutable list of tokens whose position is the id. Regular tokens
follow the specials in a deterministic order, so the same texts always give the
same ids, and `save`/`load` (plain JSON, no pickle) reproduce it exactly.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from minitensor.io import atomic_write

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)  # index == id
LEVELS = ("char", "word")

_JSON_FORMAT = "transformer.vocab"
_JSON_VERSION = 1

# A word is a run of letters/digits/underscore; every other non-space character is
# its own token, so "it's 5." -> ["it", "'", "s", "5", "."].
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def tokenize_words(text: str) -> list[str]:
    """Split text into words and single punctuation marks; whitespace is dropped.

    Args:
        text: any string.

    Returns:
        The tokens, in order (e.g. "Hi, you!" -> ["Hi", ",", "you", "!"]).
    """
    return _WORD_RE.findall(text)


@dataclass(frozen=True, repr=False)
class Vocab:
    """An immutable token <-> id mapping; ids 0..3 are PAD, BOS, EOS, UNK.

    Build one with `Vocab.from_chars`, `Vocab.from_alphabet` or `Vocab.from_words`
    rather than by hand.

    Attributes:
        tokens: every token, position == id; the first four are SPECIAL_TOKENS.
        level: "char" (one token per character) or "word" (see `tokenize_words`).
    """

    tokens: tuple[str, ...]
    level: str = "char"
    _index: dict[str, int] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(self.tokens))
        if self.level not in LEVELS:
            raise ValueError(f"Vocab: level must be one of {LEVELS}, got {self.level!r}")
        if self.tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(
                f"Vocab: the first tokens must be {SPECIAL_TOKENS}, "
                f"got {self.tokens[: len(SPECIAL_TOKENS)]}"
            )
        index = {tok: i for i, tok in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            dupes = sorted(t for t, c in Counter(self.tokens).items() if c > 1)
            raise ValueError(f"Vocab: duplicate tokens {dupes[:10]}")
        if self.level == "char":
            long = [t for t in self.tokens[len(SPECIAL_TOKENS):] if len(t) != 1]
            if long:
                raise ValueError(f"Vocab: a char vocab holds single characters, got {long[:10]}")
        object.__setattr__(self, "_index", index)

    # ---- construction -------------------------------------------------------------

    @classmethod
    def from_alphabet(cls, alphabet: str | Iterable[str]) -> Vocab:
        """Char-level vocab over an explicit alphabet, ids in the order given.

        Args:
            alphabet: a string (or iterable of 1-char strings); repeats are ignored.

        Returns:
            A char Vocab of size 4 + number of distinct characters.
        """
        chars = list(dict.fromkeys(alphabet))  # dedupe, keep first-seen order
        return cls(SPECIAL_TOKENS + tuple(chars), level="char")

    @classmethod
    def from_chars(cls, texts: str | Iterable[str]) -> Vocab:
        """Char-level vocab over every character in `texts`, sorted by code point.

        Args:
            texts: one string or an iterable of strings.

        Returns:
            A char Vocab; the same character set always gives the same ids.
        """
        if isinstance(texts, str):
            texts = [texts]
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls(SPECIAL_TOKENS + tuple(sorted(chars)), level="char")

    @classmethod
    def from_words(
        cls, texts: str | Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Word-level vocab (see `tokenize_words`), most frequent words first.

        Args:
            texts: one string or an iterable of strings.
            min_freq: drop words seen fewer times than this.
            max_size: cap on len(vocab), the 4 special tokens included.

        Returns:
            A word Vocab ordered by (descending count, then the word itself), so ties
            break deterministically.
        """
        if min_freq < 1:
            raise ValueError(f"Vocab.from_words: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(
                f"Vocab.from_words: max_size={max_size} cannot hold the "
                f"{len(SPECIAL_TOKENS)} special tokens"
            )
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize_words(text))
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(SPECIAL_TOKENS + tuple(words), level="word")

    # ---- mapping ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)})"

    def token_to_id(self, token: str) -> int:
        """The id of `token`, or UNK_ID when the vocab does not know it."""
        return self._index.get(token, UNK_ID)

    def id_to_token(self, idx: int) -> str:
        """The token with id `idx` (raises IndexError when out of range)."""
        idx = int(idx)
        if not 0 <= idx < len(self.tokens):
            raise IndexError(f"Vocab: id {idx} out of range for a vocab of size {len(self)}")
        return self.tokens[idx]

    def split(self, text: str) -> list[str]:
        """Text -> tokens at this vocab's level (characters or `tokenize_words`)."""
        return list(text) if self.level == "char" else tokenize_words(text)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text -> ids; unknown tokens become UNK_ID.

        Args:
            text: the string to encode.
            add_bos: prepend BOS_ID.
            add_eos: append EOS_ID.

        Returns:
            A list of ints of length len(tokens) (+1 for each flag).
        """
        get = self._index.get
        ids = [get(tok, UNK_ID) for tok in self.split(text)]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Sequence[int] | Iterable[int], strip_special: bool = True) -> str:
        """Ids -> text (chars are concatenated, words joined by single spaces).

        Args:
            ids: a list or 1-D array of ids.
            strip_special: stop at the first EOS and drop PAD and BOS. UNK is kept as
                "<unk>" so that a lost token stays visible. When False, every id is
                rendered, specials by name.

        Returns:
            The decoded string. Word-level decoding is lossy about spacing:
            decode(encode(s)) == " ".join(tokenize_words(s)).
        """
        out: list[str] = []
        for idx in ids:
            idx = int(idx)
            if strip_special:
                if idx == EOS_ID:
                    break
                if idx in (PAD_ID, BOS_ID):
                    continue
            out.append(self.id_to_token(idx))
        return ("" if self.level == "char" else " ").join(out)

    # ---- persistence --------------------------------------------------------------

    def to_json(self) -> str:
        """The vocab as a JSON string (format tag, version, level, tokens)."""
        doc = {
            "format": _JSON_FORMAT,
            "version": _JSON_VERSION,
            "level": self.level,
            "tokens": list(self.tokens),
        }
        return json.dumps(doc, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        """Inverse of `to_json`; raises ValueError on a document that is not a vocab."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Vocab.from_json: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _JSON_FORMAT:
            raise ValueError(f"Vocab.from_json: expected a {_JSON_FORMAT!r} document")
        if doc.get("version") != _JSON_VERSION:
            raise ValueError(f"Vocab.from_json: unsupported version {doc.get('version')!r}")
        return cls(tuple(doc["tokens"]), level=doc["level"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_json()` to `path` atomically, so a crash never leaves a half-written
        vocab behind."""
        atomic_write(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocab written by `save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
