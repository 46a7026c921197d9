"""The Alertmanager API channel: every condition active now, posted to each Alertmanager's ``/api/v2/alerts``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clockwork.durations import stamp

#: The ``alertname`` of each kind of condition; another kind is ``Clockwork`` + its name capitalized.
ALERTNAMES = {"drift": "ClockworkDrift", "failure": "ClockworkFailure", "expired": "ClockworkExpired",
              "flapping": "ClockworkFlapping", "unstable": "ClockworkUnstable",
              "unreachable": "ClockworkHostUnreachable"}
#: The ``severity`` label of each kind; another kind is ``warning``.
SEVERITIES = {"drift": "warning", "flapping": "warning", "expired": "info", "failure": "critical",
              "unstable": "critical", "unreachable": "critical"}

Log = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Condition:
    """Something wrong now (or, ``resolved``, no longer) with a resource on a host, or with a host (``resource``
    None); times are epoch seconds. A firing condition ends at ``ends_at`` unless it is sent again before.

    >>> drift = Condition("drift", "web-1", "app.conf", "FileResource", "FileResource 'app.conf' on web-1: drifted",
    ...                   "content differs", starts_at=0.0, ends_at=540.0)
    >>> drift.labels("shop")["alertname"], drift.labels("shop")["intent"]
    ('ClockworkDrift', 'corrective')
    """

    kind: str
    host: str
    resource: str | None
    type: str | None
    summary: str
    description: str
    starts_at: float
    ends_at: float
    resolved: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.type or "", self.resource or "", self.host)

    def labels(self, project: str) -> dict[str, str]:
        """Its Alertmanager labels (those with a value): what identifies it there."""
        name = ALERTNAMES.get(self.kind) or "Clockwork" + "".join(part.capitalize() for part in self.kind.split("-"))
        labels = {"alertname": name, "project": project, "resource": self.resource or "", "type": self.type or "",
                  "host": self.host, "severity": SEVERITIES.get(self.kind, "warning"), "intent": "corrective"}
        return {key: value for key, value in labels.items() if value}


def postable(conditions: list[Condition], project: str) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: one entry per condition, resolved ones ending now.

    >>> [entry["endsAt"] for entry in postable([Condition("drift", "web-1", "app.conf", "FileResource", "s", "d",
    ...                                                   0.0, 540.0)], "shop")]
    ['1970-01-01T00:09:00Z']
    """
    return [{"labels": condition.labels(project),
             "annotations": {"summary": condition.summary, "description": condition.description},
             "startsAt": stamp(condition.starts_at), "endsAt": stamp(condition.ends_at)}
            for condition in conditions]


class AlertmanagerChannel:
    """Posts the conditions of a pass to every Alertmanager in ``urls`` (an HA cluster wants them all, not a load
    balancer); an entry without labels is left out (Alertmanager answers 400 to a post with one: a failure).

    .. code:: python

        AlertmanagerChannel(["http://127.0.0.1:9093"], project="shop").deliver([condition])
    """

    name = "alertmanager"

    def __init__(self, urls: list[str], project: str, timeout: float = 5.0, log: Log = lambda event, fields: None) -> None:
        self.urls, self.project, self.timeout, self.log = urls, project, timeout, log

    def deliver(self, conditions: list[Condition]) -> None:
        """Post to every URL; raise when one of them failed (after trying all)."""
        entries = []
        for entry in postable(conditions, self.project):
            if entry["labels"]:
                entries.append(entry)
            else:
                self.log("alert-dropped", {"channel": self.name, "detail": "an alert without labels is never sent",
                                           "summary": entry["annotations"]["summary"]})
        if not entries:
            return
        body = json.dumps(entries).encode()
        failures = []
        for url in self.urls:
            request = urllib.request.Request(url.rstrip("/") + "/api/v2/alerts", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
            except Exception as error:  # the others still get it; the failure is raised after them
                failures.append(f"{url}: {type(error).__name__}: {error}")
        if failures:
            raise OSError("; ".join(failures))
