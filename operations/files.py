"""Files with declared content and directories, written without temporary uploads."""

from __future__ import annotations

import base64
import hashlib
import posixpath
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationValueError

from clockwork.facts.paths import PathInfo, Paths, temp_sibling

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]

# Base64 text per command: well under Linux's 128 KiB limit on one argument.
_CHUNK = 64 * 1024

#: How ``absent`` fails on a directory that still holds something it was not asked to remove:
#: ``left in place: not empty (cache, x.txt)``. Clockwork's destroy reports this as the outcome, not as an error.
LEFT_IN_PLACE = "left in place: "
#: Names that message lists at most.
LEFT_NAMES = 5

_WHAT = {"file": "a file", "directory": "a directory", "link": "a symbolic link", "other": "a special file"}


def content_sha1(content: str) -> str:
    """The sha1 that ``Paths`` reports for a file holding ``content`` (UTF-8)."""
    return hashlib.sha1(content.encode()).hexdigest()


def refusal(path: str, info: PathInfo | None, kind: str) -> str | None:
    """Why Clockwork will not make ``path`` a ``kind`` ("file" or "directory"), or ``None`` when it can.

    A file replaces a symbolic link or a special file (the link itself, never what it
    points to) but never a directory; a directory replaces nothing. ``evaluate`` and
    ``plan`` report the same sentence as an error, so that they say what apply will do.

    >>> refusal("app.conf", {"type": "directory", "mode": "755", "user": "u", "group": "u", "sha1": None}, "file")
    'app.conf is a directory, not a file: Clockwork will not replace a directory'
    """
    if info is None or info["type"] == kind or (kind == "file" and info["type"] != "directory"):
        return None
    what = _WHAT.get(info["type"], _WHAT["other"])
    return f"{path} is {what}, not {_WHAT[kind]}: Clockwork will not replace {what}"


def _owner_differences(info: PathInfo, user: str | None, group: str | None) -> list[Difference]:
    differences: list[Difference] = []
    if user is not None and info["user"] != user:
        differences.append(("owner", user, info["user"]))
    if group is not None and info["group"] != group:
        differences.append(("group", group, info["group"]))
    return differences


def file_differences(
    info: PathInfo | None, sha1: str, mode: str | None, user: str | None, group: str | None,
    stale_temp: str | None = None,
) -> list[Difference]:
    """What differs between a declared file and what ``Paths`` found at its path.

    ``stale_temp`` is the path of a temporary sibling that a killed write left behind.

    >>> file_differences(None, "9f3c", "644", None, None)
    [('present', True, False)]
    """
    stale: list[Difference] = [("stale_temp", "absent", stale_temp)] if stale_temp is not None else []
    if info is None:
        return [("present", True, False)] + stale
    if info["type"] != "file":
        return [("type", "file", info["type"])] + stale
    differences: list[Difference] = []
    if info["sha1"] != sha1:
        differences.append(("content", f"sha1:{sha1}", f"sha1:{info['sha1'] or 'unreadable'}"))
    if mode is not None and info["mode"] != mode:
        differences.append(("mode", mode, info["mode"]))
    return differences + _owner_differences(info, user, group) + stale


def directory_differences(
    info: PathInfo | None, mode: str | None, user: str | None, group: str | None
) -> list[Difference]:
    """What differs between a declared directory and what ``Paths`` found at its path."""
    if info is None:
        return [("present", True, False)]
    if info["type"] != "directory":
        return [("type", "directory", info["type"])]
    differences: list[Difference] = []
    if mode is not None and info["mode"] != mode:
        differences.append(("mode", mode, info["mode"]))
    return differences + _owner_differences(info, user, group)


def _chmod_mode(mode: str) -> str:
    """``755`` → ``00755``: with five digits GNU chmod also clears a directory's setuid and setgid
    bits (``chmod 755`` and ``chmod 0755`` keep them; see coreutils' "Directories and the
    Set-User-ID and Set-Group-ID Bits")."""
    return "0" + mode.rjust(4, "0")


def _has_setid(mode: str | None) -> bool:
    return mode is not None and mode.isdigit() and bool(int(mode, 8) & 0o6000)


def _ownership_steps(path: str, mode: str | None, user: str | None, group: str | None) -> list[str]:
    """Owner first, then mode: changing a file's owner or group clears its setuid and setgid bits."""
    quoted = shlex.quote(path)
    steps = []
    if user is not None or group is not None:
        owner = shlex.quote((user or "") + (f":{group}" if group else ""))
        steps.append(f"chown {owner} -- {quoted}")
    if mode is not None:
        steps.append(f"chmod {_chmod_mode(mode)} -- {quoted}")
    return steps


def _fail(message: str) -> str:
    return f"echo {shlex.quote(f'clockwork: {message}')} >&2; exit 1"


@operation()
def file(path: str, content: str | None, mode: str | None = "644", user: str | None = None, group: str | None = None,
         sha1: str | None = None):
    """
    Make ``path`` a regular file holding ``content``; missing parent directories are created.

    + path: file path (relative paths are relative to the login directory)
    + content: the whole text of the file (written as UTF-8); ``None`` with ``sha1``
    + sha1: instead of ``content``, the sha1 of the content the file already holds (content
      known only by its hash, as a host manifest keeps it): only mode and owner are set; a
      file whose content differs is an error, since there is nothing to write
    + mode: permissions as octal digits, e.g. ``"640"``; ``None`` keeps the mode of the file
      being replaced (plus read permission for its owner when the login user could not read
      it, so that its content can be checked), or the umask's for a new file
    + user: owner name; ``None`` leaves it alone
    + group: group name; ``None`` leaves it alone

    The content is written to a temporary file beside ``path`` (``.NAME.clockwork-tmp``),
    given its owner and then its mode, and moved into place, so a reader never sees half
    a file and nothing goes through ``/tmp``. A step that fails stops the write, removes
    the temporary file and leaves its own error message; a temporary file that a killed
    write left behind is removed. A directory at ``path`` is never replaced.

    **Example:**

    .. code:: python

        files.file(path="/etc/app/config.json", content='{"debug": false}\\n', mode="640")
    """
    found = host.get_fact(Paths, keys=(path,))
    info, temp = found.get(path), temp_sibling(path)
    refused = refusal(path, info, "file")
    if refused:
        yield _fail(refused)
        return
    if content is None and sha1 is None:
        raise OperationValueError("files.file needs content, or the sha1 of the content the file holds")
    stale = temp if found.get(temp) is not None else None
    expected = content_sha1(content) if content is not None else str(sha1)
    differences = file_differences(info, expected, mode, user, group, stale)
    if not differences:
        host.noop(f"file {path} is already as declared")
        return
    changed = {field for field, _expected, _actual in differences}
    if changed & {"present", "type", "content"} and content is None:
        yield _fail(f"{path}: its content is known here only by its sha1 ({expected[:12]}…, from a host manifest) "
                    "and the file there does not hold it: give content to write it")
        return
    if changed & {"present", "type", "content"}:
        assert content is not None
        keep = info is not None and info["type"] == "file"
        readable = info is None or info["sha1"] is not None
        yield from write_commands(path, content, mode, user, group, keep_from_existing=keep, readable=readable)
        return
    assert info is not None
    steps = [f"rm -f -- {shlex.quote(temp)}"] if stale else []
    new_mode = mode if "mode" in changed else None
    if changed & {"owner", "group"} and new_mode is None:
        kept = mode if mode is not None else info["mode"]
        new_mode = kept if _has_setid(kept) else None  # chown cleared the bits: set them again
    steps += _ownership_steps(
        path, new_mode, user if "owner" in changed else None, group if "group" in changed else None)
    yield " && ".join(steps)


def write_commands(
    path: str, content: str, mode: str | None, user: str | None, group: str | None, keep_from_existing: bool,
    readable: bool = True,
) -> list[str]:
    """Write into a private temporary file beside ``path``, give it its owner then its mode, move it in place.

    With ``keep_from_existing``, what is not declared (``None``) is copied from the file
    being replaced; when that file could not be read (``readable`` false) its owner also
    gets read permission. Each command chains its steps with ``&&``: the first failure
    stops it, removes the temporary file and exits 1, its error message last.
    """
    directory = posixpath.dirname(path)
    temp = temp_sibling(path)
    quoted, quoted_temp = shlex.quote(path), shlex.quote(temp)
    cleanup = f" || {{ rm -f -- {quoted_temp} 2>/dev/null; exit 1; }}"
    encoded = base64.b64encode(content.encode()).decode()
    chunks = [encoded[start : start + _CHUNK] for start in range(0, len(encoded), _CHUNK)] or [""]
    # base64 says "write error: No space left on device", then once more "write error" as it
    # exits: keep its first line, the one that says why. The chunk comes in a here-document (base64's
    # alphabet needs no quoting): no process to print it.
    writes = [f"{{ e=$(base64 -d 2>&1 {'>' if index == 0 else '>>'} {quoted_temp} <<'CLOCKWORK_EOF'\n{chunk}\n"
              "CLOCKWORK_EOF\n) || { echo \"$e\" | head -n 1 >&2; false; }; }"
              for index, chunk in enumerate(chunks)]
    refused = refusal(path, {"type": "directory", "mode": "", "user": "", "group": "", "sha1": None}, "file")
    start = [f"if [ -d {quoted} ] && [ ! -L {quoted} ]; then {_fail(str(refused))}; fi"]
    if directory:  # what exists is only tested: a process less
        quoted_directory = shlex.quote(directory)
        start.append(f"{{ [ -d {quoted_directory} ] || mkdir -p -- {quoted_directory}; }}")
    start.append(f"{{ [ ! -e {quoted_temp} ] && [ ! -L {quoted_temp} ] || rm -f -- {quoted_temp}; }}")
    start += ["umask 077"] if mode is not None else []
    finish = []
    if keep_from_existing and (user is None or group is None):
        # Only root may give a file away; otherwise the file stays the login user's.
        finish.append(f"{{ chown --reference={quoted} -- {quoted_temp} 2>/dev/null || true; }}")
    finish += _ownership_steps(temp, mode, user, group)
    if keep_from_existing and mode is None:
        finish.append(f"chmod --reference={quoted} -- {quoted_temp}")
        if not readable:
            finish.append(f"chmod u+r -- {quoted_temp}")
    finish.append(f"mv -fT -- {quoted_temp} {quoted}")
    commands = [start + writes[:1]] + [[write] for write in writes[1:]]
    commands[-1] += finish
    return [" && ".join(steps) + cleanup for steps in commands]


@operation()
def directory(path: str, mode: str | None = "755", user: str | None = None, group: str | None = None):
    """
    Make ``path`` a directory (parents included) with the given mode and owner.

    + path: directory path (relative paths are relative to the login directory)
    + mode: permissions as octal digits, e.g. ``"750"``; ``None`` leaves them alone. The
      mode is set whole: ``"755"`` clears a setgid bit inherited from the parent
    + user: owner name; ``None`` leaves it alone
    + group: group name; ``None`` leaves it alone

    Anything else at ``path`` (a file, a symbolic link) is never replaced.

    **Example:**

    .. code:: python

        files.directory(path="/srv/app", mode="750")
    """
    info = host.get_fact(Paths, keys=(path,)).get(path)
    refused = refusal(path, info, "directory")
    if refused:
        yield _fail(refused)
        return
    differences = directory_differences(info, mode, user, group)
    if not differences:
        host.noop(f"directory {path} is already as declared")
        return
    changed = {field for field, _expected, _actual in differences}
    steps = [f"mkdir -p -- {shlex.quote(path)}"] if info is None else []
    steps += _ownership_steps(
        path,
        mode if changed & {"present", "mode"} else None,
        user if changed & {"present", "owner"} else None,
        group if changed & {"present", "group"} else None,
    )
    yield " && ".join(steps)


# ``ls -b`` shows control characters as C escapes (and a space as "\ ", undone here).
_LIST_LEFT = (
    f"NR <= {LEFT_NAMES} {{ gsub(/\\\\ /, \" \"); names = names (NR > 1 ? \", \" : \"\") $0 }} "
    f"END {{ if (NR > {LEFT_NAMES}) names = names \", … and \" (NR - {LEFT_NAMES}) \" more\"; "
    f"print \"{LEFT_IN_PLACE}not empty (\" names \")\" }}"
)


def _remove_if_empty(path: str) -> str:
    """Remove ``path`` if it holds nothing but (empty) directories, such as the parents ``file`` made
    for a file that is gone now; otherwise (or when part of it cannot be read) name what it holds
    and fail, touching nothing. ``find -delete`` removes directories only as ``rmdir`` does:
    never a file, even one that appears meanwhile."""
    quoted = shlex.quote(path)
    start = shlex.quote(f"./{path}" if path.startswith("-") else path)  # find takes no "--"
    return (f'if [ -n "$(find {start} -mindepth 1 ! -type d -print -quit 2>&1)" ]; then '
            f"LC_ALL=C.UTF-8 ls -Ab -- {quoted} | awk {shlex.quote(_LIST_LEFT)} >&2; exit 1; fi; "
            f"find {start} -depth -type d -empty -delete")


@operation()
def absent(path: str, kind: str = "file", purge: bool = False):
    """
    Remove ``path`` if it is a ``kind``: a file (with a temporary file a killed write left
    beside it), or a directory that holds nothing but empty directories.

    + path: the path to remove
    + kind: what Clockwork created there, ``"file"`` or ``"directory"``; anything else at
      that path is left alone
    + purge: remove a directory with everything in it; without it, a directory that
      holds anything else is left in place, untouched, and the operation fails with
      ``left in place: not empty (NAME, …)`` (the first names in it)

    **Example:**

    .. code:: python

        files.absent(path="/etc/app/config.json")
        files.absent(path="/srv/app", kind="directory", purge=True)
    """
    if kind not in ("file", "directory"):
        raise OperationValueError(f"files.absent: kind must be 'file' or 'directory', not {kind!r}")
    if purge and kind != "directory":
        raise OperationValueError("files.absent: purge removes a directory's contents; it does not apply to a file")
    found = host.get_fact(Paths, keys=(path,))
    info = found.get(path)
    if kind == "file":
        temp = temp_sibling(path)
        doomed = [path] if info is not None and info["type"] == "file" else []
        doomed += [temp] if found.get(temp) is not None else []
        if doomed:
            yield "rm -f -- " + " ".join(shlex.quote(each) for each in doomed)
            return
    if info is None:
        host.noop(f"{path} is already absent")
    elif info["type"] != kind:
        host.noop(f"{path} is a {info['type']}, not a {kind}: left alone")
    elif purge:
        yield f"rm -rf -- {shlex.quote(path)}"
    else:
        yield _remove_if_empty(path)
