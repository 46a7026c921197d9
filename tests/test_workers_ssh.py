"""Several ``clockwork reconcile`` workers sharing a fleet through one PostgreSQL database: disjoint claims,
every drift corrected once, a dead or stalled worker's hosts taken over (its late write rejected), wake-ups
on NOTIFY, and a database that goes away and comes back."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import CwProject, Daemon
from testsupport.fleet import Fleet, FleetHost, wait_until
from testsupport.postgres import start_postgres

SOURCE = """\
from clockwork.resources import FileResource

conf = FileResource(name="app.conf", directory="rc", content="declared\\n", reconcile=True, check_interval={interval})
"""


def team_project(make_project, fleet: Fleet, url: str, interval: str = "1", **settings: str) -> CwProject:
    project = make_project(fleet, SOURCE.format(interval=interval))
    values = {"state_url": url, "reconcile_lease": "3s", **settings}
    (project.directory / ".env").write_text("".join(f"CW_{key.upper()}={value}\n" for key, value in values.items()))
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    return project


def drift(fleet: Fleet, host: FleetHost) -> None:
    assert fleet.run(host, "echo 'by hand' > rc/app.conf").returncode == 0


def declared(fleet: Fleet, host: FleetHost) -> bool:
    return fleet.run(host, "cat rc/app.conf").stdout == "declared\n"


def claims(worker: Daemon) -> list[tuple[str, int]]:
    return [(host, fence) for line in worker.events("claimed") for host, fence in line["fences"].items()]


def corrected(workers: list[Daemon]) -> list[str]:
    return sorted(line["host"] for worker in workers for line in worker.events("corrected"))


@pytest.mark.parametrize("count", [2, 3])
def test_workers_claim_disjoint_hosts_and_correct_every_drift_once(
    fleet_factory: Callable[..., Fleet], make_project, postgres_url: str, daemon, count: int
) -> None:
    fleet = fleet_factory(6)
    project = team_project(make_project, fleet, postgres_url, reconcile_capacity="2")
    workers = [daemon(project) for _ in range(count)]
    for worker in workers:
        worker.wait_for("claimed")
    for host in fleet.hosts:
        drift(fleet, host)
    wait_until(lambda: all(declared(fleet, host) for host in fleet.hosts), 60, "every drift corrected")
    wait_until(lambda: len(corrected(workers)) >= len(fleet.hosts), 20, "every correction logged")
    for worker in workers:
        assert worker.stop() == 0
    assert corrected(workers) == sorted(host.name for host in fleet.hosts), "each drift corrected once, none lost"
    every = [claim for worker in workers for claim in claims(worker)]
    assert len(every) == len(set(every)), "no claim of a host (its fence) was held by two workers"
    assert sum(1 for worker in workers if claims(worker)) >= 2, "the fleet was shared"
    assert all(len(line["fences"]) <= 2 for worker in workers for line in worker.events("claimed")), "capacity"


def held(url: str) -> dict[str, str | None]:
    with psycopg.connect(url, autocommit=True) as db:
        return {host: worker for host, worker in db.execute("SELECT host, worker FROM reconcile_hosts").fetchall()}


def stalled_pass(fleet: Fleet, make_project, url: str, daemon) -> tuple[CwProject, Daemon, Daemon]:
    """Worker ``a`` in the middle of a pass over both hosts (host-02 froze while a connects), ``b`` idle beside it,
    and drift on host-01."""
    project = team_project(make_project, fleet, url)
    inventory = project.directory / "inventory.py"  # a's connection to the frozen host waits until it thaws
    inventory.write_text(inventory.read_text().replace("'banner_timeout': 5", "'banner_timeout': 300"))
    fleet.pause_host(fleet.hosts[1])
    drift(fleet, fleet.hosts[0])
    a = daemon(project)
    wait_until(lambda: {host for host, _ in claims(a)} == {h.name for h in fleet.hosts}, 30, "a to claim both hosts")
    b = daemon(project)
    b.wait_for("started")
    return project, a, b


def test_a_killed_workers_hosts_are_taken_over_when_its_lease_ends(
    fleet_factory: Callable[..., Fleet], make_project, postgres_url: str, daemon
) -> None:
    fleet = fleet_factory(2)
    project, a, b = stalled_pass(fleet, make_project, postgres_url, daemon)
    try:
        assert not declared(fleet, fleet.hosts[0]) and set(held(postgres_url).values()) == {a.events("started")[0]["worker"]}
        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
    finally:
        fleet.resume_host(fleet.hosts[1])
    wait_until(lambda: declared(fleet, fleet.hosts[0]), 60, "b to correct what a held")
    wait_until(lambda: "host-01" in corrected([b]), 20, "b's correction logged")
    a_fences, b_fences = dict(claims(a)), dict(claims(b))
    assert b_fences["host-01"] > a_fences["host-01"]
    a_id, b_id = (worker.events("started")[0]["worker"] for worker in (a, b))

    def states() -> dict[str, str]:
        return {w["id"]: w["state"] for w in json.loads(project.cw("status", "--format", "json").output)["workers"]}

    wait_until(lambda: states().get(a_id) == "dead", 60, "a shown dead: silent for three lease periods")
    assert states()[b_id] == "alive"
    text = project.cw("status").output
    assert "Reconcile workers:" in text and f"✗ {a_id} (pid {a.process.pid} on " in text, text
    assert "dead (silent for over three lease periods)" in text
    assert b.stop() == 0


def test_a_stalled_worker_that_lost_its_lease_writes_nothing(
    fleet_factory: Callable[..., Fleet], make_project, postgres_url: str, daemon
) -> None:
    fleet = fleet_factory(2)
    project, a, b = stalled_pass(fleet, make_project, postgres_url, daemon)
    a.process.send_signal(signal.SIGSTOP)  # no more heartbeats: its leases run out
    fleet.resume_host(fleet.hosts[1])
    try:
        wait_until(lambda: "host-01" in corrected([b]), 60, "b to take over and correct host-01")
        assert b.stop() == 0
        with psycopg.connect(postgres_url, autocommit=True) as db:
            before = db.execute("SELECT * FROM watches ORDER BY host").fetchall()
        a.process.send_signal(signal.SIGTERM)  # handled once it runs again: it ends after this pass
    finally:
        a.process.send_signal(signal.SIGCONT)
    assert a.process.wait(timeout=60) == 0
    assert {line["host"] for line in a.events("lease-lost")} == {"host-01", "host-02"}
    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert db.execute("SELECT * FROM watches ORDER BY host").fetchall() == before, "a's late results were rejected"
    assert declared(fleet, fleet.hosts[0])


def test_an_apply_wakes_an_idle_worker_at_once(
    fleet_factory: Callable[..., Fleet], make_project, postgres_url: str, daemon
) -> None:
    fleet = fleet_factory(1)
    project = team_project(make_project, fleet, postgres_url, interval='"1h"')
    worker = daemon(project)
    worker.wait_for("pass")
    wait_until(lambda: any(line["evaluated"] for line in worker.events("pass")), 20, "the first check")
    asleep = len(worker.events("woken"))
    project.write_main(SOURCE.format(interval='"1h"') + 'new = FileResource(name="new.conf", directory="rc", '
                                                       'content="new\\n", reconcile=True, check_interval="1h")\n')
    assert project.cw("apply").exit_code == 0
    worker.wait_for("woken", asleep + 1, timeout=10)  # its sleep (up to 30 s) was cut short by NOTIFY
    wait_until(lambda: any(line["evaluated"] for line in worker.events("pass")[1:]), 10, "the new resource checked")
    assert worker.stop() == 0


def test_the_database_stopped_mid_pass_workers_back_off_and_resume(
    fleet_factory: Callable[..., Fleet], make_project, daemon
) -> None:
    fleet = fleet_factory(2)
    server = start_postgres()
    try:
        server.create_database("team")
        _project, worker, idle = stalled_pass(fleet, make_project, server.url("team"), daemon)
        server.stop()  # while the worker is in the middle of its pass
        fleet.resume_host(fleet.hosts[1])
        worker.wait_for("store-unavailable", timeout=60)  # its pass could not record what it did: it backs off
        passes = len(worker.events("pass")) + len(idle.events("pass"))
        server.start()
        drift(fleet, fleet.hosts[0])
        wait_until(lambda: declared(fleet, fleet.hosts[0]), 60, "a worker to resume and correct")
        wait_until(lambda: len(worker.events("pass")) + len(idle.events("pass")) > passes, 30, "passes again")
        for each in (worker, idle):
            assert each.stop() == 0
            assert server.password not in each.log_path.read_text()
    finally:
        fleet.resume_host(fleet.hosts[1])
        server.close()
