"""Debian packages as Clockwork compares them: one ``dpkg-query`` for many names."""

from __future__ import annotations

import re
import shlex
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactValueError

#: Where Clockwork marks the packages it installed (one empty file per package): destroy removes only those.
INSTALLED_MARKS = "/var/lib/clockwork/packages"

#: A Debian package name (policy §5.6.1), optionally with an architecture (``libc6:amd64``).
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?$")

#: dpkg's status letters (the second of ``db:Status-Abbrev``) → the word ``PackageInfo.status`` holds.
_STATUS = {"n": "not-installed", "c": "config-files", "H": "half-installed", "U": "unpacked", "F": "half-configured",
           "W": "triggers-awaited", "t": "triggers-pending", "i": "installed"}


class PackageInfo(TypedDict):
    """One package as dpkg knows it: its version, its status word, whether it is on hold, whether Clockwork
    installed it."""

    version: str
    status: str
    held: bool
    installed_by_clockwork: bool


class PackagesResult(TypedDict):
    """``packages`` dpkg knows by name (a package it never saw is absent); ``error`` when dpkg could not answer."""

    packages: dict[str, PackageInfo]
    error: str | None


class DebPackages(FactBase[PackagesResult]):
    """
    Returns the named packages as dpkg has them, in one ``dpkg-query``, and which
    of them Clockwork installed (marked under ``/var/lib/clockwork/packages``):

    .. code:: python

        host.get_fact(DebPackages, keys=("cwdemo", "nginx"))
        {
            "packages": {"cwdemo": {"version": "1.0", "status": "installed", "held": True,
                                    "installed_by_clockwork": True}},
            "error": None,
        }

    Each package is known by its name and by its name with its architecture
    (``cwdemo``, ``cwdemo:all``; ``libc6``, ``libc6:amd64``), as dpkg-query matches
    either. A package removed but not purged has status ``config-files``. ``error`` holds
    what the host said when ``dpkg-query`` could not run, so that "not installed"
    is never confused with "could not tell". Reading needs no root.
    """

    def command(self, keys: tuple[str, ...]) -> str:
        for name in keys:
            if not PACKAGE_NAME.match(name):
                raise FactValueError(f"DebPackages: invalid package name {name!r}")
        names = " ".join(shlex.quote(name) for name in keys)
        return (f"dpkg-query -W -f='package\\t${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\t${{Architecture}}\\n' "
                f"-- {names} 2>&1; "
                f"for name in {names}; do [ -e {INSTALLED_MARKS}/\"$name\" ] && printf 'marked\\t%s\\n' \"$name\"; done; true")

    @staticmethod
    def default() -> PackagesResult:
        return PackagesResult(packages={}, error=None)

    def process(self, output: list[str]) -> PackagesResult:
        packages: dict[str, PackageInfo] = {}
        marked = set()
        errors = []
        for line in output:
            fields = line.split("\t")
            if fields[0] == "package" and len(fields) == 5 and len(fields[3]) >= 2:
                _, name, version, abbrev, architecture = fields
                status = _STATUS.get(abbrev[1], abbrev[1])
                if status == "not-installed":
                    continue
                for known_as in (name, f"{name}:{architecture}") if architecture else (name,):
                    packages[known_as] = PackageInfo(version=version, status=status, held=abbrev[0] == "h",
                                                     installed_by_clockwork=False)
            elif fields[0] == "marked" and len(fields) == 2:
                marked.add(fields[1])
            elif line.strip() and not line.startswith("dpkg-query: no packages found matching"):
                errors.append(line.strip())
        for name in marked & set(packages):
            packages[name]["installed_by_clockwork"] = True
        return PackagesResult(packages=packages, error="; ".join(dict.fromkeys(errors)) or None)
