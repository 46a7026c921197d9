"""How many hosts a command works on at once: what the caller says (``--parallel``, ``CW_PARALLEL``), else what
the process's open-file limit allows.

.. code:: python

    with connection_limit(20):
        evaluate(project, "inventory.py")  # its session has at most 20 connections open at any time
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Open files one SSH connection may hold (its socket, an SFTP channel's temp file, a ProxyCommand's pipes), as
#: pyinfra reckons (``pyinfra.api.state.MAX_PARALLEL``).
FILES_PER_CONNECTION = 3
#: Open files kept for everything else: Python's own, the state store, logs, the hub.
RESERVED_FILES = 64
#: The most connections opened at once by default, however high the limit: beyond this many key exchanges in
#: flight, one process's CPU makes the last ones wait past their timeouts.
MAX_PARALLEL = 1000

#: The limit, or what gives it when a session asks (settings are read only by commands that open one).
_limit: ContextVar[int | Callable[[], int | None] | None] = ContextVar("clockwork_connection_limit", default=None)


def default_parallel() -> int:
    """(the soft open-file limit − ``RESERVED_FILES``) / ``FILES_PER_CONNECTION``, at least 1, at most
    ``MAX_PARALLEL``."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_PARALLEL
    return max(1, min(MAX_PARALLEL, (soft - RESERVED_FILES) // FILES_PER_CONNECTION))


def current_parallel() -> int:
    """The limit set by the innermost ``connection_limit`` around this call, else ``default_parallel()``."""
    given = _limit.get()
    limit = given() if callable(given) else given
    if limit is not None and limit < 1:
        raise ValueError(f"the connection limit must be 1 or more, not {limit}")
    return limit or default_parallel()


@contextmanager
def connection_limit(parallel: int | Callable[[], int | None] | None) -> Iterator[None]:
    """Sessions opened inside connect to at most ``parallel`` hosts at once (``None``: the default; a callable:
    what it says when a session is opened)."""
    if isinstance(parallel, int) and parallel < 1:
        raise ValueError(f"the connection limit must be 1 or more, not {parallel}")
    token = _limit.set(parallel)
    try:
        yield
    finally:
        _limit.reset(token)
