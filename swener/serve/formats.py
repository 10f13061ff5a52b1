"""The output formats of `swener tag`: a tagged sentence (Item, Entity) as CoNLL, JSON lines or inline markup.

(HTML pages: swener.serve.html.) `EXTENSIONS` is what an output folder adds to an input's name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from swener.data.tags import iob2_of_spans

OUTPUT_FORMATS = ("conll", "jsonl", "inline", "html")
# what --out-dir adds to an input's name: a.txt -> a.txt.conll (never an input's own extension)
EXTENSIONS = {"conll": ".conll", "jsonl": ".jsonl", "inline": ".inline.txt", "html": ".html"}


@dataclass
class Item:
    """One sentence to tag, and where it came from."""

    tokens: list[str]
    text: str  # the sentence as it stands in the input (text input), else its tokens joined by spaces
    source: str
    line: int  # 1-based line of its first token
    offsets: list[tuple[int, int]] | None = None  # character spans of the tokens in the input (text input)
    before: str = ""  # the input text between the previous sentence of the file and this one (text input)


@dataclass
class Entity:
    """A predicted entity: its type, token span [start, end) and confidence (None: the tagger gave none)."""

    type: str
    start: int
    end: int
    confidence: float | None


def format_conll(item: Item, entities: Sequence[Entity]) -> str:
    """token TAB tag lines (IOB2) and a blank line."""
    tags = iob2_of_spans(len(item.tokens), ((e.start, e.end, e.type) for e in entities))
    return "".join(f"{token}\t{tag}\n" for token, tag in zip(item.tokens, tags)) + "\n"


def to_json(item: Item, entities: Sequence[Entity]) -> dict[str, Any]:
    """A sentence as the JSON-lines output describes it."""
    data: dict[str, Any] = {"file": item.source, "line": item.line, "text": item.text}
    if item.offsets is not None:
        data["start"], data["end"] = item.offsets[0][0], item.offsets[-1][1]
    data["tokens"] = item.tokens
    rows = []
    for e in entities:
        row: dict[str, Any] = {"type": e.type}
        if item.offsets is not None:
            first = item.offsets[0][0]
            start, end = item.offsets[e.start][0], item.offsets[e.end - 1][1]
            row.update(text=item.text[start - first:end - first], token_span=[e.start, e.end], start=start, end=end)
        else:
            row.update(text=" ".join(item.tokens[e.start:e.end]), token_span=[e.start, e.end])
        if e.confidence is not None:
            row["confidence"] = round(e.confidence, 4)
        rows.append(row)
    data["entities"] = rows
    return data


def format_jsonl(item: Item, entities: Sequence[Entity]) -> str:
    """One JSON object a line."""
    return json.dumps(to_json(item, entities), ensure_ascii=False) + "\n"


def format_inline(item: Item, entities: Sequence[Entity]) -> str:
    """Tokens separated by spaces with entities in brackets: `[Anna Berg]PER bor i [Umeå]LOC .`"""
    words = list(item.tokens)
    for e in sorted(entities, key=lambda e: e.start, reverse=True):
        words[e.start:e.end] = [f"[{' '.join(words[e.start:e.end])}]{e.type}"]
    return " ".join(words) + "\n"


FORMATTERS: dict[str, Callable[[Item, Sequence[Entity]], str]] = {
    "conll": format_conll, "jsonl": format_jsonl, "inline": format_inline}


class LineWriter:
    """The writer of the line formats: nothing before or after the sentences."""

    def __init__(self, output_format: str) -> None:
        self.body = FORMATTERS[output_format]

    def head(self) -> str:
        return ""

    def tail(self) -> str:
        return ""
