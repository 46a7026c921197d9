"""Root test hosts (testsupport/roothosts.py): Debian with systemd as PID 1, reached over SSH as root and
as sudo users with strict host-key checking, apt seeing only the local repository, own network
namespaces, nothing of the build machine in the image, and a teardown that leaves nothing behind."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra.api import Config, State
from pyinfra.api.connect import connect_all
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from testsupport import roothosts
from testsupport.fleet import wait_until
from testsupport.roothosts import RootFleet, RootHost, start_root_fleet

REPO = Path(__file__).resolve().parent.parent
#: An address of a private range (RFC 1918) written in a line that is not a comment.
PRIVATE = r"^[^#]*\b(10\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])|192\.168)\.[0-9]{1,3}\.[0-9]{1,3}"


def run(fleet: RootFleet, host: RootHost, command: str, user: str = "root") -> str:
    done = fleet.ssh(host, command, user=user)
    assert done.returncode == 0, f"{command!r} on {host.name} as {user}: {done.stderr}"
    return done.stdout


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return [line.split()[4] for line in mountinfo if line.split()[4].startswith(f"{path}/")]


def _gone(fleet: RootFleet, pids: list[int], containers: list[str]) -> None:
    """Nothing the fleet ran or made is left: processes, its directory, mounts, cgroups, its slot."""
    assert pids and all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
                        for pid in pids), pids
    assert not fleet.root.exists() and not fleet.exec_root.exists()
    assert _mounts_under(fleet.root) == [] and _mounts_under(fleet.exec_root) == []
    assert fleet.data_root is not None and _mounts_under(fleet.data_root) == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{fleet.cgroup_parent}"))
    for container in containers:
        assert not list(Path("/sys/fs/cgroup").glob(f"*/{fleet.cgroup_parent}/{container}"))
    # The slot may be taken again at once by another fleet of this machine (another test worker): only the
    # fleet's own processes must no longer hold it.
    assert not _lock_holders(fleet.data_root.with_suffix(".lock")) & set(pids), "the fleet still holds its slot"


def _lock_holders(path: Path) -> set[int]:
    """The processes holding a lock on ``path`` (/proc/locks: ``1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE …``)."""
    status = path.stat()
    where = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    with open("/proc/locks") as locks:
        return {int(fields[4]) for fields in (line.split() for line in locks)
                if len(fields) > 5 and fields[1] != "->" and fields[5] == where}


# Pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "must_run", "expected"), [
    (None, False, "run"), (None, True, "run"),
    ("missing mmdebstrap", False, "skip"), ("missing mmdebstrap", True, "fail"),
])
def test_verdict_skips_where_hosts_cannot_start_unless_they_must_run(reason: str | None, must_run: bool, expected: str) -> None:
    assert roothosts.verdict(reason, must_run) == expected


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("", False), ("0", False), (None, False)])
def test_required_reads_the_ci_switch(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {roothosts.REQUIRE_ENV: value}
    assert roothosts.required(environ) is expected


def test_ci_requires_root_hosts() -> None:
    """.ci/run turns a root-host skip into a failure before running the README's test command."""
    script = (REPO / ".ci" / "run").read_text()
    assert f"export {roothosts.REQUIRE_ENV}=1" in script
    assert script.index(f"export {roothosts.REQUIRE_ENV}=1") < script.index("make test")


@pytest.mark.parametrize(("require", "returncode", "says"), [
    ("", 0, "SKIPPED [1] tests/test_roothosts.py:"),
    ("1", 1, "root hosts cannot start, and CLOCKWORK_REQUIRE_ROOTHOSTS=1 requires it: missing mmdebstrap"),
])
def test_root_host_tests_skip_where_hosts_cannot_start_and_fail_where_required(require: str, returncode: int, says: str) -> None:
    """A machine without the tools (here: a PATH without them): the root host tests skip, naming what is
    missing; with the CI switch they fail."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "CLOCKWORK_"))}
    env.update(PATH=str(Path(sys.executable).parent), **{roothosts.REQUIRE_ENV: require})
    test = "tests/test_roothosts.py::test_hosts_boot_with_systemd_as_pid_1_and_no_failed_unit"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", test],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == returncode, done.stdout + done.stderr
    assert says in done.stdout, done.stdout
    assert "missing mmdebstrap" in done.stdout and "run `make test` as root" in done.stdout


def test_apt_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "a.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib\n"
        "Signed-By: /usr/share/keyrings/x.gpg\n")
    assert roothosts.apt_mirror(tmp_path) == "http://mirror.invalid/debian"
    (tmp_path / "sources.list.d" / "a.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.invalid/debian bookworm main\ndeb-src http://src.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://line.invalid/debian bookworm main non-free\n")
    assert roothosts.apt_mirror(tmp_path) == "http://line.invalid/debian"
    (tmp_path / "sources.list").write_text("deb http://line.invalid/debian bullseye main\n")
    assert roothosts.apt_mirror(tmp_path) is None


def test_missing_capabilities_are_the_bits_absent_from_the_bounding_set() -> None:
    assert roothosts.missing_capabilities("Name:\tx\nCapBnd:\t000001fffeffffff\n") == ["SYS_RESOURCE"]
    assert roothosts.missing_capabilities("CapBnd:\t000001ffffffffff\n") == []


def test_the_recipe_hash_names_the_cached_image() -> None:
    assert roothosts.image_path().parent.name == roothosts.recipe_hash()
    assert len(roothosts.recipe_hash()) == 64


# Teardown (first in the module: these fleets come and go before the module's fleet starts) ------


def test_a_fleet_left_by_an_exception_leaves_nothing_behind(require_root_hosts: None, tmp_path: Path) -> None:
    root = tmp_path / "f"
    recorded: dict[str, object] = {}
    with pytest.raises(KeyboardInterrupt), start_root_fleet(1, root) as fleet:
        recorded.update(pids=fleet.pids(), containers=[h.container for h in fleet.hosts], hosts=list(fleet.hosts))
        assert fleet.dockerd is not None and fleet.dockerd[0] in fleet.pids()
        assert fleet.hosts[0].pid in fleet.pids()
        assert _mounts_under(fleet.exec_root)  # the private dockerd's nsfs mounts
        raise KeyboardInterrupt  # as when a test run is interrupted
    pids = recorded["pids"]
    assert isinstance(pids, list) and len(pids) > 3
    _gone(fleet, pids, recorded["containers"])  # type: ignore[arg-type]


def test_the_fleet_of_a_killed_test_run_is_reaped_by_the_next_one(require_root_hosts: None, tmp_path: Path) -> None:
    root = tmp_path / "orphan"
    script = ("import os, signal, sys; from pathlib import Path; from testsupport.roothosts import start_root_fleet;"
              "start_root_fleet(1, Path(sys.argv[1])); os.kill(os.getpid(), signal.SIGKILL)")
    killed = subprocess.run([sys.executable, "-c", script, str(root)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -9, killed.stderr
    orphan = RootFleet.load(root)
    pids = orphan.pids()
    assert orphan.dockerd is not None and orphan.dockerd[0] in pids and orphan.hosts[0].pid in pids  # still running
    assert orphan.id in roothosts.reap_orphans()
    _gone(orphan, pids, [h.container for h in orphan.hosts])


def test_make_hosts_up_and_down(require_root_hosts: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make hosts`: hosts that outlive the process that started them, stopped from their record."""
    inventory = tmp_path / "hosts" / "inventory.py"
    assert roothosts.main(["up", "-n", "1", "--inventory", str(inventory), "--user", "deploy"]) == 0
    assert "clockwork apply -i" in capsys.readouterr().out
    fleet = RootFleet.load(inventory.parent / ".fleet")
    try:
        assert "'ssh_user': 'deploy'" in inventory.read_text()
        assert run(fleet, fleet.host("web-1"), "id -un", user="deploy") == "deploy\n"
        pids = fleet.pids()
        assert roothosts.main(["up", "-n", "1", "--inventory", str(inventory)]) == 1  # already up
    except BaseException:
        fleet.stop()
        raise
    assert roothosts.main(["down", "--inventory", str(inventory)]) == 0
    assert not inventory.exists()
    _gone(fleet, pids, [h.container for h in fleet.hosts])


# The module's fleet -----------------------------------------------------------------------


def test_hosts_boot_with_systemd_as_pid_1_and_no_failed_unit(root_fleet: RootFleet) -> None:
    assert [host.name for host in root_fleet.hosts] == ["host-1", "host-2", "host-3"]
    for host in root_fleet.hosts:
        out = run(root_fleet, host, "ps -o comm= -p 1; systemctl is-system-running; systemctl --failed --no-legend --plain | wc -l;"
                                    " hostname; cat /etc/hostname")
        assert out.split() == ["systemd", "running", "0", host.name, host.name]
        assert Path(f"/proc/{host.pid}/comm").read_text() == "systemd\n"
    ids = {run(root_fleet, host, "cat /etc/machine-id") for host in root_fleet.hosts}
    assert len(ids) == 3  # each host its own, none from the image


def _pyinfra_state(inventory: Path) -> State:
    """A pyinfra state of the inventory file, read as the CLI reads it."""
    with ctx_state.use(State()):
        return State(make_inventory(str(inventory)), Config())


@pytest.mark.parametrize("user", ["root", "deploy"])
def test_pyinfra_logs_in_through_the_ssh_config_with_strict_host_keys(root_fleet: RootFleet, tmp_path: Path, user: str) -> None:
    state = _pyinfra_state(root_fleet.write_inventory(tmp_path / "inventory.py", user=user))
    connect_all(state)
    assert len(state.activated_hosts) == 3
    for fleet_host in root_fleet.hosts:
        host = state.inventory.get_host(fleet_host.name)
        success, output = host.run_shell_command("id -un; hostname")
        assert success, output.stderr
        assert output.stdout.split() == [user, fleet_host.name]


def test_a_wrong_host_key_is_refused(root_fleet: RootFleet, tmp_path: Path) -> None:
    first, second = root_fleet.hosts[:2]
    lines = root_fleet.known_hosts.read_text().splitlines()
    keys = dict(line.split(" ", 1) for line in lines)
    keys[first.alias] = keys[second.alias]  # host-1 claims host-2's key
    # pyinfra caches known_hosts by file name: a new one.
    known = tmp_path / f"known_hosts-{secrets.token_hex(4)}"
    known.write_text("".join(f"{name} {key}\n" for name, key in keys.items()))
    inventory = root_fleet.write_inventory(tmp_path / "inventory.py")
    inventory.write_text(inventory.read_text().replace(str(root_fleet.known_hosts), str(known)))
    state = _pyinfra_state(inventory)
    connect_all(state)
    assert sorted(host.name for host in state.activated_hosts) == ["host-2", "host-3"]
    # OpenSSH says so too, with the same file.
    done = root_fleet.ssh(first, "true")
    assert done.returncode == 0
    config = tmp_path / "ssh_config"
    config.write_text(root_fleet.ssh_config.read_text().replace(str(root_fleet.known_hosts), str(known)))
    refused = subprocess.run(["ssh", "-F", str(config), "-l", "root", first.alias, "true"], capture_output=True, text=True, check=False)
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr


def test_clockwork_applies_a_file_as_the_sudo_user(root_fleet: RootFleet, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from clockwork.cli import cli

    directory = f"/tmp/cw-{secrets.token_hex(4)}"
    root_fleet.write_inventory(tmp_path / "inventory.py", user="deploy")
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import FileResource\n"
        f"motd = FileResource(name='motd', directory={directory!r}, content='hello\\n', mode='640')\n")
    result = CliRunner().invoke(cli, ["--project-dir", str(tmp_path), "apply"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for host in root_fleet.hosts:
        assert run(root_fleet, host, f"stat -c '%U %a' {directory}/motd; cat {directory}/motd") == "deploy 640\nhello\n"
    result = CliRunner().invoke(cli, ["--project-dir", str(tmp_path), "evaluate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_sudo_without_password_with_one_and_none(root_fleet: RootFleet) -> None:
    host = root_fleet.hosts[0]
    assert run(root_fleet, host, "sudo -n id -un", user="deploy") == "root\n"
    asks = root_fleet.ssh(host, "sudo -n true", user="askpass")
    assert asks.returncode == 1 and "a password is required" in asks.stderr
    refused = root_fleet.ssh(host, "sudo -n true", user="nosudo")
    assert refused.returncode == 1 and "nosudo is not in the sudoers file" in refused.stderr
    assert run(root_fleet, host, "id -un", user="nosudo") == "nosudo\n"


def test_apt_sees_only_the_local_repository_and_cwdemo_serves_its_page(root_fleet: RootFleet) -> None:
    host = root_fleet.hosts[1]
    sources = run(root_fleet, host, "cat /etc/apt/sources.list; ls /etc/apt/sources.list.d | wc -l")
    assert sources == "deb [trusted=yes] file:/repo ./\n0\n"
    update = run(root_fleet, host, "apt-get update")
    assert "file:/repo" in update and "http" not in update
    policy = run(root_fleet, host, "apt-cache policy cwdemo cwdemo-data")
    assert re.search(r"cwdemo:\n\s+Installed: \(none\)\n\s+Candidate: 1\.1\n", policy), policy
    assert re.search(r"\s1\.1 500\n\s+500 file:/repo ./ Packages\n\s+1\.0 500\n", policy), policy
    try:
        run(root_fleet, host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q cwdemo=1.0")
        assert run(root_fleet, host, "dpkg-query -W -f '${Package} ${Version} ${Status}\\n' cwdemo cwdemo-lib") == (
            "cwdemo 1.0 install ok installed\ncwdemo-lib 1.0 install ok installed\n")
        assert run(root_fleet, host, "systemctl is-enabled cwdemo; cat /var/lib/dpkg/info/cwdemo.conffiles") == (
            "enabled\n/etc/cwdemo.conf\n")
        page = ""

        def serves() -> bool:
            nonlocal page
            page = root_fleet.ssh(host, "curl -sf http://127.0.0.1:8080/").stdout
            return bool(page)

        wait_until(serves, 30, "cwdemo to serve its page")
        assert page == "cwdemo 1.0 on host-2: hello from cwdemo\n"
        run(root_fleet, host, "sed -i 's/^MESSAGE=.*/MESSAGE=\"changed\"/' /etc/cwdemo.conf && systemctl reload cwdemo")
        assert run(root_fleet, host, "curl -sf http://127.0.0.1:8080/") == "cwdemo 1.0 on host-2: changed\n"
        # The other hosts did not get it: their own dpkg database.
        assert root_fleet.ssh(root_fleet.hosts[0], "dpkg-query -W cwdemo").returncode == 1
    finally:
        run(root_fleet, host, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cwdemo cwdemo-lib")


def test_each_host_has_its_own_network_namespace(root_fleet: RootFleet) -> None:
    first, second, third = root_fleet.hosts
    for host in (first, second):
        run(root_fleet, host, f"mkdir -p /tmp/www && echo {host.name} > /tmp/www/index.html"
                              " && systemd-run --unit=cwtest-www busybox httpd -f -p 127.0.0.1:9999 -h /tmp/www")
    try:
        for host in (first, second):
            def serves_own_page(host: RootHost = host) -> bool:
                return root_fleet.ssh(host, "curl -sf http://127.0.0.1:9999/").stdout == f"{host.name}\n"

            wait_until(serves_own_page, 30, f"the page of {host.name}")
        assert root_fleet.ssh(third, "curl -sf http://127.0.0.1:9999/").returncode == 7  # nothing listens there
        assert run(root_fleet, third, "ip -o link show | awk '{print $2}'") == "lo:\n"
    finally:
        for host in (first, second):
            root_fleet.ssh(host, "systemctl stop cwtest-www")


def test_nothing_of_the_build_machine_is_in_etc(root_fleet: RootFleet) -> None:
    host = root_fleet.hosts[2]
    assert run(root_fleet, host, "cat /etc/resolv.conf") == "nameserver 127.0.0.1\n"
    found = root_fleet.ssh(host, f"grep -rEIn '{PRIVATE}' /etc")
    assert found.returncode == 1 and found.stdout == "", found.stdout
    assert run(root_fleet, host, "ls /etc/ssh/ | grep -c ssh_host_ || true") == "0\n"  # only the fleet's own key
    assert run(root_fleet, host, "test -d /var/lib/apt/periodic && echo ok") == "ok\n"


def test_a_restarted_host_keeps_its_disk_and_is_reached_again(root_fleet: RootFleet, tmp_path: Path) -> None:
    host = root_fleet.hosts[2]
    before = host.pid
    inventory = root_fleet.write_inventory(tmp_path / "inventory.py")
    connect_all(_pyinfra_state(inventory))  # pyinfra memoizes the ssh_config: it must stay right
    run(root_fleet, host, "echo kept > /root/mark")
    root_fleet.restart(host)
    assert host.pid != before and Path(f"/proc/{host.pid}/comm").read_text() == "systemd\n"
    assert run(root_fleet, host, "cat /root/mark; systemctl is-system-running") == "kept\nrunning\n"
    state = _pyinfra_state(inventory)
    connect_all(state)
    assert host.name in [h.name for h in state.activated_hosts]


def test_a_fresh_fleet_from_the_factory(root_fleet_factory) -> None:
    fleet = root_fleet_factory(2, prefix="db-")
    assert [host.name for host in fleet.hosts] == ["db-1", "db-2"]
    assert run(fleet, fleet.host("db-2"), "hostname; dpkg-query -W cwdemo || true") == "db-2\n"
