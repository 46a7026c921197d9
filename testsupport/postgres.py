"""A real PostgreSQL server for tests: Debian's binaries, its own data directory, a free port on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from testsupport.fleet import _free_ports, _tail
from testsupport.servers import LocalServer, end

#: Where Debian's postgresql-NN packages put their binaries (``<version>/bin``); the newest version is used.
LIB = Path("/usr/lib/postgresql")
REQUIRE_ENV = "CLOCKWORK_REQUIRE_POSTGRES"
#: The unprivileged user that runs the server when the tests run as root (initdb and postgres refuse root).
SYSTEM_USER = "postgres"
SUPERUSER = "clockwork"
#: Bounds, in seconds, of initdb, of the wait until the server answers, and of a fast shutdown.
TIMEOUT = 30.0
#: The longest Unix socket path the kernel accepts (sun_path holds 108 bytes with its NUL).
SOCKET_PATH_MAX = 107
#: Settings for a throwaway server: no durability, loopback only, room for many test connections.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "logging_collector": "off",
}


class PostgresError(RuntimeError):
    """The server could not be set up, did not start, or did not stop."""


def bindir(lib: Path = LIB) -> Path | None:
    """``<lib>/<newest version>/bin`` with the server binaries, or ``None`` when no version is installed."""
    versions = [path.parent for path in lib.glob("*/bin/initdb") if path.parent.joinpath("postgres").exists()]
    numeric = [path for path in versions if path.parent.name.replace(".", "").isdigit()]
    if not numeric:
        return None
    return max(numeric, key=lambda path: tuple(int(part) for part in path.parent.name.split(".")))


def unavailable(lib: Path = LIB) -> str | None:
    """Why a server cannot start on this machine, or ``None`` when it can."""
    if bindir(lib) is None:
        return (f"no PostgreSQL server binaries under {lib}/*/bin: run `make test` as root "
                "(scripts/system-deps.sh installs postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root, and there is no {SYSTEM_USER!r} user to run the server as (Debian's package makes it)"
    return None


def required(environ: dict[str, str] | None = None) -> bool:
    """Whether PostgreSQL tests must run here (``CLOCKWORK_REQUIRE_POSTGRES=1``, as on CI)."""
    return (os.environ if environ is None else environ).get(REQUIRE_ENV, "").strip().lower() in ("1", "yes", "true")


class PostgresServer(LocalServer):
    """One postmaster on 127.0.0.1:``port``, with its data in ``directory``, stopped by its PID.

    Made by :func:`start_postgres`; ``stop()`` and ``start()`` take it down and back on the same
    port with the data kept; ``close()`` (or leaving the ``with`` block) stops it and removes ``directory``.

    .. code:: python

        with start_postgres() as server:
            url = server.create_database("app")   # postgresql://clockwork:…@127.0.0.1:PORT/app
            server.stop()                          # the server is gone: connections are refused
            server.start()                         # back on the same port, "app" still there
    """

    host = "127.0.0.1"
    user = SUPERUSER

    def __init__(self, directory: Path, port: int, password: str, bin_path: Path) -> None:
        self.directory, self.port, self.password, self.bin = directory, port, password, bin_path
        self.data, self.sockets, self.log = directory / "data", directory / "sockets", directory / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The postmaster's PID (it runs ``postgres`` directly, no wrapper)."""
        if self._process is None:
            raise PostgresError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the postmaster started here still runs."""
        return self._process is not None and self._process.poll() is None

    def url(self, database: str = "postgres", password: bool = True) -> str:
        """``postgresql://user:password@127.0.0.1:port/database``; without the password when ``password=False``."""
        secret = f":{quote(self.password, safe='')}" if password else ""
        return f"postgresql://{quote(self.user, safe='')}{secret}@{self.host}:{self.port}/{quote(database, safe='')}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing the connections still open to it."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def start(self) -> None:
        """Start the postmaster on the data directory and port it had, and wait until it answers."""
        if self.running:
            raise PostgresError(f"the server is already running (PID {self.pid})")
        options = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
        command = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                   f"--unix-socket-directories={self.sockets}", *options]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=self.directory, start_new_session=True, **_as_user())
        deadline = time.monotonic() + TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise PostgresError(f"postgres exited ({code}) before it answered on port {self.port}; "
                                    f"the end of {self.log}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise PostgresError(f"postgres did not answer on port {self.port} within {TIMEOUT}s; "
                                    f"the end of {self.log}:\n{_tail(self.log)}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Fast shutdown of this postmaster (SIGINT to its PID), SIGKILL when it outlasts the deadline."""
        process, self._process = self._process, None
        end(process, signal.SIGINT, TIMEOUT)

    def _answers(self) -> bool:
        """Whether this postmaster accepts a login on its own Unix socket, which it opens after its TCP one (a
        TCP probe could reach whatever else holds the port)."""
        try:
            psycopg.connect(host=str(self.sockets), port=self.port, user=self.user, password=self.password,
                            dbname="postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


def start_postgres(directory: Path | None = None, port: int | None = None) -> PostgresServer:
    """A fresh cluster in ``directory`` (a new directory in /tmp when ``None``; else one that is missing or empty,
    which the server then owns and removes on ``close()``, and which the ``postgres`` user can reach when we are
    root), answering on ``port`` (when ``None``, a free one outside the kernel's ephemeral range, as the fleet's
    sshds, so that no outgoing connection takes it between ``stop()`` and ``start()``)."""
    bin_path = bindir()
    if bin_path is None:
        raise PostgresError(unavailable() or "no PostgreSQL binaries")
    port = _free_ports(1)[0] if port is None else port
    if directory is not None and len(f"{directory}/sockets/.s.PGSQL.{port}") > SOCKET_PATH_MAX:
        raise PostgresError(f"{directory} is too long a path for the server's Unix socket (at most {SOCKET_PATH_MAX} bytes)")
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise PostgresError(f"{directory} is not empty: the server needs a directory of its own")
    directory = Path(tempfile.mkdtemp(prefix="cwpg-", dir="/tmp")) if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(directory, port, secrets.token_urlsafe(18), bin_path)
    try:
        _initdb(server)
        server.start()
        return server
    except BaseException:
        server.close()
        raise


def _initdb(server: PostgresServer) -> None:
    server.sockets.mkdir()
    password_file = server.directory / "password"
    password_file.write_text(server.password + "\n")
    if os.geteuid() == 0:
        for path in (server.directory, server.sockets, password_file):
            shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
    command = [str(server.bin / "initdb"), "-D", str(server.data), f"--username={server.user}",
               f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
               "--no-instructions"]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=server.directory,
                              timeout=TIMEOUT, check=False, **_as_user())
    finally:
        password_file.unlink()
    if done.returncode != 0:
        raise PostgresError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _as_user() -> dict[str, Any]:
    """Popen's arguments that run initdb and the server as SYSTEM_USER (no other group) when we are root,
    and as ourselves otherwise."""
    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []} if os.geteuid() == 0 else {}



# ---------------------------------------------------------------------------------------------
# python -m testsupport.postgres up|down: a PostgreSQL to try the team state store with (make postgres)


def _stop_recorded(record: dict[str, Any]) -> None:
    """Stop a server that another process started (by the PID it recorded, when that is still its postmaster)."""
    pid, data = int(record["pid"]), Path(record["directory"]) / "data"
    pid_file = data / "postmaster.pid"
    if pid_file.exists() and pid_file.read_text().split("\n", 1)[0].strip() == str(pid):
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + TIMEOUT
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(record["directory"], ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testsupport.postgres",
                                     description="A local PostgreSQL for trying Clockwork's team state (make postgres).")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--record", type=Path, default=Path(".postgres.json"),
                        help="where the server is recorded (mode 0600: it holds the password)")
    args = parser.parse_args(argv)
    record = args.record.absolute()
    if args.action == "down":
        if not record.exists():
            print(f"no PostgreSQL recorded in {record}")
            return 0
        _stop_recorded(json.loads(record.read_text()))
        record.unlink()
        print("stopped the local PostgreSQL")
        return 0
    if record.exists():
        print(f"a PostgreSQL already runs from {record}: stop it first (make postgres-down)", file=sys.stderr)
        return 1
    server = start_postgres()
    url = server.create_database("clockwork")
    record.touch(mode=0o600)
    record.write_text(json.dumps({"pid": server.pid, "directory": str(server.directory), "url": url}) + "\n")
    print(f"PostgreSQL up on 127.0.0.1:{server.port} (data in {server.directory}); put this in your project's .env:\n"
          f"  CW_STATE_URL={url}\n"
          f"stop it with: make postgres-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
