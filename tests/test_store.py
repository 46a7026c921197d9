"""The SQLite state store: exact specs with content kept once, unusable files refused, interrupted writers."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from clockwork.exceptions import StateError
from clockwork.settings import Settings
from clockwork.state import open_store
from clockwork.state.sqlite import MIGRATIONS, SqliteStore

SPEC = {"name": "big.txt", "content": "x" * 5000, "env_vars": {"MODE": "prod"}}


def test_specs_come_back_exactly_and_long_strings_are_kept_once(tmp_path: Path) -> None:
    with open_store(tmp_path, Settings(), lock_timeout=1) as store, store.writer("apply") as deployment:
        store.record_version(deployment, "FileResource", "big.txt", SPEC, "apply", ["web-1"], {"env:X": "hmac:1"})
        store.record_version(deployment, "FileResource", "big.txt", {**SPEC, "mode": "600"}, "apply", ["web-1"])
        assert store.latest("FileResource", "big.txt").spec == {**SPEC, "mode": "600"}
        assert store.versions()[0].spec == SPEC and store.versions()[0].fingerprints == {"env:X": "hmac:1"}
    with sqlite3.connect(tmp_path / ".clockwork" / "state.db") as db:
        assert db.execute("SELECT count(*), sum(length(data)) FROM blobs").fetchone() == (1, 5000)
        assert all(len(spec) < 1000 for (spec,) in db.execute("SELECT spec FROM versions"))


@pytest.mark.parametrize(("content", "says"), [
    (b"", "is empty (0 bytes): it is not a Clockwork state store"),
    (os.urandom(4096), "cannot be read as a state store"),
])
def test_an_unusable_state_file_is_refused_and_left_as_it_is(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / ".clockwork" / "state.db"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(StateError) as error, open_store(tmp_path, Settings()):
        pass
    assert str(error.value).startswith(f"{path} {says}")
    assert "restore it from a backup, or move it away to start with no history" in str(error.value)
    assert path.read_bytes() == content, "never silently started over"


def test_a_truncated_state_file_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path, Settings()) as store, store.writer("apply") as deployment:
        for number in range(50):
            store.record_version(deployment, "FileResource", f"f{number}", SPEC | {"name": f"f{number}"}, "apply", ["h"])
    path = tmp_path / ".clockwork" / "state.db"
    for name in ("state.db-wal", "state.db-shm"):
        (path.parent / name).unlink(missing_ok=True)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(StateError, match="cannot be read as a state store"), open_store(tmp_path, Settings()) as store:
        store.versions()


def test_a_store_from_a_newer_clockwork_or_another_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".clockwork" / "state.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="written by a newer Clockwork"):
        SqliteStore(path.parent)
    other = tmp_path / "other" / ".clockwork" / "state.db"
    other.parent.mkdir(parents=True)
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(StateError, match="an SQLite database but not a Clockwork state store"):
        SqliteStore(other.parent)


def test_a_store_of_iso_times_is_migrated_to_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / ".clockwork" / "state.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:  # a store as Clockwork 0.1 (schema 3) left it
        for script in MIGRATIONS[:3]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 3")
        db.execute("INSERT INTO deployments (command, user, pid, started_at, finished_at, result) "
                   "VALUES ('apply', 'root', 1, '2026-11-24T11:40:02+00:00', '2026-11-24T11:40:05+00:00', 'ok')")
        db.execute("INSERT INTO versions (deployment, type, name, version, created_at, source, spec, hosts) "
                   "VALUES (1, 'FileResource', 'a', 1, '2026-11-24T11:40:04+00:00', 'apply', '{\"name\": \"a\"}', '[\"h\"]')")
        db.execute("INSERT INTO first_deployed (type, name, host, at, lifetime, expires_at) "
                   "VALUES ('FileResource', 'a', 'h', '2026-11-24T11:40:04+00:00', 60, 1795999264.0)")
    with open_store(tmp_path, Settings()) as store:
        version = store.latest("FileResource", "a")
        assert version is not None and version.created_at == 1795520404.0 and version.spec == {"name": "a"}
        assert [lt.deployed_at for lt in store.lifetimes()] == [1795520404.0]
        assert version.as_dict()["created_at"] == "2026-11-24T11:40:04Z"


def test_a_watch_of_an_older_schema_is_migrated_with_no_correction_backoff_nor_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / ".clockwork" / "state.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:  # a store as the release before correction backoff (and fingerprints) left it
        for script in MIGRATIONS[:-2]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 2}")
        db.execute("INSERT INTO watches (project, type, name, host, next_due, state) "
                   "VALUES ('', 'FileResource', 'a', 'h', 9.0, 'failure')")
    with open_store(tmp_path, Settings()) as store:
        watch = store.watches()[("FileResource", "a", "h")]
    assert (watch.state, watch.failed_corrections, watch.retry_at, watch.version, watch.fingerprint) == \
        ("failure", 0, 0.0, 0, "")


def test_a_store_of_one_project_is_migrated_to_project_keyed_rows_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / ".clockwork" / "state.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:  # a store as the last release left it (schema 4)
        for script in MIGRATIONS[:4]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 4")
        db.execute("INSERT INTO deployments (command, user, pid, started_at) VALUES ('apply', 'root', 1, 5.0)")
        db.execute("INSERT INTO versions (deployment, type, name, version, created_at, source, spec, hosts) "
                   "VALUES (1, 'FileResource', 'a', 1, 6.0, 'apply', '{\"name\": \"a\"}', '[\"h\"]')")
        db.execute("INSERT INTO watches (type, name, host, next_due, state) VALUES ('FileResource', 'a', 'h', 9.0, 'drift')")
        db.execute("INSERT INTO meta (key, value) VALUES ('secret_key', ?)", ("ab" * 32,))
    with open_store(tmp_path, Settings()) as store:
        assert [(v.resource, v.version, v.spec) for v in store.versions()] == [("a", 1, {"name": "a"})]
        assert store.watches()[("FileResource", "a", "h")].state == "drift"
        assert store.secret_key() == bytes.fromhex("ab" * 32)
        with store.writer("apply"):
            pass
        assert [row["id"] for row in store.interrupted()] == [1], "the unfinished deployment of schema 4 is kept"
