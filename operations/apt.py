"""Debian packages kept as declared with apt: installed at a version, held, removed or purged."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from clockwork.facts.apt import INSTALLED_MARKS, DebPackages, PackageInfo
from clockwork.operations.files import LEFT_IN_PLACE

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]

#: What a package's presence diff says of a package removed without its configuration when ``purge`` is wanted.
CONFIG_FILES = "config files"

#: apt and dpkg never ask: the configuration files a package ships and the host changed stay as they are.
_NONINTERACTIVE = ("DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef "
                   "-o Dpkg::Options::=--force-confold")


#: apt's last word on the lock, without its "Waiting for cache lock: " and trailing "...":
#: ``Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 483 (perl)``.
_LOCK_HOLDER = "sed -n 's/.*\\(Could not get lock .*[^.]\\)\\.*$/\\1/p' | tail -1"

#: Succeeds when apt's lists offer ``$want`` of the package (any version when empty). ``apt-cache madison``
#: reads only the lists, never dpkg's status file, which ``apt-cache show`` also answers from: a package
#: removed but not purged, or installed from lists since deleted, has no candidate although ``show`` finds it.
_OFFERED = ("apt-cache madison {package} 2>/dev/null | awk -F'|' -v want={want} "
            "'{{ version = $2; gsub(/ /, \"\", version); if (want == \"\" || version == want) found = 1 }} "
            "END {{ exit !found }}'")


def package_differences(actual: PackageInfo | None, version: str | None = None, hold: bool | None = None,
                        present: bool = True, purge: bool = False) -> list[Difference]:
    """What differs between a declared package and what ``DebPackages`` found.

    ``version`` and ``hold`` are compared only when declared (``None`` leaves them
    alone). A package removed but not purged is absent, unless ``purge`` is wanted.
    """
    installed = actual is not None and actual["status"] != "config-files"
    if not present:
        if installed:
            return [("present", False, True)]
        if purge and actual is not None:
            return [("present", False, CONFIG_FILES)]
        return []
    if actual is None or not installed:
        return [("present", True, False)]
    differences: list[Difference] = []
    if actual["status"] != "installed":
        differences.append(("status", "installed", actual["status"]))
    if version is not None and actual["version"] != version:
        differences.append(("version", version, actual["version"]))
    if hold is not None and actual["held"] != hold:
        differences.append(("hold", hold, actual["held"]))
    return differences


def _package(name: str) -> PackageInfo | None:
    result = host.get_fact(DebPackages, keys=(name,))
    if result["error"]:
        raise OperationError(f"dpkg: {result['error']}")
    return result["packages"].get(name)


def _apt(arguments: str, lock_timeout: int) -> str:
    """One apt-get run that waits up to ``lock_timeout`` seconds for dpkg's lock, then fails saying so."""
    return (f"out=$({_NONINTERACTIVE} -o DPkg::Lock::Timeout={lock_timeout} {arguments} 2>&1) || "
            f"{{ status=$?; printf '%s\\n' \"$out\" | grep -q 'Could not get lock' && "
            f"{{ echo 'dpkg is locked by another process (waited {lock_timeout} s): '"
            f"\"$(printf '%s\\n' \"$out\" | {_LOCK_HOLDER})\" >&2; exit $status; }}; "
            f"printf '%s\\n' \"$out\" >&2; exit $status; }}")


@operation()
def package(package: str, version: str | None = None, hold: bool | None = None, present: bool = True,
            purge: bool = False, lock_timeout: int = 60):
    """
    Keep a Debian package as declared: installed (at ``version``), held or not, or absent.

    + package: the package name
    + version: the exact version to install (upgrade or downgrade to); ``None``: any
    + hold: ``True`` holds it (``apt-mark hold``), ``False`` releases it, ``None`` leaves it
    + present: ``False`` removes it
    + purge: with ``present=False``, remove its configuration files too
    + lock_timeout: seconds to wait for dpkg's lock when another apt or dpkg holds it

    apt's package lists are updated only when the wanted version (or the package)
    has no candidate. Configuration files the host changed are kept on upgrade and
    downgrade. A package this operation installs is marked as installed by
    Clockwork (``/var/lib/clockwork/packages/NAME``), for ``package_absent``.

    **Example:**

    .. code:: python

        apt.package(package="nginx", version="1.22.1-9", hold=True, _sudo=True)
    """
    actual = _package(package)
    differences = package_differences(actual, version, hold, present, purge)
    if not differences:
        host.noop(f"package {package} is already as declared")
        return
    quoted = shlex.quote(package)
    changed = {field for field, _expected, _actual in differences}
    if not present:
        yield _apt(f"--allow-change-held-packages {'purge' if purge else 'remove'} {quoted}", lock_timeout)
        yield f"rm -f {INSTALLED_MARKS}/{quoted}"
        return
    was_held = actual is not None and actual["held"]
    keep_held = was_held if hold is None else hold
    if changed & {"present", "version", "status"}:
        wanted = shlex.quote(f"{package}={version}" if version else package)
        yield f"{_OFFERED.format(package=quoted, want=shlex.quote(version or ''))} || {_apt('update', lock_timeout)}"
        held = "--allow-change-held-packages " if was_held else ""
        yield _apt(f"--allow-downgrades {held}install {wanted}", lock_timeout)
        if actual is None or actual["status"] == "config-files":
            yield f"mkdir -p {INSTALLED_MARKS} && touch {INSTALLED_MARKS}/{quoted}"
        if keep_held:  # apt-get install drops a hold: put it back
            yield f"apt-mark hold {quoted} >/dev/null"
    elif keep_held != was_held:
        yield f"apt-mark {'hold' if keep_held else 'unhold'} {quoted} >/dev/null"


@operation()
def package_absent(package: str, purge: bool = False, lock_timeout: int = 60):
    """
    Remove a package that Clockwork installed (``package`` marked it); one that was
    there before is left in place, and the operation fails with ``left in place:
    installed before Clockwork``.

    + package: the package name
    + purge: remove its configuration files too
    + lock_timeout: seconds to wait for dpkg's lock

    **Example:**

    .. code:: python

        apt.package_absent(package="cwdemo", purge=True, _sudo=True)
    """
    actual = _package(package)
    if not package_differences(actual, present=False, purge=purge):
        host.noop(f"package {package} is already absent")
        return
    assert actual is not None  # a difference means dpkg knows it
    if not actual["installed_by_clockwork"]:
        yield f"echo {shlex.quote(LEFT_IN_PLACE + 'installed before Clockwork')} >&2; exit 1"
        return
    yield _apt(f"--allow-change-held-packages {'purge' if purge else 'remove'} {shlex.quote(package)}", lock_timeout)
    yield f"rm -f {INSTALLED_MARKS}/{shlex.quote(package)}"
