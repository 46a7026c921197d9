"""The Alertmanager API channel against a real Alertmanager (testsupport/alertmanager.py) that notifies the
loopback webhook receiver: what it holds while a condition lasts, firing then resolved, every instance, no
alert without labels; and end to end through ``clockwork reconcile --once`` on the fleet."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clockwork.alertmanager import AlertmanagerChannel, Condition
from clockwork.alerts import Notifier
from tests.conftest import CwProject
from tests.test_reconcile_ssh import drift, make_due
from testsupport.alertmanager import Alertmanager
from testsupport.fleet import Fleet, wait_until
from testsupport.receivers import HttpReceiver

LABELS = {"alertname": "ClockworkDrift", "project": "shop", "resource": "app.conf", "type": "FileResource",
          "host": "web-1", "severity": "warning", "intent": "corrective"}


def drifted(now: float, ends_in: float = 180.0, resolved: bool = False) -> Condition:
    return Condition("drift", "web-1", "app.conf", "FileResource", "FileResource 'app.conf' on web-1: drifted",
                     "content differs", starts_at=now - 60, ends_at=now if resolved else now + ends_in, resolved=resolved)


def epoch(stamp: str) -> float:
    """Alertmanager's ``2026-12-02T17:16:28.480Z`` as epoch seconds."""
    return calendar.timegm(time.strptime(stamp.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))


def notified(receiver: HttpReceiver) -> list[tuple[str, dict[str, str]]]:
    """(status, labels) of every alert Alertmanager's webhook notifications carried, in order."""
    return [(alert["status"], alert["labels"]) for request in receiver.requests for alert in request.body["alerts"]]


def send(notifier: Notifier, *conditions: Condition) -> None:
    notifier.send([], active=list(conditions))
    notifier.flush()


def test_a_condition_is_active_while_it_is_sent_and_the_receiver_gets_firing_then_resolved(
    alertmanager: Alertmanager, http_receiver: HttpReceiver
) -> None:
    notifier = Notifier([], current=[AlertmanagerChannel([alertmanager.url], "shop")])
    now = time.time()
    send(notifier, drifted(now))
    [held] = alertmanager.active("ClockworkDrift")
    assert held["labels"] == LABELS
    assert held["annotations"] == {"summary": "FileResource 'app.conf' on web-1: drifted", "description": "content differs"}
    assert abs(epoch(held["startsAt"]) - (now - 60)) <= 1 and abs(epoch(held["endsAt"]) - (now + 180)) <= 1
    wait_until(lambda: notified(http_receiver), 20, "Alertmanager's firing notification")
    assert notified(http_receiver)[0] == ("firing", LABELS)

    send(notifier, drifted(time.time(), resolved=True))
    assert alertmanager.active("ClockworkDrift") == []
    wait_until(lambda: ("resolved", LABELS) in notified(http_receiver), 20, "Alertmanager's resolved notification")
    statuses = [status for status, _ in notified(http_receiver)]
    assert statuses[-1] == "resolved" and set(statuses[:-1]) == {"firing"}


def test_each_pass_sends_it_again_and_its_end_moves(alertmanager: Alertmanager) -> None:
    notifier = Notifier([], current=[AlertmanagerChannel([alertmanager.url], "shop")])
    now = time.time()
    send(notifier, drifted(now, ends_in=100))
    first = epoch(alertmanager.active("ClockworkDrift")[0]["endsAt"])
    send(notifier, drifted(now + 50, ends_in=100))
    [held] = alertmanager.active("ClockworkDrift")
    assert epoch(held["endsAt"]) - first == pytest.approx(50, abs=1)
    assert abs(epoch(held["startsAt"]) - (now - 60)) <= 1, "it began when the condition began, not at the re-send"


def test_every_instance_gets_it(start_alertmanager: Callable[[str], Alertmanager], http_receiver: HttpReceiver) -> None:
    managers = [start_alertmanager(http_receiver.url), start_alertmanager(http_receiver.url)]
    notifier = Notifier([], current=[AlertmanagerChannel([manager.url for manager in managers], "shop")])
    send(notifier, drifted(time.time()))
    assert [[alert["labels"] for alert in manager.active()] for manager in managers] == [[LABELS], [LABELS]]


def test_one_dead_instance_does_not_keep_it_from_the_others(alertmanager: Alertmanager) -> None:
    from testsupport.fleet import closed_port

    log: list[tuple[str, dict[str, Any]]] = []
    channel = AlertmanagerChannel([f"http://127.0.0.1:{closed_port()}", alertmanager.url], "shop", timeout=1)
    notifier = Notifier([], lambda event, fields: log.append((event, fields)), attempts=1, current=[channel])
    send(notifier, drifted(time.time()))
    assert [alert["labels"] for alert in alertmanager.active()] == [LABELS]
    assert [event for event, _ in log] == ["alert-failed"]
    assert "Connection refused" in log[0][1]["error"] and alertmanager.url not in log[0][1]["error"]


class Unlabelled(Condition):
    def labels(self, project: str) -> dict[str, str]:
        return {}


def test_an_alert_without_labels_is_never_sent(alertmanager: Alertmanager) -> None:
    """Alertmanager answers 400 to a post with one entry without labels (a failed delivery, tried again and
    again, though it took the others), so such an entry is left out."""
    status, answer = alertmanager.post([{"labels": {}}])
    assert (status, answer.strip()) == (400, '"at least one label pair required"')
    assert alertmanager.alerts() == []
    assert alertmanager.post([{"labels": {"alertname": "Other"}}, {"labels": {}}])[0] == 400
    alertmanager.post([{"labels": {"alertname": "Other"}, "endsAt": "2000-01-01T00:00:00Z"}])  # gone again

    log: list[tuple[str, dict[str, Any]]] = []
    channel = AlertmanagerChannel([alertmanager.url], "shop", log=lambda event, fields: log.append((event, fields)))
    nameless = Unlabelled("drift", "web-2", None, None, "nameless", "", time.time(), time.time() + 60)
    channel.deliver([drifted(time.time()), nameless])
    assert [alert["labels"] for alert in alertmanager.active()] == [LABELS]
    assert log == [("alert-dropped", {"channel": "alertmanager", "detail": "an alert without labels is never sent",
                                      "summary": "nameless"})]
    channel.deliver([nameless])  # nothing left to send: no request at all
    assert len(alertmanager.active()) == 1


# End to end: clockwork reconcile --once on the fleet ----------------------------------------

WATCHED = """\
from clockwork.resources import FileResource

watched = FileResource(name="watched.conf", directory="rc", content="mode = watched\\n",
                       reconcile=True, check_interval="1h", on_drift="alert")
"""


@pytest.fixture
def apprise() -> Iterator[HttpReceiver]:
    """Another loopback HTTP receiver, for apprise's json://."""
    with HttpReceiver() as receiver:
        yield receiver


def test_reconcile_tells_alertmanager_on_every_pass_while_drift_holds_and_resolves_it(
    fleet: Fleet, make_project: Callable[..., CwProject], alertmanager: Alertmanager, http_receiver: HttpReceiver,
    apprise: HttpReceiver
) -> None:
    """And, beside it, apprise (a change channel) is told once: Clockwork's once-per-change rule is its."""
    project = make_project(fleet, WATCHED)
    (project.directory / ".env").write_text(f"CW_ALERT_ALERTMANAGER_URLS={alertmanager.url}\nCW_PROJECT=shop\n"
                                            f"CW_ALERT_APPRISE_URLS=json://127.0.0.1:{apprise.port}/apprise\n")
    assert project.cw("apply").exit_code == 0
    first = fleet.hosts[0]
    drift(fleet, first, "watched.conf")
    began = time.time()
    assert project.cw("reconcile", "--once").exit_code == 1
    [held] = alertmanager.active()
    assert held["labels"] == {"alertname": "ClockworkDrift", "project": "shop", "resource": "watched.conf",
                              "type": "FileResource", "host": first.name, "severity": "warning", "intent": "corrective"}
    assert held["annotations"]["summary"] == f"FileResource 'watched.conf' on {first.name}: drifted"
    ends = epoch(held["endsAt"])
    assert began + 3 * 3600 - 2 <= ends <= time.time() + 3 * 3600 + 1, "three check intervals of 1h"
    wait_until(lambda: notified(http_receiver), 20, "Alertmanager's firing notification")

    wait_until(lambda: time.time() >= ends - 3 * 3600 + 1.1, 5, "a second on Alertmanager's clock")
    make_due(project)
    assert project.cw("reconcile", "--once").exit_code == 1  # the same drift: no change, but sent again
    [again] = alertmanager.active()
    assert epoch(again["endsAt"]) > ends and again["startsAt"] == held["startsAt"]

    drift(fleet, first, "watched.conf", "mode = watched\n")  # someone puts it back
    make_due(project)
    assert project.cw("reconcile", "--once").exit_code == 0
    assert alertmanager.active() == []
    wait_until(lambda: notified(http_receiver)[-1][0] == "resolved", 20, "Alertmanager's resolved notification")
    assert {labels["resource"] for _, labels in notified(http_receiver)} == {"watched.conf"}
    assert [request.body["title"] for request in apprise.requests] == [
        f"[Clockwork] [FIRING] FileResource 'watched.conf' on {first.name}: drifted"]


def test_a_channel_that_never_answers_does_not_hold_up_the_pass_and_once_gives_up_before_it_exits(
    fleet: Fleet, make_project: Callable[..., CwProject], silent_url: str
) -> None:
    project = make_project(fleet, WATCHED)
    (project.directory / ".env").write_text(f"CW_ALERT_WEBHOOK_URL={silent_url}\n")
    assert project.cw("apply").exit_code == 0
    drift(fleet, fleet.hosts[0], "watched.conf")
    result = project.cw("reconcile", "--once")  # a channel's tries: 3 × 5 s, within its 20 s deadline
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in (project.directory / ".clockwork" / "reconcile.log").read_text().splitlines()]
    events = [line["event"] for line in lines]
    assert events.index("pass") < events.index("alert-retry"), "the pass ended without waiting for the channel"
    [failed] = [line for line in lines if line["event"] == "alert-failed"]
    assert failed["channel"] == "webhook" and "timed out" in failed["error"]


def test_an_unreachable_host_is_active_in_alertmanager_until_it_answers_again(
    fleet: Fleet, make_project: Callable[..., CwProject], alertmanager: Alertmanager
) -> None:
    project = make_project(fleet, WATCHED)
    (project.directory / ".env").write_text(f"CW_ALERT_ALERTMANAGER_URLS={alertmanager.url}\nCW_PROJECT=shop\n")
    assert project.cw("apply").exit_code == 0
    down = fleet.hosts[2]
    fleet.stop_host(down)
    try:
        assert project.cw("reconcile", "--once").exit_code == 3
        assert alertmanager.active() == [], "not before one backoff"
        make_due(project, down.name)
        assert project.cw("reconcile", "--once").exit_code == 3
        [held] = alertmanager.active()
        assert held["labels"] == {"alertname": "ClockworkHostUnreachable", "project": "shop", "host": down.name,
                                  "severity": "critical", "intent": "corrective"}
        assert held["annotations"]["summary"] == f"host {down.name} is unreachable"
    finally:
        fleet.start_host(down)
    make_due(project)
    assert project.cw("reconcile", "--once").exit_code == 0
    assert alertmanager.active() == []
