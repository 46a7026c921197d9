"""What every state store backend provides (SQLite now; PostgreSQL for teams later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: Where a version came from.
SOURCES = ("apply", "update", "rollback")


@dataclass(frozen=True)
class Version:
    """One recorded version of a resource: its spec (secrets redacted) as applied.

    >>> store.latest("FileResource", "config.json").version
    3
    """

    type: str
    resource: str
    version: int
    created_at: str
    source: str
    spec: dict[str, Any]
    hosts: list[str]

    def as_dict(self) -> dict[str, Any]:
        """The document ``clockwork history --format json`` lists (DESIGN.md)."""
        return {"resource": self.resource, "type": self.type, "version": self.version, "created_at": self.created_at,
                "source": self.source, "spec": self.spec}


class StateStore(ABC):
    """A project's memory of what was deployed. Writers hold ``writer()``; readers never block."""

    @abstractmethod
    @contextmanager
    def writer(self, command: str) -> Iterator[int]:
        """Hold the project's write lock (waiting a bounded time) and record a deployment; yields its id."""

    @abstractmethod
    def finish(self, deployment: int, result: str) -> None:
        """Record how a deployment ended (``ok``, ``failed: …``)."""

    @abstractmethod
    def record_version(self, deployment: int, type_name: str, name: str, spec: dict[str, Any], source: str,
                       hosts: list[str]) -> Version:
        """Store a new version of a resource (its number is the next one)."""

    @abstractmethod
    def latest(self, type_name: str, name: str) -> Version | None:
        """The newest version of a resource, if any."""

    @abstractmethod
    def versions(self, type_name: str | None = None, name: str | None = None) -> list[Version]:
        """Versions, oldest first, of one resource or of all."""

    @abstractmethod
    def mark_deployed(self, type_name: str, name: str, hosts: list[str], at: str) -> None:
        """Remember when a resource was first deployed on each host (kept across later versions)."""

    @abstractmethod
    def first_deployed(self, type_name: str, name: str) -> dict[str, str]:
        """Host → first-deployed time."""

    @abstractmethod
    def forget_deployed(self, type_name: str, name: str, hosts: list[str]) -> None:
        """A resource was destroyed on these hosts: its clock starts again when it comes back."""

    @abstractmethod
    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None:
        """An event: ``kind`` (changed, destroyed, rolled-back, …), labelled ``intentional`` or ``corrective``."""

    @abstractmethod
    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest events first."""
