"""The conditions active now (clockwork.reconcile.conditions): before and after a pass, placed resources, now →
what Alertmanager is told. Pure: no host, no store, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from clockwork.reconcile.conditions import DEFAULT_INTERVAL, Snapshot, active_alerts
from clockwork.resources import FileResource
from clockwork.state.base import HostHealth, Watch

NOW = 10_000.0


def conf(name: str = "app.conf", **fields: Any) -> FileResource:
    return FileResource(**{"name": name, "directory": "rc", "content": "x\n", "reconcile": True, "check_interval": "1m",
                           **fields})


def watch(state: str, since: float = 9_000.0, name: str = "app.conf", host: str = "web-1", **fields: Any) -> Watch:
    return Watch("FileResource", name, host, state=state, since=since, detail=f"{state} detail", **fields)


def snap(*watches: Watch, health: dict[str, HostHealth] | None = None) -> Snapshot:
    return Snapshot({w.key: w for w in watches}, health or {})


def summary(conditions: list) -> list[tuple[str, str | None, str, bool, float, float]]:
    return [(c.kind, c.resource, c.host, c.resolved, c.starts_at, c.ends_at) for c in conditions]


@pytest.mark.parametrize("state", ["drift", "failure", "flapping", "unstable"])
def test_a_condition_fires_on_every_pass_while_it_holds_for_three_intervals(state: str) -> None:
    resource = conf(on_drift="alert")
    held = watch(state)
    assert summary(active_alerts(snap(held), snap(held), {"web-1": [resource]}, NOW)) == [
        (state, "app.conf", "web-1", False, 9_000.0, NOW + 3 * 60)]
    later = active_alerts(snap(held), snap(held), {"web-1": [resource]}, NOW + 60)
    assert later[0].ends_at == NOW + 60 + 3 * 60, "endsAt moves with each pass"


def test_a_condition_that_ends_is_resolved_now_once() -> None:
    placed = {"web-1": [conf(on_drift="alert")]}
    fixed = active_alerts(snap(watch("drift")), snap(watch("ok", since=NOW)), placed, NOW)
    assert summary(fixed) == [("drift", "app.conf", "web-1", True, 9_000.0, NOW)]
    assert active_alerts(snap(watch("ok", since=NOW)), snap(watch("ok", since=NOW)), placed, NOW + 60) == []


def test_a_changed_state_resolves_the_old_condition_and_fires_the_new_one() -> None:
    placed = {"web-1": [conf()]}
    moved = active_alerts(snap(watch("drift")), snap(watch("flapping", since=NOW)), placed, NOW)
    assert [(c.kind, c.resolved) for c in moved] == [("flapping", False), ("drift", True)]


def test_alert_gates_apply_as_for_the_other_channels() -> None:
    silent = {"web-1": [conf(alert_on=["drift"])]}
    assert active_alerts(snap(), snap(watch("failure")), silent, NOW) == []  # no "failure" in alert_on
    assert active_alerts(snap(), snap(watch("flapping")), silent, NOW) == []  # flapping is a failure
    assert active_alerts(snap(), snap(watch("drift")), {"web-1": [conf(on_drift="ignore")]}, NOW) == []
    assert active_alerts(snap(), snap(watch("drift")), {"web-1": [conf(alert_on=[])]}, NOW) == []


def test_expired_fires_in_the_pass_that_expired_it_and_then_ends_by_itself() -> None:
    placed = {"web-1": [conf(max_duration="2h", alert_on=["expired"])]}
    expired = watch("expired", since=NOW)
    assert summary(active_alerts(snap(), snap(expired), placed, NOW)) == [
        ("expired", "app.conf", "web-1", False, NOW, NOW + 180)]
    assert active_alerts(snap(expired), snap(expired), placed, NOW + 60) == [], "not again, and not resolved"


def test_an_unreachable_host_fires_once_alerted_with_the_smallest_interval_or_its_retry() -> None:
    placed = {"web-1": [conf(), conf("slow.conf", check_interval="1h")]}
    trying = HostHealth("web-1", 1, NOW + 2, 9_000.0, "timed out")
    assert active_alerts(snap(), snap(health={"web-1": trying}), placed, NOW) == [], "not before it was alerted"
    alerted = HostHealth("web-1", 3, NOW + 8, 9_000.0, "timed out", alerted=True)
    assert summary(active_alerts(snap(), snap(health={"web-1": alerted}), placed, NOW)) == [
        ("unreachable", None, "web-1", False, 9_000.0, NOW + 3 * 60)]
    far = HostHealth("web-1", 9, NOW + 300, 9_000.0, "timed out", alerted=True)
    assert active_alerts(snap(), snap(health={"web-1": far}), placed, NOW)[0].ends_at == NOW + 3 * 300, \
        "backed off longer than an interval: it lasts until three retries"
    back = active_alerts(snap(health={"web-1": alerted}), snap(), placed, NOW)
    assert summary(back) == [("unreachable", None, "web-1", True, 9_000.0, NOW)]
    empty = active_alerts(snap(), snap(health={"web-2": alerted}), {"web-2": []}, NOW)
    assert empty == [], "a host with no resources alerts nothing (no alert_on lets it out)"
    assert DEFAULT_INTERVAL == 300.0


def test_resources_on_a_backed_off_host_last_until_it_is_tried_again() -> None:
    far = HostHealth("web-1", 9, NOW + 600, 9_000.0, "timed out", alerted=True)
    conditions = active_alerts(snap(), snap(watch("drift"), health={"web-1": far}), {"web-1": [conf(on_drift="alert")]}, NOW)
    assert [(c.kind, c.ends_at) for c in conditions] == [("drift", NOW + 1800), ("unreachable", NOW + 1800)]


def test_only_the_hosts_of_the_pass_are_told() -> None:
    placed = {"web-1": [conf(on_drift="alert")], "web-2": [conf(on_drift="alert")]}
    both = snap(watch("drift"), watch("drift", host="web-2"))
    assert [c.host for c in active_alerts(both, both, placed, NOW, hosts={"web-2"})] == ["web-2"]
    assert [c.host for c in active_alerts(both, both, placed, NOW)] == ["web-1", "web-2"]


def test_a_condition_says_what_and_since_when() -> None:
    [condition] = active_alerts(snap(), snap(watch("drift")), {"web-1": [conf(on_drift="alert")]}, NOW)
    assert condition.summary == "FileResource 'app.conf' on web-1: drifted"
    assert condition.description == "drift detail"
    assert condition.labels("shop") == {"alertname": "ClockworkDrift", "project": "shop", "resource": "app.conf",
                                        "type": "FileResource", "host": "web-1", "severity": "warning",
                                        "intent": "corrective"}
    unknown = active_alerts(snap(), snap(watch("wobbly")), {"web-1": [conf()]}, NOW)
    assert unknown[0].labels("shop")["alertname"] == "ClockworkWobbly", "a new state is a condition by its name"
