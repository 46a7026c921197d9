"""The state store: deployments, versions of each resource, first-deployed times, events, one writer at a time.

The backend comes from ``CW_STATE_URL``: none is SQLite in ``.clockwork/state.db``; ``postgresql://…`` is a
PostgreSQL database that a team shares (``clockwork/state/postgres.py``).

.. code:: python

    with open_store(project.directory, settings) as store, store.writer("apply") as deployment:
        store.record_version(deployment, "FileResource", "motd", spec, source="apply", hosts=["web-1"])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from clockwork.state.base import StateStore, Version
from clockwork.state.sqlite import STATE_DIR, SqliteStore

if TYPE_CHECKING:
    from clockwork.settings import Settings


def project_name(project_dir: Path, settings: Settings) -> str:
    """The project's identity in a shared database: ``CW_PROJECT``, else the project directory's name (so that
    two checkouts of one repository share one state)."""
    return settings.project or project_dir.resolve().name


def connect_store(project_dir: Path, settings: Settings, lock_timeout: float | None = None) -> StateStore:
    """The project's store (created on first use) on the backend the (validated) ``settings`` name; the caller
    closes it. A writer waits ``lock_timeout`` seconds, by default ``settings.lock_timeout`` (``CW_LOCK_TIMEOUT``),
    for another one."""
    wait = settings.lock_timeout if lock_timeout is None else lock_timeout
    if settings.state_url is not None:
        from clockwork.state.postgres import PostgresStore

        return PostgresStore(settings.state_url, project_name(project_dir, settings), wait)
    return SqliteStore(project_dir / STATE_DIR, wait)


@contextmanager
def open_store(project_dir: Path, settings: Settings, lock_timeout: float | None = None) -> Iterator[StateStore]:
    """``connect_store`` for the length of a ``with`` block."""
    store = connect_store(project_dir, settings, lock_timeout)
    try:
        yield store
    finally:
        store.close()


def state_exists(project_dir: Path, settings: Settings) -> bool:
    """Whether anything was ever recorded for this project (asking never creates a store)."""
    if settings.state_url is not None:
        from clockwork.state.postgres import PostgresStore

        return PostgresStore.exists(settings.state_url, project_name(project_dir, settings))
    return SqliteStore.exists(project_dir / STATE_DIR)


__all__ = ["StateStore", "Version", "connect_store", "open_store", "project_name", "state_exists"]
