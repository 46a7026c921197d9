"""One reconcile pass: evaluate what is due, correct or alert by ``on_drift``, end expired resources, alert on changes."""

from __future__ import annotations

import functools
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from clockwork.alerts import Alert, Notifier, notifier_from_settings
from clockwork.commands.destroy import remove
from pyinfra.api import Inventory

from clockwork.engine import Action, Pipeline, Reading
from clockwork.exceptions import ClockworkError, ProjectError
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.reconcile.desired import Desired, desired_state
from clockwork.reconcile.fingerprint import fingerprint
from clockwork.reconcile import conditions, policy
from clockwork.durations import stamp
from clockwork.reconcile.schedule import backoff, interval_seconds, jitter, warning_lead
from clockwork.record import CORRECTIVE
from clockwork.resources.base import Resource
from clockwork.results import Evaluation, Report, Result
from clockwork.settings import Settings
from clockwork.state import connect_store, open_store, project_name, state_exists
from clockwork.state.base import Claim, HostHealth, Lifetime, PassWrites, StateStore, Watch

#: How long a pass waits for an apply or update to release the project's lock.
PASS_LOCK_WAIT = 5.0
#: A host where nothing is due is looked at again after this long.
IDLE_RECHECK = 3600.0

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
    #: The hosts this worker claimed for the pass, and those whose results another worker's claim overrode.
    claimed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def then(self, later: PassOutcome) -> PassOutcome:
        """This pass and a ``later`` one as one outcome (``--once`` over more hosts than one claim takes)."""
        report = Report(self.report.results + later.report.results, sorted({*self.report.hosts, *later.report.hosts}),
                        {**self.report.unreachable, **later.report.unreachable}, later.report.resources)
        return PassOutcome(report, later.next_wake, self.corrected + later.corrected, self.expired + later.expired,
                           later.looked_after, self.claimed + later.claimed, self.rejected + later.rejected)


@dataclass
class _Pass:
    """The working state of one pass."""

    store: StateStore
    now: float
    desired: Desired
    placement: Placement
    watches: dict[tuple[str, str, str], Watch]
    health: dict[str, HostHealth]
    #: Everything the pass records, written when it ends, in one transaction, for the hosts it still holds.
    writes: PassWrites
    claims: list[Claim] = field(default_factory=list)
    #: Hosts given up before changing them: too little of their lease was left.
    given_up: set[str] = field(default_factory=set)
    alerts: list[Alert] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def watch(self, resource: Resource, host: str) -> Watch:
        key = (resource.type_name, resource.name, host)
        if key not in self.watches:
            self.watches[key] = Watch(*key)
        return self.watches[key]

    def backed_off(self, host: str) -> bool:
        return policy.backed_off(self.health.get(host), self.now)

    @functools.cached_property
    def key(self) -> bytes:
        """The project's key for the pairs' fingerprints (keyed hashes: a host's state may hold secret values)."""
        return self.store.secret_key()


class Reconciler:
    """Runs passes over a project's recorded resources; never calls a model (values are pinned in the versions).

    .. code:: python

        reconciler = Reconciler(Path("/srv/proj"), load_settings(Path("/srv/proj")), inventory="inventory.py")
        outcome = reconciler.run_pass()
        outcome.report.status, outcome.corrected  # ('ok', 1)
    """

    def __init__(self, project_dir: Path, settings: Settings, inventory: str | None = None,
                 log: Log = lambda event, fields: None, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.time, loaded: Inventory | None = None,
                 worker: str | None = None) -> None:
        self.project_dir = project_dir
        #: The validated settings: the store, the flapping limit, leases and capacity, and the alert channels
        #: unless ``notifier`` is given.
        self.settings = settings
        self.inventory = inventory
        self.log = log
        self.notifier = notifier if notifier is not None else notifier_from_settings(
            settings, log, project_name(project_dir, settings))
        self.clock = clock
        #: ``loaded``: the inventory already loaded (and checked) by whoever made the reconciler, used by its
        #: first pass; later passes load it again (hosts and States serve one run each, the file may change).
        self._preloaded = loaded
        #: This worker's name among the project's workers: its machine, its pid and a random part.
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease = float(settings.reconcile_lease)
        self._beats: StateStore | None = None
        self._heart: gevent.Greenlet | None = None
        #: The claims of the pass running now, its store, and until when (monotonic) its leases surely hold.
        self._held: list[Claim] = []
        self._pass_store: StateStore | None = None
        self._lease_until = 0.0

    def run_pass(self) -> PassOutcome:
        """Claim the hosts that are due (up to ``CW_RECONCILE_CAPACITY``, none another worker holds), evaluate
        their due resources, act on drift, end expired resources, record it all in one transaction that only
        counts where the claims still hold, then send the alerts of this pass. A pass that fails gives its
        hosts back.

        Holds the project's lock shared with other workers (waiting at most 5 s
        for an apply; the heartbeats keep it, so that a frozen worker loses it within
        a lease); raises ``LockTimeout`` when it could not get it.
        """
        self._start_heartbeats()
        with (open_store(self.project_dir, self.settings, lock_timeout=PASS_LOCK_WAIT) as store,
              store.writer("reconcile", record=False, shared=True, stale_after=self.lease)):
            work = self._prepare(store)
            before = conditions.Snapshot.of(work.watches, work.health)  # what Alertmanager was told is active
            self._pass_store = store
            try:
                corrected, expired, rejected, next_wake = self._work(store, work)
            except BaseException:
                self._give_back(store, work.claims)
                raise
            finally:
                self._held, self._pass_store = [], None
        dropped = set(rejected) | work.given_up
        active = conditions.active_alerts(before, conditions.Snapshot(work.watches, work.health),
                                          work.placement.resources, work.now, set(work.placement.resources) - dropped)
        self.notifier.send([alert for alert in work.alerts if alert.host not in dropped], active=active)
        results = [result for result in work.results if result.host not in dropped]
        report = Report(results, sorted({r.host for r in results}), work.unreachable, len(work.desired.reconciled))
        self.log("pass", {"evaluated": len(results), "corrected": corrected, "expired": expired, "hosts": len(work.claims),
                          "status": report.status, "next_due": stamp(next_wake) if next_wake is not None else None})
        looked_after = sum(1 for resource in work.desired.resources if resource.reconcile or resource.lifetime)
        return PassOutcome(report, float("inf") if next_wake is None else next_wake, corrected, expired, looked_after,
                           [claim.host for claim in work.claims], rejected)

    def _work(self, store: StateStore, work: _Pass) -> tuple[int, int, list[str], float | None]:
        """The pass on its claimed hosts: corrections, expiries, and the fenced record of it all. Returns how many
        were corrected and expired, the hosts whose results were rejected, and when the next pass is due."""
        if work.claims:
            self.log("claimed", {"worker": self.worker, "fences": {claim.host: claim.fence for claim in work.claims}})
        expiring = self._expiring(work)
        due = self._due(work, expiring)
        hosts = [host for host in work.placement.hosts if host in due or host in expiring]
        # One connection per host for the whole pass: read, correct, verify, expire, manifests.
        with Pipeline.open(work.placement.only(hosts)) as pipeline:
            corrected = self._evaluate(work, due, pipeline)
            expired = self._expire(work, expiring, pipeline, answered=set(due))
        work.writes.save_watches(list(work.watches.values()))
        next_due, gone = self._next_due(work)
        for host in work.given_up:
            work.writes.discard(host)
            next_due[host] = work.now
            self.log("gave-up", {"host": host, "detail": "too little of its lease was left to change it"})
        rejected = store.finish_pass(self.worker, work.claims, work.writes, next_due, gone)
        for host in rejected:
            self.log("lease-lost", {"host": host, "detail": "another worker claimed it, or an apply changed it: "
                                                            "this pass's results for it were not recorded"})
        return corrected, expired, rejected, store.next_due(work.now)

    def _give_back(self, store: StateStore, claims: list[Claim]) -> None:
        """After a failed pass: its hosts go back at once (when the store still answers; else their leases end)."""
        try:
            store.release(self.worker, claims)
        except ClockworkError as error:
            self.log("error", {"detail": f"could not give back {len(claims)} hosts: {error}"})

    def run_once(self) -> PassOutcome:
        """``reconcile --once``: passes until every host due now was taken (several when more hosts are due than
        one claim takes, ``CW_RECONCILE_CAPACITY``; never twice the same hosts), as one outcome."""
        outcome = last = self.run_pass()
        seen = set(last.claimed)
        while len(last.claimed) >= self.settings.reconcile_capacity and last.next_wake <= self.clock():
            last = self.run_pass()
            outcome = outcome.then(last)
            if not set(last.claimed) - seen:
                break
            seen |= set(last.claimed)
        return outcome

    def close(self) -> None:
        """Stop the heartbeats and retire this worker: the hosts it holds go back to the others at once; wait
        (boundedly) for the alerts still queued."""
        self.notifier.flush()
        if self._heart is not None:
            self._heart.kill()
            self._heart = None
        if self._beats is not None:
            try:
                self._beats.retire_worker(self.worker)
            except ClockworkError as error:
                self.log("error", {"detail": f"could not retire worker {self.worker}: {error}"})
            self._beats.close()
            self._beats = None

    def watch_changes(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` when an apply, update, rollback or extend of the project commits (PostgreSQL's
        NOTIFY; on SQLite this returns at once)."""
        failures = 0
        while True:
            try:
                store = connect_store(self.project_dir, self.settings)
            except ClockworkError as error:  # the database is away: the passes say so; listen again later
                failures += 1
                self.log("listen-failed", {"detail": str(error), "failures": failures})
                gevent.sleep(min(backoff(failures), 30.0))
                continue
            try:
                return store.watch_changes(on_change)
            finally:
                store.close()

    # Heartbeats ----------------------------------------------------------------------

    def _start_heartbeats(self) -> None:
        if self._heart is None:
            self._beats = connect_store(self.project_dir, self.settings)
            self._beats.register_worker(self.worker, self.lease)
            self._heart = gevent.spawn(self._beat)

    def _beat(self) -> None:
        """Every third of a lease: this worker is alive, the claims of the pass it works on last a lease more, and
        that pass keeps the project's lock."""
        while True:
            gevent.sleep(self.lease / 3)
            started = time.monotonic()
            try:
                if self._beats is None:
                    self._beats = connect_store(self.project_dir, self.settings)
                    self._beats.register_worker(self.worker, self.lease)
                held = list(self._held)
                self._beats.heartbeat(self.worker, self.lease, held)
                if held and held == self._held:
                    self._lease_until = started + self.lease
                if self._pass_store is not None:
                    self._pass_store.keep_lock()
            except Exception as error:  # noqa: BLE001 (the database is away, or worse: beat again, never stop)
                self.log("heartbeat-failed", {"detail": str(error) or type(error).__name__})
                if self._beats is not None:
                    self._beats.close()
                    self._beats = None

    # Steps ---------------------------------------------------------------------------

    def _prepare(self, store: StateStore) -> _Pass:
        """What is recorded and where it is placed; then the hosts this worker claims, and the pass limited to them."""
        desired = desired_state(store, self.project_dir)
        for problem in desired.problems:
            self.log("error", {"detail": problem})
        looked_after = [resource for resource in desired.resources if resource.reconcile or resource.lifetime]
        refs = {resource.ref for resource in looked_after}
        # And what a correction of those may restart (a service's restart_on), reconciled itself or not.
        looked_after = [resource for resource in desired.resources
                        if resource.ref in refs or refs & set(resource.dependencies())]
        preloaded, self._preloaded = self._preloaded, None
        placement = place(Project(self.project_dir, self.project_dir / "main.py", looked_after), self.inventory,
                          loaded=preloaded)
        now = self.clock()
        store.add_hosts([host for host in placement.hosts if placement.resources.get(host)])
        asked = time.monotonic()
        claims = store.claim(self.worker, now, self.settings.reconcile_capacity, self.lease)
        self._held, self._lease_until = claims, asked + self.lease
        claimed = [claim.host for claim in claims]
        work = _Pass(store, now, desired, placement.only(claimed), store.watches(), store.host_health(),
                     PassWrites(now), claims)
        for host, health in work.health.items():  # reported by every pass until it is tried again
            if placement.resources.get(host) and work.backed_off(host):
                work.unreachable[host] = f"{health.error} (backing off: next try at {stamp(health.retry_at)})"
        return work

    def _expiring(self, work: _Pass) -> dict[str, list[tuple[Resource, Lifetime]]]:
        """Per host, the resources past their expiry; sends the warning for those about to expire."""
        expiring: dict[str, list[tuple[Resource, Lifetime]]] = {}
        for lifetime in work.store.lifetimes():
            resource = work.desired.get(lifetime.type, lifetime.name)
            if resource is None or lifetime.host not in work.placement.resources or work.backed_off(lifetime.host):
                continue
            decision = policy.expiry(lifetime, work.now)
            if decision == "expire":
                expiring.setdefault(lifetime.host, []).append((resource, lifetime))
            elif decision == "warn":
                work.alerts += policy.expiry_warning(lifetime, work.now, _rules(resource))
                work.writes.set_warned(lifetime.type, lifetime.name, lifetime.host)
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
                        or (watch is not None and (watch.state in policy.LEFT_ALONE
                                                   or not policy.due(watch, work.now, self._version(work, resource))))):
                    continue
                due.setdefault(host, []).append(resource)
        return due

    def _evaluate(self, work: _Pass, due: dict[str, list[Resource]], pipeline: Pipeline) -> int:
        """Read the due pairs (one round trip per host), correct what drifted where allowed, verify. Returns corrections."""
        if not due:
            return 0
        placement = Placement(work.placement.inventory, [h for h in work.placement.hosts if h in due],
                              {host: _with_handlers(resources, work.placement.resources[host]) for host, resources in due.items()},
                              work.placement.source, self.project_dir)
        checked = {(host, resource.ref) for host, resources in due.items() for resource in resources}
        prints: dict[tuple[str, str, str], str | None] = {}  # of the drifted pairs that a correction fingerprinted

        def correct(reading: Reading) -> Action | None:
            if (reading.host.name, reading.resource.ref) not in checked:
                return None  # there only to run its handler (a service's restart_on) after a correction
            if reading.evaluation.status != "drift":
                return None
            prints[_key(reading)] = self._fingerprint_now(work, reading, pipeline)
            if not self._may_correct(work, reading, prints[_key(reading)]):
                return None
            return "apply" if self._lease_holds(work, reading.host.name) else None

        run = pipeline.run(placement, correct)
        unreachable = run.unreachable
        verified, settled = self._verify(work, [step.reading for step in run.steps
                                                if step.outcome and not step.outcome.error], pipeline)
        unstable = {key for key, (_detail, again) in verified.items() if again}
        self._hosts_answered(work, list(due), unreachable)
        shares = {host: random.random() for host in due}  # one jitter share per host: its checks stay in one read
        corrected = 0
        for step in run.steps:
            reading, operation = step.reading, step.outcome
            host = reading.host.name
            if host in unreachable or (host, reading.resource.ref) not in checked:
                continue
            failure, key, watch = None, _key(reading), work.watch(reading.resource, host)
            if operation is not None:
                failure = operation.error or verified.get(key, (None, False))[0]
            holding = policy.held(watch, work.now, self._version(work, reading.resource), prints.get(key))
            again = operation is not None and operation.error is None and key in unstable
            result = policy.outcome(reading.evaluation.status, operation is not None, failure,
                                    reading.resource.on_drift, holding, again)
            corrected += result == "corrected"
            detail = failure or reading.evaluation.detail or ""
            if result == "unstable" and operation is None and watch.state != "unstable":
                detail = f"differs with the host as Clockwork's own correction left it: {detail}"
            self._record(work, reading.resource, host, result, detail, settled.get(key) or "")
            interval = interval_seconds(reading.resource.check_interval, work.now)
            watch = work.watch(reading.resource, host)
            watch.next_due = policy.next_check(watch, work.now + interval + jitter(interval, shares[host]))
        return corrected

    def _lease_holds(self, work: _Pass, host: str) -> bool:
        """Whether enough of the host's lease surely is left to change it (the claim, or the last heartbeat that
        renewed it, was asked for before then); else it is given up."""
        if not policy.lease_holds(self._lease_until - time.monotonic(), self.lease):
            work.given_up.add(host)
        return host not in work.given_up

    def _may_correct(self, work: _Pass, reading: Reading, found: str | None) -> bool:
        return policy.may_correct(work.watch(reading.resource, reading.host.name), reading.resource.on_drift,
                                  work.now, self.settings.flapping_limit, self._version(work, reading.resource), found)

    def _fingerprint_now(self, work: _Pass, reading: Reading, pipeline: Pipeline) -> str | None:
        """The fingerprint of a drifted pair, when its own state differs (not only a health check) and a correction
        of Clockwork's left a fingerprint to compare it with; else ``None``."""
        if (not work.watch(reading.resource, reading.host.name).fingerprint or reading.observed is None
                or not _state_differs(reading.evaluation)):
            return None
        return fingerprint(reading.resource, pipeline.target(reading.host), reading.observed, work.key)

    def _version(self, work: _Pass, resource: Resource) -> int | None:
        return work.desired.versions.get((resource.type_name, resource.name))

    def _verify(self, work: _Pass, corrected: list[Reading], pipeline: Pipeline
                ) -> tuple[dict[tuple[str, str, str], tuple[str, bool]], dict[tuple[str, str, str], str | None]]:
        """Read the corrected pairs again, on the same connections; returns the ones still not as declared, with
        why and whether their own state differs (unstable: the apply did not make it true) rather than only a
        health check failing; and the fingerprints of the ones as declared now (as the correction left them)."""
        if not corrected:
            return {}, {}
        resources: dict[str, list[Resource]] = {}
        for reading in corrected:
            resources.setdefault(reading.host.name, []).append(reading.resource)
        placement = Placement(work.placement.inventory, list(resources), resources, work.placement.source,
                              self.project_dir)
        readings = pipeline.read(placement).readings
        return ({_key(r): (f"still not as declared: {r.evaluation.detail}", _state_differs(r.evaluation))
                 for r in readings if r.evaluation.status != "ok"},
                {_key(r): fingerprint(r.resource, pipeline.target(r.host), r.observed, work.key)
                 for r in readings if r.evaluation.status == "ok" and r.observed is not None})

    def _record(self, work: _Pass, resource: Resource, host: str, result: policy.Outcome, detail: str,
                settled: str = "") -> None:
        """Store one pair's result with the policy's events and alerts (``settled``: the fingerprint of a verified
        correction)."""
        step = policy.record(work.watch(resource, host), result, detail, work.now, _rules(resource),
                             self._version(work, resource), settled)
        self._apply(work, resource, step)
        reported = policy.REPORTED[result]
        work.results.append(Result(host, resource.name, resource.type_name, reported,
                                   detail if result == "ok" else f"{result}: {detail}" if detail else result,
                                   changed=result == "corrected", error=detail if reported == "error" else None))

    def _apply(self, work: _Pass, resource: Resource, step: policy.Step) -> None:
        work.watches[step.watch.key] = step.watch
        for event in step.events:
            self._event(work, event.kind, resource, step.watch.host, event.detail)
        work.alerts += step.alerts

    def _hosts_answered(self, work: _Pass, hosts: list[str], unreachable: dict[str, str]) -> None:
        """Back off the hosts that did not answer; alert once a host stays unreachable, and when it is back."""
        changed, recovered = [], []
        for host in hosts:
            health, gate = work.health.get(host), self._host_gate(work, host)
            if host not in unreachable:
                if health is not None:
                    recovered.append(host)
                    self.log("host-recovered", {"host": host, "after_failures": health.failures})
                    work.alerts += policy.host_answered(health, work.now, gate)
                continue
            error = unreachable[host]
            health, alerts = policy.host_failed(health, host, error, work.now, gate)
            work.health[host], work.unreachable[host] = health, error
            work.alerts += alerts
            self.log("unreachable", {"host": host, "failures": health.failures,
                                     "retry_in": round(health.retry_at - work.now, 1), "error": error})
            changed.append(health)
            for resource in work.placement.resources.get(host, []):
                if resource.reconcile:
                    work.results.append(Result(host, resource.name, resource.type_name, "error",
                                               f"host unreachable: {error}", error=error))
        work.writes.save_host_health(changed, recovered)
        for host in recovered:
            del work.health[host]

    def _host_gate(self, work: _Pass, host: str) -> set[str]:
        """Everything the resources on a host alert on."""
        return {kind for resource in work.placement.resources.get(host, []) for kind in resource.alert_on}

    def _expire(self, work: _Pass, expiring: dict[str, list[tuple[Resource, Lifetime]]], pipeline: Pipeline,
                answered: set[str]) -> int:
        """Destroy what is past its expiry; it stays destroyed until applied again; a host that does not answer is
        backed off (unless the checks of this pass did that already: ``answered``). Returns how many were removed."""
        expiring = {host: pairs for host, pairs in expiring.items() if self._lease_holds(work, host)}
        if not expiring:
            return 0
        resources = {host: [resource for resource, _ in pairs] for host, pairs in expiring.items()}
        by_key = {(r.type_name, r.name): r for pairs in resources.values() for r in pairs}
        placement = Placement(work.placement.inventory, [h for h in work.placement.hosts if h in resources], resources,
                              work.placement.source, self.project_dir)
        report = remove(work.writes, placement, None, len(work.desired.resources), kind="expired", pipeline=pipeline)
        self._hosts_answered(work, [host for host in placement.hosts if host not in answered], report.unreachable)
        for result in report.results:
            resource = by_key[(result.type, result.resource)]
            if result.status != "ok":
                self.log("expire-failed", {"type": result.type, "resource": result.resource, "host": result.host,
                                           "detail": result.error or result.detail})
                continue
            step = policy.expired(work.watch(resource, result.host), result.detail, work.now, _rules(resource))
            work.watches[step.watch.key] = step.watch
            work.alerts += step.alerts
            self.log("expired", {"type": result.type, "resource": result.resource, "host": result.host,
                                 "detail": result.detail})
            work.results.append(Result(result.host, result.resource, result.type, "ok", f"expired: {result.detail}",
                                       changed=result.changed))
        return sum(1 for result in report.results if result.status == "ok")

    def _next_due(self, work: _Pass) -> tuple[dict[str, float], list[str]]:
        """Per claimed host, the earliest moment something is due there: a check, an expiry or its warning, or
        a backed-off host's retry (nothing: in an hour, in case the inventory places something there); and the
        claimed hosts where nothing is placed any more (forgotten until they are added again)."""
        moments: dict[str, list[float]] = {host: [] for host in work.placement.resources}
        for host, health in work.health.items():
            if host in moments:
                moments[host].append(health.retry_at)
        for host, resources in work.placement.resources.items():
            if work.backed_off(host):
                continue
            for resource in resources:
                watch = work.watches.get((resource.type_name, resource.name, host))
                if resource.reconcile and not (watch is not None and watch.state in policy.LEFT_ALONE):
                    moments[host].append(watch.next_due if watch is not None else work.now)
        for lifetime in work.store.lifetimes():
            if lifetime.host in work.placement.resources and not work.backed_off(lifetime.host):
                lead = warning_lead(lifetime.expires_at - lifetime.deployed_at)
                moments[lifetime.host].append(lifetime.expires_at if lifetime.warned else lifetime.expires_at - lead)
        gone = [claim.host for claim in work.claims if not work.placement.resources.get(claim.host)]
        return {host: min(times, default=work.now + IDLE_RECHECK) for host, times in moments.items()}, gone

    # Events and alerts --------------------------------------------------------------

    def _event(self, work: _Pass, kind: str, resource: Resource, host: str, detail: str) -> None:
        work.writes.record_event(kind, resource.type_name, resource.name, host, detail, CORRECTIVE)
        self.log(kind, {"type": resource.type_name, "resource": resource.name, "host": host, "detail": detail})


def _key(reading: Reading) -> tuple[str, str, str]:
    """A reading's (host, type, name)."""
    return (reading.host.name, reading.resource.type_name, reading.resource.name)


def _state_differs(evaluation: Evaluation) -> bool:
    """Whether the resource's own state differs, rather than only a health check failing."""
    return any(not diff.field.startswith("checks[") for diff in evaluation.diffs)


def _rules(resource: Resource) -> policy.Rules:
    return policy.Rules(resource.label, resource.on_drift, tuple(resource.alert_on), resource.max_duration)


def make_reconciler(project_dir: Path, inventory: str | None, log: Log, settings: Settings) -> Reconciler:
    """A reconciler for a project that something was applied from, with alert channels and limits from its
    (validated) settings.

    A project with no state and an inventory that does not load are errors here, before any pass runs.
    """
    if not state_exists(project_dir, settings):
        raise ProjectError(f"nothing to reconcile: nothing was ever applied from {project_dir} (run clockwork apply first)")
    checked = place(Project(project_dir, project_dir / "main.py", []), inventory)  # the inventory loads
    return Reconciler(project_dir, settings, inventory, log, loaded=checked.inventory)


def _with_handlers(due: list[Resource], placed: list[Resource]) -> list[Resource]:
    """The due resources of a host and, in declaration order, those placed there whose handler a correction of
    one of them may run (a service that ``restart_on`` names a due file), so that a correction restarts it too."""
    refs = {resource.ref for resource in due}
    return [resource for resource in placed if resource in due or refs & set(resource.dependencies())]
