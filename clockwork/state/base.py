"""What every state store backend provides (SQLite for one controller, PostgreSQL for teams), and the records
they keep."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    ``flapping``, ``unstable`` (it differed again after Clockwork's own apply
    with nothing else changing it: not corrected again until a new version), or ``expired``/``destroyed``
    (then it is left alone until applied again); ``since`` is when that state
    began. ``failed_corrections`` in a row back the next one off until
    ``retry_at``; both count for the resource's ``version`` and reset with a
    new one, or when it is as declared. ``fingerprint`` is the pair as
    Clockwork's last verified correction left it (a keyed hash of what was
    declared for the host and of what the host had, as the kind reads it;
    ``""``: none): the same pair differing later with the same fingerprint is
    unstable too, since nothing changed it in between.

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
    failed_corrections: int = 0
    retry_at: float = 0.0
    version: int = 0
    fingerprint: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.name, self.host)


@dataclass(frozen=True)
class LastEvent:
    """The newest event of a resource on a host: what happened (``corrected``, ``changed``…), whether it was
    ``intentional`` (apply, update, rollback, extend) or ``corrective`` (reconcile), and when.

    .. code:: python

        store.last_events()[("FileResource", "app.conf", "web-1")].intent  # 'corrective'
    """

    kind: str
    intent: str
    at: float


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


@dataclass(frozen=True)
class Claim:
    """A host that a reconcile worker holds for one pass. ``fence`` numbers the claims of that host: the pass's
    writes are made only while the host's fence is still this one (a worker whose lease ran out and whose host
    was claimed by another writes nothing).

    .. code:: python

        [claim.host for claim in store.claim("w1", time.time(), capacity=50, lease=60)]  # ['web-1', 'web-2']
    """

    host: str
    fence: int


@dataclass(frozen=True)
class Worker:
    """A reconcile worker as the store knows it: its last heartbeat (epoch seconds, the database's clock), its
    lease period, the hosts it holds now, and whether it is alive (heard from within three lease periods).

    .. code:: python

        [(w.id, w.alive, w.hosts) for w in store.workers()]  # [('build-1:4242:9f2c', True, ['web-1'])]
    """

    id: str
    machine: str
    pid: int
    started_at: float
    heartbeat: float
    lease: float
    alive: bool
    hosts: list[str] = field(default_factory=list)


class Recorder(Protocol):
    """What removing resources records: a ``StateStore``, or a reconcile pass's ``PassWrites``."""

    def forget_deployed(self, type_name: str, name: str, hosts: list[str], state: str = "destroyed") -> None: ...

    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None: ...


class PassWrites:
    """The writes of one reconcile pass, per host, kept until it ends; ``StateStore.finish_pass`` makes them in one
    transaction, each host's only while the pass's claim of that host holds.

    ``now`` is the pass's clock: an expiry is recorded only if the resource's
    expiry time is still past then (an ``extend`` may have pushed it back).

    .. code:: python

        writes = PassWrites(now=time.time())
        writes.save_watches([watch])
        store.finish_pass("w1", claims, writes, next_due={"web-1": time.time() + 60})  # [] (nothing rejected)
    """

    def __init__(self, now: float) -> None:
        self.now = now
        #: (host, the store's method, its arguments), in the order the pass made them.
        self._writes: list[tuple[str, str, tuple[Any, ...]]] = []

    def record_event(self, kind: str, type_name: str, name: str, host: str | None, detail: str, intent: str) -> None:
        assert host is not None, "a pass's events are about a host"
        self._writes.append((host, "record_event", (kind, type_name, name, host, detail, intent)))

    def forget_deployed(self, type_name: str, name: str, hosts: list[str], state: str = "destroyed") -> None:
        self._writes += [(host, "forget_deployed", (type_name, name, [host], state)) for host in hosts]

    def set_warned(self, type_name: str, name: str, host: str) -> None:
        self._writes.append((host, "set_warned", (type_name, name, host)))

    def save_watches(self, watches: list[Watch]) -> None:
        self._writes += [(watch.host, "save_watches", ([watch],)) for watch in watches]

    def save_host_health(self, health: list[HostHealth], recovered: list[str]) -> None:
        self._writes += [(backed_off.host, "save_host_health", ([backed_off], [])) for backed_off in health]
        self._writes += [(host, "save_host_health", ([], [host])) for host in recovered]

    def discard(self, host: str) -> None:
        """Forget what the pass would have recorded about ``host`` (it gave the host up)."""
        self._writes = [write for write in self._writes if write[0] != host]

    def replay(self, store: StateStore, hosts: set[str]) -> None:
        """Make the writes about ``hosts`` on ``store`` (inside the caller's transaction), in the order they came."""
        watches: list[Watch] = []  # consecutive watches go in as one statement
        for host, method, arguments in self._writes:
            if host not in hosts or (method == "forget_deployed" and arguments[3] == "expired"
                                     and not self._still_expired(store, *arguments[:3])):
                continue
            if method == "save_watches":
                watches += arguments[0]
                continue
            if watches:
                store.save_watches(watches)
                watches = []
            getattr(store, method)(*arguments)
        if watches:
            store.save_watches(watches)

    def _still_expired(self, store: StateStore, type_name: str, name: str, hosts: list[str]) -> bool:
        """Whether the expiry is still past at the pass's ``now`` (an ``extend`` since then keeps it in the store's
        care; the host is set right by the next pass)."""
        return any((lifetime.type, lifetime.name, lifetime.host) == (type_name, name, hosts[0])
                   and lifetime.expires_at <= self.now for lifetime in store.lifetimes())


class StateStore(ABC):
    """A project's memory of what was deployed; every time is epoch seconds. Writers hold ``writer()``;
    readers never block. Every backend passes the contract suite (tests/test_store_contract.py)."""

    @abstractmethod
    @contextmanager
    def writer(self, command: str, record: bool = True, shared: bool = False,
               stale_after: float | None = None) -> Iterator[int]:
        """Hold the project's write lock (waiting a bounded time, then ``LockTimeout`` naming the holder) and
        record a deployment; yields its id.

        An exclusive writer (apply, destroy, update, rollback, extend) runs alone. A
        ``shared`` one (a reconcile pass, which works on the hosts it claimed) runs
        beside other shared ones; an exclusive writer waits for all of them. With
        ``record=False`` no deployment is recorded and the id is 0. A shared writer
        with ``stale_after`` loses the lock when it calls ``keep_lock`` no more for that
        many seconds (a frozen worker must not block applies; where the store cannot
        tell, the lock dies with its process only). Waiting workers hear of what an
        exclusive writer recorded once it lets go (``watch_changes``).
        """

    @abstractmethod
    def keep_lock(self) -> None:
        """A shared writer with ``stale_after`` is still at work: it keeps the lock that long again."""

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
    def settle_version(self, version: Version, hosts: list[str]) -> Version | None:
        """Where a version recorded before its apply ran really is in place: its hosts become ``hosts``; in place
        nowhere, it is removed (``None``), and the resource's latest version is the one before it again."""

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

    @abstractmethod
    def last_events(self) -> dict[tuple[str, str, str], LastEvent]:
        """The newest event of each resource on each host, by (type, name, host)."""


    # Reconcile workers and their host leases. Lease times are on the store's clock (the database's), due times
    # on the reconciler's.

    @abstractmethod
    def register_worker(self, worker: str, lease: float) -> None:
        """A reconcile worker starts (``worker`` is unique: machine, pid and a random part); it renews its leases
        every ``lease`` / 3 seconds with ``heartbeat``. Workers silent for a day are forgotten."""

    @abstractmethod
    def heartbeat(self, worker: str, lease: float, claims: list[Claim]) -> None:
        """The worker is alive: its record, and each of ``claims`` it still holds with time left (an expired lease
        is never revived), last ``lease`` seconds more."""

    @abstractmethod
    def retire_worker(self, worker: str) -> None:
        """The worker stops: it gives up its hosts and is forgotten."""

    @abstractmethod
    def add_hosts(self, hosts: list[str]) -> None:
        """Hosts the reconciler looks after (from the inventory); the new ones are due now."""

    @abstractmethod
    def claim(self, worker: str, now: float, capacity: int, lease: float) -> list[Claim]:
        """Take up to ``capacity`` hosts due at ``now`` that no live lease holds (never one another worker holds),
        each for ``lease`` seconds, with a new fence."""

    @abstractmethod
    def lease_left(self, worker: str, claims: list[Claim]) -> dict[str, float]:
        """Seconds left on each claim the worker still holds (a lost one is missing)."""

    @abstractmethod
    def release(self, worker: str, claims: list[Claim]) -> None:
        """Give up claims without recording anything (a pass that failed): other workers may take the hosts at
        once, and they stay as due as they were."""

    @abstractmethod
    def finish_pass(self, worker: str, claims: list[Claim], writes: PassWrites, next_due: dict[str, float],
                    gone: Collection[str] = ()) -> list[str]:
        """End a pass in one transaction: for each claim still held (its fence unchanged) make its host's writes,
        set when it is due next and give it up; a host in ``gone`` (nothing is placed there any more) is
        forgotten, and comes back due when it is added again. Returns the hosts whose writes were rejected
        because another worker claimed them since, or an apply changed them."""

    @abstractmethod
    def next_due(self, now: float) -> float | None:
        """The earliest moment a host is due, on the reconciler's clock whose time is ``now``: a free host's next
        due time, or when the lease of a held one ends; ``None`` when nothing is ever due."""

    @abstractmethod
    def workers(self) -> list[Worker]:
        """Every registered worker and the hosts each holds."""

    @abstractmethod
    def watch_changes(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` whenever an apply, update, rollback or extend of this project commits, for as long
        as the caller lets it run (a backend that cannot tell returns at once; workers then find changes on
        their next claim)."""
