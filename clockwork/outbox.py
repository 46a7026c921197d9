"""A queue with a worker of its own: whoever puts work in returns at once; ``wait_idle`` waits a bounded time."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Generic, TypeVar

T = TypeVar("T")

#: How many items wait at most; past that the oldest is dropped.
LIMIT = 100


class Outbox(Generic[T]):
    """Runs ``work(item)`` for each item put, one at a time, in order, on a daemon thread (a greenlet where gevent
    patched threading); ``put`` never waits for it.

    >>> done = []
    >>> box = Outbox("demo", done.append)
    >>> box.put(1)
    >>> box.wait_idle(5.0), done
    (0, [1])
    """

    def __init__(self, name: str, work: Callable[[T], None], on_drop: Callable[[T], None] = lambda item: None,
                 limit: int = LIMIT) -> None:
        self.name, self.work, self.on_drop, self.limit = name, work, on_drop, limit
        self._pending: deque[T] = deque()
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> None:
        """Queue ``item`` (dropping the oldest waiting one when ``limit`` wait already)."""
        dropped = None
        with self._changed:
            if len(self._pending) >= self.limit:
                dropped = self._pending.popleft()
            self._pending.append(item)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"outbox-{self.name}", daemon=True)
                self._thread.start()
        if dropped is not None:
            self.on_drop(dropped)

    def wait_idle(self, timeout: float) -> int:
        """Wait at most ``timeout`` seconds until everything put was done; how many items were not (0: all)."""
        end = monotonic() + timeout
        with self._changed:
            while self._pending or self._busy:
                left = end - monotonic()
                if left <= 0:
                    return len(self._pending) + self._busy
                self._changed.wait(left)
        return 0

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    self._busy = False
                    self._changed.notify_all()
                    self._changed.wait()
                item, self._busy = self._pending.popleft(), True
            try:
                self.work(item)
            except Exception:  # noqa: S110 (work reports its own failures; one bad item must not end the worker)
                pass
