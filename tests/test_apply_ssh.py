"""apply, plan and destroy over real SSH hosts (and a real dockerd per host)."""

from __future__ import annotations

import json

from testsupport.fleet import Fleet, closed_port

FILES = """\
from clockwork.resources import DirectoryResource, FileResource

app = DirectoryResource(name="app", mode="750")
config = FileResource(name="config.json", directory="app", content='{"debug": false}\\n', mode="640")
notes = FileResource(name="notes.txt", directory="app/deep/er", content="line one\\nline two\\n")
"""

CONTAINER = """
from clockwork.resources import DockerServiceResource

web = DockerServiceResource(
    name="web", image="{image}", command=["sleep", "3600"], networks=["host"],
    env_vars={{"MODE": "prod"}}, restart_policy="unless-stopped",
)
"""


def stat(fleet: Fleet, host, path: str) -> str:
    """``mode inode mtime`` of a path on a fleet host (as its user)."""
    return fleet.run(host, f"stat -c '%a %i %Y' {path}").stdout.strip()


def read(fleet: Fleet, host, path: str) -> str:
    return fleet.run(host, f"cat {path}").stdout


def inspect(fleet: Fleet, host, name: str) -> dict:
    result = fleet.run(host, f"docker inspect --type container {name}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def test_apply_creates_files_directories_and_containers_on_every_host(docker_fleet: Fleet, make_project) -> None:
    project = make_project(docker_fleet, FILES + CONTAINER.format(image=docker_fleet.docker_image))
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert "Applied: 12 changed, 0 unchanged, 0 failed on 3 hosts" in result.output
    for host in docker_fleet.hosts:
        assert f"✓ [{host.name}] config.json: created" in result.output
        assert read(docker_fleet, host, "app/config.json") == '{"debug": false}\n'
        assert read(docker_fleet, host, "app/deep/er/notes.txt") == "line one\nline two\n"
        assert stat(docker_fleet, host, "app").split()[0] == "750"
        assert stat(docker_fleet, host, "app/config.json").split()[0] == "640"
        assert stat(docker_fleet, host, "app/deep/er/notes.txt").split()[0] == "644"
        container = inspect(docker_fleet, host, "web")
        assert container["State"]["Running"] is True
        assert container["Config"]["Image"] == docker_fleet.docker_image
        assert "MODE=prod" in container["Config"]["Env"]
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert container["Config"]["Cmd"] == ["sleep", "3600"]
        # Nothing is left behind from the atomic write.
        assert fleet_files(docker_fleet, host) == ["app/config.json", "app/deep/er/notes.txt"]


def fleet_files(fleet: Fleet, host) -> list[str]:
    return sorted(fleet.run(host, "find app -type f").stdout.split())


def test_second_apply_changes_nothing_and_rewrites_no_file(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    assert project.cw("apply").exit_code == 0
    before = {host.name: stat(fleet, host, "app/config.json") for host in fleet.hosts}
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "Nothing to do: every resource is already as declared on 3 hosts"
    assert {host.name: stat(fleet, host, "app/config.json") for host in fleet.hosts} == before


def test_plan_shows_drift_on_one_host_and_changes_nothing_then_apply_corrects(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    assert project.cw("apply").exit_code == 0
    drifted = fleet.hosts[1]
    fleet.run(drifted, "echo tampered > app/config.json && chmod 600 app/notes.txt 2>/dev/null; chmod 600 app/deep/er/notes.txt")
    before = stat(fleet, drifted, "app/config.json")

    plan = project.cw("plan")
    assert plan.exit_code == 0, plan.output
    changes = [line for line in plan.output.splitlines() if line.startswith("~")]
    assert changes == [
        "~ [host-02] config.json: would be updated content: content differs "
        f"(sha1 {sha1('tampered')[:4]}… wanted {sha1(chr(123) + chr(34) + 'debug' + chr(34) + ': false}')[:4]}…) at app/config.json",
        "~ [host-02] notes.txt: would be updated mode: mode 600, wanted 644 at app/deep/er/notes.txt",
    ]
    assert "Plan: 2 to change, 7 unchanged, 0 failed on 3 hosts" in plan.output
    assert read(fleet, drifted, "app/config.json") == "tampered\n"
    assert stat(fleet, drifted, "app/config.json") == before

    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    assert "✓ [host-02] config.json: updated content" in applied.output
    assert "✓ [host-02] notes.txt: updated mode" in applied.output
    assert "Applied: 2 changed, 7 unchanged, 0 failed on 3 hosts" in applied.output
    assert read(fleet, drifted, "app/config.json") == '{"debug": false}\n'
    assert stat(fleet, drifted, "app/deep/er/notes.txt").split()[0] == "644"


def sha1(line: str) -> str:
    import hashlib

    return hashlib.sha1((line + "\n").encode()).hexdigest()


def test_destroy_removes_everything_it_created(docker_fleet: Fleet, make_project) -> None:
    project = make_project(docker_fleet, FILES + CONTAINER.format(image=docker_fleet.docker_image))
    assert project.cw("apply").exit_code == 0
    result = project.cw("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert "Destroyed: 12 removed, 0 already absent, 0 failed on 3 hosts" in result.output
    for host in docker_fleet.hosts:
        assert docker_fleet.run(host, "ls -A").stdout.split() == [".ssh"] or "app" not in docker_fleet.run(host, "ls -A").stdout
        assert docker_fleet.run(host, "test -e app").returncode == 1
        assert docker_fleet.run(host, "docker ps -aq").stdout.strip() == ""
    again = project.cw("destroy", "--yes")
    assert again.exit_code == 0
    assert "Destroyed: 0 removed, 12 already absent, 0 failed on 3 hosts" in again.output


def test_destroy_leaves_what_is_not_its_kind(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    assert project.cw("apply").exit_code == 0
    host = fleet.hosts[0]
    # a directory, with something in it, where a file is declared
    fleet.run(host, "rm app/config.json && mkdir app/config.json && echo foreign > app/config.json/data")
    result = project.cw("destroy", "--yes", "--limit", "host-01")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "✓ app: left in place: not empty (config.json, deep)",
        "✓ config.json: already absent",
        "✓ notes.txt: removed",
        "Destroyed: 1 removed, 1 already absent, 1 left in place, 0 failed on 1 host",
    ]
    assert fleet.run(host, "cat app/config.json/data").stdout == "foreign\n"
    # left untouched: even the empty directories that notes.txt was written in
    assert sorted(fleet.run(host, "find app").stdout.split()) == [
        "app", "app/config.json", "app/config.json/data", "app/deep", "app/deep/er"]


def test_unreachable_host_does_not_stop_the_others(fleet: Fleet, make_project) -> None:
    dead = ("host-dead", {"ssh_hostname": "127.0.0.1", "ssh_port": closed_port(), "ssh_user": "nobody",
                          "ssh_known_hosts_file": str(fleet.known_hosts), "ssh_strict_host_key_checking": "yes"})
    project = make_project(fleet, FILES, extra_hosts=[dead])
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert "✗ [host-dead] unreachable: " in result.output
    assert "Applied: 9 changed, 0 unchanged, 0 failed on 4 hosts; unreachable: host-dead" in result.output
    for host in fleet.hosts:
        assert read(fleet, host, "app/config.json") == '{"debug": false}\n'


def test_a_host_that_stops_answering_is_reported(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    fleet.stop_host(fleet.hosts[2])
    result = project.cw("apply")
    assert result.exit_code == 3
    assert "✗ [host-03] unreachable: " in result.output
    assert read(fleet, fleet.hosts[0], "app/config.json") == '{"debug": false}\n'


def test_hosts_and_limit_choose_where_resources_go(fleet: Fleet, make_project) -> None:
    source = FILES + 'web_only = FileResource(name="site.conf", directory="app", content="x\\n", hosts=["web"])\n'
    project = make_project(fleet, source, groups={"web": ["host-01", "host-02"]})
    result = project.cw("apply", "--limit", "host-02,host-03")
    assert result.exit_code == 0, result.output
    assert fleet.run(fleet.hosts[0], "test -e app").returncode == 1, "--limit excluded host-01"
    assert read(fleet, fleet.hosts[1], "app/site.conf") == "x\n"
    assert fleet.run(fleet.hosts[2], "test -e app/site.conf").returncode == 1, "host-03 is not in group web"
    assert read(fleet, fleet.hosts[2], "app/config.json") == '{"debug": false}\n'


def test_container_drift_is_corrected(docker_fleet: Fleet, make_project) -> None:
    project = make_project(docker_fleet, CONTAINER.format(image=docker_fleet.docker_image))
    assert project.cw("apply").exit_code == 0
    first, second = docker_fleet.hosts[0], docker_fleet.hosts[1]
    docker_fleet.run(first, "docker stop web")
    docker_fleet.run(second, f"docker rm -f web && docker run -d --name web --network host {docker_fleet.docker_image_2} sleep 3600")
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert "✓ [host-01] web: updated running" in result.output
    assert "✓ [host-02] web: updated image" in result.output
    assert inspect(docker_fleet, first, "web")["State"]["Running"] is True
    assert inspect(docker_fleet, second, "web")["Config"]["Image"] == docker_fleet.docker_image
    assert "MODE=prod" in inspect(docker_fleet, second, "web")["Config"]["Env"]


def test_operation_failure_is_reported_per_resource(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES)
    host = fleet.hosts[0]
    fleet.run(host, "mkdir -p app/config.json")  # a directory in the way of a declared file
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert ("✗ [host-01] config.json: app/config.json is a directory, not a file: Clockwork will not replace a directory"
            in result.output.splitlines())
    assert read(fleet, host, "app/deep/er/notes.txt") == "line one\nline two\n", "the other resources still ran"
    assert read(fleet, fleet.hosts[1], "app/config.json") == '{"debug": false}\n'
