"""Length-sorted index batches and their results put back in index order."""
import pytest

from swener.batching import batched, in_index_order, length_batches


def test_length_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 1, 9, 4, 7, 2]
    batches = list(length_batches(lengths, 3))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True) and [len(b) for b in batches] == [3, 3, 1]
    assert list(length_batches(lengths, 3, sort=False)) == list(batched(range(7), 3))


def test_results_come_back_in_index_order_whatever_the_batch_order():
    lengths = [5, 2, 8, 1, 8, 3]

    def results():
        for ids in length_batches(lengths, 2):
            yield ids, [f"s{i}" for i in ids]

    assert list(in_index_order(results())) == [f"s{i}" for i in range(6)]
    with pytest.raises(ValueError, match="skipped index 1"):
        list(in_index_order([([0, 2], ["a", "c"])]))
