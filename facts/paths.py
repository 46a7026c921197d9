"""Type, mode, owner, group and content hash of many paths, in one command."""

from __future__ import annotations

import re
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

# A fixed number of processes per host, whatever the number of paths: ONE ``stat``
# for all of them ("S\t<path>\t<%F|%a|%U|%G>"), shell builtins that say which
# exist ("E\t<path>", or "A\t<path>" when absent) and collect the regular files,
# and ONE ``sha1sum`` for those ("<sha1>  <path>", GNU-escaped when the path holds
# a backslash). A path that exists but could not be stat'ed reads as "?"; a
# regular file without a sum could not be read.
_SCRIPT = (
    "LC_ALL=C stat --printf 'S\\t%n\\t%F|%a|%U|%G\\n' -- \"$@\" 2>/dev/null; n=$#; "
    'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf \'E\\t%s\\n\' "$p"; '
    '[ -f "$p" ] && [ ! -L "$p" ] && set -- "$@" "$p"; '
    'else printf \'A\\t%s\\n\' "$p"; fi; done; '
    'shift $n; [ $# -eq 0 ] || sha1sum -- "$@" 2>/dev/null || true'
)
_SHA1SUM_LINE = re.compile(r"^(\\?)([0-9a-f]{40}) [ *](.*)$")


def _sha1sum_path(escaped: bool, name: str) -> str:
    """The path of a ``sha1sum`` line (GNU escapes a backslash in the name as two, and marks the line)."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name) if escaped else name


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


def _parse_fields(stat: str, sha1: str | None) -> PathInfo:
    kind, mode, user, group = (stat.split("|") + ["?"] * 4)[:4]
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
        stats: dict[str, str] = {}
        sums: dict[str, str] = {}
        listed: dict[str, bool] = {}  # path → exists, in the order the paths were asked for
        for line in output:
            tag, tab, rest = line.partition("\t")
            if tab and tag == "S":
                path, _, fields = rest.rpartition("\t")
                stats[path] = fields
            elif tab and tag in ("E", "A"):
                listed[rest] = tag == "E"
            elif match := _SHA1SUM_LINE.match(line):
                sums[_sha1sum_path(bool(match.group(1)), match.group(3))] = match.group(2)
        return {
            path: _parse_fields(stats.get(path, "?|?|?|?"), sums.get(path)) if exists else None
            for path, exists in listed.items()
        }
