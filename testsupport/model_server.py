"""A small OpenAI-compatible chat server on 127.0.0.1 that answers with prepared replies, for completion tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One prepared reply: message ``content`` (JSON-encoded when not a str), or an HTTP ``status``, after ``delay``."""

    content: Any = None
    status: int = 200
    delay: float = 0.0


@dataclass
class ModelServer:
    """Answers ``POST /v1/chat/completions`` with the next prepared reply; records every request and its headers."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw_requests: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def answer(self, *replies: Reply | dict | str) -> None:
        self.replies += [reply if isinstance(reply, Reply) else Reply(reply) for reply in replies]


@contextmanager
def model_server() -> Iterator[ModelServer]:
    server_state = ModelServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            server_state.raw_requests.append(body)
            server_state.headers.append(dict(self.headers))
            server_state.requests.append(json.loads(body))
            if self.path != "/v1/chat/completions" or not server_state.replies:
                return self._send(404, {"error": "no prepared reply"})
            reply = server_state.replies.pop(0)
            time.sleep(reply.delay)
            if reply.status != 200:
                return self._send(reply.status, {"error": {"message": "prepared failure"}})
            content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
            self._send(200, {"id": "cmpl-1", "object": "chat.completion",
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}]})

        def _send(self, status: int, document: dict) -> None:
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
