"""evaluate over real SSH hosts and dockerd: drift found on exactly the right host, resource and field."""

from __future__ import annotations

import importlib
import json
import shutil
import time
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

from testsupport.fleet import NO_DOCKER_SOCKET, Fleet, closed_port

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "evaluate.schema.json").read_text())

PROJECT = """\
from clockwork.checks import CommandCheck, HttpCheck, PortCheck
from clockwork.resources import DirectoryResource, DockerServiceResource, FileResource

app = DirectoryResource(name="app", mode="750")
config = FileResource(name="config.json", directory="app", content='{{"debug": false}}\\n', mode="640")
web = DockerServiceResource(
    name="web", image="{image}", command=["sleep", "3600"], networks=["host"],
    env_vars={{"MODE": "prod", "LEVEL": "3"}},
)
"""

# The drift to inject on host-02, and the (resource, field) pairs evaluate must report for it.
DRIFTS = {
    "content changed": ("echo tampered > app/config.json", [("config.json", "content")]),
    "mode changed": ("chmod 644 app/config.json", [("config.json", "mode")]),
    "file deleted": ("rm app/config.json", [("config.json", "present")]),
    "directory removed": ("rm -r app", [("app", "present"), ("config.json", "present")]),
    "container stopped": ("docker stop web", [("web", "running")]),
    "other image": (("docker rm -f web && docker run -d --name web --network host -e MODE=prod -e LEVEL=3 "
                    "-l clockwork.env-keys=LEVEL,MODE {image2} sleep 3600"), [("web", "image")]),
    "env var removed": (("docker rm -f web && docker run -d --name web --network host -e MODE=prod "
                        "-l clockwork.env-keys=LEVEL,MODE {image} sleep 3600"), [("web", "env_vars.LEVEL")]),
}


def evaluate_json(project, *args: str) -> tuple[int, dict]:
    result = project.cw("evaluate", "--format", "json", *args)
    document = json.loads(result.output)
    jsonschema.validate(document, SCHEMA)
    return result.exit_code, document


def host_state(fleet: Fleet) -> list[str]:
    """Everything evaluate could have touched, per host."""
    return [
        fleet.run(host, "find app -exec stat -c '%n %a %Y %i' {} + 2>/dev/null; "
                        "docker ps -a --format '{{.Names}} {{.Image}} {{.ID}} {{.State}}' 2>/dev/null").stdout
        for host in fleet.hosts
    ]


@pytest.fixture
def deployed(docker_fleet: Fleet, make_project):
    port = 18000 + docker_fleet.hosts[0].port % 1000
    project = make_project(docker_fleet, PROJECT.format(image=docker_fleet.docker_image, port=port))
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    return docker_fleet, project, port


def test_all_as_declared(deployed) -> None:
    fleet, project, _port = deployed
    result = project.cw("evaluate")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "✓ All resources running as specified"
    assert f"  ✓ [host-01] web: running (image {fleet.docker_image})" in lines
    assert "  ✓ [host-03] config.json: present at app/config.json" in lines
    code, document = evaluate_json(project)
    assert code == 0
    assert document["status"] == "ok"
    assert document["summary"] == {"hosts": 3, "resources": 3, "ok": 9, "drift": 0, "error": 0}


@pytest.mark.parametrize("drift", list(DRIFTS))
def test_drift_on_one_host_is_reported_there_only(deployed, drift: str) -> None:
    fleet, project, port = deployed
    command, expected = DRIFTS[drift]
    injected = fleet.run(fleet.hosts[1], command.format(image=fleet.docker_image, image2=fleet.docker_image_2, port=port))
    assert injected.returncode == 0, injected.stderr
    before = host_state(fleet)
    code, document = evaluate_json(project)
    assert code == 1
    assert document["status"] == "drift"
    drifted = [r for r in document["results"] if r["status"] != "ok"]
    assert [(r["host"], r["resource"]) for r in drifted] == [("host-02", resource) for resource, _field in expected]
    for result, (_resource, field) in zip(drifted, expected, strict=True):
        assert field in [diff["field"] for diff in result["diffs"]], result
    assert document["summary"]["drift"] == len(expected) and document["summary"]["ok"] == 9 - len(expected)
    assert host_state(fleet) == before, "evaluate must not change any host"


def test_diffs_name_expected_and_actual(deployed) -> None:
    fleet, project, _port = deployed
    fleet.run(fleet.hosts[0], "chmod 600 app/config.json && docker stop web")
    _code, document = evaluate_json(project)
    by_resource = {r["resource"]: r for r in document["results"] if r["host"] == "host-01"}
    assert by_resource["config.json"]["diffs"] == [{"field": "mode", "expected": "640", "actual": "600"}]
    assert by_resource["config.json"]["detail"] == "mode 600, wanted 640 at app/config.json"
    assert by_resource["web"]["diffs"] == [{"field": "running", "expected": True, "actual": False}]
    text = project.cw("evaluate", "-q")
    assert text.output.splitlines() == [
        "✗ 2 of 9 not as specified (2 drift)",
        "  ✗ [host-01] config.json: mode 600, wanted 640 at app/config.json",
        "  ✗ [host-01] web: stopped, wanted running",
    ]


def test_junit_parses_and_counts(deployed, tmp_path: Path) -> None:
    fleet, project, _port = deployed
    fleet.run(fleet.hosts[2], "echo x >> app/config.json")
    report = tmp_path / "evaluate.xml"
    result = project.cw("evaluate", "--format", "junit", "--output", str(report))
    assert result.exit_code == 1
    assert "✗ [host-03] config.json: content differs" in result.output
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("9", "1", "0")
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [(case.get("classname"), case.get("name")) for case in failed] == [("host-03", "FileResource config.json")]


def test_unreachable_host_is_an_error_and_the_others_are_reported(deployed, tmp_path: Path) -> None:
    fleet, project, _port = deployed
    fleet.stop_host(fleet.hosts[0])
    code, document = evaluate_json(project)
    assert code == 3
    assert document["status"] == "error"
    errors = {(r["host"], r["resource"]) for r in document["results"] if r["status"] == "error"}
    assert errors == {("host-01", "app"), ("host-01", "config.json"), ("host-01", "web")}
    assert all(r["error"].startswith("host unreachable: ") for r in document["results"] if r["status"] == "error")
    assert sum(1 for r in document["results"] if r["status"] == "ok") == 6
    junit = tmp_path / "junit.xml"
    assert project.cw("evaluate", "--format", "junit", "--output", str(junit)).exit_code == 3
    assert ElementTree.parse(junit).getroot().find("testsuite").get("errors") == "3"


def test_health_checks_run_on_the_target_host(deployed) -> None:
    fleet, project, port = deployed
    # The fleet shares one network namespace: only host-01 serves HTTP; the command check reads each host's own files.
    (project.directory / "main.py").write_text(
        PROJECT.format(image=fleet.docker_image, port=port)
        + f"""
server = DockerServiceResource(
    name="server", image="{fleet.docker_image}", command=["httpd", "-f", "-p", "{port}", "-h", "/etc"],
    networks=["host"], hosts=["host-01"],
    checks=[HttpCheck("http://127.0.0.1:{port}/hostname"), PortCheck({port})],
)
config.checks = [CommandCheck("cat app/marker", stdout_contains="ready")]
"""
    )
    assert project.cw("apply").exit_code == 0
    for host in fleet.hosts[:2]:
        fleet.run(host, "echo ready > app/marker")
    code, document = evaluate_json(project)
    assert code == 1
    failing = [r for r in document["results"] if r["status"] != "ok"]
    assert [(r["host"], r["resource"]) for r in failing] == [("host-03", "config.json")]
    assert failing[0]["diffs"] == [
        {"field": "checks[command cat app/marker]", "expected": "exit 0 with 'ready'", "actual": "exit 1"}
    ]
    fleet.run(fleet.hosts[0], "docker stop server")
    fleet.run(fleet.hosts[2], "echo ready > app/marker")
    project.write_main((project.directory / "main.py").read_text().replace('name="server", image', 'name="server", running=False, image'))
    code, document = evaluate_json(project)
    assert code == 1
    failing = [r for r in document["results"] if r["status"] != "ok"]
    assert [(r["host"], r["resource"]) for r in failing] == [("host-01", "server")]
    assert failing[0]["diffs"][0]["field"] == f"checks[http http://127.0.0.1:{port}/hostname]"
    assert failing[0]["diffs"][0]["actual"].startswith("request failed")
    assert failing[0]["diffs"][1] == {"field": f"checks[port {port}]", "expected": "listening", "actual": "not listening"}


def test_diff_shows_what_changed_with_secrets_masked(deployed) -> None:
    fleet, project, _port = deployed
    fleet.run(fleet.hosts[1], "printf '{\"debug\": true}\\napi_token=abc123\\n' > app/config.json")
    result = project.cw("evaluate", "--diff", "-q", "--limit", "host-02")
    assert result.exit_code == 1
    assert "      -{\"debug\": true}\n" in result.output
    assert "      +{\"debug\": false}\n" in result.output
    assert "api_token=***" in result.output
    assert "abc123" not in result.output


def test_retry_timeout_waits_for_convergence(deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate = importlib.import_module("clockwork.commands.evaluate")  # the module, whatever the package exports

    fleet, project, _port = deployed
    fleet.run(fleet.hosts[0], "chmod 600 app/config.json")
    reads: list[str] = []
    read = evaluate._evaluate_hosts

    def read_then_fix(*args, **kwargs):  # the host converges right after the first read found it drifted
        report = read(*args, **kwargs)
        reads.append(report.status)
        if len(reads) == 1:
            assert fleet.run(fleet.hosts[0], "chmod 640 app/config.json").returncode == 0
        return report

    monkeypatch.setattr(evaluate, "_evaluate_hosts", read_then_fix)
    started = time.monotonic()
    result = project.cw("evaluate", "--retry-timeout", "20s")
    assert result.exit_code == 0, result.output
    assert reads == ["drift", "ok"], "read again, once, after the pause"
    assert time.monotonic() - started < 20
    monkeypatch.undo()
    assert project.cw("evaluate", "--retry-timeout", "1s", "--limit", "host-01").exit_code == 0


def test_retry_timeout_gives_up(deployed) -> None:
    fleet, project, _port = deployed
    fleet.run(fleet.hosts[0], "chmod 600 app/config.json")
    started = time.monotonic()
    result = project.cw("evaluate", "--retry-timeout", "2s")
    assert result.exit_code == 1
    assert 2 <= time.monotonic() - started < 15


def test_docker_daemon_down_is_an_error_not_drift(fleet: Fleet, make_project) -> None:
    """The hosts of a fleet without docker point DOCKER_HOST at a socket nobody listens on (whatever this machine runs)."""
    project = make_project(fleet, PROJECT.format(image="cwtest/busybox:1", port=1))
    code, document = evaluate_json(project, "--limit", "host-01")
    assert code == 3
    web = next(r for r in document["results"] if r["resource"] == "web")
    assert web["status"] == "error"
    assert web["error"].startswith("docker: ")
    if shutil.which("docker"):  # without the client the error says docker is not installed
        assert f"{fleet.hosts[0].dir / NO_DOCKER_SOCKET}" in web["error"], "the dead socket, not this machine's docker"
    assert closed_port() > 0



def test_junit_holds_no_raw_control_characters_and_no_secrets() -> None:
    from xml.etree import ElementTree

    from clockwork.output import to_junit
    from clockwork.results import Report, Result

    report = Report([Result("web-1", "esc\x1b[31mred", "FileResource", "error", "failed",
                            error="url = postgres://app:pw@db/app\x07")], ["web-1"])
    document = to_junit(report)
    assert "\x1b" not in document and "\x07" not in document
    case = ElementTree.fromstring(document.split("\n", 1)[1]).find("testsuite/testcase")
    assert case is not None and case.get("name") == "FileResource esc\\x1b[31mred"
    error = case.find("error")
    assert error is not None and error.get("message") == "url = postgres://app:***@db/app\\x07"
