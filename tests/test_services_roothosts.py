"""A real service on real Debian hosts with systemd (root test hosts): the web-service example as documented,
restarts exactly once, unit files and daemon-reload, requires, reconcile, and the sudo user."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from clockwork.cli import cli
from testsupport.roothosts import RootFleet, RootHost

REPO = Path(__file__).resolve().parent.parent

_RESET = ("systemctl stop cwdemo cwunit 2>/dev/null; apt-mark unhold cwdemo >/dev/null 2>&1; "
          "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq cwdemo cwdemo-lib >/dev/null 2>&1; "
          "rm -rf /var/lib/clockwork /etc/cwdemo.conf /etc/systemd/system/cwunit.service /root/.clockwork "
          "/home/deploy/.clockwork /home/askpass/.clockwork; systemctl daemon-reload; systemctl reset-failed; true")


@pytest.fixture(autouse=True)
def clean_hosts(root_fleet: RootFleet) -> Iterator[None]:
    """Every test starts from hosts without cwdemo and leaves them so, also when it fails."""
    yield
    for host in root_fleet.hosts:
        root_fleet.ssh(host, _RESET)


def on(fleet: RootFleet, host: RootHost, command: str) -> str:
    result = fleet.ssh(host, command)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def started_at(fleet: RootFleet, host: RootHost, unit: str = "cwdemo") -> int:
    """When the unit last became active (monotonic µs): a restart moves it, nothing else does."""
    return int(on(fleet, host, f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}").strip())


def cw(project: Path, *args: str, inventory: str = "inventory.py") -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args, "-i", str(project / inventory)])


@pytest.fixture
def web_service(root_fleet: RootFleet, tmp_path: Path) -> Path:
    """The web-service example, with inventories as root (inventory.py) and as the sudo user (deploy.py)."""
    project = tmp_path / "web-service"
    shutil.copytree(REPO / "examples" / "web-service", project)
    root_fleet.write_inventory(project / "inventory.py", user="root")
    root_fleet.write_inventory(project / "deploy.py", user="deploy")
    return project


def set_message(project: Path, message: str) -> None:
    main = project / "main.py"
    text = main.read_text()
    for old in ("hello from Clockwork", "hello again"):
        text = text.replace(old, message)
    main.write_text(text)


def test_the_web_service_example_as_documented(root_fleet: RootFleet, web_service: Path) -> None:
    first = cw(web_service, "apply")
    assert first.exit_code == 0, first.output
    for host in root_fleet.hosts:
        assert f"✓ [{host.name}] cwdemo: installed" in first.output
        assert f"✓ [{host.name}] cwdemo: restarted: cwdemo.conf changed" in first.output
        assert on(root_fleet, host, "dpkg-query -W -f '${Version} ${db:Status-Abbrev}' cwdemo") == "1.1 hi "
        assert on(root_fleet, host, "curl -sf 127.0.0.1:8080/") == f"cwdemo 1.1 on {host.name}: hello from Clockwork ({host.name})\n"
    before = {host.name: started_at(root_fleet, host) for host in root_fleet.hosts}

    again = cw(web_service, "apply")
    assert again.exit_code == 0 and "Nothing to do: every resource is already as declared on 3 hosts" in again.output
    assert {host.name: started_at(root_fleet, host) for host in root_fleet.hosts} == before  # no restart
    evaluated = cw(web_service, "evaluate")
    assert evaluated.exit_code == 0, evaluated.output

    set_message(web_service, "hello again")
    changed = cw(web_service, "apply")
    assert changed.exit_code == 0, changed.output
    assert "Applied: 6 changed, 3 unchanged, 0 failed on 3 hosts" in changed.output
    for host in root_fleet.hosts:
        assert f"✓ [{host.name}] cwdemo.conf: updated content" in changed.output
        assert f"✓ [{host.name}] cwdemo: restarted: cwdemo.conf changed" in changed.output
        assert started_at(root_fleet, host) > before[host.name]
        assert "hello again" in on(root_fleet, host, "curl -sf 127.0.0.1:8080/")
        journal = on(root_fleet, host, "journalctl -u cwdemo -o cat --no-pager | grep -c '^Started cwdemo' || true")
        assert int(journal) == 3  # the package's start, the first apply's restart, this one: once per apply


def test_evaluate_locates_each_drift_and_changes_nothing(root_fleet: RootFleet, web_service: Path) -> None:
    assert cw(web_service, "apply").exit_code == 0
    one, two, three = root_fleet.hosts
    on(root_fleet, one, "systemctl stop cwdemo")
    on(root_fleet, two, "systemctl disable --quiet cwdemo && apt-mark unhold cwdemo >/dev/null")
    on(root_fleet, three, "echo 'PORT=8080' > /etc/cwdemo.conf")
    states = {host.name: on(root_fleet, host, "systemctl is-active cwdemo; systemctl is-enabled cwdemo; "
                                              "apt-mark showhold; sha1sum /etc/cwdemo.conf")
              for host in root_fleet.hosts}
    result = cw(web_service, "evaluate")
    assert result.exit_code == 1, result.output
    assert f"✗ [{one.name}] cwdemo: stopped, wanted running" in result.output
    assert f"✗ [{two.name}] cwdemo: disabled, wanted enabled" in result.output
    assert f"✗ [{two.name}] cwdemo: not held, wanted held" in result.output
    assert f"✗ [{three.name}] cwdemo.conf: content differs" in result.output
    assert result.output.count("✗ [") == 4
    assert states == {host.name: on(root_fleet, host, "systemctl is-active cwdemo; systemctl is-enabled cwdemo; "
                                                      "apt-mark showhold; sha1sum /etc/cwdemo.conf")
                      for host in root_fleet.hosts}


def test_reconcile_starts_a_stopped_service_and_restarts_once_for_a_changed_config(root_fleet: RootFleet,
                                                                                   web_service: Path) -> None:
    assert cw(web_service, "apply").exit_code == 0
    one, two, _three = root_fleet.hosts
    on(root_fleet, one, "systemctl stop cwdemo")
    before = started_at(root_fleet, two)
    on(root_fleet, two, "echo 'MESSAGE=tampered' >> /etc/cwdemo.conf")
    result = cw(web_service, "reconcile", "--once")
    assert result.exit_code in (0, 1), result.output
    assert on(root_fleet, one, "systemctl is-active cwdemo") == "active\n"
    assert "tampered" not in on(root_fleet, two, "cat /etc/cwdemo.conf")
    assert started_at(root_fleet, two) > before
    assert "tampered" not in on(root_fleet, two, "curl -sf 127.0.0.1:8080/")
    assert cw(web_service, "evaluate").exit_code == 0


def test_as_the_sudo_user_and_as_a_user_whose_sudo_asks_for_a_password(root_fleet: RootFleet, web_service: Path) -> None:
    one, two, three = root_fleet.hosts
    mixed = root_fleet.host_data(one, user="deploy"), root_fleet.host_data(two, user="askpass"), \
        root_fleet.host_data(three, user="nosudo")
    (web_service / "mixed.py").write_text("hosts = [\n" + "".join(
        f"    ({host.name!r}, {data!r}),\n" for host, data in zip(root_fleet.hosts, mixed, strict=True)) + "]\n")
    result = cw(web_service, "apply", inventory="mixed.py")
    assert result.exit_code == 3, result.output
    assert f"✓ [{one.name}] cwdemo: restarted: cwdemo.conf changed" in result.output
    assert f"✗ [{two.name}] cwdemo: needs root: sudo asked for a password" in result.output
    assert f"✗ [{three.name}] cwdemo: needs root: the login user may not use sudo (not in sudoers)" in result.output
    assert "hello from Clockwork" in on(root_fleet, one, "curl -sf 127.0.0.1:8080/")
    assert on(root_fleet, one, "stat -c %U /etc/cwdemo.conf") == "root\n"
    for refused in (two, three):
        assert root_fleet.ssh(refused, "dpkg-query -W cwdemo").returncode != 0  # nothing was installed there
        assert root_fleet.ssh(refused, "test -e /etc/cwdemo.conf").returncode != 0
    deploy = cw(web_service, "apply", inventory="deploy.py")
    assert deploy.exit_code == 0, deploy.output
    assert cw(web_service, "evaluate", inventory="deploy.py").exit_code == 0


UNIT = """\
from clockwork.resources import ServiceResource

unit = ServiceResource(name="cwunit", unit_file=\"\"\"[Unit]
Description=a unit Clockwork installs
[Service]
ExecStart=/bin/sh -c 'echo {word} > /run/cwunit; exec sleep infinity'
[Install]
WantedBy=multi-user.target
\"\"\", running={running}, enabled={enabled})
"""


def test_a_unit_file_installed_changed_stopped_and_destroyed(root_fleet: RootFleet, tmp_path: Path) -> None:
    root_fleet.write_inventory(tmp_path / "inventory.py")
    host = root_fleet.hosts[0]
    (tmp_path / "main.py").write_text(UNIT.format(word="one", running=True, enabled=True))
    result = cw(tmp_path, "apply", "--limit", host.name)
    assert result.exit_code == 0, result.output
    assert "✓ cwunit: unit file written, started" in result.output
    assert on(root_fleet, host, "cat /run/cwunit; systemctl is-enabled cwunit") == "one\nenabled\n"
    first = started_at(root_fleet, host, "cwunit")

    (tmp_path / "main.py").write_text(UNIT.format(word="two", running=True, enabled=True))
    result = cw(tmp_path, "apply", "--limit", host.name)
    assert result.exit_code == 0, result.output
    assert "✓ cwunit: unit file written, restarted" in result.output
    assert on(root_fleet, host, "cat /run/cwunit; systemctl show -p NeedDaemonReload --value cwunit") == "two\nno\n"
    assert started_at(root_fleet, host, "cwunit") > first

    (tmp_path / "main.py").write_text(UNIT.format(word="two", running=False, enabled=False))
    result = cw(tmp_path, "apply", "--limit", host.name)
    assert result.exit_code == 0 and "✓ cwunit: disabled, stopped" in result.output, result.output
    assert root_fleet.ssh(host, "systemctl is-active cwunit").stdout == "inactive\n"

    (tmp_path / "main.py").write_text(UNIT.format(word="two", running=True, enabled=True))
    assert cw(tmp_path, "apply", "--limit", host.name).exit_code == 0
    result = cw(tmp_path, "destroy", "--yes", "--limit", host.name)
    assert result.exit_code == 0, result.output
    assert root_fleet.ssh(host, "test -e /etc/systemd/system/cwunit.service").returncode != 0
    assert on(root_fleet, host, "systemctl show -p LoadState,ActiveState --value cwunit") == "not-found\ninactive\n"


def test_what_requires_a_failed_package_is_skipped_there(root_fleet: RootFleet, tmp_path: Path) -> None:
    root_fleet.write_inventory(tmp_path / "inventory.py")
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        from clockwork.resources import FileResource, PackageResource, ServiceResource

        package = PackageResource(name="cwdemo", version="9.9")
        config = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=8081\\n", requires=[package])
        service = ServiceResource(name="cwdemo", restart_on=[config])
        notes = FileResource(name="notes.txt", directory="/tmp", content="independent\\n")
        """))
    result = cw(tmp_path, "apply")
    assert result.exit_code == 3, result.output
    for host in root_fleet.hosts:
        assert f"✗ [{host.name}] cwdemo: failed: E: Version '9.9' for 'cwdemo' was not found" in result.output
        assert (f"✗ [{host.name}] cwdemo.conf: skipped: requires PackageResource 'cwdemo', which failed on this host"
                in result.output)
        assert (f"✗ [{host.name}] cwdemo: skipped: requires FileResource 'cwdemo.conf', which was skipped on this host"
                in result.output)
        assert f"✓ [{host.name}] notes.txt: created" in result.output
        assert root_fleet.ssh(host, "test -e /etc/cwdemo.conf").returncode != 0


def test_a_reconciled_config_restarts_a_service_that_is_not_reconciled(root_fleet: RootFleet, web_service: Path) -> None:
    main = web_service / "main.py"
    main.write_text(main.read_text().replace("    reconcile=True,\n    description=\"cwdemo runs", "    description=\"cwdemo runs"))
    assert cw(web_service, "apply").exit_code == 0
    host = root_fleet.hosts[2]
    others = {other.name: started_at(root_fleet, other) for other in root_fleet.hosts[:2]}
    before = started_at(root_fleet, host)
    on(root_fleet, host, "echo 'MESSAGE=tampered' >> /etc/cwdemo.conf")
    result = cw(web_service, "reconcile", "--once")
    assert result.exit_code in (0, 1), result.output
    assert "tampered" not in on(root_fleet, host, "cat /etc/cwdemo.conf")
    assert started_at(root_fleet, host) > before
    assert "tampered" not in on(root_fleet, host, "curl -sf 127.0.0.1:8080/")
    assert {other.name: started_at(root_fleet, other) for other in root_fleet.hosts[:2]} == others  # not restarted
