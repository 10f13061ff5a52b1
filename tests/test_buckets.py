"""Length-bucketed training batches: every sentence once per epoch, batches of similar length, in random order."""
import random

import pytest
from torch.utils.data import DataLoader

from swener.train.buckets import LengthBuckets


class Item(list):
    """A stand-in for a Flair sentence: only its length matters to the sampler."""


def _data(n=1003, seed=0):
    rng = random.Random(seed)
    return [Item([0] * rng.randint(1, 80)) for _ in range(n)]


def test_each_epoch_is_a_permutation_cut_into_aligned_batches():
    data = _data()
    sampler = LengthBuckets(batch_size=32, pool=5, seed=4)
    sampler.set_dataset(data)
    epochs = []
    for _ in range(2):
        loader = DataLoader(data, batch_size=32, sampler=sampler, collate_fn=lambda batch: batch)
        batches = list(loader)
        flat = [id(item) for batch in batches for item in batch]
        assert sorted(flat) == sorted(id(item) for item in data)  # every sentence exactly once
        assert all(len(batch) == 32 for batch in batches[:-1]) and len(batches[-1]) == 1003 % 32
        assert len(batches) == -(-len(sampler) // 32)  # fit's updates per epoch
        epochs.append(flat)
    assert epochs[0] != epochs[1]  # a new order each epoch


def test_batches_come_from_length_sorted_pools_and_cut_padding():
    data = _data()
    sampler = LengthBuckets(batch_size=32, pool=5, seed=1)
    sampler.set_dataset(data)
    batches = sampler.batches()

    def padding(batches):
        return sum(max(len(data[i]) for i in b) * len(b) - sum(len(data[i]) for i in b) for b in batches)

    rng = random.Random(1)
    order = list(range(len(data)))
    rng.shuffle(order)
    shuffled = [order[i:i + 32] for i in range(0, len(order), 32)]
    assert padding(batches) < padding(shuffled) / 4  # Flair's shuffled batches pad four times more at least
    for batch in batches:  # within a batch, lengths are in order (cut from a sorted pool)
        lengths = [len(data[i]) for i in batch]
        assert lengths == sorted(lengths)
    starts = [min(len(data[i]) for i in b) for b in batches[:-1]]
    assert starts != sorted(starts)  # ... but the batches themselves are shuffled


def test_pickles_as_its_description():
    """Flair pickles the sampler into every saved model's card: no dataset, no class needed to load."""
    import pickle

    sampler = LengthBuckets(32, pool=5)
    sampler.set_dataset(_data())
    assert pickle.loads(pickle.dumps(sampler)) == "swener.train.buckets.LengthBuckets(batch_size=32, pool=5)"


def test_same_seed_same_batches_and_bad_sizes():
    data = _data(100)
    first, second = LengthBuckets(8, seed=2), LengthBuckets(8, seed=2)
    first.set_dataset(data)
    second.set_dataset(data)
    assert first.batches() == second.batches()
    with pytest.raises(ValueError):
        LengthBuckets(0)


def test_a_transfer_set_is_spread_over_the_epochs_and_gold_is_seen_every_epoch():
    data = _data(300)
    sampler = LengthBuckets(batch_size=16, pool=3, seed=2, labelled=100, per_epoch=80)
    sampler.set_dataset(data)
    assert len(sampler) == 180
    seen_transfer = []
    for _ in range(5):
        epoch = list(sampler)
        assert len(epoch) == 180 and len(set(epoch)) == 180
        assert sorted(i for i in epoch if i < 100) == list(range(100))  # every gold sentence once
        seen_transfer += [i for i in epoch if i >= 100]
    # 400 transfer draws from a cycle over 200 sentences: each sentence exactly twice
    assert sorted(seen_transfer) == sorted(list(range(100, 300)) * 2)
    assert seen_transfer[:200] != sorted(seen_transfer[:200])
    wide = LengthBuckets(batch_size=16, labelled=100, per_epoch=10_000)  # more than the set: all of it once
    wide.set_dataset(data)
    assert sorted(wide) == list(range(300))
    with pytest.raises(ValueError, match="labelled"):
        LengthBuckets(16, per_epoch=5)
    assert "per_epoch=80" in repr(sampler)
