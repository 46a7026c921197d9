"""The PostgreSQL state store as a team meets it: shared state by project, the lock that dies with its process,
clear errors that never show the password, waits that cooperate with gevent, and changes that wake workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gevent
import psycopg
import pytest

from clockwork.exceptions import LockTimeout, StateError, StoreLost
from clockwork.state.postgres import MIGRATIONS, PostgresStore, connect, redact
from testsupport.fleet import wait_until
from testsupport.postgres import PostgresServer, start_postgres
from tests.conftest import CwProject

REPO = Path(__file__).resolve().parent.parent
MAIN = "from clockwork.resources import FileResource\nnote = FileResource(name='note.txt', content='{text}\\n')\n"


def checkout(root: Path, url: str, text: str = "one", **settings: str) -> CwProject:
    """A project directory named ``app`` under ``root`` (a checkout), its state in the database at ``url``."""
    project = CwProject(root / "app")
    project.directory.mkdir(parents=True)
    project.write_main(MAIN.format(text=text))
    lines = [f"CW_STATE_URL={url}", *(f"CW_{key.upper()}={value}" for key, value in settings.items())]
    (project.directory / ".env").write_text("\n".join(lines) + "\n")
    return project


def test_two_checkouts_of_a_project_share_its_state_and_nothing_is_written_locally(tmp_path: Path, postgres_url: str) -> None:
    laptop, server = checkout(tmp_path / "laptop", postgres_url), checkout(tmp_path / "server", postgres_url, "two")
    assert laptop.cw("apply").exit_code == 0
    assert server.cw("apply").exit_code == 0
    history = server.cw("history", "note.txt")
    assert history.exit_code == 0, history.output
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["v1", "v2"], history.output
    for project in (laptop, server):
        assert not (project.directory / ".clockwork" / "state.db").exists()
    other = checkout(tmp_path / "elsewhere", postgres_url, project="another")
    elsewhere = other.cw("history")
    assert (elsewhere.exit_code, "v1" in elsewhere.output) == (0, False), "another project sees none of it"


@pytest.mark.parametrize("problem", ["wrong password", "no server", "no database"])
@pytest.mark.parametrize("command", [["apply"], ["status"], ["history"], ["reconcile", "--once"]])
def test_a_database_that_cannot_be_used_is_one_line_exit_2_without_the_password(
    tmp_path: Path, postgres: PostgresServer, problem: str, command: list[str]
) -> None:
    password = postgres.password
    url = {"wrong password": postgres.url().replace(f":{password}@", ":Wr0ng-s3cret@"),
           "no server": f"postgresql://clockwork:{password}@127.0.0.1:9/postgres",
           "no database": postgres.url(database="missing_db")}[problem]
    project = checkout(tmp_path, url)
    result = project.cw(*command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: cannot use the state database {redact(url)}: "), result.output
    assert len(result.output.splitlines()) == 1 and "Traceback" not in result.output
    assert password not in result.output and "Wr0ng-s3cret" not in result.output
    assert not (project.directory / "note.txt").exists(), "nothing changed on the host"
    assert not (project.directory / ".clockwork" / "state.db").exists()
    for log in (project.directory / ".clockwork").glob("*.log"):
        assert password not in log.read_text() and "Wr0ng-s3cret" not in log.read_text()


@pytest.mark.parametrize(("url", "shown"), [("mysql://root:pw@127.0.0.1/state", "mysql://…"),
                                            ("cw:hunter2@db.example/x", "something else")])
def test_a_state_url_that_is_not_postgresql_is_a_settings_error(tmp_path: Path, url: str, shown: str) -> None:
    project = checkout(tmp_path, url)
    result = project.cw("apply")
    assert (result.exit_code, result.output) == (
        2, f"Error: CW_STATE_URL must be a postgresql:// URL (or unset for .clockwork/state.db), not {shown}\n")
    assert not (project.directory / "note.txt").exists()


@pytest.mark.parametrize("password", ["pa#ss", "pa/ss", "p@ss?w", "Pw&x"])
def test_a_password_with_url_characters_is_never_shown(tmp_path: Path, postgres: PostgresServer, password: str) -> None:
    for url in (f"postgresql://clockwork:{password}@127.0.0.1:{postgres.port}/postgres",
                f"postgresql://clockwork@127.0.0.1:{postgres.port}/postgres?PASSWORD={password}"):
        result = checkout(tmp_path / str(abs(hash(url))), url).cw("status")
        assert result.exit_code == 2 and result.output.startswith("Error: cannot use the state database postgresql://"), \
            result.output
        assert password not in result.output, result.output


def test_a_user_that_may_only_read_and_write_is_enough_once_the_schema_is_made(postgres_url: str) -> None:
    PostgresStore(postgres_url, "p").close()  # the owner makes the schema
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE ROLE cw_rw LOGIN PASSWORD 'rw-s3cret'")
        db.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO cw_rw")
        db.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO cw_rw")
        db.execute("CREATE ROLE cw_none LOGIN PASSWORD 'no-s3cret'")
    try:
        own = postgres_url.split("@", 1)[1]
        store = PostgresStore(f"postgresql://cw_rw:rw-s3cret@{own}", "p")
        with store.writer("apply") as deployment:
            store.record_version(deployment, "FileResource", "a", {"name": "a"}, "apply", ["web-1"])
        assert store.latest("FileResource", "a") is not None
        store.close()
        with pytest.raises(StateError) as error:
            PostgresStore(f"postgresql://cw_none:no-s3cret@{own}", "p").latest("FileResource", "a")
        assert str(error.value).startswith(f"the state database postgresql://cw_none@{own} refused: ")
        assert "permission denied" in str(error.value) and "no-s3cret" not in str(error.value)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DROP OWNED BY cw_rw, cw_none")
            db.execute("DROP ROLE cw_rw")
            db.execute("DROP ROLE cw_none")


def holding(url: str, writer: str) -> subprocess.Popen[str]:
    """Another process holding ``store.writer(<writer>)`` of project ``team``, once it says so, until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys\nfrom clockwork.state.postgres import PostgresStore\n"
         f"store = PostgresStore(sys.argv[1], 'team')\nwith store.writer({writer}):\n"
         "    print('held', flush=True)\n    signal.pause()  # until the test kills it\n", url],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_frozen_reconcile_pass_loses_the_lock_and_an_apply_goes_ahead(postgres_url: str) -> None:
    frozen = holding(postgres_url, "'reconcile', record=False, shared=True, stale_after=2")
    try:
        frozen.send_signal(signal.SIGSTOP)  # it never calls keep_lock again
        apply = PostgresStore(postgres_url, "team", lock_timeout=30)
        with apply.writer("apply"):  # the server ended the silent session, and its lock with it
            pass
        apply.close()
    finally:
        frozen.kill()
        frozen.wait()


def test_the_write_lock_names_its_holder_and_dies_with_its_process(tmp_path: Path, postgres_url: str) -> None:
    holder = holding(postgres_url, "'apply'")
    try:
        waiter = PostgresStore(postgres_url, "team", lock_timeout=0.5)
        with pytest.raises(LockTimeout) as error, waiter.writer("destroy"):
            pass
        assert str(error.value).startswith(f"the project is locked by pid {holder.pid} on ")
        assert "(apply, since " in str(error.value)
        with PostgresStore(postgres_url, "another project", lock_timeout=0.5).writer("apply"):
            pass  # the lock is the project's: no other project waits for it
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        waiter.lock_timeout = 10
        with waiter.writer("destroy"):  # PostgreSQL ended the dead session and its lock with it
            pass
        waiter.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_schema_from_a_newer_clockwork_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url, "p").close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("INSERT INTO clockwork_schema (version) VALUES (99)")
    with pytest.raises(StateError, match=f"was written by a newer Clockwork .schema 99, this one knows {len(MIGRATIONS)}.: "
                                         "upgrade Clockwork"):
        PostgresStore(postgres_url, "p")


def test_psycopg_waits_cooperate_with_gevent(postgres_url: str) -> None:
    """Three slow queries in three greenlets run at once: the others (and this one) run while each waits."""
    stores = [PostgresStore(postgres_url, "p") for _ in range(3)]
    sleepers = [gevent.spawn(store._run, "SELECT pg_sleep(5)") for store in stores]
    try:
        def asleep() -> int:
            with psycopg.connect(postgres_url, autocommit=True) as db:
                row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' "
                                 "AND state = 'active'").fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: asleep() == 3, 4.5, "three pg_sleep queries active at the same time")
    finally:
        gevent.killall(sleepers)
        for store in stores:
            store.close()


def test_an_apply_wakes_a_worker_that_waits_for_changes(postgres_url: str) -> None:
    listener, writer = PostgresStore(postgres_url, "p"), PostgresStore(postgres_url, "p")
    neighbour = PostgresStore(postgres_url, "neighbour")
    heard: list[float] = []
    watching = gevent.spawn(listener.watch_changes, lambda: heard.append(time.monotonic()))
    try:
        wait_until(lambda: len(heard) == 1, 10, "the listener to start (it reports once on connecting)")
        with neighbour.writer("apply"):
            neighbour.mark_deployed("FileResource", "a", ["web-1"], 1.0)
        with writer.writer("apply"):
            writer.mark_deployed("FileResource", "a", ["web-1"], 1.0)
            gevent.sleep(0.3)
            assert len(heard) == 1, "told once the apply lets go of the lock, not while it holds it"
        wait_until(lambda: len(heard) == 2, 10, "the change to be heard")
        gevent.sleep(0.2)
        assert len(heard) == 2, "the neighbour project's change was not this project's"
    finally:
        watching.kill()
        for store in (listener, writer, neighbour):
            store.close()


def test_a_database_that_stops_mid_run_is_store_lost_and_comes_back(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        store = PostgresStore(server.url(), "p")
        store.add_hosts(["web-1"])
        server.stop()
        with pytest.raises(StoreLost) as error:
            store.claim("w1", time.time(), 5, 60)
        assert str(error.value).startswith(f"the state database {server.url(password=False)} stopped answering: ")
        assert server.password not in str(error.value) and error.value.exit_code == 3
        store.close()
        server.start()
        again = PostgresStore(server.url(), "p")
        assert [claim.host for claim in again.claim("w1", time.time(), 5, 60)] == ["web-1"]
        again.close()
    finally:
        server.close()


def test_the_url_is_shown_without_its_password() -> None:
    assert redact("postgresql://cw:pw@db:5432/state") == "postgresql://cw@db:5432/state"
    assert redact("postgresql://db/state?password=pw&sslmode=require") == "postgresql://db/state?sslmode=require"
    assert redact("postgres://db/state") == "postgres://db/state"
    assert os.environ.get("CW_STATE_URL") is None, "the tests' own environment names no database"


def test_a_transaction_that_stalls_is_ended_so_its_hosts_can_be_claimed(postgres_url: str) -> None:
    """A worker frozen inside a transaction (a paused VM) must not keep the rows it locked from the others."""
    store = PostgresStore(postgres_url, "p")
    store.add_hosts(["web-1"])
    frozen = connect(postgres_url, 10)
    frozen.execute("BEGIN")
    frozen.execute("SELECT host FROM reconcile_hosts WHERE project = 'p' FOR UPDATE")
    try:
        assert store.claim("w2", time.time(), 5, 60) == [], "locked: passed over, never waited for"
        wait_until(lambda: [c.host for c in store.claim("w2", time.time(), 5, 60)] == ["web-1"], 30,
                   "the server to end the stalled transaction")
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            frozen.execute("COMMIT")
    finally:
        frozen.close()
        store.close()
