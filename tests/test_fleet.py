"""The fleet fixtures themselves: real sshd (and dockerd) hosts that pyinfra reaches over SSH."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from paramiko import SSHException
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.exceptions import ConnectError
from pyinfra.api.host import Host
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from testsupport.fleet import Fleet, FleetHost, closed_port


def _state(fleet: Fleet, hosts: list[FleetHost] | None = None, **overrides: object) -> State:
    """A pyinfra state whose inventory holds ``hosts`` (default: all) with the fleet's host data."""
    names_data = [(host.name, {**fleet.host_data(host), **overrides}) for host in hosts or fleet.hosts]
    return State(Inventory((names_data, {})), Config())


def _shell(host: Host, command: str) -> str:
    success, output = host.run_shell_command(command)
    assert success, output.stderr
    return output.stdout


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_pyinfra_connects_to_every_host_as_its_user(fleet: Fleet) -> None:
    state = _state(fleet)
    connect_all(state)
    assert len(state.activated_hosts) == len(fleet.hosts) == 3
    for fleet_host in fleet.hosts:
        host = state.inventory.get_host(fleet_host.name)
        assert _shell(host, "whoami") == fleet_host.user
        assert _shell(host, "pwd") == str(fleet_host.home)
    assert len({host.port for host in fleet.hosts}) == 3


@pytest.mark.parametrize("entry", ["wrong key", "missing"])
def test_host_key_checking_is_on(fleet: Fleet, tmp_path: Path, entry: str) -> None:
    first, second, third = fleet.hosts
    keys = dict(line.split(" ", 1) for line in fleet.known_hosts.read_text().splitlines())
    if entry == "wrong key":
        keys[f"[127.0.0.1]:{first.port}"] = keys[f"[127.0.0.1]:{third.port}"]
    else:
        del keys[f"[127.0.0.1]:{first.port}"]
    # pyinfra caches known_hosts by file name: this one must be new.
    known_hosts = tmp_path / f"known_hosts-{entry.replace(' ', '-')}"
    known_hosts.write_text("".join(f"{name} {key}\n" for name, key in keys.items()))
    state = _state(fleet, [first, second], ssh_known_hosts_file=str(known_hosts))

    with pytest.raises(ConnectError, match="host key|No host key"):
        state.inventory.get_host(first.name).connect(raise_exceptions=True, show_errors=False)
    control = state.inventory.get_host(second.name)
    control.connect(raise_exceptions=True)
    assert _shell(control, "whoami") == second.user


def test_hosts_have_independent_homes_and_tmp(fleet: Fleet) -> None:
    state = _state(fleet)
    connect_all(state)
    first, second = (state.inventory.get_host(host.name) for host in fleet.hosts[:2])
    _shell(first, "echo one > marker && echo one > /tmp/pyinfra-marker")

    assert fleet.run(fleet.hosts[0], "cat marker /tmp/pyinfra-marker").stdout == "one\none\n"
    assert (fleet.hosts[0].home / "marker").read_text() == "one\n"
    for other in fleet.hosts[1:]:
        assert fleet.run(other, "test -e marker || test -e /tmp/pyinfra-marker").returncode == 1
    assert not Path("/tmp/pyinfra-marker").exists()  # each host's /tmp is private
    # Drift injected locally is seen over SSH, on that host only.
    assert fleet.run(fleet.hosts[1], "echo two > marker").returncode == 0
    assert _shell(second, "cat marker") == "two"
    assert _shell(first, "cat marker") == "one"


def test_stop_host_makes_it_unreachable(fleet: Fleet) -> None:
    state = _state(fleet)
    connect_all(state)
    stopped = fleet.hosts[0]
    session = state.inventory.get_host(stopped.name)
    fleet.stop_host(stopped)

    assert _refused(stopped.port)
    with pytest.raises(SSHException, match="not active"):  # its open connection died with it
        session.run_shell_command("true")
    state = _state(fleet)
    with pytest.raises(ConnectError, match="Could not connect"):
        state.inventory.get_host(stopped.name).connect(raise_exceptions=True, show_errors=False)
    survivor = state.inventory.get_host(fleet.hosts[1].name)
    survivor.connect(raise_exceptions=True)
    assert _shell(survivor, "whoami") == fleet.hosts[1].user
    # Its files are still there, to inspect.
    assert fleet.run(stopped, "pwd").stdout.strip() == str(stopped.home)


def test_write_inventory_loads_in_pyinfra(fleet: Fleet, tmp_path: Path) -> None:
    port = closed_port()
    assert _refused(port)
    path = fleet.write_inventory(
        tmp_path / "inventory.py",
        groups={"web": ["host-01", "host-02"], "db": ["host-03"]},
        extra_hosts=[("down", {"ssh_hostname": "127.0.0.1", "ssh_port": port})],
    )
    with ctx_state.use(State()):  # inventory files run as the CLI runs them: with a state
        inventory = make_inventory(str(path))

    assert sorted(host.name for host in inventory) == ["down", "host-01", "host-02", "host-03"]
    assert sorted(host.name for host in inventory.get_group("hosts")) == ["down", "host-01", "host-02", "host-03"]
    assert sorted(host.name for host in inventory.get_group("web")) == ["host-01", "host-02"]
    assert [host.name for host in inventory.get_group("db")] == ["host-03"]
    for fleet_host in fleet.hosts:
        data = inventory.get_host(fleet_host.name).data
        assert {key: data.get(key) for key in fleet.host_data(fleet_host)} == fleet.host_data(fleet_host)
    assert inventory.get_host("down").data.ssh_port == port

    state = State(inventory, Config())
    connect_all(state)
    assert sorted(host.name for host in state.activated_hosts) == ["host-01", "host-02", "host-03"]
    assert [host.name for host in state.failed_hosts] == ["down"]


def test_docker_hosts_are_independent(docker_fleet: Fleet) -> None:
    state = _state(docker_fleet)
    connect_all(state)
    first, second = (state.inventory.get_host(host.name) for host in docker_fleet.hosts[:2])
    run = f"docker run -d --network host --name web {docker_fleet.docker_image} sleep 1000"

    _shell(first, run)
    assert _shell(first, "docker ps --format '{{.Names}} {{.Image}}'") == f"web {docker_fleet.docker_image}"
    assert _shell(second, "docker ps -a --format '{{.Names}}'") == ""
    _shell(second, run.replace(docker_fleet.docker_image, docker_fleet.docker_image_2))  # same name, other host
    assert _shell(second, "docker exec web cat /etc/cwtest-release") == "2"
    assert _shell(first, "docker exec web cat /etc/cwtest-release") == "1"
    image_ids = _shell(first, f"docker image inspect -f '{{{{.Id}}}}' {Fleet.docker_image} {Fleet.docker_image_2}")
    assert len(set(image_ids.split())) == 2
    assert docker_fleet.run(docker_fleet.hosts[0], "docker ps -q | wc -l").stdout.strip() == "1"


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_leaves_no_process_and_no_files(fleet_factory: Callable[..., Fleet]) -> None:
    fleet = fleet_factory(2, docker=True)
    connect_all(_state(fleet))  # open SSH connections, which stop() must end too
    assert fleet.run(fleet.hosts[0], f"docker run -d --network host {fleet.docker_image} sleep 1000").returncode == 0
    pids = [pid for host in fleet.hosts for pid in host.pids()]
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in pids]
    for expected in ("/usr/sbin/sshd -D", f"sshd: {fleet.hosts[1].user}", "/usr/sbin/dockerd", "containerd --config",
                     "containerd-shim", "sleep 1000"):
        assert any(expected in cmdline for cmdline in cmdlines), (expected, cmdlines)

    fleet.stop()

    assert [pid for pid in pids if _running(pid)] == []
    assert not fleet.root.exists()
    fleet.stop()  # idempotent
