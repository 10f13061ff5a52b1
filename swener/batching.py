"""Batches of items: fixed-size lists, length-sorted index batches, and their results back in order."""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def length_batches(lengths: Sequence[int], size: int, sort: bool = True) -> Iterator[list[int]]:
    """Index lists of `size` items, longest first when `sort` (less padding, and the order packed sequences need)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if sort else list(range(len(lengths)))
    return batched(order, size)


def in_index_order(batches: Iterable[tuple[list[int], Iterable[T]]]) -> Iterator[T]:
    """The results of index batches (indices, results) yielded by index 0, 1, 2, ... as soon as each is ready."""
    done: dict[int, T] = {}
    following = 0
    for ids, results in batches:
        done.update(zip(ids, results))
        while following in done:
            yield done.pop(following)
            following += 1
    if done:
        raise ValueError(f"index batches skipped index {following}")
