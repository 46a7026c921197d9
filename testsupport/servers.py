"""What the servers the tests start share: a directory of their own, removed with them, and an end by PID."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

#: How long a server may take to end on its signal before it is killed.
STOP_TIMEOUT = 30.0


def end(process: subprocess.Popen[Any] | None, signum: int, timeout: float = STOP_TIMEOUT) -> None:
    """End ``process`` (one the tests started) with ``signum``; SIGKILL when it outlasts ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class LocalServer:
    """A server process with a ``directory`` of its own: ``close()`` (or leaving the ``with`` block) stops it
    (``stop()``, which each server gives) and removes the directory.

    .. code:: python

        with start_postgres() as server: ...  # stopped and removed here, also when the block failed
    """

    directory: Path

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()
