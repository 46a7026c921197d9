"""Drift that is not noise, on real hosts: ignored fields, corrections that back off and never latch, unstable
resources, values a host normalizes, and which changes were intentional or corrective."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from clockwork.engine.types import Observed, Target
from clockwork.resources import RESOURCE_TYPES, FileResource
from clockwork.resources.base import describe
from clockwork.results import Evaluation
from tests.conftest import CwProject
from tests.test_reconcile_ssh import alerts, make_due, settings, state_db, status
from testsupport.fleet import Fleet, FleetHost, wait_until
from testsupport.receivers import HttpReceiver

CONTAINER = """\
from clockwork.resources import DockerServiceResource

api = DockerServiceResource(name="api", image="{image}", command=["sleep", "3600"], networks=["host"],
                            env_vars={{"MODE": "prod", "BUILD_ID": "1"}}, restart_policy="no",
                            reconcile=True, check_interval="1h", ignore_fields=["env_vars.BUILD_ID"])
"""


def env(fleet: Fleet, host: FleetHost, name: str) -> dict[str, str]:
    result = fleet.run(host, f"docker inspect --type container {name}")
    assert result.returncode == 0, result.stderr
    return dict(item.split("=", 1) for item in json.loads(result.stdout)[0]["Config"]["Env"])


def container_id(fleet: Fleet, host: FleetHost, name: str) -> str:
    return fleet.run(host, f"docker inspect -f '{{{{.Id}}}}' {name}").stdout.strip()


def rebuild_by_hand(fleet: Fleet, host: FleetHost, image: str, build_id: str) -> None:
    """What a CI job does: the container again, as Clockwork made it, with another BUILD_ID."""
    script = (f"docker rm -f api >/dev/null && docker run -d --name api --network host --restart no "
              f"--label clockwork.env-keys=BUILD_ID,MODE -e MODE=prod -e BUILD_ID={build_id} {image} sleep 3600")
    assert fleet.run(host, script).returncode == 0


def test_an_ignored_env_var_is_applied_on_create_never_drift_and_kept_by_a_correction(
    docker_fleet: Fleet, make_project, http_receiver: HttpReceiver
) -> None:
    fleet, host = docker_fleet, docker_fleet.hosts[0]
    project = make_project(fleet, CONTAINER.format(image=fleet.docker_image))
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    assert env(fleet, host, "api")["BUILD_ID"] == "1", "applied on create"
    rebuild_by_hand(fleet, host, fleet.docker_image, "77")
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert f"[{host.name}] api: as declared (ignored: env_vars.BUILD_ID)" in evaluated.output, evaluated.output
    before = container_id(fleet, host, "api")
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 0, result.output
    assert "0 corrected" in result.output
    assert container_id(fleet, host, "api") == before, "nothing to correct"
    # Another field drifts: the correction recreates the container and keeps the host's BUILD_ID.
    assert fleet.run(host, "docker update --restart always api").returncode == 0
    make_due(project)
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 0, result.output
    assert "1 corrected" in result.output
    assert env(fleet, host, "api") | {"PATH": ""} == {"MODE": "prod", "BUILD_ID": "77", "PATH": ""}
    assert project.cw("evaluate").exit_code == 0
    assert [alert[0] for alert in alerts(http_receiver)] == ["drift"], "one drift (restart_policy), none for BUILD_ID"
    assert status(project)[("api", host.name)]["state"] == "ok"


FILE = """\
from clockwork.resources import FileResource

conf = FileResource(name="app.conf", directory="rc", content="x = 1\\n", mode="0640", reconcile=True,
                    check_interval="1h", ignore_fields=["mode"])
"""


def test_an_ignored_mode_is_applied_on_create_and_left_as_the_host_has_it(fleet: Fleet, make_project) -> None:
    host = fleet.hosts[0]
    project = make_project(fleet, FILE)
    assert project.cw("apply").exit_code == 0
    assert fleet.run(host, "stat -c %a rc/app.conf").stdout.strip() == "640", "applied on create"
    assert fleet.run(host, "chmod 600 rc/app.conf && printf 'x = 2\\n' > rc/app.conf").returncode == 0
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 1 and "content differs" in evaluated.output and "mode" not in evaluated.output, \
        evaluated.output
    result = project.cw("reconcile", "--once")
    assert "1 corrected" in result.output, result.output
    assert fleet.run(host, "cat rc/app.conf; stat -c %a rc/app.conf").stdout == "x = 1\n600\n"
    assert project.cw("evaluate").exit_code == 0


def test_an_unknown_ignored_field_is_a_load_error_naming_file_line_resource_and_field(
    fleet: Fleet, make_project
) -> None:
    project = make_project(fleet, FILE.replace('ignore_fields=["mode"]', 'ignore_fields=["mdoe"]'))
    result = project.cw("apply")
    assert result.exit_code == 2, result.output
    assert ("main.py:3: invalid value for FileResource 'app.conf'.ignore_fields: 'mdoe' names no field "
            "(did you mean 'mode'?)") in result.output
    for host in fleet.hosts:
        assert fleet.run(host, "test -e rc").returncode == 1, "nothing changed on any host"


BACKOFF = """\
from clockwork.resources import FileResource

conf = FileResource(name="app.conf", directory="rc", content="x = 1\\n", reconcile=True, check_interval="1h")
"""


def backoff_of(project: CwProject, host: str) -> tuple[int, float]:
    """(failed corrections in a row, seconds until the next may run) of app.conf on ``host``, as stored."""
    database = state_db(project)
    try:
        failed, retry_at = database.execute("SELECT failed_corrections, retry_at FROM watches WHERE name = 'app.conf' "
                                            "AND host = ?", (host,)).fetchone()
    finally:
        database.close()
    return failed, (retry_at - time.time() if retry_at else 0.0)


def backoff_runs_out(project: CwProject, host: str) -> None:
    """Let the correction backoff on ``host`` run out in the store (as ``make_due`` lets intervals run out)."""
    database = state_db(project)
    try:
        with database:
            database.execute("UPDATE watches SET retry_at = ?, next_due = 0 WHERE host = ?", (time.time() - 1, host))
            database.execute("UPDATE reconcile_hosts SET next_due = 0 WHERE host = ?", (host,))
    finally:
        database.close()


def test_a_failed_correction_backs_off_is_retried_after_its_backoff_and_the_count_resets_on_success(
    fleet: Fleet, make_project, http_receiver: HttpReceiver
) -> None:
    host = fleet.hosts[0]
    project = make_project(fleet, BACKOFF)
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    assert fleet.run(host, "printf 'x = 2\\n' > rc/app.conf && chmod 555 rc").returncode == 0  # cannot be written
    try:
        first = project.cw("reconcile", "--once")
        assert first.exit_code == 3 and "app.conf: correction failed" in first.output, first.output
        failed, wait = backoff_of(project, host.name)
        assert failed == 1 and 0 < wait <= 2
        make_due(project, host.name)  # its check is due, its backoff is not over: not corrected, not latched
        held = project.cw("reconcile", "--once")
        assert "app.conf: backing off: content differs" in held.output or backoff_of(project, host.name)[0] == 2, \
            held.output
        backoff_runs_out(project, host.name)
        again = project.cw("reconcile", "--once")
        assert "correction failed" in again.output, again.output
        failed, wait = backoff_of(project, host.name)
        assert failed >= 2 and 2 < wait <= 2 ** failed, "it doubles"
        assert [alert[:2] for alert in alerts(http_receiver)] == [("failure", "firing")], "alerted once"
    finally:
        assert fleet.run(host, "chmod 755 rc").returncode == 0
    # The host can be written again: the next try comes when the backoff ends, with no interval made due by hand.
    def corrected() -> bool:
        result = project.cw("reconcile", "--once")
        assert "correction failed" not in result.output, "the host can be written again: the retry succeeds"
        return "1 corrected" in result.output

    wait_until(corrected, timeout=30, what="the retry after the backoff", pause=0.5)
    assert fleet.run(host, "cat rc/app.conf").stdout == "x = 1\n"
    assert backoff_of(project, host.name) == (0, 0.0), "the count resets on success"
    row = status(project)[("app.conf", host.name)]
    assert row["state"] == "ok"


def test_a_new_version_ends_a_correction_backoff_at_once(fleet: Fleet, make_project) -> None:
    """Argo CD's counter never reset: here a new version (an apply) starts the count again and is tried at once."""
    host = fleet.hosts[0]
    project = make_project(fleet, BACKOFF)
    assert project.cw("apply").exit_code == 0
    assert fleet.run(host, "printf 'x = 2\\n' > rc/app.conf && chmod 555 rc").returncode == 0  # cannot be written
    try:
        for _attempt in range(2):
            assert "correction failed" in project.cw("reconcile", "--once").output
            backoff_runs_out(project, host.name)
        assert "correction failed" in project.cw("reconcile", "--once").output
        failed, wait = backoff_of(project, host.name)
        assert failed == 3 and wait > 4, "backing off"
        project.write_main(BACKOFF.replace("x = 1", "x = 3"))
        assert project.cw("apply").exit_code == 3, "the new version cannot be written there either (yet)"
    finally:
        assert fleet.run(host, "chmod 755 rc").returncode == 0
    make_due(project, host.name)  # its check is due; its backoff is not over, but it was for the old version
    result = project.cw("reconcile", "--once")
    assert "1 corrected" in result.output and "backing off" not in result.output, result.output
    assert fleet.run(host, "cat rc/app.conf").stdout == "x = 3\n"
    assert backoff_of(project, host.name) == (0, 0.0)


UNSTABLE = """\
from clockwork.resources import DockerServiceResource

job = DockerServiceResource(name="job", image="{image}", command={command}, networks=["host"], restart_policy="no",
                            reconcile=True, check_interval="1h", alert_on=["failure", "recovered"])
"""


def test_a_container_that_stops_right_after_clockwork_starts_it_is_unstable_once_and_not_corrected_in_a_loop(
    docker_fleet: Fleet, make_project, http_receiver: HttpReceiver
) -> None:
    fleet, host = docker_fleet, docker_fleet.hosts[0]
    project = make_project(fleet, UNSTABLE.format(image=fleet.docker_image, command='["false"]'))  # exits at once
    settings(project, alert_webhook_url=http_receiver.url)
    project.cw("apply")
    wait_until(lambda: project.cw("evaluate").exit_code == 1, timeout=30, what="the container to have stopped")
    first = project.cw("reconcile", "--once")
    assert first.exit_code == 3, first.output
    assert "job: unstable: still not as declared: stopped, wanted running" in first.output, first.output
    started = fleet.run(host, "docker inspect -f '{{.State.StartedAt}}' job").stdout
    make_due(project)
    second = project.cw("reconcile", "--once")
    assert "0 corrected" in second.output and "job: unstable: stopped, wanted running" in second.output, second.output
    assert fleet.run(host, "docker inspect -f '{{.State.StartedAt}}' job").stdout == started, "not started again"
    row = status(project)[("job", host.name)]
    assert row["state"] == "unstable"
    fired = [alert for alert in alerts(http_receiver) if alert[3] == host.name]
    assert fired == [("unstable", "firing", "job", host.name)], "once, as a failure-gated alert"
    # A new version that can converge: corrected and as declared again.
    project.write_main(UNSTABLE.format(image=fleet.docker_image, command='["sleep", "3600"]'))
    assert project.cw("apply").exit_code == 0
    assert project.cw("reconcile", "--once").exit_code == 0
    assert status(project)[("job", host.name)]["state"] == "ok"
    assert ("unstable", "resolved", "job", host.name) in alerts(http_receiver)


def test_unstable_is_not_alerted_without_failure_in_alert_on(docker_fleet: Fleet, make_project,
                                                             http_receiver: HttpReceiver) -> None:
    project = make_project(docker_fleet, UNSTABLE.format(image=docker_fleet.docker_image, command='["false"]')
                           .replace('alert_on=["failure", "recovered"]', 'alert_on=["drift"]'))
    settings(project, alert_webhook_url=http_receiver.url)
    project.cw("apply")
    wait_until(lambda: project.cw("evaluate").exit_code == 1, timeout=30, what="the container to have stopped")
    assert "job: unstable" in project.cw("reconcile", "--once").output
    assert alerts(http_receiver) == []


EDITED = """\
from clockwork.resources import FileResource

conf = FileResource(name="app.conf", directory="rc", content="x = 1\\n", mode="640", hosts=["{host}"],
                    reconcile=True, check_interval="1h", alert_on=["drift", "failure", "recovered"])
"""


def stat(fleet: Fleet, host: FleetHost, path: str) -> str:
    """The inode, mode and change time of ``path``: what any write to it, or of its mode, changes."""
    result = fleet.run(host, f"stat -c '%i %a %Z.%z' {path}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_file_a_person_edits_twice_in_a_row_is_drift_corrected_both_times_never_unstable(
    fleet: Fleet, make_project, http_receiver: HttpReceiver
) -> None:
    """Puppet's idempotency rule must not take a person's (or a cron job's) repeated edit for Clockwork's fault:
    each edit changes what the host has since Clockwork's correction left it."""
    host = fleet.hosts[0]
    project = make_project(fleet, EDITED.format(host=host.name))
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    for edit in ("x = 2", "x = 2"):  # the same edit twice, as a cron job would make it
        assert fleet.run(host, f"printf '{edit}\\n' > rc/app.conf").returncode == 0
        result = project.cw("reconcile", "--once")
        assert result.exit_code == 0, result.output
        assert "1 corrected" in result.output and "unstable" not in result.output, result.output
        assert fleet.run(host, "cat rc/app.conf").stdout == "x = 1\n"
        make_due(project)
    assert fleet.run(host, "chmod 600 rc/app.conf").returncode == 0  # and another kind of edit
    assert "1 corrected" in project.cw("reconcile", "--once").output
    assert status(project)[("app.conf", host.name)]["state"] == "ok"
    assert [alert[:2] for alert in alerts(http_receiver)] == [("drift", "resolved")] * 3, "drift each time"
    make_due(project)  # nobody edits it: as declared, nothing done, nothing alerted
    quiet = project.cw("reconcile", "--once")
    assert quiet.exit_code == 0 and "0 corrected" in quiet.output, quiet.output
    assert len(alerts(http_receiver)) == 3


@pytest.fixture
def misjudging_kind() -> Iterator[dict[str, bool]]:
    """A resource kind only for this test, registered as a kind's module registers it: a file that, once its
    switch is on, compares its mode without normalizing it ("640" is not "0640"), as a Clockwork upgrade with that
    bug in its comparison would, though nothing changed on the host. Yields the switch."""
    switch = {"misjudges": False}

    class MisjudgingFileResource(FileResource):
        """A file whose comparison may be wrong (a test kind)."""

        def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
            evaluation = super().evaluate_state(target, observed)
            if not switch["misjudges"]:
                return evaluation
            diffs = [*evaluation.diffs, self.diff("mode", f"0{self.mode}", self.mode)]
            return Evaluation(diffs, describe(diffs))

    try:
        yield switch
    finally:
        del RESOURCE_TYPES[MisjudgingFileResource.__name__]


MISJUDGED = """\
from clockwork.resources import MisjudgingFileResource

conf = MisjudgingFileResource(name="app.conf", directory="rc", content="x = 1\\n", mode="640", hosts=["{host}"],
                              reconcile=True, check_interval="1h", alert_on=["failure", "recovered"])
"""


def test_a_resource_that_differs_on_the_next_pass_with_nothing_changed_since_its_correction_is_unstable_once(
    fleet: Fleet, make_project, http_receiver: HttpReceiver, misjudging_kind: dict[str, bool]
) -> None:
    host = fleet.hosts[0]
    project = make_project(fleet, MISJUDGED.format(host=host.name))
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    assert fleet.run(host, "printf 'x = 2\\n' > rc/app.conf").returncode == 0  # a person's edit: drift
    corrected = project.cw("reconcile", "--once")
    assert corrected.exit_code == 0 and "1 corrected" in corrected.output, corrected.output
    left = stat(fleet, host, "rc/app.conf")
    misjudging_kind["misjudges"] = True  # nothing on the host changes; the kind's comparison does
    make_due(project)
    first = project.cw("reconcile", "--once")
    assert first.exit_code == 3, first.output
    assert ("app.conf: unstable: differs with the host as Clockwork's own correction left it: mode 640, wanted 0640"
            in first.output), first.output
    assert "0 corrected" in first.output
    make_due(project)
    second = project.cw("reconcile", "--once")
    assert second.exit_code == 3 and "0 corrected" in second.output, second.output
    assert "app.conf: unstable: mode 640, wanted 0640" in second.output, second.output
    assert stat(fleet, host, "rc/app.conf") == left, "never corrected again: not a write, not a chmod"
    assert status(project)[("app.conf", host.name)]["state"] == "unstable"
    assert alerts(http_receiver) == [("unstable", "firing", "app.conf", host.name)], "once, a failure-gated alert"
    # A new version is checked and corrected again at once (here: as declared, once the comparison is right).
    misjudging_kind["misjudges"] = False
    project.write_main(MISJUDGED.format(host=host.name).replace('mode="640"', 'mode="600"'))
    assert project.cw("apply").exit_code == 0
    assert project.cw("reconcile", "--once").exit_code == 0
    assert status(project)[("app.conf", host.name)]["state"] == "ok"


NORMALIZED_FILES = """\
from clockwork.resources import DirectoryResource, FileResource

leading_zero = FileResource(name="zero.conf", directory="nf", content="a\\n", mode="0644")
octal_int = FileResource(name="octal.conf", directory="nf", content="b\\n", mode=0o640)
trailing_slash = FileResource(name="slash.conf", directory="nf/", content="c\\n", mode="600")
double_slash = FileResource(name="double.conf", directory="nf//deep/", content="d\\n")
dir_zero = DirectoryResource(name="sub", directory="nf/", mode="0750")
dir_slash = DirectoryResource(name="deep", directory="./nf", mode="0755")
"""


def test_files_and_directories_in_normalizable_forms_evaluate_ok_after_apply(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, NORMALIZED_FILES)
    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Nothing to do: every resource is already as declared on 3 hosts" in project.cw("apply").output


NORMALIZED_CONTAINER = """\
from clockwork.resources import DockerServiceResource

api = DockerServiceResource(name="api", image="{image}", command="sleep  3600", networks=["host"],
                            ports=["18080:80/tcp", "127.0.0.1:18081:81/tcp", "18082:82/udp"],
                            volumes=["/tmp/cw-normalized/:/data/"], restart_policy="no")
"""


def test_a_container_in_normalizable_forms_evaluates_ok_after_apply(docker_fleet: Fleet, make_project) -> None:
    project = make_project(docker_fleet, NORMALIZED_CONTAINER.format(image=docker_fleet.docker_image))
    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output


IMAGE_FORM = """\
from clockwork.resources import DockerServiceResource

api = DockerServiceResource(name="api", image="{image}", command=["sleep", "3600"], networks=["host"],
                            restart_policy="no", hosts=["{host}"])
"""
#: One image on Docker Hub written four ways; Docker takes each for docker.io/library/nginx:latest.
NGINX = ["nginx", "nginx:latest", "docker.io/library/nginx:latest", "library/nginx"]


@pytest.mark.parametrize("image", NGINX)
def test_a_container_image_in_each_form_of_one_reference_evaluates_ok_after_apply_and_as_docker_reports_it(
    docker_fleet: Fleet, make_project, image: str
) -> None:
    fleet, host = docker_fleet, docker_fleet.hosts[0]
    assert fleet.run(host, f"docker tag {fleet.docker_image} nginx:latest").returncode == 0  # no registry here
    project = make_project(fleet, IMAGE_FORM.format(image=image, host=host.name))
    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    # The same container made by hand from another form of the reference (as docker run keeps it): the same image.
    other = NGINX[(NGINX.index(image) + 2) % len(NGINX)]
    assert fleet.run(host, f"docker rm -f api >/dev/null && docker run -d --name api --network host --restart no "
                           f"{other} sleep 3600").returncode == 0
    assert fleet.run(host, "docker inspect -f '{{.Config.Image}}' api").stdout.strip() == other
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Nothing to do" in project.cw("apply").output


def test_another_image_is_still_drift_whatever_its_form(docker_fleet: Fleet, make_project) -> None:
    fleet, host = docker_fleet, docker_fleet.hosts[0]
    assert fleet.run(host, f"docker tag {fleet.docker_image} nginx:1.27 && "
                           f"docker tag {fleet.docker_image} nginx:latest").returncode == 0
    project = make_project(fleet, IMAGE_FORM.format(image="docker.io/library/nginx:1.27", host=host.name))
    assert project.cw("apply").exit_code == 0
    assert fleet.run(host, "docker rm -f api >/dev/null && docker run -d --name api --network host --restart no "
                           "nginx sleep 3600").returncode == 0
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 1, evaluated.output
    assert "image nginx, wanted docker.io/library/nginx:1.27" in evaluated.output, evaluated.output


CONTAINER_PORTS = """\
from clockwork.resources import DockerServiceResource

api = DockerServiceResource(name="api", image="{image}", command=["sleep", "3600"], networks=["host"],
                            ports={ports}, restart_policy="no", hosts=["{host}"])
"""


@pytest.mark.parametrize("ports", [["80"], ["80/tcp"], ["53/udp"], ["80", "8443:443/tcp", "53/udp"]],
                         ids=["port", "port-tcp", "port-udp", "mixed"])
def test_container_only_ports_evaluate_ok_after_apply(docker_fleet: Fleet, make_project, ports: list[str]) -> None:
    """A container port with no host port given (published on one Docker picks, as ``docker run -p 80``)."""
    fleet, host = docker_fleet, docker_fleet.hosts[0]
    project = make_project(fleet, CONTAINER_PORTS.format(image=fleet.docker_image, ports=ports, host=host.name))
    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    bindings = json.loads(fleet.run(host, "docker inspect -f '{{json .HostConfig.PortBindings}}' api").stdout)
    assert {port.split(":")[-1] if "/" in port else f"{port}/tcp" for port in ports} == set(bindings)
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Nothing to do" in project.cw("apply").output


def test_status_labels_the_last_change_intentional_or_corrective_in_text_and_json(fleet: Fleet, make_project) -> None:
    host = fleet.hosts[1]
    project = make_project(fleet, BACKOFF)
    assert project.cw("apply").exit_code == 0
    row = status(project)[("app.conf", host.name)]
    assert (row["last_event"], row["last_intent"]) == ("changed", "intentional")
    assert fleet.run(host, "printf 'x = 2\\n' > rc/app.conf").returncode == 0
    assert "1 corrected" in project.cw("reconcile", "--once").output
    row = status(project)[("app.conf", host.name)]
    assert (row["last_event"], row["last_intent"], row["failed_corrections"]) == ("corrected", "corrective", 0)
    text = project.cw("status").output
    assert f"✓ [{host.name}] FileResource app.conf: ok; last corrected at " in text
    assert f"; last change corrected (corrective) at {row['last_event_at']}; next due " in text
    for other in fleet.hosts[:1] + fleet.hosts[2:]:
        assert status(project)[("app.conf", other.name)]["last_intent"] == "intentional"
