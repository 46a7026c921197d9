"""One SSH connection per host per command, and the inventory file executed once per command (real sshd hosts).

Connections are counted in each host's sshd log (one "Accepted publickey" line each);
inventory executions by an inventory.py that appends a line to a file every time it runs.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CwProject
from testsupport.fleet import Fleet

MAIN = """\
from clockwork.resources import DirectoryResource, FileResource

app = DirectoryResource(name="app")
conf = FileResource(name="app.conf", directory="app", content="workers = 2\\n", reconcile=True, check_interval="1h")
temp = FileResource(name="temp.conf", directory="app", content="t\\n", max_duration="1h")
"""


def counting_inventory(fleet: Fleet, directory: Path) -> Path:
    """An inventory that records each time it is executed (in ``inventory-runs``)."""
    fleet.write_inventory(directory / "fleet_hosts.py")
    runs = directory / "inventory-runs"
    (directory / "inventory.py").write_text(
        f"with open({str(runs)!r}, 'a') as runs:\n    runs.write('ran\\n')\n"
        f"exec(open({str(directory / 'fleet_hosts.py')!r}).read())\n")
    return runs


def measure(fleet: Fleet, project: CwProject, runs: Path, *args: str, exit_code: int = 0) -> tuple[list[int], int]:
    """Run one command; returns the connections each host accepted during it and the inventory executions."""
    before = [host.connections() for host in fleet.hosts]
    runs.write_text("")
    result = project.cw(*args)
    assert result.exit_code == exit_code, result.output
    return [host.connections() - count for host, count in zip(fleet.hosts, before, strict=True)], len(
        runs.read_text().splitlines())


def test_every_command_connects_once_per_host_and_reads_the_inventory_once(fleet: Fleet, tmp_path: Path) -> None:
    project = CwProject(tmp_path / "project")
    project.directory.mkdir()
    project.write_main(MAIN)
    runs = counting_inventory(fleet, project.directory)
    once = [1, 1, 1]

    assert measure(fleet, project, runs, "apply") == (once, 1), "read, write, then the manifests: one connection"
    assert measure(fleet, project, runs, "apply") == (once, 1)
    fleet.run(fleet.hosts[1], "echo tampered > app/app.conf")
    assert measure(fleet, project, runs, "evaluate", exit_code=1) == (once, 1)
    assert measure(fleet, project, runs, "evaluate", "--diff", exit_code=1) == (once, 1)

    # A reconcile pass that corrects, verifies, expires and rewrites the manifests: still one connection.
    with __import__("sqlite3").connect(project.directory / ".clockwork" / "state.db") as db:
        db.execute("UPDATE first_deployed SET expires_at = 0 WHERE name = 'temp.conf'")
    connections, executions = measure(fleet, project, runs, "reconcile", "--once")
    assert (connections, executions) == (once, 1)
    assert fleet.run(fleet.hosts[1], "cat app/app.conf").stdout == "workers = 2\n"
    assert all(fleet.run(host, "test -e app/temp.conf").returncode == 1 for host in fleet.hosts)

    project.write_main(MAIN.replace("workers = 2", "workers = 4"))
    assert measure(fleet, project, runs, "apply") == (once, 1)
    assert measure(fleet, project, runs, "rollback", "app.conf", "--yes") == (once, 1)
    assert measure(fleet, project, runs, "destroy", "--yes") == (once, 1)


def test_update_connects_once_per_host_from_a_project_or_from_the_manifests(fleet: Fleet, tmp_path: Path) -> None:
    project = CwProject(tmp_path / "project")
    project.directory.mkdir()
    project.write_main(MAIN)
    runs = counting_inventory(fleet, project.directory)
    assert project.cw("apply").exit_code == 0
    once = [1, 1, 1]
    (project.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\n"
        "conf = FileResource(name='app.conf', directory='app', content='workers = 3\\n')\n")
    # from the project's state: apply the change, then verify it, on one connection per host
    assert measure(fleet, project, runs, "update", "--yes") == (once, 1)
    assert fleet.run(fleet.hosts[0], "cat app/app.conf").stdout == "workers = 3\n"

    elsewhere = CwProject(tmp_path / "elsewhere")
    elsewhere.directory.mkdir()
    runs = counting_inventory(fleet, elsewhere.directory)
    (elsewhere.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\nconf = FileResource(name='app.conf', content='workers = 5\\n')\n")
    # from the hosts' manifests: read them, apply, verify: still one connection per host
    assert measure(fleet, elsewhere, runs, "update", "--yes") == (once, 1)
    assert fleet.run(fleet.hosts[2], "cat app/app.conf").stdout == "workers = 5\n"
