"""Concurrent calls served as one batch: the dense half of a search (embed the query, scan every vector) costs
nearly the same for a few queries as for one, so a busy web worker answers the queries that arrive together
with one forward pass and one scan (bench_web.py, `search-new`).

The first caller to find no batch running leads: it takes everything pending (up to `max_batch`), runs the
batch function on it and hands each caller its result. Callers that arrive meanwhile wait for that batch to
end and the next leader takes them. A lone call runs at once: nothing waits for company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class _Slot(Generic[A, R]):
    __slots__ = ("arg", "done", "error", "result")

    def __init__(self, arg: A):
        self.arg = arg
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[A, R]):
    """`coalescer(arg)` returns `batch([.., arg, ..])[i]`, batching calls made at the same time.

    `batch` takes a list of arguments and returns one result per argument, in order. An exception it raises
    is raised in every call of that batch.
    """

    def __init__(self, batch: Callable[[list[A]], Sequence[R]], max_batch: int = 8):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._batch = batch
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._pending: list[_Slot[A, R]] = []
        self._running = False
        self.batches = 0  # batches run, and calls served by them: for tests and benchmarks
        self.calls = 0

    def __call__(self, arg: A) -> R:
        slot: _Slot[A, R] = _Slot(arg)
        with self._cv:
            self._pending.append(slot)
            while not slot.done:
                if not self._running:
                    self._running = True
                    taken, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                    self._cv.release()
                    try:
                        self._run(taken)
                    finally:
                        self._cv.acquire()
                        self._running = False
                        self._cv.notify_all()
                else:
                    self._cv.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _run(self, taken: list[_Slot[A, R]]) -> None:
        try:
            results = list(self._batch([s.arg for s in taken]))
            if len(results) != len(taken):
                raise RuntimeError(f"batch returned {len(results)} results for {len(taken)} calls")
            for s, r in zip(taken, results, strict=True):
                s.result = r
        except BaseException as e:  # noqa: BLE001 - handed to every caller of the batch, re-raised there
            for s in taken:
                s.error = e
        with self._cv:
            self.batches += 1
            self.calls += len(taken)
            for s in taken:
                s.done = True
