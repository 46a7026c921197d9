"""Real alert receivers on 127.0.0.1 for the tests: an HTTP server and an SMTP server (aiosmtpd), each its own process.

Each runs as a child process (``python testsupport/receivers.py http|smtp DIR [FAIL_FIRST FAIL_STATUS]``)
that writes its port to ``DIR/port`` and every request or message it receives as a
JSON line to ``DIR/received.jsonl``; the test reads that file. A process of its own
keeps the receivers independent of the gevent-patched test process, and is stopped
by its PID even when a test fails.

    with HttpReceiver() as hook:
        ...  # send to hook.url
        hook.wait_for(1)
        hook.requests[0].body["alerts"]
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()


@dataclass
class Request:
    """One HTTP request the receiver got."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float


class _Receiver:
    kind = ""

    def __init__(self, *args: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"cw-{self.kind}-"))
        self.process = subprocess.Popen([sys.executable, str(HERE), self.kind, str(self.dir), *args],
                                        stdin=subprocess.DEVNULL)
        port_file = self.dir / "port"
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.kind} receiver did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    def received(self) -> list[dict[str, Any]]:
        path = self.dir / "received.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the {self.kind} receiver got {len(self.received())} of {count} in {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.dir.glob("*"):
            path.unlink()
        self.dir.rmdir()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class HttpReceiver(_Receiver):
    """Records every POST; answers the first ``fail_first`` with ``fail_status`` (a 429 says Retry-After: 1), then 200."""

    kind = "http"

    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        super().__init__(str(fail_first), str(fail_status))
        self.url = f"http://127.0.0.1:{self.port}/hook"

    @property
    def requests(self) -> list[Request]:
        """The requests answered with 200, in arrival order."""
        return [Request(**item) for item in self.received() if item.pop("ok")]

    @property
    def attempts(self) -> int:
        """Every request, failed ones included."""
        return len(self.received())

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the webhook got {len(self.requests)} of {count} requests in {timeout}s")
            time.sleep(0.05)


class SmtpReceiver(_Receiver):
    """An SMTP server (aiosmtpd) that accepts every message."""

    kind = "smtp"

    @property
    def messages(self) -> list[Message]:
        return [email.message_from_string(item["data"], policy=email.policy.default) for item in self.received()]

    def envelope(self, index: int) -> dict[str, Any]:
        """``mail_from`` and ``rcpt_tos`` of the ``index``-th message."""
        return {key: value for key, value in self.received()[index].items() if key != "data"}


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback HTTP URL whose server accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


# The receiver processes ------------------------------------------------------------------


def _record(directory: Path, item: dict[str, Any]) -> None:
    with (directory / "received.jsonl").open("a") as out:
        out.write(json.dumps(item) + "\n")


def _serve_http(directory: Path, fail_first: int, fail_status: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            nonlocal seen
            seen += 1
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            ok = seen > fail_first
            _record(directory, {"path": self.path, "headers": dict(self.headers), "body": body, "at": time.time(), "ok": ok})
            self.send_response(200 if ok else fail_status)
            if not ok and fail_status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    (directory / "port.tmp").write_text(str(server.server_address[1]))
    (directory / "port.tmp").rename(directory / "port")
    server.serve_forever()


def _serve_smtp(directory: Path) -> None:
    import signal

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            _record(directory, {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf8", errors="replace")})
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    (directory / "port.tmp").write_text(str(port))
    (directory / "port.tmp").rename(directory / "port")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    kind, where = sys.argv[1], Path(sys.argv[2])
    if kind == "http":
        _serve_http(where, int(sys.argv[3]), int(sys.argv[4]))
    else:
        _serve_smtp(where)
