"""--parallel and CW_PARALLEL: a fleet larger than the limit is worked through with at most that many SSH
connections open at once (counted from the client: its established sockets to the fleet's ports); a bad
value is a usage error that touches no host (real sshd hosts)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyinfra.connectors.sshuserclient import client as sshuserclient

from tests.conftest import CwProject
from testsupport.fleet import Fleet

MAIN = 'from clockwork.resources import FileResource\nconf = FileResource(name="app.conf", content="x\\n")\n'


def _open_connections(ports: set[int]) -> int:
    """This process's established TCP connections to any of ``ports`` (from /proc: real sockets, not bookkeeping)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[len("socket:["):-1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
        count += state == "01" and remote_port in ports and inode in mine  # 01: ESTABLISHED
    return count


@pytest.fixture
def most_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Fleet], list[int]]]:
    """``most_open(fleet)``: a list that gets, after every SSH connection made, how many are open to the fleet."""
    seen: list[int] = []
    ports: set[int] = set()
    connect = sshuserclient.SSHClient.connect

    def counting(self: sshuserclient.SSHClient, *args: object, **kwargs: object) -> None:
        connect(self, *args, **kwargs)
        seen.append(_open_connections(ports))

    monkeypatch.setattr(sshuserclient.SSHClient, "connect", counting)

    def start(fleet: Fleet) -> list[int]:
        ports.update(host.port for host in fleet.hosts)
        seen.clear()
        return seen

    yield start


def _project(fleet: Fleet, directory: Path) -> CwProject:
    project = CwProject(directory)
    directory.mkdir()
    fleet.write_inventory(directory / "inventory.py")
    project.write_main(MAIN)
    return project


def test_a_fleet_larger_than_parallel_is_worked_through_within_the_limit(
    fleet_factory: Callable[..., Fleet], tmp_path: Path, most_open: Callable[[Fleet], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = fleet_factory(5)
    project = _project(fleet, tmp_path / "project")

    seen = most_open(fleet)
    result = project.cw("apply", "--parallel", "2")
    assert result.exit_code == 0, result.output
    assert "Applied: 5 changed, 0 unchanged, 0 failed on 5 hosts" in result.output
    assert [fleet.run(host, "cat app.conf").stdout for host in fleet.hosts] == ["x\n"] * 5
    assert max(seen) == 2, seen
    assert _open_connections({host.port for host in fleet.hosts}) == 0, "all closed at the end"

    fleet.run(fleet.hosts[3], "echo drifted > app.conf")
    seen = most_open(fleet)
    result = project.cw("evaluate", "--parallel", "3")
    assert result.exit_code == 1, result.output
    assert "✗ [host-04] app.conf: content differs" in result.output
    assert max(seen) == 3, seen

    monkeypatch.setenv("CW_PARALLEL", "1")
    seen = most_open(fleet)
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert "Applied: 1 changed, 4 unchanged, 0 failed on 5 hosts" in result.output
    assert max(seen) == 1, seen
    seen = most_open(fleet)
    assert project.cw("evaluate", "--parallel", "5").exit_code == 0, "--parallel wins over CW_PARALLEL"
    assert max(seen) == 5, seen


@pytest.mark.parametrize(("args", "environment", "message"), [
    (["--parallel", "0"], {}, "Error: Invalid value for '--parallel': 0 is not in the range x>=1."),
    (["--parallel", "-2"], {}, "Error: Invalid value for '--parallel': -2 is not in the range x>=1."),
    (["--parallel", "many"], {}, "Error: Invalid value for '--parallel': 'many' is not a valid integer range."),
    ([], {"CW_PARALLEL": "0"}, "Error: CW_PARALLEL must be 1 or more, not 0"),
    ([], {"CW_PARALLEL": "lots"}, "Error: CW_PARALLEL must be a whole number, not 'lots'"),
], ids=["zero", "negative", "not-a-number", "setting-zero", "setting-not-a-number"])
def test_a_bad_limit_is_a_usage_error_that_touches_no_host(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], environment: dict[str, str],
    message: str,
) -> None:
    project = _project(fleet, tmp_path / "project")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for command in ("apply", "evaluate", "destroy", "reconcile", "update", "rollback"):
        command_args = [command, *(["app.conf"] if command == "rollback" else []), *args,
                        *(["--yes"] if command in ("destroy", "update", "rollback") else []),
                        *(["--once"] if command == "reconcile" else [])]
        result = project.cw(*command_args)
        assert result.exit_code == 2, (command, result.output)
        assert message in result.output, (command, result.output)
    assert [host.connections() for host in fleet.hosts] == [0, 0, 0]
    assert [fleet.run(host, "test -e app.conf").returncode for host in fleet.hosts] == [1, 1, 1]
