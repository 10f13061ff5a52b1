"""Readers of the corpus formats, one callable per format (`READERS`): each reads a file into tagged sentences (IOB2),
adding notes on what it repaired or dropped; a fault is a DataError naming the file and line."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from swener.data.tags import io_to_iob2, repair_iob2
from swener.errors import DataError


@dataclass
class TaggedSentence:
    """A sentence as tokens and IOB2 tags."""

    tokens: list[str]
    tags: list[str]


# SUC 3.0 as KBLab's sucx3_ner conversion (JSON lines with "tokens" and "ner_tags"), which
# cannot be downloaded here: the user points SWENER_SUC3 at a folder holding
# {train,dev,test}.jsonl. Tag names map to the paper's four types; time and measure
# expressions are not named entities in the paper and become O. Tags come prefixed (B-PRS)
# or as bare IO types (PRS), and compound metonymy types (LOCPRS) take their first type.
SUC_TYPE_MAP: dict[str, str | None] = {
    "person": "PER", "prs": "PER", "per": "PER", "animal": "PER", "myth": "PER",
    "place": "LOC", "loc": "LOC",
    "inst": "ORG", "org": "ORG",
    "product": "MISC", "obj": "MISC", "work": "MISC", "wrk": "MISC", "event": "MISC",
    "evn": "MISC", "other": "MISC", "misc": "MISC",
    "tme": None, "msr": None, "time": None, "measure": None,
}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 file; a bad byte is a DataError naming the line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(path, f"not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                                "convert the file to UTF-8", line=number) from None


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (line number, line), without '#' comment lines."""
    block: list[tuple[int, str]] = []
    for number, line in _lines(path):
        if not line.strip():
            if block:
                yield block
            block = []
        elif not line.startswith("#"):
            block.append((number, line))
    if block:
        yield block


def _check_tag(tag: str, types: Iterable[str], path: Path, line: int) -> None:
    allowed = set(types)
    if tag != "O" and not (tag[:2] in ("B-", "I-") and tag[2:] in allowed):
        raise DataError(path, f"unknown tag {tag!r} (expected O or B-/I- with one of {sorted(allowed)})", line)


# Lines known to hold a token without a tag: (file name, line number). They are dropped.
WEBBNYHETER_LONE_TOKENS = {("train_corpus.txt", 90310)}


WEBBNYHETER_TAGS = {"0": None, "O": None, "PER": "PER", "LOC": "LOC", "ORG": "ORG", "MISC": "MISC"}


def read_webbnyheter(path: Path, notes: list[str], types: Iterable[str] = ()) -> list[TaggedSentence]:
    """Read a Webbnyheter 2012 file: `token tag` split by tab or spaces, IO tags, `0` = O."""
    sentences, tab_lines, space_lines = [], 0, 0
    for block in _blocks(path):
        tokens, kinds = [], []
        for number, line in block:
            fields = line.split()
            if "\t" in line:
                tab_lines += 1
            else:
                space_lines += 1
            if len(fields) == 1 and (path.name, number) in WEBBNYHETER_LONE_TOKENS:
                notes.append(f"line {number}: dropped the lone token {fields[0]!r} (no tag)")
                continue
            if len(fields) != 2:
                raise DataError(path, f"expected 2 columns (token tag), found {len(fields)}; fix the line", number)
            token, tag = fields
            if tag not in WEBBNYHETER_TAGS:
                raise DataError(path, f"unknown tag {tag!r} (expected one of {sorted(WEBBNYHETER_TAGS)})", number)
            tokens.append(token)
            kinds.append(WEBBNYHETER_TAGS[tag])
        if tokens:
            sentences.append(TaggedSentence(tokens, io_to_iob2(kinds)))
    if tab_lines and space_lines:
        notes.append(f"mixed separators: {tab_lines} lines tab-separated, {space_lines} space-separated")
    notes.append("IO tags (outside written 0) converted to IOB2: each run of one type is one entity; "
                 "two adjacent entities of one type cannot be told apart")
    return sentences


def read_uner(path: Path, notes: list[str], types: Iterable[str] = ("PER", "LOC", "ORG")) -> list[TaggedSentence]:
    """Read a UNER .iob2 file: tab-separated `index token tag - -`, '#' comments."""
    sentences, repairs = [], 0
    for block in _blocks(path):
        tokens, tags = [], []
        for number, line in block:
            fields = line.split("\t")
            if len(fields) != 5:
                raise DataError(path, f"expected 5 tab-separated columns (index token tag - -), "
                                f"found {len(fields)}; fix the line", number)
            tag = fields[2]
            _check_tag(tag, types, path, number)
            tokens.append(fields[1])
            tags.append(tag)
        tags, fixed = repair_iob2(tags)
        repairs += fixed
        sentences.append(TaggedSentence(tokens, tags))
    if repairs:
        notes.append(f"{repairs} entities started with I- and were repaired to B-")
    return sentences


def resolve_suc_type(kind: str) -> tuple[str, bool] | None:
    """The SUC_TYPE_MAP key of a type name, and whether it was a compound; None if unknown.

    A compound metonymy type (LOCPRS, ORGPRS, LOCORG: a name of the first type used as the
    second) takes the name's own type, the first of the pair: LOCPRS -> LOC.
    """
    key = kind.lower()
    if key in SUC_TYPE_MAP:
        return key, False
    for cut in range(1, len(key)):
        if key[:cut] in SUC_TYPE_MAP and key[cut:] in SUC_TYPE_MAP:
            return key[:cut], True
    return None


def parse_suc_tag(tag: str, path: Path, line: int) -> tuple[str | None, str | None, bool]:
    """(prefix "B"/"I", or None for a bare IO tag; SUC_TYPE_MAP key, None for O; compound?) of one tag."""
    if tag == "O":
        return None, None, False
    prefix, dash, kind = tag.partition("-")
    if not (dash and prefix in ("B", "I")):
        prefix, kind = None, tag
    found = resolve_suc_type(kind)
    if found is None:
        raise DataError(path, f"unknown SUC tag {tag!r} (expected O, a type, B-/I- and a type, or a compound of two "
                        f"types such as LOCPRS; known types: {', '.join(sorted(SUC_TYPE_MAP))})", line)
    return prefix, found[0], found[1]


def suc_to_iob2(raw_tags: list[str], path: Path, line: int, seen: Counter) -> list[str]:
    """One sentence's sucx3_ner tags (prefixed or bare IO, compounds allowed) as paper IOB2 tags.

    A bare tag continues the entity of the token before when it is the same tag, else starts
    one: a maximal run of one type is one entity. `seen` counts dropped entities ("dropped:TME"),
    compound entities ("compound:LOCPRS") and tokens with bare tags ("bare").
    """
    tags, previous = [], None
    for raw in raw_tags:
        prefix, key, compound = parse_suc_tag(raw, path, line)
        kind = raw if prefix is None else raw[2:]
        if key is None:
            tags.append("O")
            previous = None
            continue
        if prefix is None:
            seen["bare"] += 1
            prefix = "I" if kind == previous else "B"
        previous = kind
        if prefix == "B" and compound:
            seen[f"compound:{kind}"] += 1
        mapped = SUC_TYPE_MAP[key]
        if mapped is None:
            seen[f"dropped:{kind}"] += prefix == "B"
            tags.append("O")
        else:
            tags.append(f"{prefix}-{mapped}")
    return tags


def read_suc_jsonl(path: Path, notes: list[str], types: Iterable[str] = ()) -> list[TaggedSentence]:
    """Read KBLab's sucx3_ner JSON lines (`tokens`, `ner_tags`) with the paper's type mapping.

    Tags may be prefixed (B-PRS, I-PRS) or bare IO types (PRS) as published; compound
    metonymy types (LOCPRS ...) map to their first type.
    """
    sentences, seen, repairs = [], Counter(), 0
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tokens, raw_tags = list(record["tokens"]), list(record["ner_tags"])
        except (ValueError, KeyError, TypeError):
            raise DataError(path, "expected a JSON object with lists 'tokens' and 'ner_tags'", number) from None
        if len(tokens) != len(raw_tags):
            raise DataError(path, f"{len(tokens)} tokens but {len(raw_tags)} tags", number)
        tags, fixed = repair_iob2(suc_to_iob2([str(raw) for raw in raw_tags], path, number, seen))
        repairs += fixed
        sentences.append(TaggedSentence(tokens, tags))
    dropped = {k.split(":", 1)[1]: v for k, v in sorted(seen.items()) if k.startswith("dropped:") and v}
    compounds = {k.split(":", 1)[1]: v for k, v in sorted(seen.items()) if k.startswith("compound:")}
    if dropped:
        notes.append("dropped entity types (not in the paper's PER/LOC/ORG/MISC): "
                     + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    if compounds:
        notes.append("compound (metonymy) types mapped to their first type, the name's own: "
                     + ", ".join(f"{k} {v}" for k, v in compounds.items()))
    if seen["bare"]:
        notes.append(f"{seen['bare']} tokens with bare IO tags: each maximal run of one tag is one entity; "
                     "two adjacent entities of one type cannot be told apart")
    if repairs:
        notes.append(f"{repairs} entities started with I- and were repaired to B-")
    return sentences


def read_conll(path: Path, notes: list[str], types: Iterable[str] = ()) -> list[TaggedSentence]:
    """Read a CoNLL column file: first column token, last column tag (IOB1/IOB2/BIOES or bare IO types)."""
    sentences = []
    for block in _blocks(path):
        tokens, tags = [], []
        for number, line in block:
            fields = columns(line)
            if len(fields) < 2:
                raise DataError(path, f"expected at least 2 columns (token ... tag), found {len(fields)}", number)
            tag = fields[-1]
            if tag in ("0", "O"):
                tag = "O"
            elif tag[:2] in ("B-", "I-", "E-", "S-"):
                tag = {"E": "I", "S": "B"}.get(tag[0], tag[0]) + tag[1:]
            elif tag.isidentifier():
                tag = f"I-{tag}"  # bare IO type: runs become entities below
            else:
                raise DataError(path, f"unknown tag {tag!r}", number)
            tokens.append(fields[0])
            tags.append(tag)
        tags, _ = repair_iob2(tags)
        sentences.append(TaggedSentence(tokens, tags))
    return sentences


def columns(line: str) -> list[str]:
    """The columns of a CoNLL line: tab-separated if it has a tab, else blank-separated."""
    return line.split("\t") if "\t" in line else line.split()


Reader = Callable[..., "list[TaggedSentence]"]
READERS: dict[str, Reader] = {  # format -> reader(path, notes, types=...)
    "webbnyheter": read_webbnyheter,
    "uner": read_uner,
    "suc-jsonl": read_suc_jsonl,
    "conll": read_conll,
}
