"""The state store: deployments, versions of each resource, first-deployed times, events, one writer at a time.

The backend comes from ``CW_STATE_URL``: none is SQLite in ``.clockwork/state.db``.

.. code:: python

    with open_store(project.directory, settings) as store, store.writer("apply") as deployment:
        store.record_version(deployment, "FileResource", "motd", spec, source="apply", hosts=["web-1"])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from clockwork.exceptions import StateError
from clockwork.state.base import StateStore, Version
from clockwork.state.sqlite import STATE_DIR, SqliteStore

if TYPE_CHECKING:
    from clockwork.settings import Settings


def _backend(settings: Settings) -> str:
    url = settings.state_url
    if url is None:
        return "sqlite"
    scheme = url.partition("://")[0]
    if scheme in ("postgresql", "postgres"):
        raise StateError("CW_STATE_URL: the PostgreSQL backend is not built yet; unset CW_STATE_URL to use "
                         f"{STATE_DIR}/state.db")
    raise StateError(f"CW_STATE_URL must be a postgresql:// URL (or unset for {STATE_DIR}/state.db), not {scheme}://…")


@contextmanager
def open_store(project_dir: Path, settings: Settings, lock_timeout: float | None = None) -> Iterator[StateStore]:
    """The project's store (created on first use) on the backend the (validated) ``settings`` name. A writer
    waits ``lock_timeout`` seconds, by default ``settings.lock_timeout`` (``CW_LOCK_TIMEOUT``), for another one."""
    _backend(settings)
    store = SqliteStore(project_dir / STATE_DIR, settings.lock_timeout if lock_timeout is None else lock_timeout)
    try:
        yield store
    finally:
        store.close()


def state_exists(project_dir: Path, settings: Settings) -> bool:
    """Whether anything was ever recorded for this project (asking never creates a store)."""
    _backend(settings)
    return SqliteStore.exists(project_dir / STATE_DIR)


__all__ = ["StateStore", "Version", "open_store", "state_exists"]
