"""Alert channels against real receivers on 127.0.0.1: Alertmanager webhook JSON, Slack, e-mail, retries."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clockwork import alerts
from clockwork.alertmanager import AlertmanagerChannel, Condition
from clockwork.alerts import (
    ZERO_TIME,
    Alert,
    AppriseChannel,
    EmailChannel,
    Notifier,
    SlackChannel,
    WebhookChannel,
    notifier_from_settings,
)
from clockwork.exceptions import ProjectError
from clockwork.exceptions import SettingsError
from clockwork.settings import load_settings
from testsupport.fleet import closed_port
from testsupport.receivers import HttpReceiver, SmtpReceiver

DRIFT = Alert("drift", "firing", "FileResource 'app.conf' on web-1: drifted", "content differs", "web-1", "app.conf",
              "FileResource", starts_at="2026-11-24T13:00:00Z")
FIXED = Alert("drift", "resolved", "FileResource 'app.conf' on web-1 is as declared again", "", "web-1", "app.conf",
              "FileResource", starts_at="2026-11-24T13:00:00Z", ends_at="2026-11-24T13:05:00Z")
HOST = Alert("unreachable", "firing", "host web-2 is unreachable", "timed out", "web-2", starts_at="2026-11-24T13:01:00Z")


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def __call__(self, event: str, fields: dict) -> None:
        self.lines.append((event, fields))

    def events(self) -> list[str]:
        return [event for event, _ in self.lines]


def test_the_webhook_speaks_alertmanager(http_receiver: HttpReceiver) -> None:
    Notifier([WebhookChannel(http_receiver.url)]).send([DRIFT, HOST])
    http_receiver.wait_for(1)
    request = http_receiver.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
                         "commonAnnotations", "externalURL", "alerts"}
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "clockwork")
    first, second = body["alerts"]
    assert first["labels"] == {"alertname": "ClockworkDrift", "resource": "app.conf", "type": "FileResource",
                               "host": "web-1", "kind": "drift", "intent": "corrective"}
    assert first["annotations"] == {"summary": DRIFT.summary, "detail": "content differs"}
    assert (first["status"], first["startsAt"], first["endsAt"]) == ("firing", "2026-11-24T13:00:00Z", ZERO_TIME)
    assert second["labels"] == {"alertname": "ClockworkUnreachable", "resource": "", "type": "", "host": "web-2",
                                "kind": "unreachable", "intent": "corrective"}
    assert body["commonLabels"] == {"intent": "corrective"}, "every alert is about the reconciler's own changes"
    assert len(first["fingerprint"]) == 16 and first["fingerprint"] != second["fingerprint"]


def test_a_resolved_alert_has_its_end_and_keeps_the_firing_alerts_identity(http_receiver: HttpReceiver) -> None:
    notifier = Notifier([WebhookChannel(http_receiver.url)])
    notifier.send([DRIFT])
    notifier.send([FIXED])
    http_receiver.wait_for(2)
    fired, resolved = (request.body for request in http_receiver.requests)
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-11-24T13:05:00Z"
    assert resolved["alerts"][0]["fingerprint"] == fired["alerts"][0]["fingerprint"]
    assert resolved["groupKey"] == fired["groupKey"]
    assert resolved["commonLabels"]["alertname"] == "ClockworkDrift"


def test_a_failed_delivery_is_retried_and_logged() -> None:
    log = Recorder()
    with HttpReceiver(fail_first=1) as hook:
        notifier = Notifier([WebhookChannel(hook.url)], log, backoff=0.05)
        notifier.send([DRIFT])
        notifier.flush()
        assert hook.attempts == 2 and len(hook.requests) == 1
    assert log.events() == ["alert-retry", "alert-sent"]
    assert "HTTP Error 500" in log.lines[0][1]["error"]


def test_a_dead_channel_is_never_fatal_and_the_others_still_get_the_alert(http_receiver: HttpReceiver) -> None:
    log = Recorder()
    dead = WebhookChannel(f"http://127.0.0.1:{closed_port()}/hook", timeout=1)
    notifier = Notifier([dead, WebhookChannel(http_receiver.url)], log, attempts=2, backoff=0.05)
    notifier.send([DRIFT])
    notifier.flush()
    http_receiver.wait_for(1)
    assert sorted(log.events()) == ["alert-failed", "alert-retry", "alert-sent"]
    failed = next(fields for event, fields in log.lines if event == "alert-failed")
    assert failed["channel"] == "webhook" and "Connection refused" in failed["error"]


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` for ``clockwork.alerts``: sleeping moves the clock, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_slack_gets_text_messages_no_faster_than_its_rate(http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender's guarantee, on the sender's clock: consecutive posts at least ``min_interval`` apart."""
    clock = FakeClock()
    monkeypatch.setattr(alerts, "time", clock)
    posted: list[float] = []
    post = alerts._post_json
    monkeypatch.setattr(alerts, "_post_json", lambda *args: (posted.append(clock.now), post(*args))[1])
    slack = Notifier([SlackChannel(http_receiver.url, min_interval=0.3)])
    slack.send([DRIFT])
    slack.flush()
    clock.now += 0.1  # the next batch comes 0.1 s later: it waits the other 0.2 s
    slack.send([FIXED, HOST])
    slack.send([DRIFT])  # at once: it waits a whole interval
    slack.flush()
    clock.now += 5  # long after: no wait
    slack.send([HOST])
    slack.flush()
    http_receiver.wait_for(4)
    first, second = http_receiver.requests[:2]
    assert first.body == {"text": ":red_circle: [FIRING] FileResource 'app.conf' on web-1: drifted\ncontent differs"}
    assert second.body["text"].splitlines()[0] == ":large_green_circle: [RESOLVED] FileResource 'app.conf' on web-1 is as declared again"
    assert clock.sleeps == [pytest.approx(0.2), pytest.approx(0.3)]
    assert [later - earlier for earlier, later in itertools.pairwise(posted)] == [
        pytest.approx(0.3), pytest.approx(0.3), pytest.approx(5.0)]


def test_slack_rate_limited_waits_as_told() -> None:
    log = Recorder()
    with HttpReceiver(fail_first=1, fail_status=429) as hook:
        began = time.monotonic()
        notifier = Notifier([SlackChannel(hook.url, min_interval=0.1)], log, backoff=0.01)
        notifier.send([DRIFT])
        notifier.flush()
        assert time.monotonic() - began >= 1.0  # Retry-After: 1
        assert len(hook.requests) == 1
    assert log.events() == ["alert-retry", "alert-sent"]


def test_an_email_carries_the_same_content(smtp_receiver: SmtpReceiver) -> None:
    channel = EmailChannel("127.0.0.1", smtp_receiver.port, "clockwork@ci.test", ["ops@example.test", "dev@example.test"])
    Notifier([channel]).send([DRIFT, HOST])
    smtp_receiver.wait_for(1)
    mail = smtp_receiver.messages[0]
    assert mail["Subject"].strip() == "[Clockwork] [FIRING] FileResource 'app.conf' on web-1: drifted and 1 more"
    assert (mail["From"], mail["To"]) == ("clockwork@ci.test", "ops@example.test, dev@example.test")
    assert smtp_receiver.envelope(0)["rcpt_tos"] == ["ops@example.test", "dev@example.test"]
    body = mail.get_content()
    assert "content differs" in body and "kind=unreachable" in body and "since 2026-11-24T13:01:00Z" in body


def test_channels_come_from_the_settings(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "CW_ALERT_WEBHOOK_URL=http://127.0.0.1:9/hook\nCW_ALERT_SLACK_WEBHOOK_URL=https://127.0.0.1:9/slack\n"
        "CW_ALERT_EMAIL_TO=ops@example.test, dev@example.test\nCW_SMTP_HOST=127.0.0.1\nCW_SMTP_PORT=2525\n")
    notifier = notifier_from_settings(load_settings(tmp_path, environ={}))
    assert [channel.name for channel in notifier.channels] == ["webhook", "slack", "email"]
    email = notifier.channels[2]
    assert isinstance(email, EmailChannel)
    assert (email.port, email.to, email.sender.startswith("clockwork@")) == (2525, ["ops@example.test", "dev@example.test"], True)
    assert notifier_from_settings(load_settings(tmp_path, environ={"CW_ALERT_WEBHOOK_URL": ""})).channels  # .env still
    empty = tmp_path / "empty"
    empty.mkdir()
    assert notifier_from_settings(load_settings(empty, environ={})).channels == []


@pytest.mark.parametrize(("environ", "message"), [
    ({"CW_ALERT_WEBHOOK_URL": "127.0.0.1:9093"}, "CW_ALERT_WEBHOOK_URL must be an http:// or https:// URL"),
    ({"CW_ALERT_SLACK_WEBHOOK_URL": "ftp://x"}, "CW_ALERT_SLACK_WEBHOOK_URL must be an http:// or https:// URL"),
    ({"CW_ALERT_EMAIL_TO": "ops@example.test"}, "CW_ALERT_EMAIL_TO is set but CW_SMTP_HOST is not"),
    ({"CW_ALERT_EMAIL_TO": "ops", "CW_SMTP_HOST": "127.0.0.1"}, "CW_ALERT_EMAIL_TO must be e-mail addresses"),
    ({"CW_ALERT_EMAIL_TO": "a@b.test", "CW_SMTP_HOST": "127.0.0.1", "CW_SMTP_PORT": "70000"}, "CW_SMTP_PORT must be a port"),
    ({"CW_ALERT_EMAIL_TO": "a@b.test", "CW_SMTP_HOST": "127.0.0.1", "CW_SMTP_FROM": "me"}, "CW_SMTP_FROM must be an e-mail"),
    ({"CW_ALERT_ALERTMANAGER_URLS": "http://127.0.0.1:9093,127.0.0.1:9094"},
     "CW_ALERT_ALERTMANAGER_URLS must be an http:// or https:// URL, not '127.0.0.1:9094'"),
    ({"CW_ALERT_ALERTMANAGER_URLS": " , "}, "CW_ALERT_ALERTMANAGER_URLS must be http:// or https:// URLs, comma-separated"),
    ({"CW_ALERT_APPRISE_URLS": "ntfy"}, "CW_ALERT_APPRISE_URLS must be apprise URLs such as 'ntfy://host/topic'"),
    ({"CW_ALERT_APPRISE_URLS": "json://127.0.0.1/x, ://x"}, "CW_ALERT_APPRISE_URLS must be apprise URLs"),
    ({"CW_ALERT_APPRISE_URLS": ","}, "CW_ALERT_APPRISE_URLS must be apprise URLs, comma-separated, not ','"),
])
def test_bad_alert_settings_are_one_clear_error(tmp_path: Path, environ: dict, message: str) -> None:
    with pytest.raises(ProjectError, match="^" + message):
        notifier_from_settings(load_settings(tmp_path, environ=environ))


@pytest.mark.parametrize(("environ", "message"), [
    ({"CW_LOCK_TIMEOUT": "soon"}, "CW_LOCK_TIMEOUT must be a duration such as '30s' or '2m', not 'soon'"),
    ({"CW_MODEL_TIMEOUT": "-1"}, "CW_MODEL_TIMEOUT must be a duration"),
    ({"CW_FLAPPING_LIMIT": "0"}, "CW_FLAPPING_LIMIT must be a whole number of corrections per hour (1 or more), not '0'"),
    ({"CW_BASE_URL": "127.0.0.1:1234/v1"}, "CW_BASE_URL must be an http:// or https:// URL, not '127.0.0.1:1234/v1'"),
])
def test_settings_are_typed_and_checked_once_when_loaded(tmp_path: Path, environ: dict, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(tmp_path, environ=environ)
    assert str(error.value).startswith(message)
    settings = load_settings(tmp_path, environ={"CW_LOCK_TIMEOUT": "2m", "CW_SMTP_PORT": "2525", "CW_MODEL": ""})
    assert (settings.lock_timeout, settings.smtp_port, settings.model, settings.flapping_limit) == (120, 2525, None, 5)
    assert "api_key" not in repr(load_settings(tmp_path, environ={"CW_API_KEY": "sk-123"}))


def test_alertmanager_and_apprise_channels_come_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={
        "CW_ALERT_ALERTMANAGER_URLS": "http://127.0.0.1:9093, http://127.0.0.1:9094/",
        "CW_ALERT_APPRISE_URLS": "json://127.0.0.1:8080/hook,ntfy://127.0.0.1/ops", "CW_PROJECT": "shop"})
    notifier = notifier_from_settings(settings, project="shop")
    assert [(channel.name, channel.url) for channel in notifier.channels if isinstance(channel, AppriseChannel)] == [
        ("apprise", "json://127.0.0.1:8080/hook"), ("apprise", "ntfy://127.0.0.1/ops")]
    [current] = notifier.current
    assert (current.urls, current.project) == (["http://127.0.0.1:9093", "http://127.0.0.1:9094/"], "shop")
    assert "ntfy" not in repr(settings), "apprise URLs often hold tokens"


# apprise -------------------------------------------------------------------------------------


def test_apprise_posts_json_to_the_loopback_receiver_and_retries() -> None:
    log = Recorder()
    with HttpReceiver(fail_first=1) as hook:
        notifier = Notifier([AppriseChannel(f"json://127.0.0.1:{hook.port}/apprise")], log, backoff=0.05)
        notifier.send([DRIFT, HOST])
        notifier.flush()
        [request] = hook.requests
    assert log.events() == ["alert-retry", "alert-sent"]
    assert request.path == "/apprise"
    assert request.body["title"] == "[Clockwork] [FIRING] FileResource 'app.conf' on web-1: drifted and 1 more"
    assert request.body["type"] == "failure"
    assert "content differs" in request.body["message"] and "host web-2 is unreachable" in request.body["message"]


def test_apprise_mails_through_a_plain_local_smtp_server(smtp_receiver: SmtpReceiver) -> None:
    url = f"mailto://127.0.0.1:{smtp_receiver.port}?mode=insecure&from=clockwork@ci.test&to=ops@example.test"
    notifier = Notifier([AppriseChannel(url)])
    notifier.send([FIXED])
    notifier.flush()
    smtp_receiver.wait_for(1)
    mail = smtp_receiver.messages[0]
    assert mail["Subject"].strip() == "[Clockwork] [RESOLVED] FileResource 'app.conf' on web-1 is as declared again"
    assert smtp_receiver.envelope(0)["rcpt_tos"] == ["ops@example.test"]
    assert "since 2026-11-24T13:00:00Z, until 2026-11-24T13:05:00Z" in mail.get_body(("plain",)).get_content()


def test_a_url_apprise_does_not_know_fails_clearly() -> None:
    log = Recorder()
    notifier = Notifier([AppriseChannel("nosuchservice://127.0.0.1/x?token=secret")], log, attempts=1)
    notifier.send([DRIFT])
    notifier.flush()
    assert log.lines == [("alert-failed", {"channel": "apprise", "alerts": 1,
                                           "error": "ValueError: apprise does not understand the URL nosuchservice://…"})]


def test_without_apprise_installed_the_channel_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise raises ImportError
    with pytest.raises(RuntimeError, match=r"^CW_ALERT_APPRISE_URLS is set but apprise is not installed: "
                                           r"pip install 'clockwork\[apprise\]'$"):
        AppriseChannel("json://127.0.0.1:9/x").deliver([DRIFT])


def test_apprise_is_imported_only_when_an_alert_is_sent() -> None:
    """It costs a good part of a second to import: neither the CLI nor the channels load it up front."""
    probe = ("import sys; import clockwork.alerts, clockwork.cli, clockwork.reconcile; "
             "from clockwork.alerts import AppriseChannel; AppriseChannel('json://127.0.0.1:9/x'); "
             "print('apprise' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# A dead or slow channel ----------------------------------------------------------------------


def test_a_channel_that_never_answers_delays_nothing_and_gives_up_within_its_deadline(
    silent_url: str, http_receiver: HttpReceiver
) -> None:
    log = Recorder()
    notifier = Notifier([WebhookChannel(silent_url, timeout=0.5), WebhookChannel(http_receiver.url)], log,
                        attempts=3, backoff=0.05, deadline=1.0)
    notifier.send([DRIFT])  # returns before the silent channel's first try timed out
    assert "alert-failed" not in log.events()
    http_receiver.wait_for(1)  # the other channel was not held up
    notifier.flush()
    failed = [fields for event, fields in log.lines if event == "alert-failed"]
    assert len(failed) == 1 and "timed out" in failed[0]["error"]
    assert "alert-retry" in log.events(), "retried while the deadline allowed"


def test_flush_is_bounded_and_says_what_it_left(silent_url: str) -> None:
    log = Recorder()
    notifier = Notifier([WebhookChannel(silent_url, timeout=30)], log)
    notifier.send([DRIFT])
    notifier.flush(timeout=0.5)
    assert log.lines == [("alert-abandoned", {"channel": "webhook", "batches": 1,
                                              "detail": "still not delivered when the process ended"})]


def test_an_alertmanager_that_never_answers_is_given_up_too(silent_url: str) -> None:
    log = Recorder()
    base = silent_url.removesuffix("/hook")
    condition = Condition("drift", "web-1", "app.conf", "FileResource", "s", "d", 0.0, 60.0)
    notifier = Notifier([], log, attempts=1, current=[AlertmanagerChannel([base], "shop", timeout=0.5)])
    notifier.send([], active=[condition])
    notifier.flush()
    assert [event for event, _ in log.lines] == ["alert-failed"]
    assert "timed out" in log.lines[0][1]["error"]
