"""The reconciler's structured log: one JSON line per event, to stderr and ``.clockwork/reconcile.log``."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO


class EventLog:
    """Writes ``{"at": …, "event": …, …fields}`` lines; callable as ``log(event, fields)``.

    .. code:: python

        log = EventLog(Path(".clockwork/reconcile.log"))
        log("drift", {"resource": "app.conf", "host": "web-1", "detail": "content differs"})
    """

    def __init__(self, path: Path, stream: TextIO | None = sys.stderr) -> None:
        self.path = path
        self.stream = stream
        self._file: TextIO | None = None  # opened on the first event: a refused command leaves no file behind

    def __call__(self, event: str, fields: dict[str, Any] | None = None) -> None:
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"at": at, "event": event, **(fields or {})}, default=str, ensure_ascii=False)
        if self._file is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file = open(self.path, "a", buffering=1, encoding="utf-8")
            os.chmod(self.path, 0o600)
        self._file.write(line + "\n")
        if self.stream is not None:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
