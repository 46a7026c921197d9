"""What every state store backend provides (SQLite now; PostgreSQL for teams later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from clockwork.durations import stamp
from clockwork.secrets import mask_value

#: Where a version came from.
SOURCES = ("apply", "update", "rollback")


@dataclass(frozen=True)
class Version:
    """One recorded version of a resource: its spec exactly as applied.

    Secret references stay references; ``fingerprints`` holds a keyed hash of
    each one's value when it was applied (to see that a secret changed); a plain
    value under a secret-looking name is kept only as a keyed hash (``⟦hmac:…⟧``).

    .. code:: python

        store.latest("FileResource", "config.json").version  # 3
    """

    type: str
    resource: str
    version: int
    created_at: float
    source: str
    spec: dict[str, Any]
    hosts: list[str]
    fingerprints: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The document ``clockwork history --format json`` lists (DESIGN.md), secrets masked."""
        return {"resource": self.resource, "type": self.type, "version": self.version,
                "created_at": stamp(self.created_at), "source": self.source, "spec": mask_value(self.spec)}


@dataclass
class Watch:
    """The reconciler's memory of one resource on one host (times are epoch seconds).

    ``state`` is what alerts are about: ``ok``, ``drift``, ``failure``,
    ``flapping``, or ``expired``/``destroyed`` (then it is left alone until
    applied again); ``since`` is when that state began.

    .. code:: python

        store.watches()[("FileResource", "app.conf", "web-1")].state  # 'drift'
    """

    type: str
    name: str
    host: str
    next_due: float = 0.0
    last_checked: float | None = None
    last_result: str | None = None
    detail: str = ""
    state: str = "ok"
    since: float | None = None
    corrections: list[float] = field(default_factory=list)
    total_corrections: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.name, self.host)


@dataclass
class Lifetime:
    """A ``max_duration`` resource on one host: when it expires, and whether the warning went out.

    .. code:: python

        store.lifetimes()[0].expires_at  # 1795000000.0
    """

    type: str
    name: str
    host: str
    deployed_at: float
    expires_at: float
    warned: bool = False


@dataclass
class HostHealth:
    """A host the reconciler could not reach: consecutive failures and when to try again (epoch seconds)."""

    host: str
    failures: int
    retry_at: float
    since: float
    error: str = ""
    alerted: bool = False


class StateStore(ABC):
    """A project's memory of what was deployed; every time is epoch seconds. Writers hold ``writer()``;
    readers never block. Every backend passes the contract suite (tests/test_store_contract.py)."""

    @abstractmethod
    @contextmanager
    def writer(self, command: str, record: bool = True, hosts: list[str] | None = None) -> Iterator[int]:
        """Hold the write lock (waiting a bounded time, then ``LockTimeout`` naming the holder) and record a
        deployment; yields its id.

        Without ``hosts`` the lock is the project's: no other writer runs. With
        ``hosts`` it covers only those hosts: writers of other hosts run at the same
        time, a project writer waits for all of them. With ``record=False`` (a
        reconcile pass) no deployment is recorded and the id is 0.
        """

    @abstractmethod
    def close(self) -> None:
        """Release what the store holds open."""

    @abstractmethod
    def finish(self, deployment: int, result: str) -> None:
        """Record how a deployment ended (``ok``, ``failed: …``)."""

    @abstractmethod
    def record_version(self, deployment: int, type_name: str, name: str, spec: dict[str, Any], source: str,
                       hosts: list[str], fingerprints: dict[str, str] | None = None) -> Version:
        """Store a new version of a resource (its number is the next one), its spec kept exactly."""

    @abstractmethod
    def secret_key(self) -> bytes:
        """The project's key for keyed hashes of secret values (made on first use, never shown)."""

    @abstractmethod
    def interrupted(self) -> list[dict[str, Any]]:
        """Deployments that never finished (their process died): ``id``, ``command``, ``pid``, ``started_at``."""

    @abstractmethod
    def latest(self, type_name: str, name: str) -> Version | None:
        """The newest version of a resource, if any."""

    @abstractmethod
    def versions(self, type_name: str | None = None, name: str | None = None) -> list[Version]:
        """Versions, oldest first, of one resource or of all."""

    @abstractmethod
    def latest_versions(self) -> list[Version]:
        """The newest version of every resource ever recorded."""

    @abstractmethod
    def mark_deployed(self, type_name: str, name: str, hosts: list[str], at: float, lifetime: int | None = None) -> None:
        """Remember when a resource was first deployed on each host (kept across later versions).

        ``lifetime`` is its ``max_duration`` in seconds: it expires that long after
        its first deployment (plus any extension). A host where it is deployed anew
        starts with a clean reconcile record.
        """

    @abstractmethod
    def forget_deployed(self, type_name: str, name: str, hosts: list[str], state: str = "destroyed") -> None:
        """A resource was removed from these hosts (``destroyed`` or ``expired``): its clock starts again when
        it comes back, and the reconciler leaves it alone until then."""

    @abstractmethod
    def lifetimes(self) -> list[Lifetime]:
        """Every deployed resource with a ``max_duration``, per host."""

    @abstractmethod
    def set_warned(self, type_name: str, name: str, host: str) -> None:
        """The warning before expiry went out."""

    @abstractmethod
    def extend(self, type_name: str, name: str, seconds: int) -> list[Lifetime]:
        """Push back a resource's expiry on every host; returns the new lifetimes (none: it has no expiry)."""

    @abstractmethod
    def watches(self) -> dict[tuple[str, str, str], Watch]:
        """The reconciler's record of every resource × host it has looked at."""

    @abstractmethod
    def save_watches(self, watches: list[Watch]) -> None:
        """Store these watches (replacing the previous record of each)."""

    @abstractmethod
    def host_health(self) -> dict[str, HostHealth]:
        """Hosts currently backed off."""

    @abstractmethod
    def save_host_health(self, health: list[HostHealth], recovered: list[str]) -> None:
        """Store backed-off hosts and forget the ones that answered again."""

    @abstractmethod
    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None:
        """An event: ``kind`` (changed, destroyed, rolled-back, …), labelled ``intentional`` or ``corrective``."""

