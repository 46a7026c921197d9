"""``clockwork status`` and ``clockwork extend``: what the reconciler looks after, and pushing back an expiry."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clockwork.exceptions import ProjectError
from clockwork.commands.history import versions_of
from clockwork.durations import stamp
from clockwork.reconcile.schedule import recent
from clockwork.state import open_store, state_exists
from clockwork.state.base import Lifetime, Worker

if TYPE_CHECKING:
    from clockwork.settings import Settings


@dataclass
class StatusRow:
    """One reconciled (or expiring) resource on one host, as ``clockwork status`` shows it.

    .. code:: python

        status(Path("."))[0].last_result  # 'corrected'
    """

    type: str
    resource: str
    host: str
    on_drift: str
    state: str
    last_result: str | None
    last_checked: str | None
    next_due: str | None
    expires_at: str | None
    corrections_last_hour: int
    corrections_total: int
    detail: str
    #: The reconcile worker that holds the host now (in a pass), if any.
    worker: str | None = None
    #: The newest change recorded for it there (``corrected``, ``changed``, ``unstable``…), whether that was
    #: ``intentional`` (apply, update, rollback, extend) or ``corrective`` (reconcile), and when.
    last_event: str | None = None
    last_intent: str | None = None
    last_event_at: str | None = None
    #: Failed corrections in a row, and when the next may run (``None``: not backing off).
    failed_corrections: int = 0
    next_correction: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(project_dir: Path, settings: Settings | None = None) -> list[StatusRow]:
    """Every recorded resource with ``reconcile=True`` or a ``max_duration``, per host, newest record first;
    ``settings`` (by default the project's) name the store.

    .. code:: python

        [(row.resource, row.host, row.state) for row in status(Path("."))]  # [('app.conf', 'web-1', 'ok')]
    """
    if settings is None:
        from clockwork.settings import load_settings  # (pydantic: only when not given)

        settings = load_settings(project_dir)
    if not state_exists(project_dir, settings):
        return []
    now = time.time()
    with open_store(project_dir, settings) as store:
        versions, watches, lifetimes = store.latest_versions(), store.watches(), store.lifetimes()
        health, changes = store.host_health(), store.last_events()
        holders = {host: worker.id for worker in store.workers() for host in worker.hosts}
    expiry = {(lt.type, lt.name, lt.host): lt.expires_at for lt in lifetimes}
    rows = []
    for version in versions:
        if not (version.spec.get("reconcile") or version.spec.get("max_duration")):
            continue
        recorded = [key[2] for key in [*watches, *expiry] if key[:2] == (version.type, version.resource)]
        for host in dict.fromkeys([*version.hosts, *recorded]):
            key = (version.type, version.resource, host)
            watch = watches.get(key)
            left = bool(watch and watch.state in ("expired", "destroyed"))
            state = watch.state if watch else "not checked yet" if version.spec.get("reconcile") else "expiry only"
            next_due = stamp(watch.next_due) if watch and watch.next_due and not left else None
            detail = watch.detail if watch else ""
            change = changes.get(key)
            down = health.get(host)
            if down is not None and not left:  # what was last seen there is not what is there now
                state, next_due = "unreachable", stamp(down.retry_at)
                tries = f"{down.failures} failed {'try' if down.failures == 1 else 'tries'}"
                detail = (f"host unreachable since {stamp(down.since)} ({tries}: {down.error}); "
                          f"backing off, next try at {next_due}")
            rows.append(StatusRow(
                type=version.type, resource=version.resource, host=host,
                on_drift=version.spec.get("on_drift", "auto_correct") if version.spec.get("reconcile") else "-",
                state=state,
                last_result=watch.last_result if watch else None,
                last_checked=stamp(watch.last_checked) if watch and watch.last_checked else None,
                next_due=next_due,
                expires_at=stamp(expiry[key]) if key in expiry else None,
                corrections_last_hour=len(recent(watch.corrections, now)) if watch else 0,
                corrections_total=watch.total_corrections if watch else 0,
                detail=detail,
                worker=holders.get(host),
                last_event=change.kind if change else None,
                last_intent=change.intent if change else None,
                last_event_at=stamp(change.at) if change else None,
                failed_corrections=watch.failed_corrections if watch else 0,
                next_correction=stamp(watch.retry_at) if watch and watch.retry_at > now else None,
            ))
    return rows


def workers(project_dir: Path, settings: Settings | None = None) -> list[Worker]:
    """The project's reconcile workers: last heartbeat, the hosts each holds, alive or dead (silent for three
    lease periods).

    .. code:: python

        [(worker.id, worker.alive, worker.hosts) for worker in workers(Path("."))]  # [('vm:4242:9f2c1a', True, [])]
    """
    if settings is None:
        from clockwork.settings import load_settings  # (pydantic: only when not given)

        settings = load_settings(project_dir)
    if not state_exists(project_dir, settings):
        return []
    with open_store(project_dir, settings) as store:
        return store.workers()


def extend(project_dir: Path, resource: str, seconds: int, by: str, settings: Settings) -> list[Lifetime]:
    """Push back ``resource``'s expiry by ``seconds`` on every host where it is deployed; recorded as intentional.

    ``resource`` is a name or ``Type/name``; ``by`` is the duration as the user wrote it.
    """
    from clockwork.record import INTENTIONAL  # (the record imports the engine, and so pyinfra)

    latest = versions_of(project_dir, resource, settings)[-1]
    type_name, name = latest.type, latest.resource
    with open_store(project_dir, settings) as store, store.writer("extend") as deployment:
        lifetimes = store.extend(type_name, name, seconds)
        if not lifetimes:
            store.finish(deployment, "failed: nothing to extend")
            raise ProjectError(
                f"{type_name} {name!r} has no expiry to extend: it has no max_duration, or it is not deployed "
                "(an expired resource stays destroyed until it is applied again)"
            )
        for lifetime in lifetimes:
            store.record_event("extended", type_name, name, lifetime.host,
                               f"by {by}: expires at {stamp(lifetime.expires_at)}", INTENTIONAL)
        store.finish(deployment, "ok")
    return lifetimes
