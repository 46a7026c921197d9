"""One reconcile pass: evaluate what is due, correct or alert by ``on_drift``, end expired resources, alert on changes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clockwork.alerts import Alert, Notifier
from clockwork.destroy import remove
from clockwork.engine import Session
from clockwork.evaluate import Reading, read_fleet
from clockwork.exceptions import ProjectError
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.reconcile.desired import Desired, desired_state
from clockwork.reconcile.schedule import backoff, interval_seconds, jitter, recent, stamp, warning_lead
from clockwork.record import CORRECTIVE
from clockwork.resources.base import Resource
from clockwork.results import Report, Result
from clockwork.state import open_store
from clockwork.state.base import HostHealth, Lifetime, StateStore, Watch

#: How long a pass waits for an apply or update to release the project's lock.
PASS_LOCK_WAIT = 5.0
#: A host is reported unreachable once it failed this many times in a row (after one backoff).
UNREACHABLE_AFTER = 2
#: Watch states in which the reconciler leaves a resource alone until it is applied again.
LEFT_ALONE = ("expired", "destroyed")
#: Which ``alert_on`` entry lets each kind of alert out.
ALERT_GATE = {"drift": "drift", "failure": "failure", "flapping": "failure", "unreachable": "failure",
              "expired": "expired", "expiring": "expired"}
#: What a pair's result means for the report (and ``--once``'s exit status).
REPORTED = {"ok": "ok", "corrected": "ok", "expired": "ok", "drift": "drift", "flapping": "drift",
            "error": "error", "correction failed": "error"}

Log = Callable[[str, dict[str, Any]], None]


@dataclass
class PassOutcome:
    """What a pass did: a result per resource × host it looked at, and when the next one is due (epoch seconds)."""

    report: Report
    next_wake: float
    corrected: int = 0
    expired: int = 0
    #: How many recorded resources the reconciler looks after (``reconcile=True`` or a ``max_duration``).
    looked_after: int = 0


@dataclass
class _Pass:
    """The working state of one pass."""

    store: StateStore
    now: float
    desired: Desired
    placement: Placement
    watches: dict[tuple[str, str, str], Watch]
    health: dict[str, HostHealth]
    alerts: list[Alert] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def watch(self, resource: Resource, host: str) -> Watch:
        key = (resource.type_name, resource.name, host)
        if key not in self.watches:
            self.watches[key] = Watch(*key)
        return self.watches[key]

    def backed_off(self, host: str) -> bool:
        return host in self.health and self.health[host].retry_at > self.now


class Reconciler:
    """Runs passes over a project's recorded resources; never calls a model (values are pinned in the versions).

    >>> reconciler = Reconciler(Path("/srv/proj"), inventory="inventory.py", log=print, notifier=Notifier([]))
    >>> outcome = reconciler.run_pass()
    >>> outcome.report.status, outcome.corrected
    ('ok', 1)
    """

    def __init__(self, project_dir: Path, inventory: str | None = None, log: Log = lambda event, fields: None,
                 notifier: Notifier | None = None, flapping_limit: int = 5) -> None:
        self.project_dir = project_dir
        self.inventory = inventory
        self.log = log
        self.notifier = notifier or Notifier([])
        self.flapping_limit = flapping_limit

    def run_pass(self) -> PassOutcome:
        """Evaluate the due resources, act on drift, end expired resources, then send the alerts of this pass.

        Holds the project's lock while it works (waiting at most 5 s for an apply);
        raises ``LockTimeout`` when it could not get it.
        """
        with open_store(self.project_dir, lock_timeout=PASS_LOCK_WAIT) as store, store.writer("reconcile", record=False):
            work = self._prepare(store)
            expiring = self._expiring(work)
            due = self._due(work, expiring)
            corrected = self._evaluate(work, due)
            expired = self._expire(work, expiring)
            store.save_watches(list(work.watches.values()))
            next_wake = self._next_wake(work)
        self.notifier.send(work.alerts)
        report = Report(work.results, sorted({r.host for r in work.results}), work.unreachable,
                        len(work.desired.reconciled))
        self.log("pass", {"evaluated": len(work.results), "corrected": corrected, "expired": expired,
                          "status": report.status, "next_due": stamp(next_wake)})
        return PassOutcome(report, next_wake, corrected, expired, sum(1 for r in work.desired.resources if r.reconcile or r.lifetime))

    # Steps ---------------------------------------------------------------------------

    def _prepare(self, store: StateStore) -> _Pass:
        desired = desired_state(store, self.project_dir)
        for problem in desired.problems:
            self.log("error", {"detail": problem})
        looked_after = [resource for resource in desired.resources if resource.reconcile or resource.lifetime]
        placement = place(Project(self.project_dir, self.project_dir / "main.py", looked_after), self.inventory)
        work = _Pass(store, time.time(), desired, placement, store.watches(), store.host_health())
        for host, health in work.health.items():
            if work.backed_off(host):
                work.unreachable[host] = f"{health.error} (backing off: next try at {stamp(health.retry_at)})"
        return work

    def _expiring(self, work: _Pass) -> dict[str, list[tuple[Resource, Lifetime]]]:
        """Per host, the resources past their expiry; sends the warning for those about to expire."""
        expiring: dict[str, list[tuple[Resource, Lifetime]]] = {}
        for lifetime in work.store.lifetimes():
            resource = work.desired.get(lifetime.type, lifetime.name)
            if resource is None or lifetime.host not in work.placement.resources or work.backed_off(lifetime.host):
                continue
            if work.now >= lifetime.expires_at:
                expiring.setdefault(lifetime.host, []).append((resource, lifetime))
            elif not lifetime.warned and work.now >= lifetime.expires_at - warning_lead(lifetime.expires_at - lifetime.deployed_at):
                self._alert(work, resource, lifetime.host, "expiring", "firing",
                            f"{resource.label} on {lifetime.host} expires at {stamp(lifetime.expires_at)}",
                            f"max_duration {resource.max_duration}; `clockwork extend {resource.name} --by DURATION` "
                            "pushes it back")
                work.store.set_warned(lifetime.type, lifetime.name, lifetime.host)
        return expiring

    def _due(self, work: _Pass, expiring: dict[str, list[tuple[Resource, Lifetime]]]) -> dict[str, list[Resource]]:
        """Per host, the reconciled resources whose check is due (none on a host that is backed off)."""
        due: dict[str, list[Resource]] = {}
        for host, resources in work.placement.resources.items():
            if work.backed_off(host):
                continue
            ending = {(resource.type_name, resource.name) for resource, _ in expiring.get(host, [])}
            for resource in resources:
                key = (resource.type_name, resource.name, host)
                watch = work.watches.get(key)
                if (not resource.reconcile or (resource.type_name, resource.name) in ending
                        or (watch is not None and (watch.state in LEFT_ALONE or watch.next_due > work.now))):
                    continue
                due.setdefault(host, []).append(resource)
        return due

    def _evaluate(self, work: _Pass, due: dict[str, list[Resource]]) -> int:
        """Read the due pairs (one round trip per host), correct what drifted where allowed, verify. Returns corrections."""
        if not due:
            return 0
        placement = Placement(work.placement.fresh_inventory(), list(due), due, work.placement.source, self.project_dir)
        with Session(placement.inventory, self.project_dir, placement.hosts) as session:
            readings, unreachable = read_fleet(session, placement)
            correct = [r for r in readings if r.evaluation.status == "drift" and self._may_correct(work, r)]
            outcomes = session.operate({
                host: [(id(reading), reading.resource.apply) for reading in correct if reading.host is host]
                for host in dict.fromkeys(reading.host for reading in correct)
            })
        verified = self._verify(work, [r for r in correct if not outcomes[(r.host, id(r))].error])
        self._hosts_answered(work, list(due), unreachable)
        shares = {host: random.random() for host in due}  # one jitter share per host: its checks stay in one read
        corrected = 0
        for reading in readings:
            host = reading.host.name
            if host in unreachable:
                continue
            watch = work.watch(reading.resource, host)
            outcome = outcomes.get((reading.host, id(reading)))
            if outcome is not None:
                failure = outcome.error or verified.get((host, reading.resource.type_name, reading.resource.name))
                result, detail = ("correction failed", failure) if failure else ("corrected", reading.evaluation.detail)
                corrected += not failure
            elif reading.evaluation.status == "drift":
                result = "flapping" if reading.resource.on_drift == "auto_correct" else "drift"
                detail = reading.evaluation.detail
            else:
                result, detail = reading.evaluation.status, reading.evaluation.detail
            self._record(work, reading.resource, watch, result, detail or "")
            interval = interval_seconds(reading.resource.check_interval, work.now)
            watch.next_due = work.now + interval + jitter(interval, shares[host])
        return corrected

    def _may_correct(self, work: _Pass, reading: Reading) -> bool:
        if reading.resource.on_drift != "auto_correct":
            return False
        watch = work.watch(reading.resource, reading.host.name)
        return len(recent(watch.corrections, work.now)) < self.flapping_limit

    def _verify(self, work: _Pass, corrected: list[Reading]) -> dict[tuple[str, str, str], str]:
        """Read the corrected pairs again; returns the ones still not as declared, with why."""
        if not corrected:
            return {}
        resources: dict[str, list[Resource]] = {}
        for reading in corrected:
            resources.setdefault(reading.host.name, []).append(reading.resource)
        placement = Placement(work.placement.fresh_inventory(), list(resources), resources, work.placement.source,
                              self.project_dir)
        with Session(placement.inventory, self.project_dir, placement.hosts) as session:
            readings, _unreachable = read_fleet(session, placement)
        return {(r.host.name, r.resource.type_name, r.resource.name): f"still not as declared: {r.evaluation.detail}"
                for r in readings if r.evaluation.status != "ok"}

    def _record(self, work: _Pass, resource: Resource, watch: Watch, result: str, detail: str) -> None:
        """Store one pair's result; on a change of state: an event, a log line and (per ``alert_on``) an alert."""
        host, before = watch.host, watch.state
        state = {"ok": "ok", "corrected": "ok", "drift": "drift", "flapping": "flapping"}.get(result, "failure")
        watch.last_checked, watch.last_result, watch.detail = work.now, result, detail
        if result == "corrected":
            watch.corrections = recent(watch.corrections, work.now) + [work.now]
            watch.total_corrections += 1
            self._event(work, "corrected", resource, host, detail)
            if before == "ok":
                self._alert(work, resource, host, "drift", "resolved", f"{resource.label} drifted on {host}: corrected",
                            detail, starts_at=work.now)
        work.results.append(Result(host, resource.name, resource.type_name, REPORTED[result],  # type: ignore[arg-type]
                                   detail if result == "ok" else f"{result}: {detail}" if detail else result,
                                   changed=result == "corrected",
                                   error=detail if REPORTED[result] == "error" else None))
        if state == before:
            return
        since, watch.state, watch.since = watch.since, state, work.now
        if state == "ok":
            self._event(work, "recovered", resource, host, f"was {before}")
            self._alert(work, resource, host, before, "resolved", f"{resource.label} on {host} is as declared again",
                        f"was {before} since {stamp(since or work.now)}", starts_at=since, gate="recovered")
            return
        kind = "drift" if state == "drift" else state
        self._event(work, {"failure": "correction-failed" if result == "correction failed" else "error"}.get(state, state),
                    resource, host, detail)
        if not (state == "drift" and resource.on_drift == "ignore"):
            summary = {"drift": "drifted", "flapping": "keeps drifting back: no longer corrected (flapping)",
                       "failure": "correction failed" if result == "correction failed" else "could not be checked"}[state]
            self._alert(work, resource, host, kind, "firing", f"{resource.label} on {host}: {summary}", detail)

    def _hosts_answered(self, work: _Pass, hosts: list[str], unreachable: dict[str, str]) -> None:
        """Back off the hosts that did not answer; alert once a host stays unreachable, and when it is back."""
        changed, recovered = [], []
        for host in hosts:
            health = work.health.get(host)
            gate = self._host_gate(work, host)
            if host not in unreachable:
                if health is not None:
                    recovered.append(host)
                    self.log("host-recovered", {"host": host, "after_failures": health.failures})
                    if health.alerted and "recovered" in gate:
                        work.alerts.append(Alert("unreachable", "resolved", f"host {host} is reachable again",
                                               health.error, host, starts_at=stamp(health.since),
                                               ends_at=stamp(work.now)))
                continue
            error = unreachable[host]
            health = work.health.setdefault(host, HostHealth(host, 0, work.now, work.now, error))
            health.failures += 1
            health.error = error
            health.retry_at = work.now + backoff(health.failures)
            work.unreachable[host] = error
            self.log("unreachable", {"host": host, "failures": health.failures,
                                     "retry_in": round(health.retry_at - work.now, 1), "error": error})
            if health.failures >= UNREACHABLE_AFTER and not health.alerted:
                health.alerted = True
                if "failure" in gate:
                    work.alerts.append(Alert("unreachable", "firing", f"host {host} is unreachable", error, host,
                                           starts_at=stamp(health.since)))
            changed.append(health)
            for resource in work.placement.resources.get(host, []):
                if resource.reconcile:
                    work.results.append(Result(host, resource.name, resource.type_name, "error",
                                               f"host unreachable: {error}", error=error))
        work.store.save_host_health(changed, recovered)
        for host in recovered:
            del work.health[host]

    def _host_gate(self, work: _Pass, host: str) -> set[str]:
        """Everything the resources on a host alert on."""
        return {kind for resource in work.placement.resources.get(host, []) for kind in resource.alert_on}

    def _expire(self, work: _Pass, expiring: dict[str, list[tuple[Resource, Lifetime]]]) -> int:
        """Destroy what is past its expiry; it stays destroyed until applied again. Returns how many were removed."""
        if not expiring:
            return 0
        resources = {host: [resource for resource, _ in pairs] for host, pairs in expiring.items()}
        by_key = {(r.type_name, r.name): r for pairs in resources.values() for r in pairs}
        placement = Placement(work.placement.fresh_inventory(), list(resources), resources, work.placement.source,
                              self.project_dir)
        report = remove(work.store, placement, None, len(work.desired.resources), kind="expired")
        for result in report.results:
            resource = by_key[(result.type, result.resource)]
            if result.status != "ok":
                self.log("expire-failed", {"type": result.type, "resource": result.resource, "host": result.host,
                                           "detail": result.error or result.detail})
                continue
            watch = work.watch(resource, result.host)
            watch.state, watch.since, watch.last_result, watch.detail = "expired", work.now, "expired", result.detail
            self.log("expired", {"type": result.type, "resource": result.resource, "host": result.host,
                                 "detail": result.detail})
            self._alert(work, resource, result.host, "expired", "firing",
                        f"{resource.label} on {result.host} expired and was destroyed",
                        f"max_duration {resource.max_duration} reached; it stays destroyed until applied again")
            work.results.append(Result(result.host, result.resource, result.type, "ok", f"expired: {result.detail}",
                                       changed=result.changed))
        return sum(1 for result in report.results if result.status == "ok")

    def _next_wake(self, work: _Pass) -> float:
        """The earliest moment something is due: a check, an expiry or its warning, or a backed-off host's retry."""
        moments = [health.retry_at for health in work.health.values()]
        for host, resources in work.placement.resources.items():
            if work.backed_off(host):
                continue
            for resource in resources:
                watch = work.watches.get((resource.type_name, resource.name, host))
                if resource.reconcile and not (watch is not None and watch.state in LEFT_ALONE):
                    moments.append(watch.next_due if watch is not None else work.now)
        for lifetime in work.store.lifetimes():
            if lifetime.host in work.placement.resources and not work.backed_off(lifetime.host):
                lead = warning_lead(lifetime.expires_at - lifetime.deployed_at)
                moments.append(lifetime.expires_at if lifetime.warned else lifetime.expires_at - lead)
        return min(moments, default=float("inf"))

    # Events and alerts --------------------------------------------------------------

    def _event(self, work: _Pass, kind: str, resource: Resource, host: str, detail: str) -> None:
        work.store.record_event(kind, resource.type_name, resource.name, host, detail, CORRECTIVE)
        self.log(kind, {"type": resource.type_name, "resource": resource.name, "host": host, "detail": detail})

    def _alert(self, work: _Pass, resource: Resource, host: str, kind: str, status: str, summary: str, detail: str,
               starts_at: float | None = None, gate: str | None = None) -> None:
        """Queue an alert when the resource's ``alert_on`` lets this kind (or ``gate``) out."""
        if (gate or ALERT_GATE.get(kind, "failure")) not in resource.alert_on:
            return
        ends = stamp(work.now) if status == "resolved" else None
        work.alerts.append(Alert(kind, status, summary, detail, host, resource.name, resource.type_name,
                               starts_at=stamp(starts_at if starts_at is not None else work.now), ends_at=ends))


def make_reconciler(project_dir: Path, inventory: str | None, log: Log) -> Reconciler:
    """A reconciler for a project that something was applied from, with alert channels and limits from its settings.

    Bad settings, a project with no state and an inventory that does not load
    are errors here, before any pass runs.
    """
    from clockwork.alerts import notifier_from_settings
    from clockwork.history import has_state
    from clockwork.settings import load_settings

    if not has_state(project_dir):
        raise ProjectError(f"nothing to reconcile: nothing was ever applied from {project_dir} (run clockwork apply first)")
    settings = load_settings(project_dir)
    limit = settings.flapping_limit or "5"
    if not limit.isdigit() or int(limit) < 1:
        raise ProjectError(f"CW_FLAPPING_LIMIT must be a whole number of corrections per hour (1 or more), not {limit!r}")
    place(Project(project_dir, project_dir / "main.py", []), inventory)  # the inventory loads
    return Reconciler(project_dir, inventory, log, notifier_from_settings(settings, log), int(limit))
