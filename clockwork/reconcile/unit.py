"""The systemd unit that runs ``clockwork reconcile`` as a service (``clockwork reconcile --print-systemd-unit``)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def systemd_unit(project_dir: Path, inventory: str | None = None) -> str:
    """A systemd unit that runs ``clockwork reconcile`` for this project as the current user.

    >>> print(systemd_unit(Path("/srv/proj")))
    [Unit]
    Description=Clockwork reconcile for /srv/proj
    ...
    """
    executable = Path(sys.argv[0]).resolve() if Path(sys.argv[0]).name == "clockwork" else Path(sys.executable).parent / "clockwork"
    command = [str(executable), "reconcile"] + (["-i", inventory] if inventory else [])
    user = os.environ.get("USER") or "root"
    return f"""[Unit]
Description=Clockwork reconcile for {project_dir}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
WorkingDirectory={project_dir}
ExecStart={shlex.join(command)}
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
