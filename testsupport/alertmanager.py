"""A real Prometheus Alertmanager for tests: Debian's binary, its own data directory and config, a free port on
127.0.0.1, no cluster gossip, routing every alert to a loopback webhook receiver.

    with start_alertmanager("http://127.0.0.1:PORT/hook") as manager:
        manager.post([{"labels": {"alertname": "Test"}}])   # (status, body)
        manager.alerts()                                      # GET /api/v2/alerts
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testsupport.fleet import _free_ports, _tail
from testsupport.servers import LocalServer, end

#: Debian's prometheus-alertmanager package installs it under this name.
BINARY = "prometheus-alertmanager"
REQUIRE_ENV = "CLOCKWORK_REQUIRE_ALERTMANAGER"
#: Bounds, in seconds, of the wait until it answers and of its shutdown.
TIMEOUT = 30.0
#: Every alert to the webhook, one group per alert, sent a second after it arrives and each second after a change.
CONFIG = """\
route:
  receiver: hook
  group_by: ['alertname', 'project', 'type', 'resource', 'host']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


class AlertmanagerError(RuntimeError):
    """It could not be started or did not answer."""


def binary() -> str | None:
    """The alertmanager executable (``$ALERTMANAGER``, else Debian's on PATH), or ``None``."""
    return os.environ.get("ALERTMANAGER") or shutil.which(BINARY)


def unavailable() -> str | None:
    """Why an Alertmanager cannot start on this machine, or ``None`` when it can."""
    if binary() is None:
        return f"no {BINARY} on PATH: run `make test` as root (scripts/system-deps.sh installs prometheus-alertmanager)"
    return None


def required(environ: dict[str, str] | None = None) -> bool:
    """Whether Alertmanager tests must run here (``CLOCKWORK_REQUIRE_ALERTMANAGER=1``, as on CI)."""
    return (os.environ if environ is None else environ).get(REQUIRE_ENV, "").strip().lower() in ("1", "yes", "true")


class Alertmanager(LocalServer):
    """One alertmanager on 127.0.0.1:``port`` with its data and config in ``directory``, stopped by its PID.

    .. code:: python

        with start_alertmanager(hook.url) as manager:
            manager.url                      # http://127.0.0.1:PORT (what CW_ALERT_ALERTMANAGER_URLS takes)
            manager.active("ClockworkDrift")  # the active alerts of that name
    """

    def __init__(self, directory: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.directory, self.port, self.process = directory, port, process
        self.url = f"http://127.0.0.1:{port}"
        self.log = directory / "alertmanager.log"

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: what it holds now (active, silenced or inhibited; not the resolved ones)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return json.load(response)  # type: ignore[no-any-return]

    def active(self, alertname: str | None = None) -> list[dict[str, Any]]:
        """The active alerts (of ``alertname``)."""
        return [alert for alert in self.alerts() if alert["status"]["state"] == "active"
                and (alertname is None or alert["labels"].get("alertname") == alertname)]

    def post(self, body: Any) -> tuple[int, str]:
        """``POST /api/v2/alerts`` with ``body`` as JSON: its status and what it answered."""
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> None:
        """SIGTERM to its PID, SIGKILL when it outlasts the deadline."""
        end(self.process, signal.SIGTERM, TIMEOUT)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def start_alertmanager(webhook_url: str) -> Alertmanager:
    """A fresh Alertmanager routing every alert to ``webhook_url``, answering on a free loopback port."""
    executable = binary()
    if executable is None:
        raise AlertmanagerError(unavailable() or BINARY)
    directory = Path(tempfile.mkdtemp(prefix="cwam-", dir="/tmp"))
    (directory / "alertmanager.yml").write_text(CONFIG.format(url=json.dumps(webhook_url)))
    port = _free_ports(1)[0]
    command = [executable, f"--config.file={directory / 'alertmanager.yml'}", f"--storage.path={directory / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"]
    with (directory / "alertmanager.log").open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=directory, start_new_session=True)
    manager = Alertmanager(directory, port, process)
    deadline = time.monotonic() + TIMEOUT
    while not manager._ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = _tail(manager.log)
            manager.close()
            raise AlertmanagerError(f"alertmanager did not answer on port {port} within {TIMEOUT}s; its log:\n{tail}")
        time.sleep(0.05)
    return manager
