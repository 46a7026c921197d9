"""Health checks: the verdicts they give on what their command did, and the commands themselves, run for real."""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest

from clockwork.checks import CommandCheck, HttpCheck, PortCheck
from clockwork.facts.commands import Commands, command_id
from clockwork.facts.paths import Paths
from clockwork.resources import FileResource
from clockwork.engine.types import Observed, Target


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status = 200 if self.path == "/health" else 500
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"all ok\n" if status == 200 else b"broken\n")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def run_checks(*checks):
    """Run the checks' commands as the Commands fact would on a host (here: this machine)."""
    fact = Commands()
    output = subprocess.run(fact.command(keys=tuple(c.shell() for c in checks)), shell=True,
                            capture_output=True, text=True).stdout.splitlines()
    results = fact.process(output)
    return [check.verdict(results[command_id(check.shell())]) for check in checks]


def test_http_check_verdicts(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    assert run_checks(
        HttpCheck(f"{base}/health", contains="ok"),
        HttpCheck(f"{base}/health", contains="missing"),
        HttpCheck(f"{base}/other"),
        HttpCheck(f"{base}/other", status=500),
    ) == [
        (True, "HTTP 200 containing 'ok'", "HTTP 200"),
        (False, "HTTP 200 containing 'missing'", "HTTP 200 without 'missing'"),
        (False, "HTTP 200", "HTTP 500"),
        (True, "HTTP 500", "HTTP 500"),
    ]


def test_port_and_command_checks(server: int) -> None:
    closed = PortCheck(1)
    assert run_checks(PortCheck(server), closed, CommandCheck("echo PONG", stdout_contains="PONG"),
                      CommandCheck("exit 3", exit_code=3), CommandCheck("echo no", stdout_contains="PONG")) == [
        (True, "listening", "listening"),
        (False, "listening", "not listening"),
        (True, "exit 0 with 'PONG'", "exit 0"),
        (True, "exit 3", "exit 3"),
        (False, "exit 0 with 'PONG'", "exit 0 without 'PONG'"),
    ]


def test_a_check_that_cannot_run_is_an_error_not_drift() -> None:
    check = HttpCheck("http://127.0.0.1:1/")
    resource = FileResource(name="a.txt", content="a", checks=[check])
    observed = Observed({
        Paths: {"a.txt": {"type": "file", "mode": "644", "user": "u", "group": "u",
                          "sha1": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"}},
        Commands: {command_id(check.shell()): {"exit_code": 127, "output": "no curl, python3 or wget on this host"}},
    })
    evaluation = resource.evaluate(Target("web-1"), observed)
    assert evaluation.status == "error"
    assert evaluation.error == "health check http http://127.0.0.1:1/ cannot run: no curl, python3 or wget on this host"


def test_checks_accept_positional_and_keyword_arguments() -> None:
    assert HttpCheck("http://x/") == HttpCheck(url="http://x/")
    assert CommandCheck("true") == CommandCheck(command="true")
    with pytest.raises(TypeError, match="at most 1 positional"):
        PortCheck(1, 2)
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        PortCheck(70000)
