"""Tag schemes and spans: IO and IOB2 tags, BIOES spans as Flair reads them, Flair's tag dictionaries.

Spans are (type, start, end) with `end` exclusive, or (start, end, type, score) where a
confidence goes with them; one converter for each direction.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from flair.data import Dictionary, Sentence
    from flair.models import SequenceTagger


def io_to_iob2(types: list[str | None]) -> list[str]:
    """IO types per token (None = outside) to IOB2: each maximal run of one type is one entity."""
    tags, previous = [], None
    for kind in types:
        if kind is None:
            tags.append("O")
        else:
            tags.append(f"I-{kind}" if kind == previous else f"B-{kind}")
        previous = kind
    return tags


def repair_iob2(tags: list[str]) -> tuple[list[str], int]:
    """Turn an I- tag that starts an entity into B- (IOB1 or broken IOB2); count the repairs."""
    fixed, repairs, previous = [], 0, "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag, repairs = "B-" + tag[2:], repairs + 1
        fixed.append(tag)
        previous = tag
    return fixed, repairs


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities of an IOB2 tag sequence as (type, start, end) with `end` exclusive."""
    found, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            found.append((kind, start, i))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return found


def iob2_of_spans(n_tokens: int, spans: Iterable[tuple[int, int, str]]) -> list[str]:
    """IOB2 tags of `n_tokens` tokens with the given (start, end exclusive, type) spans."""
    tags = ["O"] * n_tokens
    for start, end, kind in spans:
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def flair_iob2(sentence: Sentence, n_tokens: int, label_type: str = "ner") -> list[str]:
    """IOB2 tags of the predicted spans of a flair Sentence."""
    return iob2_of_spans(n_tokens, ((span.tokens[0].idx - 1, span.tokens[-1].idx, span.get_label(label_type).value)
                                    for span in sentence.get_spans(label_type)))


def bioes_spans(tags: Sequence[str], scores: Sequence[float] | None = None) -> list[tuple[int, int, str, float]]:
    """Spans (start, end exclusive, type, mean confidence) of BIOES/BIO tags, as Flair's `get_spans_from_bio`.

    B- and S- start a span; I- or E- of another type than the previous tag start one too; a
    span's type is the one most of its tags name (the first tag weighs 1.1).
    """
    spans: list[tuple[int, int, str, float]] = []
    weights: dict[str, float] = {}
    previous = "O-"
    current: list[int] = []
    current_scores: list[float] = []
    for i, tag in enumerate([*tags, "O"]):
        if tag in ("", "O", "_"):
            tag = "O-"
        inside = tag != "O-"
        starts = tag[:2] in ("B-", "S-") or (
            inside and previous[2:] != tag[2:] and (tag[:2] == "I-" or previous[2:] == "S-"))
        if (starts or not inside) and current:
            spans.append((current[0], current[-1] + 1, max(weights, key=weights.__getitem__),
                          sum(current_scores) / len(current_scores)))
            current, current_scores, weights = [], [], {}
        if inside:
            current.append(i)
            current_scores.append(float(scores[i]) if scores is not None else 1.0)
            weights[tag[2:]] = weights.get(tag[2:], 0.0) + (1.1 if starts else 1.0)
        previous = tag
    return spans


def span_dictionary(types: Sequence[str]) -> Dictionary:
    """A flair span-label dictionary with the entity types in alphabetical order."""
    from flair.data import Dictionary

    dictionary = Dictionary(add_unk=False)
    dictionary.span_labels = True
    for kind in sorted(types):
        dictionary.add_item(kind)
    return dictionary


def tagger_tags(tagger: SequenceTagger) -> list[str]:
    """The tag names of a tagger's output columns, in its dictionary's order."""
    return [tagger.label_dictionary.get_item_for_index(i) for i in range(len(tagger.label_dictionary))]
