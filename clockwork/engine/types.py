"""The engine's own types: a host as a resource sees it (``Target``), what a resource asks a host (``Probe``),
and what the host answered (``Observed``)."""

from __future__ import annotations

import os
import posixpath
import shlex
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
    ``keys`` are the keys each keyed fact was read for.
    """

    def __init__(self, values: dict[type[FactBase], Any], keys: Mapping[type[FactBase], tuple[str, ...]] | None = None) -> None:
        self._values = values
        self._keys = keys or {}

    def has(self, fact_class: type[FactBase]) -> bool:
        """Whether ``fact_class`` was read (asked for) on this host."""
        return fact_class in self._values

    def covers(self, fact_class: type[FactBase], keys: tuple[str, ...]) -> bool:
        """Whether ``fact_class`` was read for all of ``keys`` (so its value answers for them)."""
        return fact_class in self._values and set(keys) <= set(self._keys.get(fact_class, ()))

    def __getitem__(self, fact_class: type[FactBase]) -> Any:
        value = self._values[fact_class]
        if isinstance(value, HostReadError):
            raise value
        if isinstance(value, Exception):
            raise HostReadError(str(value) or type(value).__name__) from value
        return value


#: Each fact class read as root, made once (``as_root``).
_AS_ROOT: dict[type[FactBase], type[FactBase]] = {}


def as_root(fact_class: type[FactBase]) -> type[FactBase]:
    """``fact_class`` read as root: as it is when the login user is root, else through ``sudo -n`` (the engine
    reads whether that works in the same batch, and refuses the host's root resources when it does not)."""
    if fact_class not in _AS_ROOT:
        class AsRoot(fact_class):  # type: ignore[valid-type,misc]
            def command(self, *args: Any, **kwargs: Any) -> str:
                inner = str(super().command(*args, **kwargs))
                return f'if [ "$(id -u)" = 0 ]; then {inner}; else sudo -n sh -c {shlex.quote(inner)}; fi'

        AsRoot.name = f"{fact_class.name}AsRoot"  # how a batch tells it from the fact read as the login user
        AsRoot.__name__ = AsRoot.__qualname__ = f"{fact_class.__name__}AsRoot"
        _AS_ROOT[fact_class] = AsRoot
    return _AS_ROOT[fact_class]


class RootObserved(Observed):
    """What a host answered, as a resource read as root sees it: each fact as read by ``as_root``, where it was."""

    def __init__(self, observed: Observed) -> None:
        super().__init__(observed._values, observed._keys)

    def _as_read(self, fact_class: type[FactBase]) -> type[FactBase]:
        root = as_root(fact_class)
        return root if root in self._values else fact_class

    def has(self, fact_class: type[FactBase]) -> bool:
        return super().has(self._as_read(fact_class))

    def covers(self, fact_class: type[FactBase], keys: tuple[str, ...]) -> bool:
        return super().covers(self._as_read(fact_class), keys)

    def __getitem__(self, fact_class: type[FactBase]) -> Any:
        return super().__getitem__(self._as_read(fact_class))
