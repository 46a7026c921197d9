"""The conditions active now, from the reconciler's watches and host health: what Alertmanager is told each pass.

A pure function of (state before the pass, state after it, what is placed where, now); nothing here reads a
clock, a host or the store.

>>> from clockwork.resources import FileResource
>>> conf = FileResource(name="app.conf", directory="/etc", content="x", reconcile=True, on_drift="alert")
>>> drift = Watch("FileResource", "app.conf", "web-1", state="drift", since=100.0, detail="content differs")
>>> [(c.kind, c.resolved, c.ends_at) for c in active_alerts(Snapshot({}, {}), Snapshot({drift.key: drift}, {}),
...                                                              {"web-1": [conf]}, now=200.0)]
[('drift', False, 380.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clockwork.alertmanager import Condition
from clockwork.reconcile.policy import ALERT_GATE
from clockwork.reconcile.schedule import interval_seconds
from clockwork.resources.base import Resource
from clockwork.state.base import HostHealth, Watch

#: A firing condition lasts this many check intervals unless a pass sends it again (cron cadences longer than
#: Alertmanager's resolve timeout must not resolve themselves).
INTERVALS = 3
#: The check interval of a host with no resources left on it (seconds).
DEFAULT_INTERVAL = 300.0
#: The watch states that are conditions while they hold; ``expired`` is one only in the pass that expired it
#: (it then ends by itself), and any other state but ``ok``/``destroyed`` is one too (by its name).
NOT_CONDITIONS = ("ok", "destroyed", "expired")
_SUMMARIES = {"drift": "drifted", "failure": "failed: correction failed or could not be checked",
              "flapping": "keeps drifting back: no longer corrected (flapping)",
              "unstable": "differs again after Clockwork's own apply with nothing else changing it (unstable)",
              "expired": "expired and was destroyed"}


@dataclass(frozen=True)
class Snapshot:
    """The reconciler's memory at one moment: watches by (type, name, host), health of the hosts backed off.

    >>> watches = {}
    >>> before = Snapshot.of(watches, {})
    >>> watches[("FileResource", "app.conf", "web-1")] = Watch("FileResource", "app.conf", "web-1", state="drift")
    >>> len(before.watches)
    0
    """

    watches: Mapping[tuple[str, str, str], Watch]
    health: Mapping[str, HostHealth]

    @classmethod
    def of(cls, watches: Mapping[tuple[str, str, str], Watch], health: Mapping[str, HostHealth]) -> Snapshot:
        """A copy that later changes to the mappings do not touch."""
        return cls(dict(watches), dict(health))


def active_alerts(before: Snapshot, after: Snapshot, placed: Mapping[str, Sequence[Resource]], now: float,
                  hosts: set[str] | None = None) -> list[Condition]:
    """Every condition firing after a pass on ``hosts`` (default: all in ``placed``), ending ``INTERVALS`` check
    intervals from ``now``; and, resolved (ending ``now``), each one that fired before the pass and no longer does.

    Gated like the other channels: a kind is sent only when the resource's ``alert_on`` lets it out (flapping,
    unstable and unreachable by ``failure``), and drift not at all under ``on_drift="ignore"``.
    """
    chosen = {host: resources for host, resources in placed.items() if hosts is None or host in hosts}
    was = {c.key: c for c in _conditions(before, chosen, now, this_pass=False)}
    firing = _conditions(after, chosen, now, this_pass=True)
    still = {c.key for c in firing}
    resolved = [Condition(c.kind, c.host, c.resource, c.type, c.summary, c.description, c.starts_at, now, resolved=True)
                for key, c in was.items() if key not in still]
    return firing + resolved


def _conditions(state: Snapshot, placed: Mapping[str, Sequence[Resource]], now: float,
                this_pass: bool) -> list[Condition]:
    found = []
    for host, resources in placed.items():
        health = state.health.get(host)
        wait = max(health.retry_at - now, 0.0) if health is not None else 0.0
        intervals = [interval_seconds(resource.check_interval, now) for resource in resources]
        for resource, interval in zip(resources, intervals, strict=True):
            watch = state.watches.get((resource.type_name, resource.name, host))
            if watch is None or not _fires(watch, resource, now, this_pass):
                continue
            found.append(Condition(watch.state, host, resource.name, resource.type_name,
                                   f"{resource.label} on {host}: {_SUMMARIES.get(watch.state, watch.state)}",
                                   watch.detail, watch.since if watch.since is not None else now,
                                   now + INTERVALS * max(interval, wait)))
        gate = {kind for resource in resources for kind in resource.alert_on}
        if health is not None and health.alerted and "failure" in gate:
            interval = min(intervals, default=DEFAULT_INTERVAL)
            found.append(Condition("unreachable", host, None, None, f"host {host} is unreachable", health.error,
                                   health.since, now + INTERVALS * max(interval, wait)))
    return found


def _fires(watch: Watch, resource: Resource, now: float, this_pass: bool) -> bool:
    """Whether a watch is a condition now, by its state and the resource's alert gates."""
    if watch.state == "expired":
        active = this_pass and watch.since == now
    else:
        active = watch.state not in NOT_CONDITIONS
    if watch.state == "drift" and resource.on_drift == "ignore":
        return False
    return active and ALERT_GATE.get(watch.state, "failure") in resource.alert_on
