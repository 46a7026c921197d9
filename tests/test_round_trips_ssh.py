"""Round trips per host over real sshd: what one apply or reconcile pass changes on a host goes in one remote
command (the test sshd logs each exec request at LogLevel VERBOSE: ``FleetHost.commands``)."""

from __future__ import annotations

import hashlib
import json

from clockwork.state.sqlite import SqliteStore
from testsupport.fleet import Fleet

FILES = """\
from clockwork.resources import DirectoryResource, FileResource

app = DirectoryResource(name="app", mode="750")
""" + "".join(f'f{i} = FileResource(name="f{i}.txt", directory="app", content="{i}\\n")\n' for i in range(10))


class Counted:
    """Remote commands each fleet host runs from here on (``new()``: since the last call)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.seen = self._now()

    def _now(self) -> dict[str, int]:
        return {host.name: host.commands() for host in self.fleet.hosts}

    def new(self) -> dict[str, int]:
        now = self._now()
        counts, self.seen = {name: now[name] - self.seen[name] for name in now}, now
        return counts


def test_a_first_apply_is_one_read_and_one_write_per_host(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    counted = Counted(fleet)
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert "Applied: 33 changed, 0 unchanged, 0 failed on 3 hosts" in result.output
    # The read; the 11 resources and the manifest in one command.
    assert counted.new() == {"host-01": 2, "host-02": 2, "host-03": 2}
    for host in fleet.hosts:
        assert fleet.run(host, "cat app/f7.txt").stdout == "7\n"
        assert fleet.run(host, "ls -A app | wc -l").stdout.strip() == "10", "no temporary file is left"


def test_a_correcting_apply_writes_only_where_something_drifted_in_one_command(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    assert project.cw("apply").exit_code == 0
    drifted = fleet.hosts[1]
    fleet.run(drifted, "echo changed > app/f1.txt && chmod 600 app/f2.txt && rm app/f3.txt")
    counted = Counted(fleet)
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert "Applied: 3 changed, 30 unchanged, 0 failed on 3 hosts" in result.output
    assert counted.new() == {"host-01": 1, "host-02": 2, "host-03": 1}  # the manifest did not change
    assert fleet.run(drifted, "cat app/f1.txt app/f3.txt; stat -c %a app/f2.txt").stdout == "1\n3\n644\n"
    assert project.cw("apply").exit_code == 0
    assert counted.new() == {"host-01": 1, "host-02": 1, "host-03": 1}, "a no-change apply only reads"


def test_a_reconcile_pass_corrects_drift_in_one_command_then_verifies(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES.replace('\\n")', '\\n", reconcile=True)'))
    assert project.cw("apply").exit_code == 0
    fleet.run(fleet.hosts[0], "echo changed > app/f4.txt && echo changed > app/f5.txt")
    counted = Counted(fleet)
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 0, result.output
    # The read, both corrections in one command, the read that verifies them.
    assert counted.new() == {"host-01": 3, "host-02": 1, "host-03": 1}
    assert fleet.run(fleet.hosts[0], "cat app/f4.txt app/f5.txt").stdout == "4\n5\n"


def test_a_failing_resource_does_not_stop_the_ones_after_it_in_the_same_command(fleet: Fleet, make_project) -> None:
    stuck = 'stuck = FileResource(name="x.txt", directory="locked", content="x\\n")\n'
    project = make_project(fleet, FILES.replace("f5 = ", stuck + "f5 = "))
    host = fleet.hosts[0]
    fleet.run(host, "mkdir locked && chmod 500 locked")  # the write fails there
    counted = Counted(fleet)
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("✗ [host-01] x.txt: failed: ") and "Permission denied" in line for line in lines), lines
    assert "✓ [host-01] f5.txt: created" in lines, lines
    assert fleet.run(host, "cat app/f5.txt app/f9.txt").stdout == "5\n9\n", "the resources after it still ran"
    assert fleet.run(host, "ls -A locked").stdout == "", "no temporary file is left"
    # The manifest was not written with the changes there (one failed): it is written after, without x.txt.
    assert counted.new() == {"host-01": 3, "host-02": 2, "host-03": 2}
    recorded = json.loads(fleet.run(host, "cat .clockwork/manifest.json").stdout)["resources"]
    assert "FileResource/x.txt" not in recorded
    assert {"FileResource/f4.txt", "FileResource/f5.txt", "DirectoryResource/app"} <= set(recorded)
    assert "FileResource/x.txt" in json.loads(fleet.run(fleet.hosts[1], "cat .clockwork/manifest.json").stdout)["resources"]
    store = SqliteStore(project.directory / ".clockwork")
    try:
        version = store.latest("FileResource", "x.txt")
    finally:
        store.close()
    assert version is not None and version.hosts == ["host-02", "host-03"], "recorded where it is in place"


def test_content_too_large_for_one_argument_goes_in_the_same_command(fleet: Fleet, make_project) -> None:
    big = "".join(f"line {i:06d} of a large file\n" for i in range(20_000))  # ~540 KB, over Linux's 128 KiB per argument
    source = FILES + f"big = FileResource(name='big.txt', directory='app', content={big!r})\n"
    project = make_project(fleet, source)
    counted = Counted(fleet)
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert counted.new() == {"host-01": 2, "host-02": 2, "host-03": 2}
    expected = hashlib.sha1(big.encode()).hexdigest()
    for host in fleet.hosts:
        assert fleet.run(host, "sha1sum app/big.txt").stdout.split()[0] == expected
