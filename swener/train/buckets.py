"""Training batches of sentences of similar length, in a random order each epoch.

Flair's trainer shuffles the sentences and cuts batches in that order, so a batch mixes a
3-token sentence with a 60-token one and the recurrent students spend much of their time on
padding. `LengthBuckets` shuffles the sentences, sorts each pool of `pool` batches by
length, cuts it into batches and shuffles the batches (the bucketing of AllenNLP's
BucketIterator and of torchtext): every sentence is seen once per epoch, batches stay
random in content and order, and padding all but disappears.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

from flair.samplers import FlairSampler

from swener import config


class LengthBuckets(FlairSampler):
    """A Flair sampler yielding the indices of whole batches of similar-length sentences."""

    def __init__(self, batch_size: int, pool: int = config.BUCKET_POOL, seed: int = 1) -> None:
        super().__init__()
        if batch_size < 1 or pool < 1:
            raise ValueError(f"batch_size and pool must be at least 1, got {batch_size} and {pool}")
        self.batch_size, self.pool = batch_size, pool
        self.random = random.Random(seed)

    def set_dataset(self, data_source: Sequence) -> None:
        self.num_samples = len(data_source)
        self.lengths = [len(sentence) for sentence in data_source]  # the sentences themselves are not kept

    def __repr__(self) -> str:
        return f"swener.train.buckets.LengthBuckets(batch_size={self.batch_size}, pool={self.pool})"

    def __reduce__(self) -> tuple:
        # Flair keeps the sampler in the model card of every model it saves: it is pickled as
        # its description, so a model file holds no sampler state and loads without this class
        return str, (repr(self),)

    def batches(self) -> list[list[int]]:
        """This epoch's batches: full ones in random order, the one short batch (if any) last.

        Flair's DataLoader cuts the yielded indices every `batch_size`, so a short batch
        anywhere but at the end would shift every batch after it.
        """
        order = list(range(len(self.lengths)))
        self.random.shuffle(order)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            pool = sorted(order[start:start + size], key=self.lengths.__getitem__)
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        full = [batch for batch in batches if len(batch) == self.batch_size]
        self.random.shuffle(full)
        return full + [batch for batch in batches if len(batch) < self.batch_size]

    def __iter__(self) -> Iterator[int]:
        return (index for batch in self.batches() for index in batch)
