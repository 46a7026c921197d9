"""Type, mode, owner, group and content hash of many paths, in one command."""

from __future__ import annotations

import shlex
from typing import Literal, TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactValueError

PathType = Literal["file", "directory", "link", "other"]

_STAT_TYPES: dict[str, PathType] = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "directory",
    "symbolic link": "link",
}

# One line per path argument: "<path>\t-" when it does not exist, otherwise
# "<path>\t<stat %F|%a|%U|%G>\t<sha1 of a readable regular file, or ->".
_SCRIPT = (
    'for p in "$@"; do '
    'if [ -e "$p" ] || [ -L "$p" ]; then '
    "s=$(LC_ALL=C stat -c '%F|%a|%U|%G' -- \"$p\" 2>/dev/null) || s='?|?|?|?'; h=-; "
    'if [ -f "$p" ] && [ ! -L "$p" ]; then h=$(sha1sum < "$p" 2>/dev/null) && h=${h%% *} || h=?; fi; '
    "printf '%s\\t%s\\t%s\\n' \"$p\" \"$s\" \"$h\"; "
    "else printf '%s\\t-\\n' \"$p\"; fi; done"
)


def quoted_paths(fact: str, keys: tuple[str, ...]) -> str:
    """The keys as shell words; a path that is empty or holds a tab or newline cannot be reported."""
    for path in keys:
        if not path or "\n" in path or "\t" in path:
            raise FactValueError(f"{fact} cannot read an empty path or one with a tab or newline: {path!r}")
    return " ".join(shlex.quote(path) for path in keys)


class PathInfo(TypedDict):
    """What one path is on the host; ``sha1`` is set only for a readable regular file."""

    type: PathType
    mode: str
    user: str
    group: str
    sha1: str | None


def _parse_fields(fields: list[str]) -> PathInfo | None:
    if fields == ["-"]:
        return None
    kind, mode, user, group = (fields[0].split("|") + ["?"] * 4)[:4]
    sha1 = fields[1] if len(fields) > 1 and fields[1] not in ("-", "?") else None
    return PathInfo(
        type=_STAT_TYPES.get(kind, "other"),
        mode=mode.rjust(3, "0") if mode.isdigit() else mode,
        user=user,
        group=group,
        sha1=sha1,
    )


class Paths(FactBase[dict[str, PathInfo | None]]):
    """
    Returns what each of many paths is, in one command; absent paths map to ``None``:

    .. code:: python

        host.get_fact(Paths, keys=("app/config.json", "app"))
        {
            "app/config.json": {"type": "file", "mode": "644", "user": "deploy",
                                "group": "deploy", "sha1": "9f3c…"},
            "app": {"type": "directory", "mode": "755", "user": "deploy",
                    "group": "deploy", "sha1": None},
        }

    Relative paths are relative to the login directory (the home on SSH hosts).
    """

    def command(self, keys: tuple[str, ...]) -> str:
        return f"set -- {quoted_paths('Paths', keys)}; {_SCRIPT}"

    @staticmethod
    def default() -> dict[str, PathInfo | None]:
        return {}

    def process(self, output: list[str]) -> dict[str, PathInfo | None]:
        result: dict[str, PathInfo | None] = {}
        for line in output:
            path, tab, rest = line.partition("\t")
            if tab:
                result[path] = _parse_fields(rest.split("\t"))
        return result
