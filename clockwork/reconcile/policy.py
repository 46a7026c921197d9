"""The reconciler's rules as pure functions of (state, observation, now): watch states, flapping, alert gating,
correction backoff and unstable resources, host backoff and recovery, expiry. Nothing here reads a clock, a host or the store.

>>> watch = Watch("FileResource", "app.conf", "web-1")
>>> step = record(watch, "drift", "content differs", now=100.0, rules=Rules("FileResource 'app.conf'", "alert"))
>>> step.watch.state, [alert.kind for alert in step.alerts]
('drift', ['drift'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from clockwork.alerts import Alert
from clockwork.durations import stamp
from clockwork.reconcile.schedule import backoff, recent, warning_lead
from clockwork.state.base import HostHealth, Lifetime, Watch

#: What one pass found for one resource on one host. ``backing off``: drifted after a failed correction whose
#: backoff is not over; ``unstable``: it differs again after Clockwork's own apply with nothing else changing it (right
#: after, or on a later pass with the host as that apply left it): a Clockwork or kind bug.
Outcome = Literal["ok", "corrected", "drift", "flapping", "error", "correction failed", "backing off", "unstable"]
#: What a watch remembers about a resource on a host; ``expired``/``destroyed`` are left alone until applied again,
#: ``unstable`` is checked but not corrected until a new version.
WatchState = Literal["ok", "drift", "failure", "flapping", "unstable", "expired", "destroyed"]
LEFT_ALONE: tuple[WatchState, ...] = ("expired", "destroyed")
#: Why a drifted ``auto_correct`` pair is not corrected now (``held``).
Held = Literal["backing off", "unstable"]
#: What an outcome means for a pass's report (and ``--once``'s exit status).
REPORTED: dict[Outcome, Literal["ok", "drift", "error"]] = {
    "ok": "ok", "corrected": "ok", "drift": "drift", "flapping": "drift", "error": "error", "correction failed": "error",
    "backing off": "error", "unstable": "error"}
#: Which ``alert_on`` entry lets each kind of alert out.
ALERT_GATE = {"drift": "drift", "failure": "failure", "flapping": "failure", "unstable": "failure",
              "unreachable": "failure", "expired": "expired", "expiring": "expired"}
#: A host is reported unreachable once it failed this many times in a row (after one backoff).
UNREACHABLE_AFTER = 2

_STATE_OF: dict[Outcome, WatchState] = {
    "ok": "ok", "corrected": "ok", "drift": "drift", "flapping": "flapping", "error": "failure",
    "correction failed": "failure", "backing off": "failure", "unstable": "unstable"}


@dataclass(frozen=True)
class Rules:
    """What the policy needs to know of a resource: how it is named, what to do on drift, what to alert on."""

    label: str
    on_drift: Literal["auto_correct", "alert", "ignore"] = "auto_correct"
    alert_on: tuple[str, ...] = ("drift", "failure")
    max_duration: str | None = None


@dataclass(frozen=True)
class Event:
    """A change worth recording (``kind``: corrected, recovered, drift, flapping, error, correction-failed…)."""

    kind: str
    detail: str


@dataclass
class Step:
    """What one rule decided: the new watch, the events to record and the alerts to send."""

    watch: Watch
    events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def unchanged(watch: Watch, fingerprint: str | None, version: int | None = None) -> bool:
    """Whether a pair that differs now is as Clockwork's last verified correction left it: its ``fingerprint``
    now (of what is declared for the host and of what the host has, as the kind reads it; ``None``: unknown) is
    the one the watch kept then, for the same ``version``. Then nothing outside touched it, and its differing is
    the kind's comparison or Clockwork at fault (Puppet's idempotency rule), not drift: a cron job's or a
    person's edit changes the fingerprint."""
    return (bool(fingerprint) and fingerprint == watch.fingerprint
            and (version is None or version == watch.version))


def held(watch: Watch, now: float, version: int | None = None, fingerprint: str | None = None) -> Held | None:
    """What keeps a drifted pair from being corrected now: it is ``unstable`` (already, or now because it is
    ``unchanged`` since Clockwork's own verified correction), or the backoff after a failed correction is not
    over (``backing off``); ``None``: nothing. A new ``version`` (another than the one the watch counted for)
    clears them all: corrections never latch."""
    if version is not None and version != watch.version:
        return None
    if watch.state == "unstable" or unchanged(watch, fingerprint, version):
        return "unstable"
    return "backing off" if watch.retry_at > now else None


def may_correct(watch: Watch, on_drift: str, now: float, flapping_limit: int, version: int | None = None,
                fingerprint: str | None = None) -> bool:
    """Whether a drifted pair is corrected now: ``auto_correct``, nothing ``held`` holds it, and fewer than
    ``flapping_limit`` corrections in the last hour."""
    return (on_drift == "auto_correct" and held(watch, now, version, fingerprint) is None
            and len(recent(watch.corrections, now)) < flapping_limit)


def due(watch: Watch, now: float, version: int | None = None) -> bool:
    """Whether a pair is checked now: its next check is due, or a new ``version`` was applied since its last."""
    return watch.next_due <= now or (version is not None and version != watch.version)


def next_check(watch: Watch, due: float) -> float:
    """When a pair is checked next: at ``due`` (its interval), or sooner when a failed correction is retried."""
    return min(due, watch.retry_at) if watch.retry_at else due


#: A worker corrects a host only while at least this share of its lease is left.
LEASE_MARGIN = 0.5


def lease_holds(left: float | None, lease: float) -> bool:
    """Whether a worker may correct a host it claimed: it still holds the claim (``left`` seconds of it remain;
    ``None``: lost) and at least half a lease is left, so that the correction ends before another worker could
    take the host. Otherwise it gives the host up."""
    return left is not None and left >= lease * LEASE_MARGIN


def outcome(status: str, corrected: bool, failure: str | None, on_drift: str, holding: Held | None = None,
            unstable: bool = False) -> Outcome:
    """The outcome of a pair: its evaluation ``status`` (ok, drift, error), whether a correction ran and how it
    failed (``unstable``: its operation succeeded but the host differs right after). A drift left uncorrected
    under ``auto_correct`` is what ``holding`` says held it, else the pair is flapping."""
    if corrected:
        return ("unstable" if unstable else "correction failed") if failure else "corrected"
    if status == "drift":
        return (holding or "flapping") if on_drift == "auto_correct" else "drift"
    return "ok" if status == "ok" else "error"


def _alert(rules: Rules, watch: Watch, kind: str, status: str, summary: str, detail: str, now: float,
           starts_at: float | None = None, gate: str | None = None) -> list[Alert]:
    if (gate or ALERT_GATE.get(kind, "failure")) not in rules.alert_on:
        return []
    type_name, name, host = watch.key
    return [Alert(kind, status, summary, detail, host, name, type_name,
                  starts_at=stamp(now if starts_at is None else starts_at),
                  ends_at=stamp(now) if status == "resolved" else None)]


def record(watch: Watch, result: Outcome, detail: str, now: float, rules: Rules, version: int | None = None,
           fingerprint: str = "") -> Step:
    """A pair's new watch after ``result`` (of the resource's ``version``); on a change of state an event and
    (per ``alert_on``) an alert.

    A drift corrected in the same pass is one alert (``drift``, resolved); a pair
    back to ``ok`` resolves the alert of the state it leaves (gated by ``recovered``).
    A failed correction backs the next one off (2 s, 4 s, 8 s… at most 5 minutes);
    the count resets when the pair is as declared and with a new version. An
    ``unstable`` pair fires one ``unstable`` alert (gated by ``failure``). A
    correction keeps the ``fingerprint`` its verifying read found (see ``unchanged``);
    a failed one, and a new version, forget it.
    """
    after = dataclasses.replace(watch, corrections=list(watch.corrections), last_checked=now, last_result=result,
                                detail=detail)
    if version is not None and version != watch.version:
        after.version, after.failed_corrections, after.retry_at, after.fingerprint = version, 0, 0.0, ""
    if result in ("corrected", "correction failed"):
        after.fingerprint = fingerprint if result == "corrected" else ""
    if result == "correction failed":
        after.failed_corrections += 1
        after.retry_at = now + backoff(after.failed_corrections)
        after.detail = (f"{detail}; correction {after.failed_corrections} in a row failed, next try at "
                        f"{stamp(after.retry_at)}")
    elif result == "backing off":
        after.detail = f"{detail}; backing off after {after.failed_corrections} failed corrections, next try at " \
                       f"{stamp(after.retry_at)}"
    elif result in ("ok", "corrected"):
        after.failed_corrections, after.retry_at = 0, 0.0
    step = Step(after)
    before, host = watch.state, watch.host
    if result == "corrected":
        after.corrections = recent(watch.corrections, now) + [now]
        after.total_corrections += 1
        step.events.append(Event("corrected", detail))
        if before == "ok":
            step.alerts += _alert(rules, after, "drift", "resolved", f"{rules.label} drifted on {host}: corrected",
                                  detail, now, starts_at=now)
    state = _STATE_OF[result]
    if state == before:
        return step
    since, after.state, after.since = watch.since, state, now
    if state == "ok":
        step.events.append(Event("recovered", f"was {before}"))
        step.alerts += _alert(rules, after, before, "resolved", f"{rules.label} on {host} is as declared again",
                              f"was {before} since {stamp(since or now)}", now, starts_at=since, gate="recovered")
        return step
    step.events.append(Event({"failure": "correction-failed" if result == "correction failed" else "error"}.get(
        state, state), detail))
    if not (state == "drift" and rules.on_drift == "ignore"):
        summary = {"drift": "drifted", "flapping": "keeps drifting back: no longer corrected (flapping)",
                   "unstable": "differs again after Clockwork's own apply with nothing else changing it (unstable: "
                               "a Clockwork or kind bug, not drift); not corrected again until a new version",
                   "failure": "correction failed" if result in ("correction failed", "backing off")
                   else "could not be checked"}[state]
        step.alerts += _alert(rules, after, state, "firing", f"{rules.label} on {host}: {summary}", detail, now)
    return step


def host_failed(health: HostHealth | None, host: str, error: str, now: float, gate: set[str]) -> tuple[HostHealth, list[Alert]]:
    """A host that did not answer: one more failure, the next try after a backoff, an ``unreachable`` alert once
    it failed ``UNREACHABLE_AFTER`` times in a row (gated by ``failure`` in its resources' ``alert_on``)."""
    health = dataclasses.replace(health) if health else HostHealth(host, 0, now, now, error)
    health.failures += 1
    health.error = error
    health.retry_at = now + backoff(health.failures)
    alerts = []
    if health.failures >= UNREACHABLE_AFTER and not health.alerted:
        health.alerted = True
        if "failure" in gate:
            alerts.append(Alert("unreachable", "firing", f"host {host} is unreachable", error, host,
                                starts_at=stamp(health.since)))
    return health, alerts


def host_answered(health: HostHealth, now: float, gate: set[str]) -> list[Alert]:
    """A backed-off host answered again: it is forgotten; its alert is resolved (gated by ``recovered``)."""
    if not (health.alerted and "recovered" in gate):
        return []
    return [Alert("unreachable", "resolved", f"host {health.host} is reachable again", health.error, health.host,
                  starts_at=stamp(health.since), ends_at=stamp(now))]


def backed_off(health: HostHealth | None, now: float) -> bool:
    """Whether a host is not to be tried yet."""
    return health is not None and health.retry_at > now


ExpiryDecision = Literal["expire", "warn", "wait"]


def expiry(lifetime: Lifetime, now: float) -> ExpiryDecision:
    """``expire`` at or after its expiry; ``warn`` once within the warning lead before it; else ``wait``."""
    if now >= lifetime.expires_at:
        return "expire"
    if not lifetime.warned and now >= lifetime.expires_at - warning_lead(lifetime.expires_at - lifetime.deployed_at):
        return "warn"
    return "wait"


def expiry_warning(lifetime: Lifetime, now: float, rules: Rules) -> list[Alert]:
    """The ``expiring`` alert for a lifetime about to end (gated by ``expired``)."""
    watch = Watch(lifetime.type, lifetime.name, lifetime.host)
    return _alert(rules, watch, "expiring", "firing",
                  f"{rules.label} on {lifetime.host} expires at {stamp(lifetime.expires_at)}",
                  f"max_duration {rules.max_duration}; `clockwork extend {lifetime.name} --by DURATION` pushes it back",
                  now)


def expired(watch: Watch, detail: str, now: float, rules: Rules) -> Step:
    """A pair destroyed at its expiry: left alone until applied again, with an ``expired`` alert."""
    after = dataclasses.replace(watch, state="expired", since=now, last_result="expired", detail=detail)
    alerts = _alert(rules, after, "expired", "firing", f"{rules.label} on {watch.host} expired and was destroyed",
                    f"max_duration {rules.max_duration} reached; it stays destroyed until applied again", now)
    return Step(after, alerts=alerts)
