"""testsupport/postgres.py: a real PostgreSQL server that the tests start, stop by its PID, and start again."""

from __future__ import annotations

import json
import os
import pwd
import socket
from pathlib import Path

import psycopg
import pytest

from testsupport import postgres as pg
from testsupport.fleet import _alive

REPO = Path(__file__).resolve().parent.parent


def _uid(pid: int) -> int:
    """The real user id of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_the_server_answers_on_loopback_as_an_unprivileged_user(postgres: pg.PostgresServer) -> None:
    expected = pwd.getpwnam(pg.SYSTEM_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert _uid(postgres.pid) == expected != 0
    with psycopg.connect(postgres.url()) as connection:
        row = connection.execute("SELECT current_user, inet_server_addr()::text, inet_server_port(), "
                                 "current_setting('fsync'), current_setting('max_connections')").fetchone()
    assert row == ("clockwork", "127.0.0.1/32", postgres.port, "off", "200")
    assert postgres.url(password=False) == f"postgresql://clockwork@127.0.0.1:{postgres.port}/postgres"


def test_a_wrong_password_is_refused(postgres: pg.PostgresServer) -> None:
    wrong = postgres.url().replace(f":{postgres.password}@", ":not-the-password@")
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "clockwork"'):
        psycopg.connect(wrong)


def test_stop_ends_exactly_its_postmaster_and_start_brings_it_back_with_the_data(postgres: pg.PostgresServer) -> None:
    with pg.start_postgres() as server:
        url = server.create_database("kept")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE t (n int); INSERT INTO t VALUES (42)")
        first, port = server.pid, server.port
        server.stop()
        assert not _alive(first) and not server.running
        assert _alive(postgres.pid)  # the session's server, another postmaster, still runs
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        server.start()
        assert (server.port, server.pid != first) == (port, True)
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT n FROM t").fetchall() == [(42,)]
    assert not server.directory.exists()


def test_a_postmaster_that_exits_early_is_reported_with_its_log() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        directory = Path(f"/tmp/cwpg-test-{os.getpid()}")
        with pytest.raises(pg.PostgresError, match="(?s)postgres exited .* before it answered.*already in use"):
            pg.start_postgres(directory, port=taken.getsockname()[1])
    assert not directory.exists()


@pytest.mark.parametrize("run", ["once", "twice"])
def test_each_test_gets_a_fresh_empty_database(postgres: pg.PostgresServer, postgres_url: str, run: str) -> None:
    """Run twice: each sees no tables, although each leaves one behind."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        connection.execute("CREATE TABLE left_behind (n int)")
    other = postgres.create_database(f"other_{run}_{os.getpid()}")
    try:
        with psycopg.connect(other) as connection:
            assert connection.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'left_behind'").fetchone() == (0,)
    finally:
        postgres.drop_database(f"other_{run}_{os.getpid()}")


def test_unavailable_without_server_binaries(tmp_path: Path) -> None:
    (tmp_path / "16" / "bin").mkdir(parents=True)
    (tmp_path / "16" / "bin" / "psql").touch()  # postgresql-client alone
    assert pg.unavailable(tmp_path) == (f"no PostgreSQL server binaries under {tmp_path}/*/bin: run `make test` as root "
                                        "(scripts/system-deps.sh installs postgresql)")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("", False), ("0", False), (None, False)])
def test_required_reads_the_ci_switch(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {pg.REQUIRE_ENV: value}
    assert pg.required(environ) is expected


def test_ci_requires_postgres() -> None:
    """.ci/run turns a PostgreSQL skip into a failure before running the README's test command."""
    script = (REPO / ".ci" / "run").read_text()
    assert script.index(f"export {pg.REQUIRE_ENV}=1") < script.index("make test")


def test_a_directory_the_server_cannot_own_is_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").touch()
    with pytest.raises(pg.PostgresError, match="is not empty: the server needs a directory of its own"):
        pg.start_postgres(tmp_path / "busy")
    with pytest.raises(pg.PostgresError, match="too long a path for the server's Unix socket"):
        pg.start_postgres(tmp_path / ("x" * 100))
    assert not (tmp_path / ("x" * 100)).exists()


def test_make_postgres_starts_a_server_to_try_and_stops_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "postgres.json"
    assert pg.main(["up", "--record", str(record)]) == 0
    try:
        url = json.loads(record.read_text())["url"]
        assert f"CW_STATE_URL={url}" in capsys.readouterr().out
        assert record.stat().st_mode & 0o777 == 0o600, "it holds the password"
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("clockwork",)
        assert pg.main(["up", "--record", str(record)]) == 1, "one at a time"
    finally:
        pid = json.loads(record.read_text())["pid"]
        assert pg.main(["down", "--record", str(record)]) == 0
    assert not _alive(pid) and not record.exists()
