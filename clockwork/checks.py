"""Health checks run on the target host over the same SSH connection as everything else.

>>> from clockwork.checks import HttpCheck, PortCheck, CommandCheck
>>> checks = [HttpCheck(url="http://127.0.0.1:8080/health"), PortCheck(port=5432),
...           CommandCheck(command="redis-cli ping", stdout_contains="PONG")]
>>> [check.kind for check in checks]
['http', 'port', 'command']
"""

from __future__ import annotations

import shlex
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from clockwork.exceptions import HostReadError
from clockwork.facts.commands import CommandResult


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Fields that may also be given positionally, in this order.
    _positional: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: object, **data: object) -> None:
        if len(args) > len(self._positional):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._positional)} positional arguments")
        data.update(zip(self._positional, args, strict=False))
        super().__init__(**data)

    def shell(self) -> str:
        """The shell command that performs the check on the host."""
        raise NotImplementedError

    def label(self) -> str:
        """How the check is named in results, e.g. ``http http://127.0.0.1:8080/``."""
        raise NotImplementedError

    def verdict(self, result: CommandResult) -> tuple[bool, str, str]:
        """(passed, expected, actual) from what the command did; raises when the check could not run."""
        raise NotImplementedError


# The first tool the host has: curl, python3, or wget (busybox or GNU). Prints the
# status code on the first line and the body after it.
_HTTP_SCRIPT = """u=$1
if command -v curl >/dev/null 2>&1; then o=$(curl -sS -m 8 -w '\n%{http_code}' "$u" 2>&1) || { printf '%s' "$o"; exit 1; }
printf '%s\n%s' "${o##*
}" "${o%
*}"
elif command -v python3 >/dev/null 2>&1; then python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=8); code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
sys.stdout.write(str(code) + "\\n" + body.decode("utf-8", "replace"))' "$u"
elif command -v wget >/dev/null 2>&1; then o=$(wget -q -S -O - -T 8 "$u" 2>/tmp/.cw-wget.$$); c=$(sed -n 's/^ *HTTP\\/[0-9.]* \\([0-9]*\\).*/\\1/p' /tmp/.cw-wget.$$ | tail -n 1); rm -f /tmp/.cw-wget.$$; printf '%s\\n%s' "${c:-000}" "$o"
else echo 'no curl, python3 or wget on this host' >&2; exit 127; fi"""


class HttpCheck(_Check):
    """An HTTP GET from the target host: the status must match, and the body contain ``contains``.

    >>> HttpCheck(url="http://127.0.0.1:8080/health", status=200, contains="ok")
    HttpCheck(kind='http', url='http://127.0.0.1:8080/health', status=200, contains='ok')
    """

    _positional = ("url",)
    kind: Literal["http"] = "http"
    url: str = Field(description="URL fetched on the target host (so its loopback is reachable)")
    status: int = Field(200, ge=100, le=599, description="expected HTTP status")
    contains: str | None = Field(None, description="text the response body must contain")

    def shell(self) -> str:
        return f"sh -c {shlex.quote(_HTTP_SCRIPT)} - {shlex.quote(self.url)}"

    def label(self) -> str:
        return f"http {self.url}"

    def verdict(self, result: CommandResult) -> tuple[bool, str, str]:
        expected = f"HTTP {self.status}" + (f" containing {self.contains!r}" if self.contains else "")
        if result["exit_code"] == 127:
            raise HostReadError(f"health check {self.label()} cannot run: {result['output'].strip()}")
        if result["exit_code"] != 0:
            return False, expected, f"request failed: {result['output'].strip()[:200]}"
        code, _, body = result["output"].partition("\n")
        if code.strip() != str(self.status):
            return False, expected, f"HTTP {code.strip()}"
        if self.contains is not None and self.contains not in body:
            return False, expected, f"HTTP {code.strip()} without {self.contains!r}"
        return True, expected, f"HTTP {code.strip()}"


class PortCheck(_Check):
    """A TCP port listening on the target host (read from ``/proc/net/tcp``, no client needed).

    >>> PortCheck(port=5432)
    PortCheck(kind='port', port=5432)
    """

    _positional = ("port",)
    kind: Literal["port"] = "port"
    port: int = Field(ge=1, le=65535, description="TCP port that must be listening")

    def shell(self) -> str:
        return (
            f"awk -v p=':{self.port:04X}$' '$4 == \"0A\" && $2 ~ p {{ found = 1 }} "
            "END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null"
        )

    def label(self) -> str:
        return f"port {self.port}"

    def verdict(self, result: CommandResult) -> tuple[bool, str, str]:
        listening = result["exit_code"] == 0
        return listening, "listening", "listening" if listening else "not listening"


class CommandCheck(_Check):
    """A command on the target host: its exit code must match, its stdout contain ``stdout_contains``.

    >>> CommandCheck(command="redis-cli ping", stdout_contains="PONG")
    CommandCheck(kind='command', command='redis-cli ping', exit_code=0, stdout_contains='PONG')
    """

    _positional = ("command",)
    kind: Literal["command"] = "command"
    command: str = Field(description="shell command run on the target host")
    exit_code: int = Field(0, description="expected exit status")
    stdout_contains: str | None = Field(None, description="text the output must contain")

    def shell(self) -> str:
        return self.command

    def label(self) -> str:
        return f"command {self.command}"

    def verdict(self, result: CommandResult) -> tuple[bool, str, str]:
        expected = f"exit {self.exit_code}" + (f" with {self.stdout_contains!r}" if self.stdout_contains else "")
        actual = f"exit {result['exit_code']}"
        if result["exit_code"] != self.exit_code:
            return False, expected, actual
        if self.stdout_contains is not None and self.stdout_contains not in result["output"]:
            return False, expected, f"{actual} without {self.stdout_contains!r}"
        return True, expected, actual


HealthCheck = Annotated[HttpCheck | PortCheck | CommandCheck, Field(discriminator="kind")]

__all__ = ["CommandCheck", "HealthCheck", "HttpCheck", "PortCheck"]
