"""Type, mode, owner, group and content hash of many paths, in one command."""

from __future__ import annotations

import posixpath
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

#: The sibling that ``files.file`` writes through before moving it into place:
#: ``app/.config.json.clockwork-tmp`` for ``app/config.json``.
TEMP_SUFFIX = ".clockwork-tmp"

# A fixed number of processes per host, whatever the number of paths. Shell builtins
# add each path's temporary sibling (see ``temp_sibling``) to the list when one exists;
# ONE ``stat`` reads them all ("S\t<path>\t<%F|%a|%U|%G>"); builtins say which exist
# ("E\t<path>", or "A\t<path>" when absent) and collect the regular files among the
# paths asked for (not the siblings: they are never hashed); ONE ``sha1sum -z`` hashes
# those on one line ("H\t" then "<sha1>  <path>\0" per file: NUL-terminated, so no
# escaping whatever the name holds). A path that exists but could not be stat'ed reads
# as "?"; a regular file without a sum could not be read.
_SCRIPT = (
    'n=$#; for p do case $p in */*) t="${p%/*}/.${p##*/}' + TEMP_SUFFIX + '";; *) t=".$p' + TEMP_SUFFIX + '";; esac; '
    'if [ -e "$t" ] || [ -L "$t" ]; then set -- "$@" "$t"; fi; done; '
    "LC_ALL=C stat --printf 'S\\t%n\\t%F|%a|%U|%G\\n' -- \"$@\" 2>/dev/null; m=$#; "
    'for p do if [ -e "$p" ] || [ -L "$p" ]; then printf \'E\\t%s\\n\' "$p"; '
    '[ $n -gt 0 ] && [ -f "$p" ] && [ ! -L "$p" ] && set -- "$@" "$p"; '
    'else printf \'A\\t%s\\n\' "$p"; fi; n=$((n - 1)); done; '
    "shift $m; [ $# -eq 0 ] || { printf 'H\\t'; sha1sum -z -- \"$@\" 2>/dev/null; echo; }"
)
_SHA1SUM_RECORD = re.compile(r"([0-9a-f]{40}) [ *](.*)", re.DOTALL)


def temp_sibling(path: str) -> str:
    """Where ``files.file`` writes ``path`` before moving it in place; ``Paths`` reports it when it exists.

    >>> temp_sibling("app/config.json")
    'app/.config.json.clockwork-tmp'
    """
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}{TEMP_SUFFIX}")


def quoted_paths(fact: str, keys: tuple[str, ...]) -> str:
    """The keys as shell words; a path that is empty or holds a tab, a newline or a NUL cannot be reported."""
    for path in keys:
        if not path or "\n" in path or "\t" in path or "\0" in path:
            raise FactValueError(f"{fact} cannot read an empty path or one with a tab, a newline or a NUL: {path!r}")
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

    Relative paths are relative to the login directory (the home on SSH hosts). Each
    path's temporary sibling (``temp_sibling``: what ``files.file`` writes through, left
    behind by a write that was killed) is reported too, under its own path, when it
    exists; its ``sha1`` is never read (``None``).
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
            elif tab and tag == "H":
                for record in rest.split("\0"):
                    if match := _SHA1SUM_RECORD.fullmatch(record):
                        sums[match.group(2)] = match.group(1)
        return {
            path: _parse_fields(stats.get(path, "?|?|?|?"), sums.get(path)) if exists else None
            for path, exists in listed.items()
        }
