"""One self-contained HTML page per tagged input: entities highlighted by type, a legend, confidence on hover.

The page has inline CSS only: no scripts, no external assets, no links. Every piece of input
text (and the file name) is escaped with `html.escape(..., quote=True)`. Text input keeps its
lines as they were (the reader hands over the white space between sentences); tokens and
CoNLL input show one sentence a line.
"""
from __future__ import annotations

import math
from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from swener.serve.formats import Entity, Item

# background colours of the known entity types (distinct for colour-blind readers too: blue, orange,
# green, purple); any other type gets FALLBACK
COLOURS = {"PER": "#9ecae1", "LOC": "#fdae6b", "ORG": "#a1d99b", "MISC": "#cbb6e3"}
FALLBACK = "#d9d9d9"
NAMES = {"PER": "person", "LOC": "place", "ORG": "organisation", "MISC": "other name"}

_CSS = """
body{font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fff}
.page{display:flex;flex-direction:column;max-width:60em;margin:0 auto;padding:1em 1.5em}
.top{order:-1;border-bottom:1px solid #ddd;margin-bottom:1em}
h1{font-size:1.2em;margin:.3em 0;word-break:break-all}
.legend{list-style:none;padding:0;margin:.5em 0;display:flex;flex-wrap:wrap;gap:.4em 1.2em}
.legend li{white-space:nowrap}
.counts{color:#555;font-size:.9em;margin:.3em 0 .6em}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
mark{border-radius:.25em;padding:.05em .15em;color:inherit}
mark::after{content:attr(data-type);font-size:.62em;font-weight:600;margin-left:.3em;vertical-align:.15em;
opacity:.7}
.legend mark::after{content:none}
""" + "".join(f"mark.e-{kind}{{background:{colour}}}\n" for kind, colour in COLOURS.items()) + \
    f"mark.e-other{{background:{FALLBACK}}}\n"


def _class(kind: str) -> str:
    """The CSS class of an entity type (fixed names only: a type from a model never becomes markup)."""
    return f"e-{kind}" if kind in COLOURS else "e-other"


def _title(entity: Entity) -> str:
    """The hover text of an entity: its type and, where the tagger gave one, its confidence."""
    confidence = entity.confidence
    if confidence is None or (isinstance(confidence, float) and math.isnan(confidence)):
        return entity.type
    return f"{entity.type}, confidence {confidence:.2f}"


def _mark(text: str, entity: Entity) -> str:
    return (f'<mark class="{_class(entity.type)}" data-type="{escape(entity.type, quote=True)}" '
            f'title="{escape(_title(entity), quote=True)}">{escape(text, quote=True)}</mark>')


class HtmlPage:
    """Writes one page in three parts: `head()`, `body()` for each sentence, `tail()`."""

    def __init__(self, title: str, model: str | None = None) -> None:
        self.title = title
        self.model = model
        self.counts: Counter[str] = Counter()
        self.sentences = 0
        self.line = 0  # last input line shown (tokens and CoNLL input)

    def head(self) -> str:
        """The page up to the start of the text."""
        title = escape(self.title, quote=True)
        return (f'<!DOCTYPE html>\n<html lang="sv">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{title} \u2013 swener</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
                f'<div class="page">\n<div class="text">')

    def body(self, item: Item, entities: Sequence[Entity]) -> str:
        """One sentence with its entities marked, after the input text that came before it."""
        self.sentences += 1
        self.counts.update(e.type for e in entities)
        if item.offsets is None:
            return self._tokens(item, entities)
        first = item.offsets[0][0]
        parts, cursor = [escape(item.before, quote=True)], 0
        for e in sorted(entities, key=lambda e: e.start):
            start, end = item.offsets[e.start][0] - first, item.offsets[e.end - 1][1] - first
            parts += [escape(item.text[cursor:start], quote=True), _mark(item.text[start:end], e)]
            cursor = end
        parts.append(escape(item.text[cursor:], quote=True))
        return "".join(parts)

    def _tokens(self, item: Item, entities: Sequence[Entity]) -> str:
        """A tokenised sentence on a line of its own (a chunk of a long line continues it)."""
        words = [escape(t, quote=True) for t in item.tokens]
        for e in sorted(entities, key=lambda e: e.start, reverse=True):
            words[e.start:e.end] = [_mark(" ".join(item.tokens[e.start:e.end]), e)]
        if self.sentences == 1:
            lead = ""
        elif item.line == self.line:
            lead = " "
        else:
            lead = "\n" * min(max(item.line - self.line, 1), 2)
        self.line = item.line
        return lead + " ".join(words)

    def tail(self) -> str:
        """The end of the page: the legend and counts (shown above the text by CSS, written last as they are
        known only now)."""
        kinds = list(COLOURS) + sorted(k for k in self.counts if k not in COLOURS)
        legend = "".join(
            f'<li><mark class="{_class(k)}">{escape(k, quote=True)}</mark> '
            f"{escape(NAMES.get(k, 'other type'), quote=True)}: {self.counts[k]}</li>" for k in kinds)
        model = f", model {escape(self.model, quote=True)}" if self.model else ""
        total = sum(self.counts.values())
        return (f'</div>\n<div class="top">\n<h1>{escape(self.title, quote=True)}</h1>\n'
                f'<ul class="legend">{legend}</ul>\n'
                f'<p class="counts">{self.sentences} sentences, {total} entities{model}; '
                f"hover over an entity for its confidence</p>\n</div>\n</div>\n</body>\n</html>\n")
