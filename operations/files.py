"""Files with declared content and directories, written without temporary uploads."""

from __future__ import annotations

import base64
import hashlib
import posixpath
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from clockwork.facts.paths import PathInfo, Paths

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]

# Base64 text per command: well under Linux's 128 KiB limit on one argument.
_CHUNK = 64 * 1024


def content_sha1(content: str) -> str:
    """The sha1 that ``Paths`` reports for a file holding ``content`` (UTF-8)."""
    return hashlib.sha1(content.encode()).hexdigest()


def _owner_differences(info: PathInfo, user: str | None, group: str | None) -> list[Difference]:
    differences: list[Difference] = []
    if user is not None and info["user"] != user:
        differences.append(("owner", user, info["user"]))
    if group is not None and info["group"] != group:
        differences.append(("group", group, info["group"]))
    return differences


def file_differences(
    info: PathInfo | None, sha1: str, mode: str | None, user: str | None, group: str | None
) -> list[Difference]:
    """What differs between a declared file and what ``Paths`` found at its path.

    >>> file_differences(None, "9f3c", "644", None, None)
    [('present', True, False)]
    """
    if info is None:
        return [("present", True, False)]
    if info["type"] != "file":
        return [("type", "file", info["type"])]
    differences: list[Difference] = []
    if info["sha1"] != sha1:
        differences.append(("content", f"sha1:{sha1}", f"sha1:{info['sha1'] or 'unreadable'}"))
    if mode is not None and info["mode"] != mode:
        differences.append(("mode", mode, info["mode"]))
    return differences + _owner_differences(info, user, group)


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


def _ownership_commands(path: str, mode: str | None, user: str | None, group: str | None) -> list[str]:
    quoted = shlex.quote(path)
    commands = [f"chmod {mode} {quoted}"] if mode is not None else []
    if user is not None or group is not None:
        owner = shlex.quote((user or "") + (f":{group}" if group else ""))
        commands.append(f"chown {owner} {quoted}")
    return commands


@operation()
def file(path: str, content: str, mode: str | None = "644", user: str | None = None, group: str | None = None):
    """
    Make ``path`` a regular file holding ``content``; missing parent directories are created.

    + path: file path (relative paths are relative to the login directory)
    + content: the whole text of the file (written as UTF-8)
    + mode: permissions as octal digits, e.g. ``"640"``; ``None`` leaves them alone
    + user: owner name; ``None`` leaves it alone
    + group: group name; ``None`` leaves it alone

    The content is written to a temporary file beside ``path`` and moved into
    place, so a reader never sees half a file and nothing goes through ``/tmp``.

    **Example:**

    .. code:: python

        files.file(path="/etc/app/config.json", content='{"debug": false}\\n', mode="640")
    """
    info = host.get_fact(Paths, keys=(path,)).get(path)
    differences = file_differences(info, content_sha1(content), mode, user, group)
    if not differences:
        host.noop(f"file {path} is already as declared")
        return
    changed = {field for field, _expected, _actual in differences}
    if changed & {"present", "type", "content"}:
        keep = info is not None and info["type"] == "file"
        yield from write_commands(path, content, mode, user, group, keep_from_existing=keep)
        return
    yield from _ownership_commands(
        path,
        mode if "mode" in changed else None,
        user if "owner" in changed else None,
        group if "group" in changed else None,
    )


def write_commands(
    path: str, content: str, mode: str | None, user: str | None, group: str | None, keep_from_existing: bool
) -> list[str]:
    """Write into a private temporary file beside ``path``, set its mode and owner, move it in place.

    With ``keep_from_existing``, what is not declared (``None``) is copied from the file being replaced.
    """
    directory, name = posixpath.split(path)
    temp = posixpath.join(directory, f".{name}.clockwork-tmp")
    quoted, quoted_temp = shlex.quote(path), shlex.quote(temp)
    encoded = base64.b64encode(content.encode()).decode()
    chunks = [encoded[start : start + _CHUNK] for start in range(0, len(encoded), _CHUNK)] or [""]
    guard = f"if [ -d {quoted} ]; then echo {shlex.quote(f'clockwork: {path} is a directory, not a file')} >&2; exit 1; fi"
    mkdir = f"mkdir -p {shlex.quote(directory)}; " if directory else ""
    umask = "umask 077; " if mode is not None else ""
    commands = [f"{guard}; {mkdir}{umask}printf %s {shlex.quote(chunks[0])} | base64 -d > {quoted_temp}"]
    commands += [f"printf %s {shlex.quote(chunk)} | base64 -d >> {quoted_temp}" for chunk in chunks[1:]]
    if keep_from_existing and mode is None:
        commands.append(f"chmod --reference={quoted} {quoted_temp}")
    if keep_from_existing and (user is None or group is None):
        # Only root may give a file away; otherwise the file stays the login user's.
        commands.append(f"chown --reference={quoted} {quoted_temp} 2>/dev/null || true")
    commands += _ownership_commands(temp, mode, user, group)
    commands.append(f"mv -f {quoted_temp} {quoted}")
    return commands


@operation()
def directory(path: str, mode: str | None = "755", user: str | None = None, group: str | None = None):
    """
    Make ``path`` a directory (parents included) with the given mode and owner.

    + path: directory path (relative paths are relative to the login directory)
    + mode: permissions as octal digits, e.g. ``"750"``; ``None`` leaves them alone
    + user: owner name; ``None`` leaves it alone
    + group: group name; ``None`` leaves it alone

    **Example:**

    .. code:: python

        files.directory(path="/srv/app", mode="750")
    """
    info = host.get_fact(Paths, keys=(path,)).get(path)
    differences = directory_differences(info, mode, user, group)
    if not differences:
        host.noop(f"directory {path} is already as declared")
        return
    if info is not None and info["type"] != "directory":
        yield f"echo {shlex.quote(f'clockwork: {path} exists and is not a directory')} >&2; exit 1"
        return
    if info is None:
        yield f"mkdir -p {shlex.quote(path)}"
    changed = {field for field, _expected, _actual in differences}
    yield from _ownership_commands(
        path,
        mode if changed & {"present", "mode"} else None,
        user if changed & {"present", "owner"} else None,
        group if changed & {"present", "group"} else None,
    )


@operation()
def absent(path: str, kind: str = "file"):
    """
    Remove ``path`` if it is a ``kind`` (``"file"``, or ``"directory"`` with its contents).

    + path: the path to remove
    + kind: what Clockwork created there; anything else at that path is left alone

    **Example:**

    .. code:: python

        files.absent(path="/etc/app/config.json")
    """
    info = host.get_fact(Paths, keys=(path,)).get(path)
    if info is None:
        host.noop(f"{path} is already absent")
    elif info["type"] != kind:
        host.noop(f"{path} is a {info['type']}, not a {kind}: left alone")
    else:
        yield f"rm -{'rf' if kind == 'directory' else 'f'} {shlex.quote(path)}"
