"""Gold subsets of a train split, for the gold curve: the first N sentences of one fixed seeded shuffle.

Every size comes from the same shuffle (seed `config.GOLD_SEED`), so the subsets are nested: the
subset of 250 is the first 250 sentences of the subset of 500, and so on. The sentences after the
first N are the held-back pool: in-domain text whose tokens (never its tags) a KD student may learn
from through the teacher. Dev and test splits are never touched.
"""
from __future__ import annotations

import random
from dataclasses import replace

from swener.config import GOLD_SEED
from swener.data import corpora
from swener.data.corpora import NERCorpus
from swener.data.readers import TaggedSentence
from swener.errors import SwenerError

ALL = "all"  # the word for "the whole train split" on the command line and in the Makefile


def parse_gold(text: str | int | None) -> int | None:
    """'all' (or None) -> None, the whole train split; '250' -> 250. Anything else is one clear error."""
    if text is None or str(text).strip().lower() == ALL:
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise SwenerError(f"--gold {text!r}: give a number of gold train sentences (at least 1) or {ALL}")
    return value


def gold_order(total: int, seed: int = GOLD_SEED) -> list[int]:
    """The fixed shuffle of train sentence indices 0..total-1 that every gold subset is a prefix of."""
    order = list(range(total))
    random.Random(seed).shuffle(order)
    return order


def split_indices(total: int, gold: int | None, corpus: str = "the corpus",
                  seed: int = GOLD_SEED) -> tuple[list[int], list[int]]:
    """(gold indices, held-back indices) of a train split of `total` sentences, both in shuffle order.

    gold None: every sentence in corpus order, nothing held back (the all-gold run is the ordinary one).
    """
    if gold is None:
        return list(range(total)), []
    if gold > total:
        raise SwenerError(f"--gold {gold}: {corpus}'s train split has only {total} sentences; "
                          f"give at most {total} (or {ALL})")
    order = gold_order(total, seed)
    return order[:gold], order[gold:]


def gold_subset(corpus: NERCorpus, gold: int | None) -> NERCorpus:
    """The corpus with its train split cut to the gold subset of size `gold` (None: unchanged)."""
    if gold is None:
        return corpus
    train = corpus.splits["train"]
    keep, held = split_indices(len(train), gold, corpus.name)
    splits = {**corpus.splits, "train": [train[i] for i in keep]}
    notes = {**corpus.notes, "train": [*corpus.notes.get("train", []),
                                       f"gold subset: the first {gold} of {len(train)} sentences of the shuffle with "
                                       f"seed {GOLD_SEED}; {len(held)} held back"]}
    return replace(corpus, splits=splits, notes=notes)


def held_back(corpus: NERCorpus, gold: int | None) -> list[TaggedSentence]:
    """The train sentences outside the gold subset of size `gold`, in shuffle order (none for all)."""
    train = corpus.splits["train"]
    _, held = split_indices(len(train), gold, corpus.name)
    return [train[i] for i in held]


def load_gold(corpus_name: str, gold: int | None) -> NERCorpus:
    """`corpora.load`, then the gold subset of its train split (gold None: the corpus as it is)."""
    corpus = corpora.load(corpus_name)
    if gold is not None and "train" not in corpus.splits:
        raise SwenerError(f"--gold {gold}: {corpus_name} has no train split")
    return gold_subset(corpus, gold)
