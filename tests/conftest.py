"""Shared fixtures: fleets of real SSH hosts on 127.0.0.1 (see testsupport/fleet.py), root test hosts,
Debian systems with systemd (see testsupport/roothosts.py; their tests are marked ``roothosts``), and a
PostgreSQL server (see testsupport/postgres.py)."""

from gevent import monkey

monkey.patch_all()  # pyinfra needs it, before it is imported and connects

import gevent  # noqa: E402


def _keep_hub_alive() -> None:
    while True:
        gevent.sleep(3600)


# Under pytest-xdist, the main thread waits for its next test on a (now gevent) lock
# that execnet's OS thread releases. With nothing else scheduled, gevent would call
# that wait hopeless ("LoopExit: This operation would block forever"); a sleeping
# greenlet keeps the hub running, and the cross-thread release wakes it at once.
gevent.spawn(_keep_hub_alive)

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import string  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from testsupport import alertmanager as am  # noqa: E402
from testsupport import postgres as pg  # noqa: E402
from testsupport import roothosts  # noqa: E402
from testsupport.fleet import Fleet, PrefixInUse, start_fleet, wait_until  # noqa: E402
from testsupport.receivers import HttpReceiver, http_receiver, silent_url, smtp_receiver  # noqa: E402,F401 (fixtures)


def _worker_prefix() -> str:
    """``cwt`` without xdist, else ``cwta``, ``cwtb``… per worker, so that workers' fleet users never clash (with
    each other, nor with the benchmarks' ``cwb``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return "cwt"
    return "cwt" + string.ascii_lowercase[int(worker.removeprefix("gw"))]


def _start(n: int, prefix: str, docker: bool) -> Fleet:
    """Start a fleet under a short root (docker's unix sockets live there); another
    pytest run on this machine may hold ``prefix``: then take a variant of it."""
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp"))
    try:
        for candidate in [prefix] + [f"{prefix}x{k}" for k in range(1, 10)]:
            try:
                return start_fleet(n, root, prefix=candidate, docker=docker)
            except PrefixInUse:
                continue
        raise PrefixInUse(f"fleet prefixes {prefix}, {prefix}x1…{prefix}x9 are all in use")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """A fresh 3-host fleet (sshd only), stopped after the test."""
    with _start(3, _worker_prefix(), docker=False) as started:
        yield started


@pytest.fixture
def docker_fleet() -> Iterator[Fleet]:
    """A fresh 3-host fleet with one dockerd per host, stopped after the test (about 0.5 s up, 1 s down)."""
    with _start(3, _worker_prefix() + "d", docker=True) as started:
        yield started


@pytest.fixture
def fleet_factory() -> Iterator[Callable[..., Fleet]]:
    """``fleet_factory(n=3, docker=False)`` starts another fleet; all are stopped after the test."""
    started: list[Fleet] = []

    def make(n: int = 3, *, docker: bool = False) -> Fleet:
        started.append(_start(n, f"{_worker_prefix()}f{len(started)}", docker))
        return started[-1]

    yield make
    _stop_all(started)


def _stop_all(fleets: list[Fleet] | list[roothosts.RootFleet]) -> None:
    """Stop every fleet a test started, the others too when one fails to stop (its error is raised after)."""
    errors = []
    for each in fleets:
        try:
            each.stop()
        except Exception as error:  # stop the others anyway
            errors.append(error)
    if errors:
        raise errors[0]


class CwProject:
    """A project directory (main.py + inventory.py for a fleet) and a way to run ``clockwork`` in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write_main(self, source: str) -> None:
        (self.directory / "main.py").write_text(source)

    def cw(self, *args: str, input: str | None = None):
        """Run the CLI in-process (click's CliRunner: stdin is not a terminal)."""
        from click.testing import CliRunner

        from clockwork.cli import cli

        return CliRunner().invoke(cli, ["--project-dir", str(self.directory), *args], input=input, catch_exceptions=False)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., CwProject]:
    """``make_project(fleet, main_source, groups=None, extra_hosts=None)``: a project for that fleet."""
    count = 0

    def make(fleet: Fleet, source: str, groups: dict | None = None, extra_hosts: list | None = None) -> CwProject:
        nonlocal count
        count += 1
        project = CwProject(tmp_path / f"project-{count}")
        project.directory.mkdir()
        fleet.write_inventory(project.directory / "inventory.py", groups=groups, extra_hosts=extra_hosts)
        project.write_main(source)
        return project

    return make


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """@local's ``~`` (and so its ~/.clockwork/manifest.json) is a fresh directory per test, never root's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


# Root test hosts ----------------------------------------------------------------------------

#: Fixtures that start root hosts: a test using one is marked ``roothosts`` (and, under
#: ``pytest -n --dist loadgroup``, kept on one worker with the rest of its module, so that
#: a module's fleet starts once).
ROOT_HOST_FIXTURES = ("root_fleet", "root_fleet_factory", "require_root_hosts")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in ROOT_HOST_FIXTURES):
            item.add_marker(pytest.mark.roothosts)
            item.add_marker(pytest.mark.xdist_group(f"roothosts-{item.module.__name__ if item.module else ''}"))


def _or_skip(what: str, reason: str | None, required: bool, switch: str) -> None:
    """Skip when ``what`` cannot start here (``reason``), with the reason; fail instead where it must run (CI:
    ``switch``=1)."""
    decision = roothosts.verdict(reason, required)
    if decision == "fail":
        pytest.fail(f"{what} cannot start, and {switch}=1 requires it: {reason}", pytrace=False)
    if decision == "skip":
        pytest.skip(f"{what} cannot start here: {reason}")


def _root_hosts_or_skip() -> None:
    _or_skip("root hosts", roothosts.unavailable(), roothosts.required(), roothosts.REQUIRE_ENV)


@pytest.fixture
def require_root_hosts() -> None:
    """For a test that starts root fleets of its own: skips (or fails, on CI) where they cannot start."""
    _root_hosts_or_skip()


@pytest.fixture(scope="module")
def root_fleet() -> Iterator[roothosts.RootFleet]:
    """Three root hosts (``host-1``…``host-3``), shared by the tests of a module, stopped after them.
    Each xdist worker starts its own (own directory, dockerd, cgroup and labels)."""
    _root_hosts_or_skip()
    root = Path(tempfile.mkdtemp(prefix="cwr-", dir="/tmp"))
    try:
        with roothosts.start_root_fleet(3, root) as started:
            yield started
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def root_fleet_factory() -> Iterator[Callable[..., roothosts.RootFleet]]:
    """``root_fleet_factory(n=1, prefix="host-")`` starts fresh root hosts for one test (a host it may break);
    all are stopped after the test."""
    _root_hosts_or_skip()
    started: list[roothosts.RootFleet] = []

    def make(n: int = 1, *, prefix: str = "host-") -> roothosts.RootFleet:
        root = Path(tempfile.mkdtemp(prefix="cwr-", dir="/tmp"))
        started.append(roothosts.start_root_fleet(n, root, prefix=prefix))
        return started[-1]

    yield make
    _stop_all(started)


# PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (one per xdist worker), stopped and removed at its end.
    Skips where it cannot start (no binaries); fails instead with ``CLOCKWORK_REQUIRE_POSTGRES=1`` (CI).
    A test that stops a server starts one of its own (``testsupport.postgres.start_postgres()``), not this one."""
    _or_skip("PostgreSQL", pg.unavailable(), pg.required(), pg.REQUIRE_ENV)
    with pg.start_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: pg.PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database of ``postgres`` for one test, dropped after it."""
    name = f"cw_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


# Alertmanager --------------------------------------------------------------------------------


@pytest.fixture
def start_alertmanager() -> Iterator[Callable[[str], am.Alertmanager]]:
    """Starts real Alertmanagers (testsupport/alertmanager.py), each routing to the webhook URL it is given;
    all stopped after the test. Skips where none can start; fails instead with ``CLOCKWORK_REQUIRE_ALERTMANAGER=1``
    (CI)."""
    _or_skip("Alertmanager", am.unavailable(), am.required(), am.REQUIRE_ENV)
    started: list[am.Alertmanager] = []

    def start(webhook_url: str) -> am.Alertmanager:
        started.append(am.start_alertmanager(webhook_url))
        return started[-1]

    yield start
    for manager in started:
        manager.close()


@pytest.fixture
def alertmanager(start_alertmanager: Callable[[str], am.Alertmanager],
                 http_receiver: HttpReceiver) -> am.Alertmanager:  # noqa: F811 (the fixture imported above)
    """A real Alertmanager whose notifications go to ``http_receiver``."""
    return start_alertmanager(http_receiver.url)


class Daemon:
    """``clockwork reconcile`` as a real process in a project; its JSON log lines are read from its stderr file."""

    def __init__(self, project: CwProject, *args: str) -> None:
        self.log_path = project.directory / f"daemon-{len(list(project.directory.glob('daemon-*.stderr')))}.stderr"
        self.stderr = self.log_path.open("wb")
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "clockwork"), "reconcile", *args], cwd=project.directory,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines() if line["event"] == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 20) -> None:
        wait_until(lambda: len(self.events(name)) >= count or self.process.poll() is not None, timeout, f"{count}× {name}")
        assert len(self.events(name)) >= count, f"the daemon ended: {self.log_path.read_text()[-2000:]}"

    def stop(self) -> int:
        """SIGTERM, then its exit status (it must exit on its own within 15 s)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


@pytest.fixture
def daemon() -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(project: CwProject, *args: str) -> Daemon:
        started.append(Daemon(project, *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()
