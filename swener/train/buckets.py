"""Training batches of sentences of similar length, in a random order each epoch.

Flair's trainer shuffles the sentences and cuts batches in that order, so a batch mixes a
3-token sentence with a 60-token one and the recurrent students spend much of their time on
padding. `LengthBuckets` shuffles the sentences, sorts each pool of `pool` batches by
length, cuts it into batches and shuffles the batches (the bucketing of AllenNLP's
BucketIterator and of torchtext): every sentence is seen once per epoch, batches stay
random in content and order, and padding all but disappears.

With a transfer set appended to the training sentences (`labelled`: how many come first),
`per_epoch` limits how many transfer sentences an epoch takes: every labelled sentence is seen
once per epoch and the transfer sentences in turn, `per_epoch` of them, from a shuffled cycle
through the whole set (a new shuffle each time round). So the gold passes stay one per epoch
whatever the transfer set's size, and a large set is spread over the epochs.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

from flair.samplers import FlairSampler

from swener import config


class LengthBuckets(FlairSampler):
    """A Flair sampler yielding the indices of whole batches of similar-length sentences."""

    def __init__(self, batch_size: int, pool: int = config.BUCKET_POOL, seed: int = 1, labelled: int | None = None,
                 per_epoch: int | None = None) -> None:
        super().__init__()
        if batch_size < 1 or pool < 1:
            raise ValueError(f"batch_size and pool must be at least 1, got {batch_size} and {pool}")
        if per_epoch is not None and (labelled is None or per_epoch < 0):
            raise ValueError("per_epoch needs the number of labelled sentences and must be at least 0")
        self.batch_size, self.pool, self.labelled, self.per_epoch = batch_size, pool, labelled, per_epoch
        self.random = random.Random(seed)
        self.cycle: list[int] = []

    def set_dataset(self, data_source: Sequence) -> None:
        self.lengths = [len(sentence) for sentence in data_source]  # the sentences themselves are not kept
        labelled = len(self.lengths) if self.labelled is None else self.labelled
        if not 0 <= labelled <= len(self.lengths):
            raise ValueError(f"{labelled} labelled sentences of {len(self.lengths)}")
        self.first_transfer = labelled
        transfer = len(self.lengths) - labelled
        self.take = transfer if self.per_epoch is None else min(self.per_epoch, transfer)
        self.num_samples = labelled + self.take

    def __repr__(self) -> str:
        mix = f", labelled={self.labelled}, per_epoch={self.per_epoch}" if self.per_epoch is not None else ""
        return f"swener.train.buckets.LengthBuckets(batch_size={self.batch_size}, pool={self.pool}{mix})"

    def __reduce__(self) -> tuple:
        # Flair keeps the sampler in the model card of every model it saves: it is pickled as
        # its description, so a model file holds no sampler state and loads without this class
        return str, (repr(self),)

    def batches(self) -> list[list[int]]:
        """This epoch's batches: full ones in random order, the one short batch (if any) last.

        Flair's DataLoader cuts the yielded indices every `batch_size`, so a short batch
        anywhere but at the end would shift every batch after it.
        """
        order = list(range(self.first_transfer)) + self.transfer_indices()
        self.random.shuffle(order)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            pool = sorted(order[start:start + size], key=self.lengths.__getitem__)
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        full = [batch for batch in batches if len(batch) == self.batch_size]
        self.random.shuffle(full)
        return full + [batch for batch in batches if len(batch) < self.batch_size]

    def transfer_indices(self) -> list[int]:
        """This epoch's `take` transfer sentences: the next ones of a shuffled cycle through the transfer set."""
        taken: list[int] = []
        while len(taken) < self.take:
            if not self.cycle:  # a new round; the sentences this epoch already has go last
                fresh = sorted(set(range(self.first_transfer, len(self.lengths))) - set(taken))
                again = list(taken)
                self.random.shuffle(fresh)
                self.random.shuffle(again)
                self.cycle = fresh + again
            step = min(self.take - len(taken), len(self.cycle))
            taken += self.cycle[:step]
            del self.cycle[:step]
        return taken

    def __iter__(self) -> Iterator[int]:
        return (index for batch in self.batches() for index in batch)
