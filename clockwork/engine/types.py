"""The engine's own types: a host as a resource sees it (``Target``), what a resource asks a host (``Probe``),
and what the host answered (``Observed``)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api import FactBase

from clockwork.exceptions import HostReadError

#: What a resource needs read from a host: a keyed fact class and one key.
Probe = tuple[type[FactBase], str]


@dataclass(frozen=True)
class Target:
    """One host as a resource sees it.

    ``base_dir`` is where relative paths start on this host: the project
    directory on ``@local``, ``None`` (the login directory) over SSH. ``data`` is
    the host's inventory data (without connection settings) and ``groups`` its
    groups, for what is rendered per host (templates).

    >>> Target("web-1").path("app", "config.json")
    'app/config.json'
    """

    host: str
    base_dir: str | None = None
    local: bool = False
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    groups: tuple[str, ...] = ()

    def path(self, directory: str, name: str = "") -> str:
        if directory == "~" or directory.startswith("~/"):
            directory = os.path.expanduser(directory) if self.local else directory[2:] or "."
        elif self.base_dir and not directory.startswith("/"):
            directory = posixpath.join(self.base_dir, directory)
        return posixpath.normpath(posixpath.join(directory, name) if name else directory)


class Observed:
    """What one host answered to the probes of a run: fact class → processed value.

    A fact that failed on the host holds its exception; asking for it raises it as a ``HostReadError``.
    """

    def __init__(self, values: dict[type[FactBase], Any]) -> None:
        self._values = values

    def has(self, fact_class: type[FactBase]) -> bool:
        """Whether ``fact_class`` was read (asked for) on this host."""
        return fact_class in self._values

    def __getitem__(self, fact_class: type[FactBase]) -> Any:
        value = self._values[fact_class]
        if isinstance(value, HostReadError):
            raise value
        if isinstance(value, Exception):
            raise HostReadError(str(value) or type(value).__name__) from value
        return value
