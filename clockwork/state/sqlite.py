"""The default state store: SQLite in ``.clockwork/state.db`` (WAL, versioned schema, mode 0600)."""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import sqlite3
import urllib.parse
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from clockwork.durations import stamp
from clockwork.exceptions import LockTimeout, StateError
from clockwork.secrets import transform
from clockwork.state.base import HostHealth, Lifetime, StateStore, Version, Watch

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
]

#: Strings longer than this are kept once in ``blobs`` (content-addressed) and referenced from specs.
BLOB_SIZE = 1024
_BLOB = re.compile(r"^\u27e6blob:([0-9a-f]{64})\u27e7$")


class SqliteStore(StateStore):
    """State in one SQLite file; the write lock is an OS file lock, so it never outlives its process.

    .. code:: python

        store = SqliteStore(Path(".clockwork"))
        [v.version for v in store.versions("FileResource", "config.json")]  # [1, 2]
    """

    def __init__(self, directory: Path, lock_timeout: float = 30.0) -> None:
        self.directory = directory
        self.lock_timeout = lock_timeout
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path = directory / "state.db"
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

    @contextmanager
    def writer(self, command: str, record: bool = True, hosts: list[str] | None = None) -> Iterator[int]:
        holder = f"pid {os.getpid()} ({command}, since {stamp(time.time())})"
        deadline = time.monotonic() + self.lock_timeout
        with ExitStack() as held:
            # A project writer holds the project lock alone; host writers share it and hold their hosts' locks.
            held.enter_context(self._flock(self.directory / "lock", "the project", hosts is None, holder, deadline))
            for host in sorted(set(hosts or ())):
                path = self.directory / "locks" / urllib.parse.quote(host, safe="")
                held.enter_context(self._flock(path, f"host {host}", True, holder, deadline))
            if hosts is None:
                with self._transaction():  # with the project lock held, an unfinished deployment's process is gone
                    self.db.execute("UPDATE deployments SET finished_at = ?, result = 'interrupted' "
                                    "WHERE finished_at IS NULL", (time.time(),))
            deployment = 0
            if record:
                with self._transaction():
                    deployment = self.db.execute(
                        "INSERT INTO deployments (command, user, pid, started_at) VALUES (?, ?, ?, ?)",
                        (command, getpass.getuser(), os.getpid(), time.time()),
                    ).lastrowid or 0
            yield deployment

    @contextmanager
    def _flock(self, path: Path, what: str, exclusive: bool, holder: str, deadline: float) -> Iterator[None]:
        """An OS file lock (dies with its process), waited for until ``deadline``; an exclusive holder is named
        in the file so that the next one can say who holds it."""
        path.parent.mkdir(mode=0o700, exist_ok=True)
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
                        who = handle.read().strip() or "another clockwork command"
                        raise LockTimeout(
                            f"{what} is locked by {who}; gave up after waiting {self.lock_timeout:g}s") from None
                    time.sleep(0.1)
            if exclusive:
                handle.seek(0)
                handle.truncate()
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

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def finish(self, deployment: int, result: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE deployments SET finished_at = ?, result = ? WHERE id = ?", (time.time(), result, deployment))

    def record_version(self, deployment: int, type_name: str, name: str, spec: dict[str, Any], source: str,
                       hosts: list[str], fingerprints: dict[str, str] | None = None) -> Version:
        fingerprints = fingerprints or {}
        with self._transaction():
            number = self.db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE type = ? AND name = ?", (type_name, name)
            ).fetchone()[0]
            created = time.time()
            self.db.execute(
                "INSERT INTO versions (deployment, type, name, version, created_at, source, spec, hosts, fingerprints) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (deployment, type_name, name, number, created, source, json.dumps(self._to_blobs(spec), sort_keys=True),
                 json.dumps(hosts), json.dumps(fingerprints, sort_keys=True)),
            )
        return Version(type_name, name, number, created, source, spec, hosts, fingerprints)

    def _to_blobs(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec with every long string kept once in ``blobs`` and referenced by its sha256."""

        def keep(text: str, _where: str) -> str:
            if len(text) <= BLOB_SIZE:
                return text
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            self.db.execute("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (digest, text))
            return f"\u27e6blob:{digest}\u27e7"

        return transform(spec, keep)

    def _from_blobs(self, spec: dict[str, Any]) -> dict[str, Any]:
        def restore(text: str, _where: str) -> str:
            match = _BLOB.match(text)
            if not match:
                return text
            row = self.db.execute("SELECT data FROM blobs WHERE sha256 = ?", (match.group(1),)).fetchone()
            if row is None:
                raise StateError(f"{self.path}: content {match.group(1)[:12]}… of a recorded version is missing")
            return str(row["data"])

        return transform(spec, restore)

    def _version(self, row: sqlite3.Row) -> Version:
        return Version(row["type"], row["name"], row["version"], row["created_at"], row["source"],
                       self._from_blobs(json.loads(row["spec"])), json.loads(row["hosts"]),
                       json.loads(row["fingerprints"]))

    def secret_key(self) -> bytes:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'secret_key'").fetchone()
        if row is None:
            with self._transaction():
                self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret_key', ?)",
                                (secrets.token_hex(32),))
            row = self.db.execute("SELECT value FROM meta WHERE key = 'secret_key'").fetchone()
        return bytes.fromhex(row["value"])

    def interrupted(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, command, pid, started_at FROM deployments WHERE result = 'interrupted' ORDER BY id")
        return [dict(row) for row in rows]

    def latest(self, type_name: str, name: str) -> Version | None:
        row = self.db.execute(
            "SELECT * FROM versions WHERE type = ? AND name = ? ORDER BY version DESC LIMIT 1", (type_name, name)
        ).fetchone()
        return self._version(row) if row else None

    def versions(self, type_name: str | None = None, name: str | None = None) -> list[Version]:
        query, args = "SELECT * FROM versions", []
        conditions = [(column, value) for column, value in (("type", type_name), ("name", name)) if value is not None]
        if conditions:
            query += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)
            args = [value for _, value in conditions]
        return [self._version(row) for row in self.db.execute(query + " ORDER BY id", args)]

    def latest_versions(self) -> list[Version]:
        rows = self.db.execute(
            "SELECT * FROM versions AS v WHERE version = (SELECT MAX(version) FROM versions WHERE type = v.type AND name = v.name) "
            "ORDER BY id"
        )
        return [self._version(row) for row in rows]

    def mark_deployed(self, type_name: str, name: str, hosts: list[str], at: float, lifetime: int | None = None) -> None:
        with self._transaction():
            for host in hosts:
                key = (type_name, name, host)
                if self.db.execute("INSERT OR IGNORE INTO first_deployed (type, name, host, at) VALUES (?, ?, ?, ?)",
                                   (*key, at)).rowcount:
                    self.db.execute("DELETE FROM watches WHERE type = ? AND name = ? AND host = ?", key)
                row = self.db.execute("SELECT at, lifetime FROM first_deployed WHERE type = ? AND name = ? AND host = ?",
                                      key).fetchone()
                if row["lifetime"] != lifetime:  # a new max_duration counts from the first deployment
                    expires = None if lifetime is None else row["at"] + lifetime
                    self.db.execute(
                        "UPDATE first_deployed SET lifetime = ?, expires_at = ?, warned = 0 "
                        "WHERE type = ? AND name = ? AND host = ?", (lifetime, expires, *key),
                    )

    def forget_deployed(self, type_name: str, name: str, hosts: list[str], state: str = "destroyed") -> None:
        at = time.time()
        with self._transaction():
            for host in hosts:
                key = (type_name, name, host)
                self.db.execute("DELETE FROM first_deployed WHERE type = ? AND name = ? AND host = ?", key)
                self.db.execute(
                    "INSERT INTO watches (type, name, host, next_due, state, since, last_result) VALUES (?, ?, ?, 0, ?, ?, ?) "
                    "ON CONFLICT (type, name, host) DO UPDATE SET state = excluded.state, since = excluded.since, "
                    "last_result = excluded.last_result",
                    (*key, state, at, state),
                )

    def lifetimes(self) -> list[Lifetime]:
        rows = self.db.execute("SELECT * FROM first_deployed WHERE expires_at IS NOT NULL ORDER BY expires_at")
        return [Lifetime(row["type"], row["name"], row["host"], row["at"], row["expires_at"], bool(row["warned"]))
                for row in rows]

    def set_warned(self, type_name: str, name: str, host: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE first_deployed SET warned = 1 WHERE type = ? AND name = ? AND host = ?",
                            (type_name, name, host))

    def extend(self, type_name: str, name: str, seconds: int) -> list[Lifetime]:
        with self._transaction():
            self.db.execute(
                "UPDATE first_deployed SET expires_at = expires_at + ?, warned = 0 "
                "WHERE type = ? AND name = ? AND expires_at IS NOT NULL", (seconds, type_name, name),
            )
        return [lifetime for lifetime in self.lifetimes() if (lifetime.type, lifetime.name) == (type_name, name)]

    def watches(self) -> dict[tuple[str, str, str], Watch]:
        watches = {}
        for row in self.db.execute("SELECT * FROM watches"):
            watch = Watch(**{**dict(row), "corrections": json.loads(row["corrections"])})
            watches[watch.key] = watch
        return watches

    def save_watches(self, watches: list[Watch]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO watches (type, name, host, next_due, last_checked, last_result, detail, state, "
                "since, corrections, total_corrections) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(w.type, w.name, w.host, w.next_due, w.last_checked, w.last_result, w.detail, w.state, w.since,
                  json.dumps(w.corrections), w.total_corrections) for w in watches],
            )

    def host_health(self) -> dict[str, HostHealth]:
        rows = self.db.execute("SELECT * FROM host_health")
        return {row["host"]: HostHealth(**{**dict(row), "alerted": bool(row["alerted"])}) for row in rows}

    def save_host_health(self, health: list[HostHealth], recovered: list[str]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO host_health (host, failures, retry_at, since, error, alerted) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(h.host, h.failures, h.retry_at, h.since, h.error, int(h.alerted)) for h in health],
            )
            self.db.executemany("DELETE FROM host_health WHERE host = ?", [(host,) for host in recovered])

    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT INTO events (at, kind, type, name, host, detail, intent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), kind, type_name, name, host, detail, intent),
            )
