"""Alert channels for the reconciler: an Alertmanager-format webhook, Slack, e-mail, apprise, and the Alertmanager API;
queued, retried, never fatal."""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from clockwork.alertmanager import AlertmanagerChannel, Condition
from clockwork.durations import stamp
from clockwork.outbox import Outbox


if TYPE_CHECKING:
    from clockwork.settings import Settings

#: Alertmanager's "no end yet" time for firing alerts.
ZERO_TIME = "0001-01-01T00:00:00Z"

Log = Callable[[str, dict[str, Any]], None]


def _now() -> str:
    return stamp(time.time())


@dataclass(frozen=True)
class Alert:
    """One alert about a resource on a host (or about a host when ``resource`` is None).

    >>> Alert("drift", "firing", "FileResource 'app.conf' drifted on web-1", "content differs", "web-1",
    ...       "app.conf", "FileResource").labels()["alertname"]
    'ClockworkDrift'
    """

    kind: str
    status: str
    summary: str
    detail: str
    host: str | None
    resource: str | None = None
    type: str | None = None
    starts_at: str = ""
    ends_at: str | None = None
    #: Whose change it is about: the reconciler's own (``corrective``: every alert so far), or a person's
    #: (``intentional``: apply, update, rollback, extend).
    intent: str = "corrective"

    def labels(self) -> dict[str, str]:
        name = "Clockwork" + "".join(part.capitalize() for part in self.kind.split("-"))
        return {"alertname": name, "resource": self.resource or "", "type": self.type or "", "host": self.host or "",
                "kind": self.kind, "intent": self.intent}

    def as_alertmanager(self) -> dict[str, Any]:
        """The alert as one entry of Alertmanager's webhook ``alerts[]``."""
        labels = self.labels()
        return {
            "status": self.status, "labels": labels, "annotations": {"summary": self.summary, "detail": self.detail},
            "startsAt": self.starts_at or _now(),
            "endsAt": (self.ends_at or _now()) if self.status == "resolved" else ZERO_TIME,
            "generatorURL": "", "fingerprint": _fingerprint(labels),
        }

    def line(self) -> str:
        """``[FIRING] summary`` — how Slack and e-mail subjects show it."""
        return f"[{self.status.upper()}] {self.summary}"


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    return {key: value for key, value in dicts[0].items() if all(d.get(key) == value for d in dicts[1:])}


def alertmanager_payload(alerts: list[Alert]) -> dict[str, Any]:
    """Prometheus Alertmanager's webhook document (version 4) for a batch of alerts.

    >>> alert = Alert("drift", "firing", "FileResource 'app.conf' drifted on web-1", "content differs", "web-1",
    ...               "app.conf", "FileResource")
    >>> payload = alertmanager_payload([alert])
    >>> payload["status"], payload["groupLabels"]
    ('firing', {'alertname': 'ClockworkDrift'})
    """
    entries = [alert.as_alertmanager() for alert in alerts]
    common_labels = _common([entry["labels"] for entry in entries])
    group_labels = {key: common_labels[key] for key in ("alertname",) if key in common_labels}
    return {
        "version": "4",
        "groupKey": "{}:" + json.dumps(group_labels, sort_keys=True),
        "truncatedAlerts": 0,
        "status": "firing" if any(alert.status == "firing" for alert in alerts) else "resolved",
        "receiver": "clockwork",
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([entry["annotations"] for entry in entries]),
        "externalURL": "",
        "alerts": entries,
    }


def text(alerts: list[Alert]) -> str:
    """The batch as plain text, one block per alert (Slack and e-mail bodies)."""
    blocks = []
    for alert in alerts:
        labels = ", ".join(f"{key}={value}" for key, value in alert.labels().items() if value)
        when = f"since {alert.starts_at}" + (f", until {alert.ends_at}" if alert.status == "resolved" else "")
        blocks.append("\n".join(line for line in (alert.line(), alert.detail, f"{labels} ({when})") if line))
    return "\n\n".join(blocks)


class Channel(ABC):
    """Somewhere alerts go. ``deliver`` sends one message for the batch and raises when it could not."""

    name: str

    @abstractmethod
    def deliver(self, alerts: list[Alert]) -> None:
        """Send one message for ``alerts``; raise on failure."""


def _post_json(url: str, document: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


class WebhookChannel(Channel):
    """POSTs Alertmanager's webhook JSON, so existing receivers understand it.

    .. code:: python

        WebhookChannel("http://127.0.0.1:9093/hook").deliver([alert])
    """

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url, self.timeout = url, timeout

    def deliver(self, alerts: list[Alert]) -> None:
        _post_json(self.url, alertmanager_payload(alerts), self.timeout)


class SlackChannel(Channel):
    """A Slack incoming webhook: one ``{"text": …}`` message per batch, at most one per ``min_interval`` seconds.

    .. code:: python

        SlackChannel("https://hooks.slack.com/services/T/B/X").deliver([alert])
    """

    name = "slack"

    def __init__(self, url: str, timeout: float = 5.0, min_interval: float = 1.0) -> None:
        self.url, self.timeout, self.min_interval = url, timeout, min_interval
        self._last = float("-inf")

    def deliver(self, alerts: list[Alert]) -> None:
        wait = self._last + self.min_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last = time.monotonic()
        icon = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}
        lines = [f"{icon.get(alert.status, '')} {alert.line()}" + (f"\n{alert.detail}" if alert.detail else "")
                 for alert in alerts]
        try:
            _post_json(self.url, {"text": "\n".join(lines)}, self.timeout)
        except urllib.error.HTTPError as error:
            if error.code == 429:  # rate limited: wait as told before the next try
                retry_after = error.headers.get("Retry-After", "1")
                self._last = time.monotonic() + (float(retry_after) if retry_after.isdigit() else 1.0) - self.min_interval
            raise


class EmailChannel(Channel):
    """One e-mail per batch over SMTP (STARTTLS when the server offers it and a user is set).

    .. code:: python

        EmailChannel("127.0.0.1", 25, "clockwork@ci", ["ops@example.com"]).deliver([alert])
    """

    name = "email"

    def __init__(self, host: str, port: int, sender: str, to: list[str], user: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.user, self.password, self.timeout = user, password, timeout

    def deliver(self, alerts: list[Alert]) -> None:
        message = EmailMessage()
        more = f" and {len(alerts) - 1} more" if len(alerts) > 1 else ""
        message["Subject"] = f"[Clockwork] {alerts[0].line()}{more}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message.set_content(text(alerts) + "\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.user and smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


class AppriseChannel(Channel):
    """One apprise URL (ntfy, PagerDuty, Opsgenie, Matrix, Teams, ``json://``, ``mailto://``…): a title and the
    batch as text. apprise (``pip install clockwork[apprise]``) is imported when the first alert is sent.

    .. code:: python

        AppriseChannel("ntfy://ntfy.example.test/ops").deliver([alert])
    """

    name = "apprise"

    def __init__(self, url: str) -> None:
        self.url = url

    def deliver(self, alerts: list[Alert]) -> None:
        try:
            import apprise
        except ImportError:
            raise RuntimeError("CW_ALERT_APPRISE_URLS is set but apprise is not installed: "
                               "pip install 'clockwork[apprise]'") from None
        sender = apprise.Apprise()
        if not sender.add(self.url):
            raise ValueError(f"apprise does not understand the URL {_scheme(self.url)}://…")
        more = f" and {len(alerts) - 1} more" if len(alerts) > 1 else ""
        firing = any(alert.status == "firing" for alert in alerts)
        kind = apprise.NotifyType.FAILURE if firing else apprise.NotifyType.SUCCESS
        if not sender.notify(title=f"[Clockwork] {alerts[0].line()}{more}", body=text(alerts), notify_type=kind):
            raise RuntimeError(f"apprise could not notify {_scheme(self.url)}://… (see apprise's log)")


def _scheme(url: str) -> str:
    return url.partition("://")[0]


#: How long one batch may take on one channel, its retries included; later it is given up (logged).
DELIVERY_DEADLINE = 20.0


class Notifier:
    """Sends each batch to every channel from a queue per channel, so that ``send`` returns at once and a dead
    or slow channel delays nothing else; a failed delivery is retried with backoff within ``deadline`` seconds,
    logged, and never raised. ``flush`` waits (boundedly) for what is queued, before a process exits.

    The Alertmanager channels (``current``) get every condition active now on each send, not the changes.

    .. code:: python

        notifier = Notifier([WebhookChannel("http://127.0.0.1:9093/hook")], log=print)
        notifier.send([alert])
        notifier.flush()
    """

    def __init__(self, channels: list[Channel], log: Log = lambda event, fields: None, attempts: int = 3,
                 backoff: float = 0.5, deadline: float = DELIVERY_DEADLINE,
                 current: list[AlertmanagerChannel] | None = None) -> None:
        self.channels, self.log, self.attempts, self.backoff = channels, log, attempts, backoff
        self.deadline, self.current = deadline, current or []
        self._outboxes: dict[int, Outbox[_Batch]] = {}

    def send(self, alerts: list[Alert], active: list[Condition] | None = None) -> None:
        """Queue ``alerts`` (the changes of a pass) for the change channels and ``active`` (its conditions,
        firing or just resolved) for the Alertmanager channels; returns at once."""
        deadline = time.monotonic() + self.deadline
        if alerts:
            for channel in self.channels:
                self._outbox(channel).put(_Batch(channel, alerts, deadline))
        if active:
            for current in self.current:
                self._outbox(current).put(_Batch(current, active, deadline))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued batch was delivered or given up, at most ``timeout`` seconds (by default the
        delivery deadline and a second); what is still queued then is logged and left."""
        end = time.monotonic() + (self.deadline + 1.0 if timeout is None else timeout)
        for outbox in self._outboxes.values():
            left = outbox.wait_idle(max(end - time.monotonic(), 0.0))
            if left:
                self.log("alert-abandoned", {"channel": outbox.name, "batches": left,
                                             "detail": "still not delivered when the process ended"})

    def _outbox(self, channel: Channel | AlertmanagerChannel) -> Outbox[_Batch]:
        if id(channel) not in self._outboxes:
            self._outboxes[id(channel)] = Outbox(channel.name, self._deliver, self._dropped)
        return self._outboxes[id(channel)]

    def _dropped(self, batch: _Batch) -> None:
        self.log("alert-failed", {"channel": batch.channel.name, "alerts": len(batch.items),
                                  "error": "dropped: too many batches waited for this channel"})

    def _deliver(self, batch: _Batch) -> None:
        channel, items = batch.channel, batch.items
        for attempt in range(1, self.attempts + 1):
            if time.monotonic() >= batch.deadline:
                self.log("alert-failed", {"channel": channel.name, "alerts": len(items),
                                          "error": f"given up: not delivered within {self.deadline:g}s"})
                return
            try:
                channel.deliver(items)  # type: ignore[arg-type]  # each channel gets the items it was queued with
            except Exception as error:  # any failure of a channel is logged, never fatal
                reason = f"{type(error).__name__}: {error}"
                pause = self.backoff * 2 ** (attempt - 1)
                if attempt == self.attempts or time.monotonic() + pause >= batch.deadline:
                    self.log("alert-failed", {"channel": channel.name, "alerts": len(items), "error": reason})
                    return
                self.log("alert-retry", {"channel": channel.name, "attempt": attempt, "error": reason})
                time.sleep(pause)
            else:
                self.log("alert-sent", {"channel": channel.name, "alerts": len(items),
                                        "kinds": sorted({_kind_status(item) for item in items})})
                return


@dataclass(frozen=True)
class _Batch:
    """What one channel is to deliver, and until when it may try."""

    channel: Channel | AlertmanagerChannel
    items: list[Alert] | list[Condition]
    deadline: float


def _kind_status(item: Alert | Condition) -> str:
    if isinstance(item, Condition):
        return f"{item.kind}/{'resolved' if item.resolved else 'firing'}"
    return f"{item.kind}/{item.status}"


def notifier_from_settings(settings: Settings, log: Log = lambda event, fields: None,
                           project: str = "") -> Notifier:
    """The channels configured in the (validated) settings; none: alerts go nowhere. ``project`` is the
    ``project`` label of what goes to Alertmanager."""
    channels: list[Channel] = []
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url))
    if settings.alert_slack_webhook_url:
        channels.append(SlackChannel(settings.alert_slack_webhook_url))
    if settings.alert_email_to and settings.smtp_host:
        channels.append(EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                     settings.alert_email_to, settings.smtp_user, settings.smtp_password))
    channels += [AppriseChannel(url) for url in settings.alert_apprise_urls]
    current = [AlertmanagerChannel(settings.alert_alertmanager_urls, project, log=log)] if settings.alert_alertmanager_urls else []
    return Notifier(channels, log, current=current)
