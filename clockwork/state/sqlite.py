"""The default state store: SQLite in ``.clockwork/state.db`` (WAL, versioned schema, mode 0600)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clockwork.exceptions import LockTimeout, StateError
from clockwork.state.sql import Dialect, SqlStore, holder

STATE_DIR = ".clockwork"

# One entry per schema version; never edit a released one, append a new one.
MIGRATIONS = [
    """
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY, command TEXT NOT NULL, user TEXT NOT NULL, pid INTEGER NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, result TEXT
    );
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY, deployment INTEGER REFERENCES deployments(id),
        type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('apply', 'update', 'rollback')),
        spec TEXT NOT NULL, hosts TEXT NOT NULL, UNIQUE (type, name, version)
    );
    CREATE TABLE first_deployed (
        type TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (type, name, host)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL,
        host TEXT, detail TEXT NOT NULL, intent TEXT NOT NULL CHECK (intent IN ('intentional', 'corrective'))
    );
    """,
    """
    ALTER TABLE first_deployed ADD COLUMN lifetime INTEGER;
    ALTER TABLE first_deployed ADD COLUMN expires_at REAL;
    ALTER TABLE first_deployed ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE watches (
        type TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL, next_due REAL NOT NULL, last_checked REAL,
        last_result TEXT, detail TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, since REAL,
        corrections TEXT NOT NULL DEFAULT '[]', total_corrections INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (type, name, host)
    );
    CREATE TABLE host_health (
        host TEXT PRIMARY KEY, failures INTEGER NOT NULL, retry_at REAL NOT NULL, since REAL NOT NULL,
        error TEXT NOT NULL DEFAULT '', alerted INTEGER NOT NULL DEFAULT 0
    );
    """,
    """
    ALTER TABLE versions ADD COLUMN fingerprints TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # One time representation: every time is epoch seconds (REAL), as watches and host_health already were.
    """
    CREATE TABLE deployments_new (
        id INTEGER PRIMARY KEY, command TEXT NOT NULL, user TEXT NOT NULL, pid INTEGER NOT NULL,
        started_at REAL NOT NULL, finished_at REAL, result TEXT
    );
    INSERT INTO deployments_new SELECT id, command, user, pid, CAST(strftime('%s', started_at) AS REAL),
        CAST(strftime('%s', finished_at) AS REAL), result FROM deployments;
    CREATE TABLE versions_new (
        id INTEGER PRIMARY KEY, deployment INTEGER REFERENCES deployments(id),
        type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, created_at REAL NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('apply', 'update', 'rollback')),
        spec TEXT NOT NULL, hosts TEXT NOT NULL, fingerprints TEXT NOT NULL DEFAULT '{}', UNIQUE (type, name, version)
    );
    INSERT INTO versions_new SELECT id, deployment, type, name, version, CAST(strftime('%s', created_at) AS REAL),
        source, spec, hosts, fingerprints FROM versions;
    CREATE TABLE first_deployed_new (
        type TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL, at REAL NOT NULL, lifetime INTEGER,
        expires_at REAL, warned INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (type, name, host)
    );
    INSERT INTO first_deployed_new SELECT type, name, host, CAST(strftime('%s', at) AS REAL), lifetime, expires_at,
        warned FROM first_deployed;
    CREATE TABLE events_new (
        id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL,
        host TEXT, detail TEXT NOT NULL, intent TEXT NOT NULL CHECK (intent IN ('intentional', 'corrective'))
    );
    INSERT INTO events_new SELECT id, CAST(strftime('%s', at) AS REAL), kind, type, name, host, detail, intent
        FROM events;
    DROP TABLE versions;
    DROP TABLE deployments;
    DROP TABLE first_deployed;
    DROP TABLE events;
    ALTER TABLE deployments_new RENAME TO deployments;
    ALTER TABLE versions_new RENAME TO versions;
    ALTER TABLE first_deployed_new RENAME TO first_deployed;
    ALTER TABLE events_new RENAME TO events;
    """,
    # Every row keyed by project (as in the PostgreSQL schema, so that one set of queries serves both; here the
    # project is always ''), and the reconcile workers' hosts and leases.
    """
    CREATE TABLE deployments_new (
        project TEXT NOT NULL DEFAULT '', id INTEGER PRIMARY KEY, command TEXT NOT NULL, user TEXT NOT NULL,
        pid INTEGER NOT NULL, started_at REAL NOT NULL, finished_at REAL, result TEXT
    );
    INSERT INTO deployments_new (id, command, user, pid, started_at, finished_at, result)
        SELECT id, command, user, pid, started_at, finished_at, result FROM deployments;
    CREATE TABLE versions_new (
        project TEXT NOT NULL DEFAULT '', id INTEGER PRIMARY KEY, deployment INTEGER REFERENCES deployments(id),
        type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, created_at REAL NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('apply', 'update', 'rollback')),
        spec TEXT NOT NULL, hosts TEXT NOT NULL, fingerprints TEXT NOT NULL DEFAULT '{}',
        UNIQUE (project, type, name, version)
    );
    INSERT INTO versions_new (id, deployment, type, name, version, created_at, source, spec, hosts, fingerprints)
        SELECT id, deployment, type, name, version, created_at, source, spec, hosts, fingerprints FROM versions;
    CREATE TABLE first_deployed_new (
        project TEXT NOT NULL DEFAULT '', type TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL, at REAL NOT NULL,
        lifetime INTEGER, expires_at REAL, warned INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (project, type, name, host)
    );
    INSERT INTO first_deployed_new (type, name, host, at, lifetime, expires_at, warned)
        SELECT type, name, host, at, lifetime, expires_at, warned FROM first_deployed;
    CREATE TABLE events_new (
        project TEXT NOT NULL DEFAULT '', id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL,
        type TEXT NOT NULL, name TEXT NOT NULL, host TEXT, detail TEXT NOT NULL,
        intent TEXT NOT NULL CHECK (intent IN ('intentional', 'corrective'))
    );
    INSERT INTO events_new (id, at, kind, type, name, host, detail, intent)
        SELECT id, at, kind, type, name, host, detail, intent FROM events;
    CREATE TABLE watches_new (
        project TEXT NOT NULL DEFAULT '', type TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL,
        next_due REAL NOT NULL, last_checked REAL, last_result TEXT, detail TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL, since REAL, corrections TEXT NOT NULL DEFAULT '[]',
        total_corrections INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (project, type, name, host)
    );
    INSERT INTO watches_new (type, name, host, next_due, last_checked, last_result, detail, state, since, corrections,
        total_corrections) SELECT type, name, host, next_due, last_checked, last_result, detail, state, since,
        corrections, total_corrections FROM watches;
    CREATE TABLE host_health_new (
        project TEXT NOT NULL DEFAULT '', host TEXT NOT NULL, failures INTEGER NOT NULL, retry_at REAL NOT NULL,
        since REAL NOT NULL, error TEXT NOT NULL DEFAULT '', alerted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, host)
    );
    INSERT INTO host_health_new (host, failures, retry_at, since, error, alerted)
        SELECT host, failures, retry_at, since, error, alerted FROM host_health;
    CREATE TABLE blobs_new (
        project TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (project, sha256)
    );
    INSERT INTO blobs_new (sha256, data) SELECT sha256, data FROM blobs;
    CREATE TABLE meta_new (
        project TEXT NOT NULL DEFAULT '', key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (project, key)
    );
    INSERT INTO meta_new (key, value) SELECT key, value FROM meta;
    DROP TABLE versions;
    DROP TABLE deployments;
    DROP TABLE first_deployed;
    DROP TABLE events;
    DROP TABLE watches;
    DROP TABLE host_health;
    DROP TABLE blobs;
    DROP TABLE meta;
    ALTER TABLE deployments_new RENAME TO deployments;
    ALTER TABLE versions_new RENAME TO versions;
    ALTER TABLE first_deployed_new RENAME TO first_deployed;
    ALTER TABLE events_new RENAME TO events;
    ALTER TABLE watches_new RENAME TO watches;
    ALTER TABLE host_health_new RENAME TO host_health;
    ALTER TABLE blobs_new RENAME TO blobs;
    ALTER TABLE meta_new RENAME TO meta;
    CREATE TABLE reconcile_hosts (
        project TEXT NOT NULL, host TEXT NOT NULL, next_due REAL, worker TEXT, fence INTEGER NOT NULL DEFAULT 0,
        lease_expires REAL, PRIMARY KEY (project, host)
    );
    CREATE TABLE workers (
        project TEXT NOT NULL, id TEXT NOT NULL, machine TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL,
        heartbeat REAL NOT NULL, lease REAL NOT NULL, PRIMARY KEY (project, id)
    );
    """,
    # Corrections back off and never latch; a resource that differs right after Clockwork's own apply is unstable
    # until a new version: per watch, the failed corrections in a row, when the next may run, and the version
    # those belong to.
    """
    ALTER TABLE watches ADD COLUMN failed_corrections INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE watches ADD COLUMN retry_at REAL NOT NULL DEFAULT 0;
    ALTER TABLE watches ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    """,
    # A pair that differs again with nothing changed since Clockwork's own verified correction is unstable: per
    # watch, the fingerprint of the pair as that correction left it ('': none).
    """
    ALTER TABLE watches ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
    """,
]

class SqliteStore(SqlStore):
    """State in one SQLite file; the write lock is an OS file lock, so it never outlives its process.

    .. code:: python

        store = SqliteStore(Path(".clockwork"))
        [v.version for v in store.versions("FileResource", "config.json")]  # [1, 2]
    """

    dialect = Dialect(placeholder="?", now="((julianday('now') - 2440587.5) * 86400.0)")
    #: One file is one project.
    project = ""

    def __init__(self, directory: Path, lock_timeout: float = 30.0) -> None:
        super().__init__()
        self.directory = directory
        self.lock_timeout = lock_timeout
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path = directory / "state.db"
        self.where = str(path)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        elif path.stat().st_size == 0:
            raise StateError(f"{path} is empty (0 bytes): it is not a Clockwork state store; restore it from a backup, "
                             "or move it away to start with no history")
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StateError(f"{path} cannot be read as a state store ({error}): restore it from a backup, "
                             "or move it away to start with no history") from None

    def _migrate(self) -> None:
        current = self.db.execute("PRAGMA user_version").fetchone()[0]
        if current == 0 and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StateError(f"{self.path} is an SQLite database but not a Clockwork state store")
        if current > len(MIGRATIONS):
            raise StateError(f"{self.path} was written by a newer Clockwork (schema {current}, this one knows "
                             f"{len(MIGRATIONS)}): upgrade Clockwork")
        self.db.execute("PRAGMA foreign_keys=OFF")  # tables are rebuilt (SQLite's documented way), not altered
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("PRAGMA user_version").fetchone()[0] >= number:  # another process migrated first
                self.db.execute("ROLLBACK")
                continue
            try:
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        self.db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether a store was ever made in ``directory`` (looking never makes one)."""
        return (directory / "state.db").is_file()

    def _execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(query, params)

    def _execute_many(self, query: str, rows: list[Sequence[Any]]) -> None:
        self.db.executemany(query, rows)

    def _begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self.db.execute("COMMIT")

    def _rollback(self) -> None:
        self.db.execute("ROLLBACK")

    def watch_changes(self, on_change: Callable[[], None]) -> None:
        return  # one controller: its worker finds changes on its next claim

    def keep_lock(self) -> None:
        return  # the file lock dies with its process: one machine's frozen process keeps it (as before teams)

    @contextmanager
    def writer(self, command: str, record: bool = True, shared: bool = False,
               stale_after: float | None = None) -> Iterator[int]:
        with self._flock(self.directory / "lock", not shared, holder(command), time.monotonic() + self.lock_timeout):
            yield self._start_deployment(command, not shared, record)

    @contextmanager
    def _flock(self, path: Path, exclusive: bool, holder: str, deadline: float) -> Iterator[None]:
        """An OS file lock (dies with its process), waited for until ``deadline``; an exclusive holder is named
        in the file so that the next one can say who holds it."""
        handle = open(path, "a+")  # noqa: SIM115 (closed below, after the lock is released)
        os.chmod(path, 0o600)
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            while True:
                try:
                    fcntl.flock(handle, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        who = handle.read().strip() or "a reconcile pass"
                        raise LockTimeout(
                            f"the project is locked by {who}; gave up after waiting {self.lock_timeout:g}s") from None
                    time.sleep(0.1)
            handle.seek(0)
            handle.truncate()  # a shared holder clears what a killed exclusive one left: it is not the holder
            if exclusive:
                handle.write(holder + "\n")
                handle.flush()
            try:
                yield
            finally:
                if exclusive:
                    handle.seek(0)
                    handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()
