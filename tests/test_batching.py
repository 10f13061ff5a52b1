"""Length-sorted index batches, their results put back in index order, and values computed ahead."""
import threading
import time

import pytest

from swener.batching import ahead, batched, in_index_order, length_batches
from swener.errors import DataError


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


def test_ahead_keeps_order_raises_where_the_error_came_and_stops_early():
    assert list(ahead(iter(range(50)))) == list(range(50))

    def failing():
        yield from range(3)
        raise DataError("in.txt", "not UTF-8", 4)

    seen = []
    with pytest.raises(DataError, match="in.txt:4"):
        for value in ahead(failing()):
            seen.append(value)
    assert seen == [0, 1, 2]
    made = []

    def endless():
        while True:
            made.append(1)
            yield len(made)

    values = ahead(endless(), depth=2)
    assert [next(values) for _ in range(3)] == [1, 2, 3]
    values.close()  # the consumer stops: so does the thread, a few values ahead at most
    time.sleep(0.2)
    assert len(made) <= 3 + 2 + 2 and not [t for t in threading.enumerate() if t.name == "swener-reader"]
