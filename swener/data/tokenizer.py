"""The one Swedish tokeniser: raw text to sentences of tokens with character offsets.

Sentences are found by segtok (what Flair's SegtokSentenceSplitter uses), then split
sentences that end in a Swedish abbreviation are joined again. Tokens come from a
regular expression that keeps abbreviations ("t.ex.", "bl.a."), numbers with
thousands spaces or decimal commas ("5 000", "3,5") and hyphenated compounds whole.
A line break always ends a sentence (the raw text has one paragraph per line).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from segtok.segmenter import split_single

ABBREVIATIONS: tuple[str, ...] = (
    "t.ex.", "bl.a.", "s.k.", "d.v.s.", "dvs.", "m.m.", "ca.", "o.s.v.", "osv.", "m.fl.",
    "t.o.m.", "fr.o.m.", "p.g.a.", "pga.", "e.d.", "f.d.", "f.n.", "t.v.", "t.h.", "o.d.",
    "resp.", "jfr.", "kl.", "nr.", "st.", "kap.", "prof.", "dr.", "doc.", "mfl.", "etc.",
    "bl.", "ev.", "inkl.", "exkl.", "milj.", "mdr.", "tel.", "s.", "sid.", "uppl.", "ang.",
    "enl.", "forts.", "jan.", "feb.", "aug.", "sept.", "okt.", "nov.", "dec.", "e.kr.", "f.kr.",
)

_ABBR = "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True))
_TOKEN = re.compile(
    rf"(?<!\w)(?:{_ABBR})(?!\w)"  # abbreviations, longest first
    r"|https?://\S+|www\.\S+|[\w.+-]+@[\w-]+\.[\w.]+"  # URLs and e-mail addresses
    r"|\d{1,3}(?: \d{3})+(?:,\d+)?(?!\d)"  # 5 000, 1 250 000,50
    r"|\d+(?:[.,:]\d+)*"  # 3,5  12.30  2021
    r"|\w+(?:[-'’:]\w+)*"  # words, EU-kommissionen, USA:s
    r"|\.\.\.|[^\w\s\ufeff\u200b\u200c\u200d\u2060]",  # not byte-order marks or zero-width marks
    re.IGNORECASE,
)
_ABBR_END = re.compile(rf"(?<!\w)(?:{_ABBR})$", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    """A token and its character span [start, end) in the input text."""

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split a text (no sentence splitting) into tokens with offsets."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _sentence_spans(line: str) -> Iterator[tuple[int, int]]:
    """Yield [start, end) spans of the sentences of one line."""
    cursor = 0
    pending: tuple[int, int] | None = None
    for piece in split_single(line):
        start = line.find(piece, cursor)
        if start < 0:  # segtok changed whitespace: fall back to the rest of the line
            start, end = cursor, len(line)
        else:
            end = start + len(piece)
        cursor = end
        if pending is not None:
            start = pending[0]
        if _ABBR_END.search(line[start:end]) and end < len(line.rstrip()):
            pending = (start, end)
            continue
        pending = None
        yield start, end
    if pending is not None:
        yield pending


def sentence_tokens(text: str) -> list[tuple[list[str], list[tuple[int, int]]]]:
    """The sentences of a text as (token texts, [start, end) spans into `text`): `split_sentences` in bulk.

    The same rules and tokens as `split_sentences`, without a Token object per token (the
    tagging path calls this on every line it reads).
    """
    sentences = []
    offset = 0
    finditer = _TOKEN.finditer
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip():
            for start, end in _sentence_spans(body):
                base = start + offset
                texts, spans = [], []
                for match in finditer(body[start:end]):  # a slice, so look-arounds stop at the sentence
                    first, last = match.span()
                    texts.append(match.group())
                    spans.append((first + base, last + base))
                if texts:
                    sentences.append((texts, spans))
        offset += len(line)
    return sentences


def split_sentences(text: str) -> list[list[Token]]:
    """Split a text into sentences of tokens; offsets index into `text`."""
    return [[Token(t, start, end) for t, (start, end) in zip(texts, spans)]
            for texts, spans in sentence_tokens(text)]


def tokenize_words(text: str) -> list[str]:
    """The token strings of a text, for embedding training."""
    return _TOKEN.findall(text)
