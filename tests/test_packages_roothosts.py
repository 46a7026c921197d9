"""PackageResource on real root hosts, through the CLI: install, pin, hold, upgrade, downgrade, remove, purge,
destroy, the apt cache, dpkg's lock, conffiles, evaluate's drift, and the sudo user paths (issue 13 §4, §5).

The module shares one fleet (``root_fleet``); the ``hosts`` fixture leaves every host as it found it (no
cwdemo package, no ``/var/lib/clockwork``, apt's lists in place), also when a test fails. apt-get on the
hosts is observed through a shim, ``/usr/local/sbin/apt-get`` (first in root's and sudo's PATH), that logs
who ran it, with which ``DEBIAN_FRONTEND`` and arguments, then runs the real one.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from clockwork.cli import cli
from testsupport.fleet import wait_until
from testsupport.roothosts import RootFleet, RootHost

PACKAGES = ("cwdemo", "cwdemo-lib", "cwdemo-data")
#: Where the apt-get shim logs each run: ``user sudo-user frontend arguments…``.
APT_LOG = "/var/log/cw-apt-get.log"
SHIM = f"""#!/bin/sh
printf '%s|%s|%s|%s\\n' "$(id -un)" "${{SUDO_USER:-}}" "${{DEBIAN_FRONTEND:-}}" "$*" >> {APT_LOG}
exec /usr/bin/apt-get "$@"
"""
#: Back to a clean host: the packages purged (held or not), Clockwork's marks, the shim and its log gone,
#: apt's lists there (a test may have removed them).
CLEAN = (
    "dpkg --force-hold --force-depends --purge cwdemo cwdemo-data cwdemo-lib >/dev/null 2>&1; "
    "rm -rf /var/lib/clockwork /etc/cwdemo.conf /etc/cwdemo.conf.dpkg-* /usr/local/sbin/apt-get "
    f"{APT_LOG} /tmp/cw-locked; "
    "[ -e /var/lib/apt/lists/_repo_._Packages ] || /usr/bin/apt-get update -qq; "
    "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' cwdemo cwdemo-lib cwdemo-data 2>/dev/null | grep -v ' un' || true"
)
#: An install by hand (preparing a host), as quiet as apt can be.
APT = "DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get install -y -qq"
#: Holds dpkg's frontend lock as apt and dpkg take it (fcntl, not flock), marks when it has it, for 60 s.
LOCK_HOLDER = ("nohup perl -MFcntl -e 'open(my $f, \">>\", \"/var/lib/dpkg/lock-frontend\") or die $!; "
               "my $l = pack(\"ssx4qqix4\", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $l) or die $!; "
               "open(my $m, \">\", \"/tmp/cw-locked\"); close($m); sleep 60' >/dev/null 2>&1 & echo $!")


@dataclass
class Hosts:
    """The module's fleet, clean at the start of a test, with helpers to run commands and the CLI."""

    fleet: RootFleet
    project: Path

    @property
    def all(self) -> list[RootHost]:
        return self.fleet.hosts

    def __getitem__(self, name: str) -> RootHost:
        return self.fleet.host(name)

    def sh(self, host: RootHost, command: str, user: str = "root") -> str:
        done = self.fleet.ssh(host, command, user=user)
        assert done.returncode == 0, f"{command!r} on {host.name}: {done.stdout}{done.stderr}"
        return done.stdout

    def on_all(self, command: str, hosts: list[RootHost] | None = None) -> dict[str, str]:
        """``command`` as root on ``hosts`` (default: every host) in parallel; each host's stdout."""
        hosts = self.all if hosts is None else hosts
        running = {host.name: subprocess.Popen(self.fleet.ssh_command(host) + [command], stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for host in hosts}
        out = {}
        for name, process in running.items():
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, f"{command!r} on {name}: {stdout}{stderr}"
            out[name] = stdout
        return out

    def packages(self) -> dict[str, dict[str, str]]:
        """Each host's cwdemo packages as dpkg has them: name → ``version status`` (``1.0 hi``: held, installed)."""
        out = self.on_all("dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' "
                          f"{' '.join(PACKAGES)} 2>/dev/null; true")
        return {name: {fields[0]: f"{fields[1]} {fields[2]}" for fields in (line.split() for line in text.splitlines())
                       if len(fields) == 3 and fields[2] != "un"}
                for name, text in out.items()}

    def snapshot(self) -> dict[str, str]:
        """What a read-only command must leave as it is: packages, holds, marks, the conffile, apt's lists."""
        return self.on_all("dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' cwdemo cwdemo-lib "
                           "cwdemo-data 2>/dev/null; apt-mark showhold; ls /var/lib/clockwork/packages 2>/dev/null; "
                           "sha1sum /etc/cwdemo.conf 2>/dev/null; ls -l --time-style=+%s.%N /var/lib/apt/lists; "
                           f"cat {APT_LOG} 2>/dev/null; true")

    def shim(self) -> None:
        self.on_all(f"cat > /usr/local/sbin/apt-get <<'EOF'\n{SHIM}EOF\nchmod 755 /usr/local/sbin/apt-get")

    def apt_log(self) -> dict[str, list[str]]:
        return {name: text.splitlines() for name, text in self.on_all(f"cat {APT_LOG} 2>/dev/null; true").items()}

    def new_project(self, name: str) -> None:
        """Work in another project (its own state: what evaluate calls pending is relative to it)."""
        inventory = (self.project / "inventory.py").read_text()
        self.project = self.project / name
        self.project.mkdir()
        (self.project / "inventory.py").write_text(inventory)

    def main(self, source: str) -> None:
        (self.project / "main.py").write_text(textwrap.dedent(source))

    def inventory(self, users: dict[str, str] | None = None, default: str = "root") -> None:
        """The project's inventory.py: every host as ``default``, or as ``users[name]``."""
        users = users or {}
        lines = ["hosts = ["] + [f"    ({host.name!r}, {self.fleet.host_data(host, users.get(host.name, default))!r}),"
                                 for host in self.all] + ["]"]
        (self.project / "inventory.py").write_text("\n".join(lines) + "\n")

    def cw(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--project-dir", str(self.project), *args], catch_exceptions=False)


@pytest.fixture
def hosts(root_fleet: RootFleet, tmp_path: Path) -> Iterator[Hosts]:
    """The module's fleet, checked clean before the test and cleaned after it (also when it fails), with a
    project in ``tmp_path`` whose inventory reaches every host as root."""
    helper = Hosts(root_fleet, tmp_path)
    left = helper.on_all(CLEAN)
    assert all(text == "" for text in left.values()), f"a host is not clean: {left}"
    helper.inventory()
    yield helper
    left = helper.on_all(CLEAN)
    assert all(text == "" for text in left.values()), f"cleaning left: {left}"


def lines(result: Result) -> list[str]:
    return result.output.splitlines()


INSTALLED_HELD = {"cwdemo": "1.0 hi", "cwdemo-lib": "1.0 ii", "cwdemo-data": "1.1 ii"}


def test_install_then_nothing_to_do_then_each_drift_located_and_corrected(hosts: Hosts) -> None:
    """The first apply installs, pinned and held or any version (apt's lists updated only on host-1, where
    they are missing); the second changes nothing and runs no apt-get at all; evaluate agrees."""
    hosts.on_all("rm -rf /var/lib/apt/lists/*", [hosts["host-1"]])
    hosts.shim()
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.0", hold=True)
        data = PackageResource(name="cwdemo-data")
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert lines(result) == [f"✓ [{host.name}] {name}: installed" for host in hosts.all for name in ("cwdemo", "cwdemo-data")] + [
        "Applied: 6 changed, 0 unchanged, 0 failed on 3 hosts"]
    assert hosts.packages() == {host.name: INSTALLED_HELD for host in hosts.all}
    assert hosts.on_all("ls /var/lib/clockwork/packages") == {host.name: "cwdemo\ncwdemo-data\n" for host in hosts.all}
    log = hosts.apt_log()
    # Only where the lists lacked cwdemo 1.0, and once: after it, cwdemo-data has its candidate.
    assert [entry.split("|")[3].split()[-1] for entry in log["host-1"]] == ["update", "cwdemo=1.0", "cwdemo-data"]
    for name in ("host-2", "host-3"):
        assert [entry.split("|")[3].split()[-1] for entry in log[name]] == ["cwdemo=1.0", "cwdemo-data"]
    for entry in log["host-2"]:
        user, sudo_user, frontend, arguments = entry.split("|")
        assert (user, sudo_user, frontend) == ("root", "", "noninteractive")
        assert "-o Dpkg::Options::=--force-confold" in arguments and "-y" in arguments.split()

    before = hosts.snapshot()
    again = hosts.cw("apply")
    assert again.exit_code == 0, again.output
    assert lines(again)[-1] == "Nothing to do: every resource is already as declared on 3 hosts"
    assert "✓ [host-2] cwdemo: installed 1.0 (held)" in lines(again)
    assert "✓ [host-2] cwdemo-data: installed 1.1" in lines(again)
    assert hosts.snapshot() == before  # no apt-get ran, nothing changed
    evaluated = hosts.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert lines(evaluated)[0] == "✓ All resources running as specified"

    # Drift: host-1 upgraded by hand (still held), host-2's hold lost, host-3's cwdemo-data removed. evaluate
    # names each one exactly and changes nothing; apply corrects each, keeping the hold across the downgrade.
    hosts.sh(hosts["host-1"], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-change-held-packages cwdemo=1.1"
                              " >/dev/null && apt-mark hold cwdemo")
    hosts.sh(hosts["host-2"], "apt-mark unhold cwdemo")
    hosts.sh(hosts["host-3"], "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q cwdemo-data >/dev/null")
    before = hosts.snapshot()
    result = hosts.cw("evaluate")
    assert result.exit_code == 1, result.output
    assert lines(result) == [
        "✗ 3 of 6 not as specified (3 drift)",
        "  ✗ [host-1] cwdemo: version 1.1, wanted 1.0",
        "  ✓ [host-1] cwdemo-data: installed 1.1",
        "  ✗ [host-2] cwdemo: not held, wanted held",
        "  ✓ [host-2] cwdemo-data: installed 1.1",
        "  ✓ [host-3] cwdemo: installed 1.0 (held)",
        "  ✗ [host-3] cwdemo-data: not installed",
    ]
    assert hosts.snapshot() == before

    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert "✓ [host-1] cwdemo: version 1.1 → 1.0" in lines(result)
    assert "✓ [host-2] cwdemo: updated hold" in lines(result)
    assert "✓ [host-3] cwdemo-data: installed" in lines(result)
    assert lines(result)[-1] == "Applied: 3 changed, 3 unchanged, 0 failed on 3 hosts"
    assert hosts.packages() == {host.name: INSTALLED_HELD for host in hosts.all}
    assert hosts.cw("evaluate").exit_code == 0


def test_upgrade_and_downgrade_held_and_not_keep_the_conffile_the_host_changed(hosts: Hosts) -> None:
    """1.0 → 1.1 → 1.0 for a held cwdemo and an unheld cwdemo-data; the /etc/cwdemo.conf each host changed
    stays as it is, without a prompt (the new one beside it as .dpkg-dist)."""
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.0", hold=True)
        data = PackageResource(name="cwdemo-data", version="1.0")
        """)
    hosts.on_all(f"{APT} cwdemo=1.0 cwdemo-data=1.0 >/dev/null && apt-mark hold cwdemo >/dev/null")
    hosts.on_all("sed -i \"s/^MESSAGE=.*/MESSAGE='changed on $(hostname)'/\" /etc/cwdemo.conf")
    changed = hosts.on_all("cat /etc/cwdemo.conf")
    assert all(f"MESSAGE='changed on {name}'" in text for name, text in changed.items())

    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.1", hold=True)
        data = PackageResource(name="cwdemo-data", version="1.1")
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    for host in hosts.all:
        assert f"✓ [{host.name}] cwdemo: version 1.0 → 1.1" in lines(result)
        assert f"✓ [{host.name}] cwdemo-data: version 1.0 → 1.1" in lines(result)
    assert hosts.packages() == {host.name: {"cwdemo": "1.1 hi", "cwdemo-lib": "1.0 ii", "cwdemo-data": "1.1 ii"}
                                for host in hosts.all}
    assert hosts.on_all("cat /etc/cwdemo.conf") == changed
    assert all("; 1.1\n" in text for text in hosts.on_all("cat /etc/cwdemo.conf.dpkg-dist").values())
    assert hosts.on_all("grep -o '^# cwdemo 1\\.[01]' /usr/lib/cwdemo/cwdemo") == {
        host.name: "# cwdemo 1.1\n" for host in hosts.all}

    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.0", hold=True)
        data = PackageResource(name="cwdemo-data", version="1.0")
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert "✓ [host-3] cwdemo: version 1.1 → 1.0" in lines(result)
    assert "✓ [host-3] cwdemo-data: version 1.1 → 1.0" in lines(result)
    assert hosts.packages() == {host.name: {"cwdemo": "1.0 hi", "cwdemo-lib": "1.0 ii", "cwdemo-data": "1.0 ii"}
                                for host in hosts.all}
    assert hosts.on_all("cat /etc/cwdemo.conf") == changed
    assert hosts.cw("evaluate").exit_code == 0


def test_remove_keeps_the_configuration_and_purge_removes_it(hosts: Hosts) -> None:
    """present=False over a held package removes it (its /etc/cwdemo.conf stays); present=False with purge over
    the removed package purges it: evaluate calls the configuration left drift, apply removes it."""
    hosts.on_all(f"{APT} cwdemo >/dev/null && apt-mark hold cwdemo >/dev/null")
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", present=False)
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert lines(result) == [f"✓ [{host.name}] cwdemo: removed" for host in hosts.all] + [
        "Applied: 3 changed, 0 unchanged, 0 failed on 3 hosts"]
    assert all(packages["cwdemo"] == "1.1 rc" for packages in hosts.packages().values())
    assert hosts.on_all("test -f /etc/cwdemo.conf && echo kept") == {host.name: "kept\n" for host in hosts.all}
    assert hosts.cw("evaluate").exit_code == 0  # removed is absent, with or without its configuration

    hosts.new_project("purge")  # a project that never applied cwdemo: it sees drift, not a pending change
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", present=False, purge=True)
        """)
    before = hosts.snapshot()
    result = hosts.cw("evaluate")
    assert result.exit_code == 1, result.output
    assert "  ✗ [host-2] cwdemo: removed, but its configuration files are left (purge wanted)" in lines(result)
    assert hosts.snapshot() == before
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert lines(result) == [f"✓ [{host.name}] cwdemo: purged" for host in hosts.all] + [
        "Applied: 3 changed, 0 unchanged, 0 failed on 3 hosts"]
    assert all("cwdemo" not in packages for packages in hosts.packages().values())
    assert hosts.on_all("test -e /etc/cwdemo.conf || echo gone") == {host.name: "gone\n" for host in hosts.all}
    assert lines(hosts.cw("apply"))[-1] == "Nothing to do: every resource is already as declared on 3 hosts"


def test_destroy_removes_only_what_clockwork_installed(hosts: Hosts) -> None:
    """cwdemo-data was on host-1 before Clockwork: destroy leaves it there, and purges the rest."""
    hosts.sh(hosts["host-1"], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q cwdemo-data=1.0 >/dev/null")
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", hold=True, purge=True)
        data = PackageResource(name="cwdemo-data")
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert "✓ [host-1] cwdemo-data: installed 1.0" in lines(result)  # any version: 1.0 is kept
    result = hosts.cw("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert "✓ [host-1] cwdemo-data: left in place: installed before Clockwork" in lines(result)
    for host in hosts.all:
        assert f"✓ [{host.name}] cwdemo: removed" in lines(result)  # destroy's word, also when it purges
    assert "✓ [host-2] cwdemo-data: removed" in lines(result)
    assert lines(result)[-1] == "Destroyed: 5 removed, 0 already absent, 1 left in place, 0 failed on 3 hosts"
    packages = hosts.packages()
    assert packages["host-1"] == {"cwdemo-lib": "1.0 ii", "cwdemo-data": "1.0 ii"}
    assert packages["host-2"] == packages["host-3"] == {"cwdemo-lib": "1.0 ii"}  # a dependency apt pulled in
    assert hosts.on_all("test -e /etc/cwdemo.conf || echo gone; ls /var/lib/clockwork/packages") == {
        host.name: "gone\n" for host in hosts.all}


def test_a_held_dpkg_lock_is_waited_for_then_a_clear_error_on_that_host_only(hosts: Hosts) -> None:
    locked = hosts["host-2"]
    pid = hosts.sh(locked, LOCK_HOLDER).strip()
    try:
        wait_until(lambda: hosts.fleet.ssh(locked, "test -e /tmp/cw-locked").returncode == 0, 30, "the lock holder")
        hosts.main("""\
            from clockwork.resources import PackageResource
            demo = PackageResource(name="cwdemo", version="1.0", lock_timeout=2)
            """)
        result = hosts.cw("apply")
        assert result.exit_code == 3, result.output
        assert lines(result) == [
            "✓ [host-1] cwdemo: installed",
            "✗ [host-2] cwdemo: failed: dpkg is locked by another process (waited 2 s): Could not get lock "
            f"/var/lib/dpkg/lock-frontend. It is held by process {pid} (perl)",
            "✓ [host-3] cwdemo: installed",
            "Applied: 2 changed, 0 unchanged, 1 failed on 3 hosts",
        ]
        assert "cwdemo" not in hosts.packages()["host-2"]
    finally:
        hosts.sh(locked, f"kill {pid}; rm -f /tmp/cw-locked")
    wait_until(lambda: hosts.fleet.ssh(locked, f"kill -0 {pid}").returncode != 0, 30, "the lock holder to end")
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert lines(result)[1] == "✓ [host-2] cwdemo: installed"


def test_the_sudo_user_installs_evaluates_and_destroys_with_sudo(hosts: Hosts) -> None:
    hosts.inventory(default="deploy")
    hosts.shim()
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.1", hold=True, purge=True)
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == "Applied: 3 changed, 0 unchanged, 0 failed on 3 hosts"
    assert all(packages["cwdemo"] == "1.1 hi" for packages in hosts.packages().values())
    assert hosts.on_all("stat -c '%U %n' /var/lib/clockwork/packages/cwdemo") == {
        host.name: "root /var/lib/clockwork/packages/cwdemo\n" for host in hosts.all}
    log = hosts.apt_log()
    assert log["host-3"] and all(entry.startswith("root|deploy|noninteractive|") for entry in log["host-3"])
    result = hosts.cw("evaluate")
    assert result.exit_code == 0, result.output
    assert "  ✓ [host-1] cwdemo: installed 1.1 (held)" in lines(result)
    result = hosts.cw("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert "✓ [host-3] cwdemo: removed" in lines(result)
    assert all("cwdemo" not in packages for packages in hosts.packages().values())


@pytest.mark.parametrize(("user", "reason"), [
    ("askpass", "sudo asked for a password"),
    ("nosudo", "the login user may not use sudo (not in sudoers)"),
])
def test_a_user_without_usable_sudo_is_refused_on_its_host_and_the_others_go_on(hosts: Hosts, user: str,
                                                                                reason: str) -> None:
    hosts.inventory({"host-1": "root", "host-2": user, "host-3": "deploy"})
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="1.0")
        """)
    result = hosts.cw("apply")
    assert result.exit_code == 3, result.output
    assert lines(result) == [
        "✓ [host-1] cwdemo: installed",
        f"✗ [host-2] cwdemo: needs root: {reason}",
        "✓ [host-3] cwdemo: installed",
        "Applied: 2 changed, 0 unchanged, 1 failed on 3 hosts",
    ]
    packages = hosts.packages()
    assert packages["host-1"]["cwdemo"] == packages["host-3"]["cwdemo"] == "1.0 ii"
    assert packages["host-2"] == {}
    assert hosts.on_all("ls -d /var/lib/clockwork 2>/dev/null; true", [hosts["host-2"]]) == {"host-2": ""}


@pytest.mark.parametrize(("line", "message"), [
    ('bad = PackageResource(name="CwDemo")',
     "Error: main.py:3: invalid value for PackageResource 'CwDemo'.name: 'CwDemo' is not a Debian package name: "
     "lower-case letters, digits, '+', '-', '.', starting with a letter or digit"),
    ('bad = PackageResource(name="cwdemo", version="v1.1")',
     "Error: main.py:3: invalid value for PackageResource 'cwdemo'.version: 'v1.1' is not a Debian version: "
     "it starts with a digit and has no spaces"),
])
def test_a_bad_name_or_version_stops_everything_before_any_host(hosts: Hosts, line: str, message: str) -> None:
    hosts.main(f"""\
        from clockwork.resources import PackageResource
        data = PackageResource(name="cwdemo-data")
        {line}
        """)
    for command in ("apply", "evaluate"):
        result = hosts.cw(command)
        assert result.exit_code == 2, result.output
        assert message in lines(result), result.output
    assert all(packages == {} for packages in hosts.packages().values())


def test_a_version_no_repository_has_fails_after_one_update(hosts: Hosts) -> None:
    hosts.shim()
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo", version="9.9")
        """)
    result = hosts.cw("apply", "--limit", "host-1")
    assert result.exit_code == 3, result.output
    assert lines(result)[0] == "✗ cwdemo: failed: E: Version '9.9' for 'cwdemo' was not found"
    assert [entry.split("|")[3].split()[-1] for entry in hosts.apt_log()["host-1"]] == ["update", "cwdemo=9.9"]


def test_a_removed_package_is_reinstalled_from_fresh_lists_when_its_lists_are_gone(hosts: Hosts) -> None:
    """dpkg still knows a removed (not purged) cwdemo, so ``apt-cache show cwdemo`` answers from dpkg's status
    without any list: the candidate check must read the lists, or apt-get says there is no candidate."""
    hosts.sh(hosts["host-1"], f"{APT} cwdemo >/dev/null && /usr/bin/apt-get remove -y -qq cwdemo >/dev/null && "
                              "rm -rf /var/lib/apt/lists/*")
    assert hosts.packages()["host-1"]["cwdemo"] == "1.1 rc"
    hosts.main("""\
        from clockwork.resources import PackageResource
        demo = PackageResource(name="cwdemo")
        """)
    result = hosts.cw("apply", "--limit", "host-1")
    assert result.exit_code == 0, result.output
    assert lines(result)[0] == "✓ cwdemo: installed"
    assert hosts.packages()["host-1"] == {"cwdemo": "1.1 ii", "cwdemo-lib": "1.0 ii"}


def test_a_name_with_its_architecture_is_found(hosts: Hosts) -> None:
    """``libc6:amd64``, as the name field allows: dpkg-query prints it as ``libc6``, and it is still found."""
    hosts.main("""\
        from clockwork.resources import PackageResource
        libc = PackageResource(name="libc6:amd64")
        """)
    result = hosts.cw("evaluate")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"  ✓ \[host-1\] libc6:amd64: installed 2\.36-\S+", lines(result)[1]), result.output
    result = hosts.cw("apply")
    assert lines(result)[-1] == "Nothing to do: every resource is already as declared on 3 hosts", result.output
