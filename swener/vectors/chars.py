"""Character ids of words for a student's character CNN, without torch (numpy only).

The alphabet is the characters of the train split, most frequent first; id 0 is padding and
id 1 is `<unk>` (a character the train split never showed). A word is looked up in the form
the fastText lookup uses (`embedding_key`: whitespace inside it removed) and keeps at most
`max_length` characters: a longer word keeps its first and last `max_length // 2` (the ending
of a long compound says much). The exported tagger's runtime builds its ids the same way.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from swener.vectors.compact import embedding_key

PAD, UNK = 0, 1


def alphabet(tokens: Iterable[str]) -> list[str]:
    """The characters of the tokens, most frequent first (ties in code-point order)."""
    counts = Counter(c for token in tokens for c in embedding_key(token))
    return sorted(counts, key=lambda c: (-counts[c], c))


class CharIds:
    """Word -> character ids (2 + the alphabet's index; `UNK` for an unseen character)."""

    def __init__(self, chars: Sequence[str], max_length: int) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 characters, got {max_length}")
        self.chars, self.max_length = list(chars), int(max_length)
        self.index = {c: i + 2 for i, c in enumerate(self.chars)}
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        """The number of ids, padding and `<unk>` included."""
        return len(self.chars) + 2

    def word(self, text: str) -> list[int]:
        """The ids of one word (at least one id: an empty word is one `<unk>`)."""
        ids = self._cache.get(text)
        if ids is None:
            key = embedding_key(text)
            if len(key) > self.max_length:
                half = self.max_length // 2
                key = key[:half] + key[len(key) - (self.max_length - half):]
            ids = [self.index.get(c, UNK) for c in key] or [UNK]
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[text] = ids
        return ids

    def batch(self, text_lists: Sequence[Sequence[str]], steps: int | None = None) -> np.ndarray:
        """[B, T, C] int64 ids of sentences (T = `steps` or the longest), 0 for padding words and characters."""
        words = [[self.word(t) for t in texts] for texts in text_lists]
        steps = max((len(w) for w in words), default=0) if steps is None else steps
        width = max((len(ids) for w in words for ids in w), default=1)
        out = np.zeros((len(words), steps, width), dtype=np.int64)
        for b, row in enumerate(words):
            for t, ids in enumerate(row):
                out[b, t, :len(ids)] = ids
        return out
