"""Exit status and output of many shell commands, run in one round trip."""

from __future__ import annotations

import base64
import hashlib
import shlex
from typing import TypedDict

from pyinfra.api import FactBase

_MARKER = "@@clockwork-command@@"
#: Output kept per command, in bytes; the rest is cut.
OUTPUT_LIMIT = 16384


class CommandResult(TypedDict):
    """What one command did: its exit status and (the start of) its stdout and stderr."""

    exit_code: int
    output: str


def command_id(command: str) -> str:
    """The key ``Commands`` reports a command under."""
    return hashlib.sha1(command.encode()).hexdigest()[:16]


class Commands(FactBase[dict[str, CommandResult]]):
    """
    Runs each command (under ``timeout`` seconds each) and returns its exit
    status and combined output, keyed by ``command_id(command)``:

    .. code:: python

        host.get_fact(Commands, keys=("test -f /etc/app.conf",))
        {"5b1d…": {"exit_code": 0, "output": ""}}

    A command that ran out of time reports exit code 124, as ``timeout`` does.
    """

    def command(self, keys: tuple[str, ...], timeout: int = 10) -> str:
        parts = []
        for command in keys:
            run = f"timeout {int(timeout)} sh -c {shlex.quote(command)}"
            parts.append(
                f"o=$({run} 2>&1 </dev/null); r=$?; echo '{_MARKER}' {command_id(command)} $r; "
                f"printf %s \"$o\" | head -c {OUTPUT_LIMIT} | base64 | tr -d '\\n'; echo"
            )
        return "; ".join(parts) if parts else "true"

    @staticmethod
    def default() -> dict[str, CommandResult]:
        return {}

    def process(self, output: list[str]) -> dict[str, CommandResult]:
        results: dict[str, CommandResult] = {}
        current: tuple[str, int] | None = None
        for line in output:
            if line.startswith(_MARKER):
                _marker, key, code = line.split()
                current = (key, int(code))
            elif current is not None:
                text = base64.b64decode(line.strip() or b"").decode(errors="replace")
                results[current[0]] = CommandResult(exit_code=current[1], output=text)
                current = None
        return results
