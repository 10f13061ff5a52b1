"""Batches of items: fixed-size lists, length-sorted index batches, their results back in order, and
batches prepared ahead in a thread."""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Iterable, Iterator, Sequence, TypeVar

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


_DONE = object()


def ahead(values: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """The values of an iterator computed in a thread of its own, at most `depth` ahead of the consumer.

    An exception in the thread is raised here, where its value would have come; a consumer
    that stops early (or fails) stops the thread at its next value.
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for value in values:
                if stop.is_set():
                    return
                box.put((value, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            box.put((None, err))
            return
        box.put((_DONE, None))

    thread = threading.Thread(target=produce, name="swener-reader", daemon=True)
    thread.start()
    try:
        while True:
            value, err = box.get()
            if err is not None:
                raise err
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        deadline = time.monotonic() + 2.0  # a producer blocked on input (a pipe) is left to die with the process
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                box.get(timeout=0.05)  # a producer blocked on a full queue then sees `stop`
            except queue.Empty:
                pass
