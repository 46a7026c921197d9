"""Resources: how each compares a host with its declaration (JSON fixtures), and how declarations validate.

The fixtures are ``tests/resources/<Resource>/<case>.json`` (format in ``tests/harness.py``):
the resource is built from ``resource``, asked for its ``probes`` on ``Target(**target)``,
then evaluated against ``Observed`` built from ``facts`` (processed fact values).
"""

from __future__ import annotations  # noqa: I001 (clockwork.facts is facts/ via package_dir: isort takes it for a third party)

import json
import builtins
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FactBase
from pyinfra.api import exceptions as pyinfra_exceptions

from clockwork.checks import CommandCheck, HttpCheck, PortCheck
from clockwork.facts.commands import Commands, command_id
from clockwork.resources import RESOURCE_TYPES, DirectoryResource, DockerServiceResource, FileResource, PackageResource
from clockwork.resources.base import InvalidResource
from clockwork.engine.types import Observed, Target
from clockwork.exceptions import HostReadError
from tests import harness

CASES = harness.cases("resources")


class RecordingObserved(Observed):
    """``Observed`` that remembers which facts the resource read."""

    def __init__(self, values: dict[type[FactBase], Any]) -> None:
        super().__init__(values)
        self.read: set[type[FactBase]] = set()

    def __getitem__(self, fact_class: type[FactBase]) -> Any:
        self.read.add(fact_class)
        return super().__getitem__(fact_class)


def _fact_value(value: Any) -> Any:
    """A fixture's fact value; ``{"$exception": {name, message}}`` becomes that exception (a fact that failed)."""
    if isinstance(value, dict) and set(value) == {"$exception"}:
        name, message = value["$exception"]["name"], value["$exception"]["message"]
        cls = getattr(pyinfra_exceptions, name, None) or getattr(builtins, name)
        return cls(message)
    return value


def _observed(data: dict[str, Any]) -> RecordingObserved:
    return RecordingObserved({harness.fact_class(fact): _fact_value(value) for fact, value in data["facts"].items()})


@pytest.mark.parametrize(("name", "data"), CASES)
def test_resource(name: str, data: dict[str, Any]) -> None:
    resource = RESOURCE_TYPES[name.split("/")[0]](**data["resource"])
    target = Target(**data["target"])
    health = data.get("health", True)
    probes = [[harness.fact_name(cls), key] for cls, key in resource.probes(target, health=health)]
    assert probes == data["probes"]
    observed = _observed(data)
    evaluation = resource.evaluate(target, observed, health=health)
    assert (evaluation.status, evaluation.detail) == (data["status"], data["detail"])
    assert [diff.as_dict() for diff in evaluation.diffs] == data["diffs"]
    assert evaluation.error == data.get("error")
    assert {harness.fact_name(cls) for cls in observed.read} == set(data["facts"]), "fixture facts the resource never read"


def test_fixture_set_covers_every_resource_type() -> None:
    assert {name.split("/")[0] for name, _data in (param.values for param in CASES)} == set(RESOURCE_TYPES)


@pytest.mark.parametrize(("name", "data"), CASES)
def test_observed_state_is_json_data_from_the_state_facts_only(name: str, data: dict[str, Any]) -> None:
    """What the reconciler fingerprints: read from the facts of ``state_probes`` (never a health check's), JSON
    data, the same each time; a fact that failed raises as ``evaluate`` reports an error."""
    resource = RESOURCE_TYPES[name.split("/")[0]](**data["resource"])
    target = Target(**data["target"])
    state = resource.evaluate(target, _observed(data), health=False)
    observed = _observed(data)
    try:
        found = resource.observed_state(target, observed)
    except HostReadError as error:
        assert state.error == f"{error}", "observed_state raised where evaluate did not"
        return
    assert observed.read <= {fact_class for fact_class, _key in resource.state_probes(target)}
    assert json.loads(json.dumps(found)) == found == resource.observed_state(target, _observed(data))


@pytest.mark.parametrize(("name", "data"), CASES)
def test_from_observed_is_the_inverse_of_evaluate(name: str, data: dict[str, Any]) -> None:
    """What ``from_observed`` builds from a host evaluates as ok on that host: every declared field matches.

    A fact that failed raises as ``evaluate`` reports an error; a resource that is there and as declared
    is always found; what no declaration can hold (a temporary file a killed write left) stays drift.
    """
    resource = RESOURCE_TYPES[name.split("/")[0]](**data["resource"])
    target = Target(**data["target"])
    observed = _observed(data)
    state = resource.evaluate(target, observed, health=False)
    try:
        found = resource.from_observed(target, observed)
    except Exception as error:  # a fact that failed on the host
        assert state.error == f"{error}", "from_observed raised where evaluate did not"
        return
    if found is None:
        assert state.status != "ok" or not resource.is_present(target, observed), "an ok resource that is there is found"
        return
    assert type(found) is type(resource)
    assert {field: getattr(found, field) for field in found.identity_fields} == {
        field: getattr(resource, field) for field in resource.identity_fields}
    evaluation = found.evaluate(target, observed, health=False)
    assert evaluation.error is None
    assert [diff.field for diff in evaluation.diffs if diff.field in type(found).model_fields] == [], "ok but for leftovers"


# Target path rules -----------------------------------------------------------------


@pytest.mark.parametrize(("target", "directory", "name", "path"), [
    (Target("web-1"), "app", "config.json", "app/config.json"),
    (Target("web-1"), "/etc/app/", "config.json", "/etc/app/config.json"),
    (Target("web-1"), "~/app", "config.json", "app/config.json"),
    (Target("web-1"), "~", ".profile", ".profile"),
    (Target("web-1"), "~", "", "."),
    (Target("web-1"), ".", "motd", "motd"),
    (Target("web-1"), "app/./conf/..", "", "app"),
    (Target("web-1"), "~app", "x", "~app/x"),  # another user's home is not expanded: a plain relative name
    (Target("@local", "/home/me/project", local=True), "app", "config.json", "/home/me/project/app/config.json"),
    (Target("@local", "/home/me/project", local=True), "/etc", "motd", "/etc/motd"),
    (Target("@local", "/home/me/project", local=True), "..", "shared", "/home/me/shared"),
    (Target("web-1", "/srv/base"), "app", "", "/srv/base/app"),
])
def test_target_path(target: Target, directory: str, name: str, path: str) -> None:
    assert target.path(directory, name) == path


def test_target_path_expands_home_only_on_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/tester")
    local = Target("@local", "/home/tester/project", local=True)
    assert local.path("~/app", "config.json") == "/home/tester/app/config.json"
    assert local.path("~", ".profile") == "/home/tester/.profile"
    assert Target("web-1", "/home/tester/project").path("~/app", "config.json") == "app/config.json"


# Validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "fields", "message"), [
    (FileResource, {"name": "config.json", "content": "x", "mode": "999"},
     "invalid value for FileResource 'config.json'.mode: '999' is not a file mode: use octal digits such as '644' or '0750'"),
    (FileResource, {"name": "config.json", "mode": "17777"},
     "invalid value for FileResource 'config.json'.mode: '17777' is not a file mode: it must be between 000 and 7777"),
    (FileResource, {"name": "app/config.json", "content": "x"},
     ("invalid value for FileResource 'app/config.json'.name: 'app/config.json' is not a file name: "
     "put the path in 'directory' and the name here")),
    (DirectoryResource, {"name": ".."},
     "invalid value for DirectoryResource '..'.name: '..' is not a file name: put the path in 'directory' and the name here"),
    (DirectoryResource, {"name": "app", "directory": ""},
     "invalid value for DirectoryResource 'app'.directory: a directory must be a non-empty path"),
    (FileResource, {"name": "x", "mode": True},
     ("invalid value for FileResource 'x'.mode: True is not a file mode: "
      "use octal digits as a string ('644') or an octal number (0o644)")),
    (DirectoryResource, {"name": "x", "mode": False},
     ("invalid value for DirectoryResource 'x'.mode: False is not a file mode: "
      "use octal digits as a string ('644') or an octal number (0o644)")),
    (FileResource, {"name": "x", "mode": 6.44},
     ("invalid value for FileResource 'x'.mode: 6.44 is not a file mode: "
      "use octal digits as a string ('644') or an octal number (0o644)")),
    (FileResource, {"name": "x", "mode": 644},
     ("invalid value for FileResource 'x'.mode: 644 is not a file mode: as a number it is 0o1204, not 0o644; "
      "write mode='644' or mode=0o644")),
    (DirectoryResource, {"name": "x", "mode": 755},
     ("invalid value for DirectoryResource 'x'.mode: 755 is not a file mode: as a number it is 0o1363, not 0o755; "
      "write mode='755' or mode=0o755")),
    (FileResource, {"name": "x", "mode": 0o17777},
     "invalid value for FileResource 'x'.mode: 0o17777 is not a file mode: it must be between 0o0 and 0o7777"),
    (FileResource, {"name": "x", "mode": -1},
     "invalid value for FileResource 'x'.mode: -0o1 is not a file mode: it must be between 0o0 and 0o7777"),
    (FileResource, {"name": "x", "mode": "6_4_4"},
     "invalid value for FileResource 'x'.mode: '6_4_4' is not a file mode: use octal digits such as '644' or '0750'"),
    (FileResource, {"name": "x", "mode": " 644"},
     "invalid value for FileResource 'x'.mode: ' 644' is not a file mode: use octal digits such as '644' or '0750'"),
    (FileResource, {"name": "x", "mode": "0o644"},
     "invalid value for FileResource 'x'.mode: '0o644' is not a file mode: use octal digits such as '644' or '0750'"),
    (FileResource, {"name": "a\nb"},
     "invalid value for FileResource 'a\\nb'.name: 'a\\nb' is not a file name: it holds a newline, a tab or a NUL character"),
    (FileResource, {"name": "a\tb"},
     "invalid value for FileResource 'a\\tb'.name: 'a\\tb' is not a file name: it holds a newline, a tab or a NUL character"),
    (FileResource, {"name": "a\0b"},
     ("invalid value for FileResource 'a\\x00b'.name: 'a\\x00b' is not a file name: "
      "it holds a newline, a tab or a NUL character")),
    (DirectoryResource, {"name": "a\udc80b"},
     ("invalid value for DirectoryResource 'a\\udc80b'.name: Input should be a valid string, "
      "unable to parse raw data as a unicode string")),
    (DirectoryResource, {"name": "x", "directory": "a\udc80b"},
     ("invalid value for DirectoryResource 'x'.directory: '\\udc80' at character 1 is a lone surrogate, not text "
      "(it cannot be written as UTF-8)")),
    (FileResource, {"name": "x", "directory": "a\0b"},
     ("invalid value for FileResource 'x'.directory: 'a\\x00b' is not a directory: "
      "it holds a newline, a tab or a NUL character")),
    (DirectoryResource, {"name": "x", "directory": "a\nb"},
     ("invalid value for DirectoryResource 'x'.directory: 'a\\nb' is not a directory: "
      "it holds a newline, a tab or a NUL character")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "ports": ["8080:80", "80", "8080:http"]},
     ("invalid value for DockerServiceResource 'web'.ports: '8080:http' is not a port binding: use 'HOST:CONTAINER' "
      "or 'CONTAINER', e.g. '8080:80', '127.0.0.1:53:53/udp' or '80'")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "env_vars": {"MODE": "x", "1BAD": "x"}},
     "invalid value for DockerServiceResource 'web'.env_vars: '1BAD' is not an environment variable name"),
    (DockerServiceResource, {"name": "web", "image": "nginx", "env_vars": {"MY-VAR": "x"}},
     "invalid value for DockerServiceResource 'web'.env_vars: 'MY-VAR' is not an environment variable name"),
    (DockerServiceResource, {"name": "web", "image": "nginx", "volumes": ["data"]},
     "invalid value for DockerServiceResource 'web'.volumes: 'data' is not a volume: use 'SOURCE:TARGET' or 'SOURCE:TARGET:ro'"),
    (DockerServiceResource, {"name": "-web", "image": "nginx"},
     ("invalid value for DockerServiceResource '-web'.name: '-web' is not a container name: letters, digits, '_', '.', '-', "
     "starting with a letter or digit")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "check_interval": "5 parsecs"},
     ("invalid value for DockerServiceResource 'web'.check_interval: '5 parsecs' is not a check interval: "
     "use seconds (60), a duration ('30s', '5m') or a cron expression ('*/5 * * * *')")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "check_interval": "61 * * * *"},
     ("invalid value for DockerServiceResource 'web'.check_interval: '61 * * * *' is not a check interval: "
     "use seconds (60), a duration ('30s', '5m') or a cron expression ('*/5 * * * *')")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "check_interval": 0},
     "invalid value for DockerServiceResource 'web'.check_interval: 0 is not a check interval: seconds must be more than 0"),
    (DockerServiceResource, {"name": "web", "image": "nginx", "max_duration": "forever"},
     ("invalid value for DockerServiceResource 'web'.max_duration: 'forever' is not a duration: "
     "use a number and a unit, e.g. '30s', '5m', '2h', '1d', '1h30m'")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "max_duration": "0h"},
     "invalid value for DockerServiceResource 'web'.max_duration: '0h' is not a duration: it must be longer than 0s"),
    (DockerServiceResource, {"name": "web", "image": "nginx", "on_drift": "panic"},
     "invalid value for DockerServiceResource 'web'.on_drift: Input should be 'auto_correct', 'alert' or 'ignore'"),
    (DockerServiceResource, {"name": "web", "image": "nginx", "colour": "red"},
     ("invalid DockerServiceResource 'web': unknown field 'colour' (the fields are name, description, hosts, reconcile, "
     "check_interval, max_duration, on_drift, alert_on, checks, sudo, requires, ignore_fields, image, ports, volumes, env_vars, networks, "
     "restart_policy, command, present, running)")),
    (DockerServiceResource, {"name": "web", "image": "nginx", "env_var": {"A": "1"}},
     "invalid DockerServiceResource 'web': unknown field 'env_var' (did you mean 'env_vars'?)"),
    (FileResource, {"name": "a.txt", "content": "x", "check_intervall": 5},
     "invalid FileResource 'a.txt': unknown field 'check_intervall' (did you mean 'check_interval'?)"),
    (DockerServiceResource, {"name": 5, "image": "nginx"},
     "invalid value for DockerServiceResource.name: Input should be a valid string"),
    (FileResource, {"content": "x"}, "invalid value for FileResource.name: Field required"),
])
def test_invalid_resource_message(cls, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        cls(**fields)
    assert str(raised.value) == message
    assert raised.value.type_name == cls.__name__ and raised.value.name == fields.get("name")


_SURROGATE = "'\\udc80' at character {} is a lone surrogate, not text (it cannot be written as UTF-8)"


@pytest.mark.parametrize(("cls", "fields", "where", "at"), [
    (FileResource, {"content": "a\udc80b"}, "content", 1),
    (FileResource, {"content": "x", "directory": "/srv/\udc80"}, "directory", 5),
    (FileResource, {"content": "x", "description": "\udc80"}, "description", 0),
    (FileResource, {"content": "x", "hosts": ["web-1", "web\udc80"]}, "hosts.1", 3),
    (FileResource, {"content": "x", "owner": "\udc80"}, "owner", 0),
    (DockerServiceResource, {"image": "nginx", "env_vars": {"MODE": "a\udc80"}}, "env_vars.MODE", 1),
    (DockerServiceResource, {"image": "nginx", "env_vars": {"M\udc80": "a"}}, "env_vars", 1),
    (DockerServiceResource, {"image": "nginx", "command": ["sh", "-c", "echo \udc80"]}, "command.2", 5),
    (DockerServiceResource, {"image": "nginx", "volumes": ["/a:/b", "/\udc80:/d"]}, "volumes.1", 1),
    (DockerServiceResource, {"image": "nginx", "checks": [{"kind": "command", "command": "true \udc80"}]},
     "checks.0.command", 5),
])
def test_a_lone_surrogate_in_any_string_is_refused(cls, fields: dict[str, Any], where: str, at: int) -> None:
    """Text that cannot be written as UTF-8 would fail on every host: refused when main.py loads."""
    name = "web" if cls is DockerServiceResource else "a.txt"
    with pytest.raises(InvalidResource) as raised:
        cls(name=name, **fields)
    assert str(raised.value) == f"invalid value for {cls.__name__} {name!r}.{where}: {_SURROGATE.format(at)}"


def test_a_lone_surrogate_is_refused_on_assignment_too() -> None:
    resource = FileResource(name="a.txt", content="fine")
    with pytest.raises(ValueError, match="lone surrogate"):
        resource.content = "\udc80"
    assert resource.content == "fine"


def test_invalid_resource_lists_every_problem() -> None:
    with pytest.raises(InvalidResource) as raised:
        FileResource(name="config.json", mode="9", on_drift="panic")
    assert str(raised.value) == (
        "invalid value for FileResource 'config.json'.on_drift: Input should be 'auto_correct', 'alert' or 'ignore'; "
        "invalid value for FileResource 'config.json'.mode: '9' is not a file mode: use octal digits such as '644' or '0750'"
    )


def test_invalid_check_names_the_check() -> None:
    with pytest.raises(InvalidResource) as raised:
        FileResource(name="config.json", checks=[{"kind": "port", "port": 70000}])
    message = str(raised.value)
    assert message.startswith("invalid value for FileResource 'config.json'.checks.0")
    assert message.endswith("Input should be less than or equal to 65535")


@pytest.mark.parametrize("interval", ["*/5 * * * *", "0 3 * * 1-5", "30s", "1h30m", "2d", 60, 1])
def test_valid_check_interval(interval: int | str) -> None:
    assert DockerServiceResource(name="web", image="nginx", check_interval=interval).check_interval == interval


@pytest.mark.parametrize("duration", ["30s", "1h30m", "5m", "2w", "1d12h"])
def test_valid_max_duration(duration: str) -> None:
    assert FileResource(name="x", max_duration=duration).max_duration == duration


def test_check_interval_rejects_a_boolean() -> None:
    with pytest.raises(InvalidResource):
        DockerServiceResource(name="web", image="nginx", check_interval=True)


@pytest.mark.parametrize(("mode", "normal"), [("644", "644"), ("0750", "750"), ("1777", "1777"), ("7", "007"),
                                              ("04755", "4755"), (0o644, "644"), (0o4755, "4755"),
                                              (0o1777, "1777"), (0, "000"), (0o7777, "7777"), (778, "1412"),
                                              (None, None)])
def test_mode_is_normalized_to_what_paths_reports(mode: object, normal: str | None) -> None:
    assert FileResource(name="x", mode=mode).mode == normal
    assert DirectoryResource(name="x", mode=mode).mode == normal


def test_a_valid_resource_keeps_its_fields() -> None:
    web = DockerServiceResource(name="web", image="nginx:1.25-alpine", ports=["127.0.0.1:53:53/udp", "8080:80/tcp"],
                                env_vars={"_PRIVATE": "1", "Mode2": "x"}, command="nginx -g 'daemon off;'")
    assert web.command_args == ["nginx", "-g", "daemon off;"]
    assert web.label == "DockerServiceResource 'web'"


# Health checks: verdicts, and their commands run for real -------------------------------------


@pytest.mark.parametrize(("check", "result", "verdict"), [
    (HttpCheck("http://127.0.0.1:8080/health"), {"exit_code": 0, "output": "200\nok"}, (True, "HTTP 200", "HTTP 200")),
    (HttpCheck("http://x/", status=204), {"exit_code": 0, "output": "200\n"}, (False, "HTTP 204", "HTTP 200")),
    (HttpCheck("http://x/", contains="ready"), {"exit_code": 0, "output": "200\nstarting"},
     (False, "HTTP 200 containing 'ready'", "HTTP 200 without 'ready'")),
    (HttpCheck("http://x/"), {"exit_code": 1, "output": "curl: (7) Failed to connect\n"},
     (False, "HTTP 200", "request failed: curl: (7) Failed to connect")),
    (PortCheck(5432), {"exit_code": 0, "output": ""}, (True, "listening", "listening")),
    (PortCheck(5432), {"exit_code": 1, "output": ""}, (False, "listening", "not listening")),
    (CommandCheck("redis-cli ping", stdout_contains="PONG"), {"exit_code": 0, "output": "PONG"},
     (True, "exit 0 with 'PONG'", "exit 0")),
    (CommandCheck("false", exit_code=1), {"exit_code": 1, "output": ""}, (True, "exit 1", "exit 1")),
    (CommandCheck("sleep 99"), {"exit_code": 124, "output": ""}, (False, "exit 0", "exit 124")),
])
def test_check_verdict(check, result, verdict) -> None:
    assert check.verdict(result) == verdict


def _run_checks(*checks) -> list[tuple[bool, str, str]]:
    """Run the checks' commands through the real ``Commands`` fact command; their verdicts, in order."""
    keys = tuple(check.shell() for check in checks)
    done = subprocess.run(["sh", "-c", Commands().command(keys=keys)], capture_output=True, text=True, timeout=60, check=False)
    results = Commands().process(done.stdout.splitlines())
    return [check.verdict(results[command_id(check.shell())]) for check in checks]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_port_check_really_works() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        closed = _free_port()
        verdicts = _run_checks(PortCheck(port), PortCheck(closed))
    assert verdicts == [(True, "listening", "listening"), (False, "listening", "not listening")]


def test_http_check_really_works(tmp_path: Path) -> None:
    (tmp_path / "health").write_text("status: ready\n")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        verdicts = _run_checks(HttpCheck(f"{base}/health", contains="ready"), HttpCheck(f"{base}/nope"),
                               HttpCheck(f"{base}/nope", status=404), HttpCheck(f"{base}/health", contains="PONG"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert verdicts == [
        (True, "HTTP 200 containing 'ready'", "HTTP 200"),
        (False, "HTTP 200", "HTTP 404"),
        (True, "HTTP 404", "HTTP 404"),
        (False, "HTTP 200 containing 'PONG'", "HTTP 200 without 'PONG'"),
    ]


def test_a_file_is_present_for_destroy_while_a_stale_temporary_file_is_there() -> None:
    target = Target("web-1")
    resource = FileResource(name="a.conf", directory="app", content="x\n")
    temp = {"type": "file", "mode": "600", "user": "u", "group": "u", "sha1": None}
    from clockwork.facts.paths import Paths

    assert resource.is_present(target, Observed({Paths: {"app/a.conf": None, "app/.a.conf.clockwork-tmp": temp}}))
    assert not resource.is_present(target, Observed({Paths: {"app/a.conf": None}}))
    directory = {"type": "directory", "mode": "755", "user": "u", "group": "u", "sha1": None}
    assert not resource.is_present(target, Observed({Paths: {"app/a.conf": directory}}))


def test_a_package_version_with_epoch_zero_is_the_version_apt_reports() -> None:
    assert PackageResource(name="cwdemo", version="0:1.1").version == "1.1"
    assert PackageResource(name="cwdemo", version="1:2.0-3").version == "1:2.0-3", "a real epoch is kept"
