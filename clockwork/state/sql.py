"""What the SQL backends share: every query of the store, written once, over a project-keyed schema.

A backend gives its connection, transactions, write lock and migrations, and
the few words its SQL dialect says differently (``Dialect``); the queries here
use ``?`` placeholders, ``{now}`` for the database's clock in epoch seconds and
``{skip_locked}`` where a claim must pass over rows another worker is taking.
"""

from __future__ import annotations

import dataclasses

import getpass
import hashlib
import json
import os
import re
import secrets
import socket
import time
from abc import abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from clockwork.durations import stamp
from clockwork.exceptions import StateError
from clockwork.secrets import transform
from clockwork.state.base import (Claim, HostHealth, LastEvent, Lifetime, PassWrites, StateStore, Version, Watch,
                                  Worker)

#: Strings longer than this are kept once in ``blobs`` (content-addressed) and referenced from specs.
BLOB_SIZE = 1024
_BLOB = re.compile(r"^\u27e6blob:([0-9a-f]{64})\u27e7$")
#: A dead worker is listed (as dead) for this long after its last heartbeat, then forgotten.
FORGET_WORKERS = 86400.0
_WATCH_COLUMNS = ("type", "name", "host", "next_due", "last_checked", "last_result", "detail", "state", "since",
                  "corrections", "total_corrections", "failed_corrections", "retry_at", "version", "fingerprint")


def _in_host_order(claims: list[Claim]) -> list[Claim]:
    """Claims in the order every transaction locks their rows (by host), so that none waits on another in turn."""
    return sorted(claims, key=lambda claim: claim.host)


def holder(command: str) -> str:
    """How a writer is named to one that waits for it: ``pid 4242 on build-1 (apply, since 2026-12-02T16:20:00Z)``."""
    return f"pid {os.getpid()} on {socket.gethostname()} ({command}, since {stamp(time.time())})"


@dataclass(frozen=True)
class Dialect:
    """How a backend's SQL says what the shared queries need.

    .. code:: python

        Dialect(placeholder="%s", now="EXTRACT(EPOCH FROM now())::float8", skip_locked=" FOR UPDATE SKIP LOCKED")
    """

    placeholder: str
    #: The database's clock in epoch seconds (leases and heartbeats use it, never a worker's clock).
    now: str
    skip_locked: str = ""


class SqlStore(StateStore):
    """A state store over a SQL connection; every row carries ``project`` so that several projects can share
    one database. Subclasses connect, lock and migrate.

    .. code:: python

        class SqliteStore(SqlStore): ...  # a connection, BEGIN IMMEDIATE, an OS file lock
    """

    dialect: Dialect
    project: str
    where: str

    def __init__(self) -> None:
        self._depth = 0

    # What a backend gives -------------------------------------------------------------------

    @abstractmethod
    def _execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (already in the backend's dialect); returns its cursor."""

    @abstractmethod
    def _execute_many(self, query: str, rows: list[Sequence[Any]]) -> None:
        """Run one statement once per row."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    def _changed(self) -> None:
        """An apply, update, rollback or extend is being recorded: tell waiting workers when it commits."""

    # Shared machinery -------------------------------------------------------------------------

    def _sql(self, query: str) -> str:
        return query.replace("?", self.dialect.placeholder).format(now=self.dialect.now,
                                                                   skip_locked=self.dialect.skip_locked)

    def _run(self, query: str, *params: Any) -> Any:
        """Run ``query`` (``?`` placeholders, ``{now}``, ``{skip_locked}``) with ``params``; returns the cursor."""
        return self._execute(self._sql(query), params)

    def _run_many(self, query: str, rows: list[Sequence[Any]]) -> None:
        if rows:
            self._execute_many(self._sql(query), rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; a nested one is part of the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    def _start_deployment(self, command: str, exclusive: bool, record: bool) -> int:
        """With the lock held: an exclusive writer marks what never finished as interrupted (its process is
        gone), then the deployment is recorded (its id, or 0 with ``record=False``)."""
        if exclusive:
            with self._transaction():
                self._run("UPDATE deployments SET finished_at = ?, result = 'interrupted' "
                          "WHERE project = ? AND finished_at IS NULL", time.time(), self.project)
        if not record:
            return 0
        with self._transaction():
            row = self._run("INSERT INTO deployments (project, command, \"user\", pid, started_at) VALUES (?, ?, ?, ?, ?) "
                            "RETURNING id", self.project, command, getpass.getuser(), os.getpid(), time.time()).fetchone()
        return int(row["id"])

    # Deployments and versions -------------------------------------------------------------------

    def finish(self, deployment: int, result: str) -> None:
        with self._transaction():
            self._run("UPDATE deployments SET finished_at = ?, result = ? WHERE project = ? AND id = ?",
                      time.time(), result, self.project, deployment)


    def record_version(self, deployment: int, type_name: str, name: str, spec: dict[str, Any], source: str,
                       hosts: list[str], fingerprints: dict[str, str] | None = None) -> Version:
        fingerprints = fingerprints or {}
        with self._transaction():
            number = int(self._run("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM versions "
                                   "WHERE project = ? AND type = ? AND name = ?", self.project, type_name, name).fetchone()["next"])
            created = time.time()
            self._run(
                "INSERT INTO versions (project, deployment, type, name, version, created_at, source, spec, hosts, "
                "fingerprints) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.project, deployment, type_name, name, number, created, source, json.dumps(self._to_blobs(spec), sort_keys=True),
                json.dumps(hosts), json.dumps(fingerprints, sort_keys=True),
            )
        return Version(type_name, name, number, created, source, spec, hosts, fingerprints)

    def settle_version(self, version: Version, hosts: list[str]) -> Version | None:
        where = "WHERE project = ? AND type = ? AND name = ? AND version = ?"
        key = (self.project, version.type, version.resource, version.version)
        with self._transaction():
            if not hosts:
                self._run(f"DELETE FROM versions {where}", *key)
                return None
            self._run(f"UPDATE versions SET hosts = ? {where}", json.dumps(hosts), *key)
        return dataclasses.replace(version, hosts=list(hosts))

    def _to_blobs(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec with every long string kept once in ``blobs`` and referenced by its sha256."""

        def keep(text: str, _where: str) -> str:
            if len(text) <= BLOB_SIZE:
                return text
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            self._run("INSERT INTO blobs (project, sha256, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", self.project, digest, text)
            return f"\u27e6blob:{digest}\u27e7"

        return transform(spec, keep)

    def _from_blobs(self, spec: dict[str, Any]) -> dict[str, Any]:
        def restore(text: str, _where: str) -> str:
            match = _BLOB.match(text)
            if not match:
                return text
            row = self._run("SELECT data FROM blobs WHERE project = ? AND sha256 = ?", self.project, match.group(1)).fetchone()
            if row is None:
                raise StateError(f"{self.where}: content {match.group(1)[:12]}… of a recorded version is missing")
            return str(row["data"])

        return transform(spec, restore)

    def _version(self, row: Any) -> Version:
        return Version(row["type"], row["name"], row["version"], row["created_at"], row["source"],
                       self._from_blobs(json.loads(row["spec"])), json.loads(row["hosts"]),
                       json.loads(row["fingerprints"]))

    def secret_key(self) -> bytes:
        query = "SELECT value FROM meta WHERE project = ? AND key = 'secret_key'"
        row = self._run(query, self.project).fetchone()
        if row is None:
            with self._transaction():
                self._run("INSERT INTO meta (project, key, value) VALUES (?, 'secret_key', ?) ON CONFLICT DO NOTHING",
                          self.project, secrets.token_hex(32))
            row = self._run(query, self.project).fetchone()
        return bytes.fromhex(row["value"])

    def interrupted(self) -> list[dict[str, Any]]:
        rows = self._run("SELECT id, command, pid, started_at FROM deployments "
                         "WHERE project = ? AND result = 'interrupted' ORDER BY id", self.project)
        return [dict(row) for row in rows]

    _VERSION = "SELECT type, name, version, created_at, source, spec, hosts, fingerprints FROM versions"

    def latest(self, type_name: str, name: str) -> Version | None:
        row = self._run(f"{self._VERSION} WHERE project = ? AND type = ? AND name = ? ORDER BY version DESC LIMIT 1",
                        self.project, type_name, name).fetchone()
        return self._version(row) if row else None

    def versions(self, type_name: str | None = None, name: str | None = None) -> list[Version]:
        conditions = [(column, value) for column, value in (("type", type_name), ("name", name)) if value is not None]
        query = f"{self._VERSION} WHERE project = ?" + "".join(f" AND {column} = ?" for column, _ in conditions)
        return [self._version(row) for row in self._run(query + " ORDER BY id", self.project, *(value for _, value in conditions))]

    def latest_versions(self) -> list[Version]:
        rows = self._run(f"{self._VERSION} AS v WHERE project = ? AND version = (SELECT MAX(version) FROM versions "
                         "WHERE project = v.project AND type = v.type AND name = v.name) ORDER BY id", self.project)
        return [self._version(row) for row in rows]

    # What is deployed where, and expiry ----------------------------------------------------------------

    def mark_deployed(self, type_name: str, name: str, hosts: list[str], at: float, lifetime: int | None = None) -> None:
        with self._transaction():
            for host in hosts:
                key = (self.project, type_name, name, host)
                if self._run("INSERT INTO first_deployed (project, type, name, host, at) VALUES (?, ?, ?, ?, ?) "
                             "ON CONFLICT DO NOTHING", *key, at).rowcount:
                    self._run("DELETE FROM watches WHERE project = ? AND type = ? AND name = ? AND host = ?", *key)
                row = self._run("SELECT at, lifetime FROM first_deployed WHERE project = ? AND type = ? AND name = ? "
                                "AND host = ?", *key).fetchone()
                if row["lifetime"] != lifetime:  # a new max_duration counts from the first deployment
                    expires = None if lifetime is None else row["at"] + lifetime
                    self._run("UPDATE first_deployed SET lifetime = ?, expires_at = ?, warned = 0 "
                              "WHERE project = ? AND type = ? AND name = ? AND host = ?",
                              lifetime, expires, *key)
            self._due_now(hosts)

    def _due_now(self, hosts: list[str]) -> None:
        """These hosts changed: the reconciler looks at them at once, a pass already working on them records nothing
        (their fence moves on: it worked from what was deployed before), and waiting workers hear of it."""
        self._run_many("INSERT INTO reconcile_hosts (project, host, next_due) VALUES (?, ?, 0) "
                       "ON CONFLICT (project, host) DO UPDATE SET next_due = 0, fence = reconcile_hosts.fence + 1, "
                       "worker = NULL, lease_expires = NULL",
                       [(self.project, host) for host in sorted(set(hosts))])
        self._changed()

    def forget_deployed(self, type_name: str, name: str, hosts: list[str], state: str = "destroyed") -> None:
        at = time.time()
        with self._transaction():
            for host in hosts:
                key = (self.project, type_name, name, host)
                self._run("DELETE FROM first_deployed WHERE project = ? AND type = ? AND name = ? AND host = ?", *key)
                self._run(
                    "INSERT INTO watches (project, type, name, host, next_due, state, since, last_result) "
                    "VALUES (?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (project, type, name, host) DO UPDATE SET "
                    "state = excluded.state, since = excluded.since, last_result = excluded.last_result",
                    *key, state, at, state,
                )

    def lifetimes(self) -> list[Lifetime]:
        rows = self._run("SELECT type, name, host, at, expires_at, warned FROM first_deployed "
                         "WHERE project = ? AND expires_at IS NOT NULL ORDER BY expires_at, host", self.project)
        return [Lifetime(row["type"], row["name"], row["host"], row["at"], row["expires_at"], bool(row["warned"]))
                for row in rows]

    def set_warned(self, type_name: str, name: str, host: str) -> None:
        with self._transaction():
            self._run("UPDATE first_deployed SET warned = 1 WHERE project = ? AND type = ? AND name = ? AND host = ?",
                      self.project, type_name, name, host)

    def extend(self, type_name: str, name: str, seconds: int) -> list[Lifetime]:
        with self._transaction():
            self._run("UPDATE first_deployed SET expires_at = expires_at + ?, warned = 0 "
                      "WHERE project = ? AND type = ? AND name = ? AND expires_at IS NOT NULL",
                      seconds, self.project, type_name, name)
            extended = [lt for lt in self.lifetimes() if (lt.type, lt.name) == (type_name, name)]
            self._due_now(sorted({lifetime.host for lifetime in extended}))
        return extended

    # The reconciler's record ----------------------------------------------------------------------------

    def watches(self) -> dict[tuple[str, str, str], Watch]:
        watches = {}
        for row in self._run(f"SELECT {', '.join(_WATCH_COLUMNS)} FROM watches WHERE project = ?", self.project):
            watch = Watch(**{**dict(row), "corrections": json.loads(row["corrections"])})
            watches[watch.key] = watch
        return watches

    def save_watches(self, watches: list[Watch]) -> None:
        updates = ", ".join(f"{column} = excluded.{column}" for column in _WATCH_COLUMNS[3:])
        with self._transaction():
            self._run_many(
                f"INSERT INTO watches (project, {', '.join(_WATCH_COLUMNS)}) VALUES (?, {', '.join('?' * len(_WATCH_COLUMNS))}) "
                f"ON CONFLICT (project, type, name, host) DO UPDATE SET {updates}",
                [(self.project, w.type, w.name, w.host, w.next_due, w.last_checked, w.last_result, w.detail, w.state, w.since,
                  json.dumps(w.corrections), w.total_corrections, w.failed_corrections, w.retry_at, w.version,
                  w.fingerprint)
                 for w in watches],
            )

    def host_health(self) -> dict[str, HostHealth]:
        rows = self._run("SELECT host, failures, retry_at, since, error, alerted FROM host_health WHERE project = ?", self.project)
        return {row["host"]: HostHealth(**{**dict(row), "alerted": bool(row["alerted"])}) for row in rows}

    def save_host_health(self, health: list[HostHealth], recovered: list[str]) -> None:
        with self._transaction():
            self._run_many(
                "INSERT INTO host_health (project, host, failures, retry_at, since, error, alerted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, host) DO UPDATE SET failures = excluded.failures, "
                "retry_at = excluded.retry_at, since = excluded.since, error = excluded.error, alerted = excluded.alerted",
                [(self.project, h.host, h.failures, h.retry_at, h.since, h.error, int(h.alerted)) for h in health],
            )
            self._run_many("DELETE FROM host_health WHERE project = ? AND host = ?", [(self.project, host) for host in recovered])

    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None:
        with self._transaction():
            self._run("INSERT INTO events (project, at, kind, type, name, host, detail, intent) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.project, time.time(), kind, type_name, name, host, detail, intent)

    def last_events(self) -> dict[tuple[str, str, str], LastEvent]:
        rows = self._run("SELECT type, name, host, kind, intent, at FROM events AS e WHERE project = ? AND host IS NOT "
                         "NULL AND id = (SELECT MAX(id) FROM events WHERE project = e.project AND type = e.type AND "
                         "name = e.name AND host = e.host)", self.project)
        return {(row["type"], row["name"], row["host"]): LastEvent(row["kind"], row["intent"], row["at"]) for row in rows}

    # Workers and leases -----------------------------------------------------------------------------------

    def register_worker(self, worker: str, lease: float) -> None:
        with self._transaction():
            self._run("DELETE FROM workers WHERE project = ? AND heartbeat < {now} - ?", self.project, FORGET_WORKERS)
            self._run("INSERT INTO workers (project, id, machine, pid, started_at, heartbeat, lease) "
                      "VALUES (?, ?, ?, ?, {now}, {now}, ?) ON CONFLICT (project, id) DO UPDATE SET heartbeat = {now}",
                      self.project, worker, socket.gethostname(), os.getpid(), lease)

    def heartbeat(self, worker: str, lease: float, claims: list[Claim]) -> None:
        # Host order, as finish_pass: two transactions of one worker never wait for each other's rows in turn.
        with self._transaction():
            self._run("UPDATE workers SET heartbeat = {now}, lease = ? WHERE project = ? AND id = ?",
                      lease, self.project, worker)
            self._run_many("UPDATE reconcile_hosts SET lease_expires = {now} + ? WHERE project = ? AND host = ? "
                           "AND worker = ? AND fence = ? AND lease_expires >= {now}",
                           [(lease, self.project, claim.host, worker, claim.fence) for claim in _in_host_order(claims)])

    def retire_worker(self, worker: str) -> None:
        with self._transaction():
            self._run("UPDATE reconcile_hosts SET worker = NULL, lease_expires = NULL WHERE project = ? AND worker = ?",
                      self.project, worker)
            self._run("DELETE FROM workers WHERE project = ? AND id = ?", self.project, worker)

    def add_hosts(self, hosts: list[str]) -> None:
        with self._transaction():
            self._run_many("INSERT INTO reconcile_hosts (project, host, next_due) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                           [(self.project, host) for host in sorted(set(hosts))])

    def claim(self, worker: str, now: float, capacity: int, lease: float) -> list[Claim]:
        with self._transaction():
            rows = self._run(
                "SELECT host FROM reconcile_hosts WHERE project = ? AND next_due <= ? "
                "AND (worker IS NULL OR lease_expires < {now}) ORDER BY next_due, host LIMIT ?{skip_locked}",
                self.project, now, capacity).fetchall()
            hosts = sorted(row["host"] for row in rows)
            self._run_many("UPDATE reconcile_hosts SET worker = ?, fence = fence + 1, lease_expires = {now} + ? "
                           "WHERE project = ? AND host = ?", [(worker, lease, self.project, host) for host in hosts])
            fences = self._fences(worker, hosts)
        return [Claim(host, fences[host]) for host in hosts if host in fences]

    def _fences(self, worker: str, hosts: list[str]) -> dict[str, int]:
        rows = self._run("SELECT host, fence FROM reconcile_hosts WHERE project = ? AND worker = ?", self.project, worker)
        wanted = set(hosts)
        return {row["host"]: int(row["fence"]) for row in rows if row["host"] in wanted}

    def lease_left(self, worker: str, claims: list[Claim]) -> dict[str, float]:
        rows = self._run("SELECT host, fence, lease_expires - {now} AS left_s FROM reconcile_hosts "
                         "WHERE project = ? AND worker = ?", self.project, worker)
        held = {(claim.host, claim.fence) for claim in claims}
        return {row["host"]: float(row["left_s"]) for row in rows if (row["host"], int(row["fence"])) in held}

    def release(self, worker: str, claims: list[Claim]) -> None:
        with self._transaction():
            self._run_many("UPDATE reconcile_hosts SET worker = NULL, lease_expires = NULL "
                           "WHERE project = ? AND host = ? AND worker = ? AND fence = ?",
                           [(self.project, claim.host, worker, claim.fence) for claim in _in_host_order(claims)])

    def finish_pass(self, worker: str, claims: list[Claim], writes: PassWrites, next_due: dict[str, float],
                    gone: Collection[str] = ()) -> list[str]:
        with self._transaction():
            held = set()
            for claim in _in_host_order(claims):
                key = (self.project, claim.host, worker, claim.fence)
                if claim.host in gone:
                    done = self._run("DELETE FROM reconcile_hosts WHERE project = ? AND host = ? AND worker = ? "
                                     "AND fence = ?", *key)
                else:
                    done = self._run("UPDATE reconcile_hosts SET worker = NULL, lease_expires = NULL, next_due = ? "
                                     "WHERE project = ? AND host = ? AND worker = ? AND fence = ?",
                                     next_due.get(claim.host), *key)
                if done.rowcount:
                    held.add(claim.host)
            writes.replay(self, held)
        return sorted({claim.host for claim in claims} - held)

    def next_due(self, now: float) -> float | None:
        # A host another worker holds is due when its lease ends (a dead worker's hosts are taken then), which
        # is on the database's clock: as seconds from now, added to the reconciler's ``now``.
        row = self._run("SELECT MIN(CASE WHEN worker IS NULL OR lease_expires < {now} THEN next_due "
                        "ELSE ? + (lease_expires - {now}) END) AS due FROM reconcile_hosts WHERE project = ?",
                        now, self.project).fetchone()
        return None if row is None or row["due"] is None else float(row["due"])

    def workers(self) -> list[Worker]:
        held: dict[str, list[str]] = {}
        for row in self._run("SELECT host, worker FROM reconcile_hosts WHERE project = ? AND worker IS NOT NULL "
                             "AND lease_expires >= {now} ORDER BY host", self.project):
            held.setdefault(row["worker"], []).append(row["host"])
        rows = self._run("SELECT id, machine, pid, started_at, heartbeat, lease, "
                         "CASE WHEN heartbeat >= {now} - 3 * lease THEN 1 ELSE 0 END AS alive "
                         "FROM workers WHERE project = ? ORDER BY started_at, id", self.project)
        return [Worker(row["id"], row["machine"], row["pid"], row["started_at"], row["heartbeat"], row["lease"],
                       bool(row["alive"]), held.get(row["id"], [])) for row in rows]
