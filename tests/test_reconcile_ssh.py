"""Reconcile over real SSH hosts: --once from cron, the daemon process, alerts to real HTTP and SMTP receivers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import CwProject
from testsupport.fleet import Fleet, FleetHost, wait_until
from testsupport.receivers import HttpReceiver, SmtpReceiver


FILES = """\
from clockwork.resources import FileResource

fixed = FileResource(name="fixed.conf", directory="rc", content="mode = fixed\\n", mode="640",
                     reconcile=True, check_interval={interval}, alert_on=["drift", "failure", "recovered"])
watched = FileResource(name="watched.conf", directory="rc", content="mode = watched\\n",
                       reconcile=True, check_interval={interval}, on_drift="alert", alert_on=["drift", "recovered"])
ignored = FileResource(name="ignored.conf", directory="rc", content="mode = ignored\\n",
                       reconcile=True, check_interval={interval}, on_drift="ignore")
"""
DECLARED = {"fixed.conf": "mode = fixed\n", "watched.conf": "mode = watched\n", "ignored.conf": "mode = ignored\n"}


def drift(fleet: Fleet, host: FleetHost, name: str, text: str = "changed by hand\n") -> None:
    assert fleet.run(host, f"printf %s {shlex.quote(text)} > rc/{name}").returncode == 0


def content(fleet: Fleet, host: FleetHost, name: str) -> str | None:
    result = fleet.run(host, f"cat rc/{name}")
    return result.stdout if result.returncode == 0 else None


def alerts(receiver: HttpReceiver) -> list[tuple[str, str, str, str]]:
    """(kind, status, resource, host) of every alert the webhook received, in order."""
    return [(a["labels"]["kind"], a["status"], a["labels"]["resource"], a["labels"]["host"])
            for request in receiver.requests for a in request.body["alerts"]]


def settings(project: CwProject, **values: str) -> None:
    (project.directory / ".env").write_text("".join(f"CW_{key.upper()}={value}\n" for key, value in values.items()))


def state_db(project: CwProject) -> sqlite3.Connection:
    return sqlite3.connect(project.directory / ".clockwork" / "state.db")


def events(project: CwProject) -> list[tuple[str, str, str | None, str]]:
    database = state_db(project)
    try:
        return database.execute("SELECT kind, name, host, intent FROM events ORDER BY id").fetchall()
    finally:
        database.close()


def status(project: CwProject) -> dict[tuple[str, str], dict]:
    result = project.cw("status", "--format", "json")
    assert result.exit_code == 0, result.output
    return {(row["resource"], row["host"]): row for row in json.loads(result.output)["resources"]}


def make_due(project: CwProject, *hosts: str) -> None:
    """Let time pass in the store instead of waiting for it: every check (on ``hosts``, default all) is due
    now and every backed-off host may be tried again, as if their intervals and backoffs had run out."""
    where, args = (f" WHERE host IN ({', '.join('?' * len(hosts))})", hosts) if hosts else ("", ())
    past = time.time() - 1
    database = state_db(project)
    try:
        with database:
            changed = database.execute(f"UPDATE watches SET next_due = ?{where}", (past, *args)).rowcount
            changed += database.execute(f"UPDATE host_health SET retry_at = ?{where}", (past, *args)).rowcount
            database.execute(f"UPDATE reconcile_hosts SET next_due = ?{where}", (past, *args))
    finally:
        database.close()
    assert changed, "nothing was waiting"


def age_lifetimes(project: CwProject, seconds: float) -> None:
    """Let ``seconds`` pass for every resource with a ``max_duration``: deployed that much earlier, ending that
    much sooner (the warning lead, a share of the lifetime, stays the same)."""
    database = state_db(project)
    try:
        with database:
            changed = database.execute("UPDATE first_deployed SET at = at - ?, expires_at = expires_at - ?"
                                       " WHERE expires_at IS NOT NULL", (seconds, seconds)).rowcount
            database.execute("UPDATE reconcile_hosts SET next_due = 0")  # the hosts' due times follow
    finally:
        database.close()
    assert changed, "no lifetime recorded"


@pytest.fixture
def files_project(fleet: Fleet, make_project, http_receiver: HttpReceiver) -> CwProject:
    project = make_project(fleet, FILES.format(interval='"1h"'))  # due again only when a test makes it so
    settings(project, alert_webhook_url=http_receiver.url)
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    return project


# --once, as cron runs it ------------------------------------------------------------


def test_once_corrects_only_auto_correct_resources_and_alerts_once_per_change(
    fleet: Fleet, files_project: CwProject, http_receiver: HttpReceiver
) -> None:
    project, first = files_project, fleet.hosts[0]
    for name in DECLARED:
        drift(fleet, first, name)
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 1, result.output  # drift is left where it is only alerted or ignored
    assert "Reconciled: 9 checked, 1 corrected, 0 expired, 2 drift, 0 errors" in result.output
    assert content(fleet, first, "fixed.conf") == DECLARED["fixed.conf"]
    assert content(fleet, first, "watched.conf") == content(fleet, first, "ignored.conf") == "changed by hand\n"
    for host in fleet.hosts[1:]:
        assert {name: content(fleet, host, name) for name in DECLARED} == DECLARED
    assert alerts(http_receiver) == [("drift", "resolved", "fixed.conf", "host-01"),
                                     ("drift", "firing", "watched.conf", "host-01")]

    make_due(project)  # every resource is due again: the same drift alerts nothing new
    again = project.cw("reconcile", "--once")
    assert again.exit_code == 1
    assert "Reconciled: 9 checked, 0 corrected, 0 expired, 2 drift, 0 errors" in again.output
    assert len(http_receiver.requests) == 1

    drift(fleet, first, "watched.conf", DECLARED["watched.conf"])  # someone puts it back
    make_due(project)
    assert project.cw("reconcile", "--once").exit_code == 1  # ignored.conf still differs
    assert alerts(http_receiver)[2:] == [("drift", "resolved", "watched.conf", "host-01")]

    recorded = events(project)
    assert ("changed", "fixed.conf", "host-01", "intentional") in recorded  # the apply
    assert ("corrected", "fixed.conf", "host-01", "corrective") in recorded
    assert ("drift", "ignored.conf", "host-01", "corrective") in recorded
    rows = status(project)
    assert rows[("fixed.conf", "host-01")]["corrections_total"] == 1
    assert rows[("fixed.conf", "host-01")]["last_result"] == "ok"
    assert rows[("ignored.conf", "host-01")]["state"] == "drift"
    assert rows[("fixed.conf", "host-02")]["corrections_total"] == 0


def test_once_honours_due_times_across_runs(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES.format(interval='"1h"'))
    assert project.cw("apply").exit_code == 0
    first = project.cw("reconcile", "--once")
    assert first.exit_code == 0, first.output
    assert "Reconciled: 9 checked" in first.output
    drift(fleet, fleet.hosts[1], "fixed.conf")
    second = project.cw("reconcile", "--once")
    assert second.exit_code == 0, second.output
    assert "Reconciled: 0 checked" in second.output
    assert content(fleet, fleet.hosts[1], "fixed.conf") == "changed by hand\n", "not due for an hour"
    row = status(project)[("fixed.conf", "host-02")]
    due = time.mktime(time.strptime(row["next_due"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 3600 - 10 <= due - time.time() <= 3600 + 10 + 1


def test_once_takes_every_due_host_even_beyond_one_claim(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, FILES.format(interval='"1h"'))
    settings(project, reconcile_capacity="1")  # one host per claim: three claims, one run
    assert project.cw("apply").exit_code == 0
    for host in fleet.hosts:
        drift(fleet, host, "fixed.conf")
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 0, result.output
    assert "Reconciled: 9 checked, 3 corrected" in result.output
    assert all(content(fleet, host, "fixed.conf") == DECLARED["fixed.conf"] for host in fleet.hosts)


def test_once_ends_when_a_host_stays_due(fleet: Fleet, make_project) -> None:
    """An expired resource on a host that does not answer stays due: --once with one host per claim still ends."""
    project = make_project(fleet, "from clockwork.resources import FileResource\n"
                                  "temp = FileResource(name='temp.conf', directory='rc', content='t\\n', max_duration='1h')\n")
    settings(project, reconcile_capacity="1")
    assert project.cw("apply").exit_code == 0
    age_lifetimes(project, 3600)
    fleet.stop_host(fleet.hosts[1])
    done = subprocess.run([str(Path(sys.executable).parent / "clockwork"), "reconcile", "--once", "-q"],
                          cwd=project.directory, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert [content(fleet, host, "temp.conf") for host in (fleet.hosts[0], fleet.hosts[2])] == [None, None]


def test_a_resource_corrected_too_often_is_flapping_and_left_alone(
    fleet: Fleet, files_project: CwProject, http_receiver: HttpReceiver
) -> None:
    project, host = files_project, fleet.hosts[2]
    settings(project, alert_webhook_url=http_receiver.url, flapping_limit="2")
    for _attempt in range(3):
        drift(fleet, host, "fixed.conf")
        result = project.cw("reconcile", "--once")
        make_due(project, host.name)
    assert result.exit_code == 1, result.output
    assert content(fleet, host, "fixed.conf") == "changed by hand\n"
    kinds = [alert for alert in alerts(http_receiver) if alert[2] == "fixed.conf"]
    assert kinds == [("drift", "resolved", "fixed.conf", "host-03")] * 2 + [("flapping", "firing", "fixed.conf", "host-03")]
    row = status(project)[("fixed.conf", "host-03")]
    assert (row["state"], row["corrections_last_hour"]) == ("flapping", 2)


def test_a_resource_that_cannot_be_corrected_alerts_failure_once_and_the_others_are_still_corrected(
    fleet: Fleet, make_project, http_receiver: HttpReceiver
) -> None:
    broken = ("from clockwork.checks import CommandCheck\n"
              "probe = FileResource(name='probe.conf', directory='rc', content='p\\n', reconcile=True, check_interval='1h',\n"
              "                     checks=[CommandCheck('no-such-command-on-this-host')])\n")
    project = make_project(fleet, FILES.format(interval='"1h"') + broken)
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    drift(fleet, fleet.hosts[1], "fixed.conf")
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 3, result.output
    assert "✗ [host-02] probe.conf: correction failed: still not as declared: checks[" in result.output
    assert content(fleet, fleet.hosts[1], "fixed.conf") == DECLARED["fixed.conf"], "the pass went on"
    make_due(project)
    again = project.cw("reconcile", "--once")
    assert again.exit_code == 3, again.output
    assert "Reconciled: 12 checked" in again.output
    failures = [alert for alert in alerts(http_receiver) if alert[0] == "failure"]
    assert failures == [("failure", "firing", "probe.conf", host.name) for host in fleet.hosts], "once per host, not per pass"


def test_an_unreachable_host_backs_off_alerts_once_and_recovers(
    fleet: Fleet, files_project: CwProject, http_receiver: HttpReceiver
) -> None:
    project, down = files_project, fleet.hosts[2]
    fleet.stop_host(down)
    drift(fleet, fleet.hosts[0], "fixed.conf")
    result = project.cw("reconcile", "--once")
    assert result.exit_code == 3, result.output
    assert "✗ [host-03] unreachable:" in result.output
    assert content(fleet, fleet.hosts[0], "fixed.conf") == DECLARED["fixed.conf"], "the others are still corrected"
    assert not [a for a in alerts(http_receiver) if a[0] == "unreachable"], "not before one backoff"

    make_due(project, down.name)  # the first backoff (2 s) is over
    assert project.cw("reconcile", "--once").exit_code == 3
    assert [a for a in alerts(http_receiver) if a[0] == "unreachable"] == [("unreachable", "firing", "", "host-03")]
    backed_off = project.cw("reconcile", "--once")  # within the next backoff (4 s): not tried, still reported
    assert backed_off.exit_code == 3
    assert "backing off: next try at" in backed_off.output
    row = status(project)[("fixed.conf", "host-03")]  # not "ok" with a next-due time in the past
    assert row["state"] == "unreachable"
    assert row["detail"].startswith("host unreachable since ") and "(2 failed tries: " in row["detail"]
    assert row["detail"].endswith(f"backing off, next try at {row['next_due']}")
    assert row["next_due"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert status(project)[("fixed.conf", "host-01")]["state"] == "ok"

    fleet.start_host(down)
    make_due(project)  # the second backoff (4 s) is over, and every check is due again
    back = project.cw("reconcile", "--once")
    assert back.exit_code == 0, back.output
    assert "✓ [host-03] fixed.conf: present at rc/fixed.conf" in back.output
    assert [a for a in alerts(http_receiver) if a[0] == "unreachable"] == [
        ("unreachable", "firing", "", "host-03"), ("unreachable", "resolved", "", "host-03")]


# The service -------------------------------------------------------------------------


def test_the_daemon_corrects_within_an_interval_alerts_every_channel_reloads_and_stops_on_sigterm(
    fleet: Fleet, make_project, daemon, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    project = make_project(fleet, FILES.format(interval=1))
    assert project.cw("apply").exit_code == 0
    process = daemon(project)
    process.wait_for("pass")
    drift(fleet, fleet.hosts[1], "fixed.conf")
    wait_until(lambda: content(fleet, fleet.hosts[1], "fixed.conf") == DECLARED["fixed.conf"], 10, "the correction")
    process.wait_for("corrected")
    assert [line["host"] for line in process.events("corrected")] == ["host-02"]
    assert not http_receiver.requests, "no channel configured yet"

    with HttpReceiver() as slack:
        settings(project, alert_webhook_url=http_receiver.url, alert_slack_webhook_url=slack.url,
                 alert_email_to="ops@example.test", smtp_host="127.0.0.1", smtp_port=str(smtp_receiver.port))
        process.process.send_signal(signal.SIGHUP)
        process.wait_for("reloaded")
        drift(fleet, fleet.hosts[2], "fixed.conf")
        http_receiver.wait_for(1, timeout=10)
        slack.wait_for(1, timeout=10)
        smtp_receiver.wait_for(1, timeout=10)
        assert content(fleet, fleet.hosts[2], "fixed.conf") == DECLARED["fixed.conf"]
        assert alerts(http_receiver) == [("drift", "resolved", "fixed.conf", "host-03")]
        assert set(slack.requests[0].body) == {"text"} and "fixed.conf" in slack.requests[0].body["text"]
        mail = smtp_receiver.messages[0]
        assert mail["To"] == "ops@example.test" and "fixed.conf" in mail["Subject"]

    wait_until(lambda: process.lines()[-1]["event"] == "pass", 5, "a pass to end")  # asleep until the next one
    assert process.stop() == 0
    assert process.lines()[-1]["event"] == "stopped"
    assert (project.directory / ".clockwork" / "reconcile.log").read_text().count('"event": "corrected"') == 2


def test_sigterm_while_working_finishes_the_pass_then_exits(fleet: Fleet, make_project, daemon) -> None:
    source = ("from clockwork.checks import CommandCheck\nfrom clockwork.resources import FileResource\n"
              "slow = FileResource(name='slow.conf', directory='rc', content='x\\n', reconcile=True,\n"
              "                    checks=[CommandCheck('touch checking; sleep 3')])\n")
    project = make_project(fleet, source)
    assert project.cw("apply").exit_code == 0
    for host in fleet.hosts:
        assert fleet.run(host, "rm -f checking").returncode == 0
    process = daemon(project)
    # Inside the first pass: the health check has begun on a host, and takes 3 s there.
    wait_until(lambda: any(fleet.run(host, "test -e checking").returncode == 0 for host in fleet.hosts), 20,
               "the health check to start")
    assert not process.events("pass"), "the first pass is still running"
    assert process.stop() == 0
    order = [line["event"] for line in process.lines()]
    assert order[order.index("signal"):] == ["signal", "pass", "stopped"]
    assert status(project)[("slow.conf", "host-01")]["last_result"] == "ok"


def test_expiry_warns_destroys_and_stays_destroyed_until_applied_again(
    fleet: Fleet, make_project, daemon, http_receiver: HttpReceiver
) -> None:
    source = ("from clockwork.resources import FileResource\n"
              "temp = FileResource(name='temp.conf', directory='rc', content='t\\n', reconcile=True, check_interval=1,\n"
              "                    max_duration='1h', alert_on=['expired'])\n"
              "keep = FileResource(name='keep.conf', directory='rc', content='k\\n', max_duration='2h')\n")
    project = make_project(fleet, source)
    settings(project, alert_webhook_url=http_receiver.url)
    assert project.cw("apply").exit_code == 0
    age_lifetimes(project, 3600 - 60)  # a minute left: inside the warning window (6 min before the end)
    process = daemon(project)

    def expiring() -> list[str]:
        return [host for kind, _status, name, host in alerts(http_receiver) if (kind, name) == ("expiring", "temp.conf")]

    wait_until(lambda: len(expiring()) == 3, 20, "the expiry warnings")
    process.wait_for("pass", count=2)  # warned once: the passes after it warn no more
    assert sorted(expiring()) == ["host-01", "host-02", "host-03"]
    assert [content(fleet, host, "temp.conf") for host in fleet.hosts] == ["t\n"] * 3, "warned, not yet destroyed"
    age_lifetimes(project, 60)  # the hour is over
    process.wait_for("expired", count=3)
    assert process.stop() == 0
    assert [content(fleet, host, "temp.conf") for host in fleet.hosts] == [None] * 3
    assert [content(fleet, host, "keep.conf") for host in fleet.hosts] == ["k\n"] * 3
    received = alerts(http_receiver)
    for host in ("host-01", "host-02", "host-03"):
        mine = [kind for kind, _status, name, at in received if (name, at) == ("temp.conf", host)]
        assert mine == ["expiring", "expired"], received
    assert ("expired", "temp.conf", "host-01", "corrective") in events(project)
    manifest = json.loads(fleet.run(fleet.hosts[0], "cat .clockwork/manifest.json").stdout)
    assert "FileResource/temp.conf" not in manifest["resources"] and "FileResource/keep.conf" in manifest["resources"]

    assert project.cw("reconcile", "--once").exit_code == 0
    assert content(fleet, fleet.hosts[0], "temp.conf") is None, "an expired resource is not recreated"
    assert status(project)[("temp.conf", "host-01")]["state"] == "expired"
    refused = project.cw("extend", "temp.conf", "--by", "1h")
    assert refused.exit_code == 2
    assert "has no expiry to extend" in refused.output

    assert status(project)[("keep.conf", "host-02")]["state"] == "expiry only"  # not reconciled, but it ends
    before = status(project)[("keep.conf", "host-02")]["expires_at"]
    extended = project.cw("extend", "keep.conf", "--by", "2h")
    assert extended.exit_code == 0, extended.output
    after = status(project)[("keep.conf", "host-02")]["expires_at"]
    moved = time.mktime(time.strptime(after, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.strptime(before, "%Y-%m-%dT%H:%M:%SZ"))
    assert moved == 7200
    assert ("extended", "keep.conf", "host-02", "intentional") in events(project)

    assert project.cw("apply").exit_code == 0
    assert content(fleet, fleet.hosts[0], "temp.conf") == "t\n"
    assert status(project)[("temp.conf", "host-01")]["state"] == "not checked yet"


# Bad input -----------------------------------------------------------------------------


LOCAL = "from clockwork.resources import FileResource\nf = FileResource(name='a.txt', directory='out', content='a\\n', reconcile=True)\n"


@pytest.mark.parametrize(("env", "args", "message"), [
    ({}, ["reconcile", "--once"], "nothing to reconcile: nothing was ever applied from"),
    ({}, ["reconcile"], "nothing to reconcile: nothing was ever applied from"),
    ({}, ["extend", "a.txt", "--by", "1h"], "no history for 'a.txt'"),
])
def test_reconcile_and_extend_refuse_a_project_with_nothing_applied(tmp_path: Path, env, args, message) -> None:
    (tmp_path / "main.py").write_text(LOCAL)
    project = CwProject(tmp_path)
    result = project.cw(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.py"], "nothing was created"


@pytest.mark.parametrize(("dotenv", "args", "message"), [
    ("CW_FLAPPING_LIMIT=often\n", ["reconcile", "--once"], "CW_FLAPPING_LIMIT must be a whole number"),
    ("CW_FLAPPING_LIMIT=0\n", ["reconcile"], "CW_FLAPPING_LIMIT must be a whole number"),
    ("CW_ALERT_WEBHOOK_URL=ftp://127.0.0.1/\n", ["reconcile", "--once"], "CW_ALERT_WEBHOOK_URL"),
    ("", ["reconcile", "--once", "-i", "missing.py"], "missing.py"),
    ("", ["extend", "a.txt", "--by", "1h"], "has no expiry to extend"),
    ("", ["extend", "nothing.txt", "--by", "1h"], "no history for 'nothing.txt'"),
    ("", ["extend", "a.txt", "--by", "soon"], "is not a duration"),
])
def test_bad_reconcile_input_is_one_clear_error_and_changes_nothing(tmp_path: Path, dotenv, args, message) -> None:
    (tmp_path / "main.py").write_text(LOCAL)
    project = CwProject(tmp_path)
    assert project.cw("apply").exit_code == 0
    (tmp_path / ".env").write_text(dotenv)
    (tmp_path / "out" / "a.txt").write_text("drifted\n")
    result = project.cw(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert (tmp_path / "out" / "a.txt").read_text() == "drifted\n", "nothing was corrected"
    assert not (tmp_path / ".clockwork" / "reconcile.log").exists()
    (tmp_path / ".env").unlink()  # settings are checked by every command: status, too, would refuse them
    assert project.cw("status").output.startswith("· [@local] FileResource a.txt: not checked yet")


def test_once_on_local_and_the_systemd_unit(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(LOCAL)
    project = CwProject(tmp_path)
    assert project.cw("status").output == "Nothing is reconciled: no resource was applied with reconcile=True or a max_duration.\n"
    assert project.cw("apply").exit_code == 0
    (tmp_path / "out" / "a.txt").write_text("drifted\n")
    result = project.cw("reconcile", "--once", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.txt").read_text() == "a\n"
    log = [json.loads(line) for line in (tmp_path / ".clockwork" / "reconcile.log").read_text().splitlines()]
    assert [line["event"] for line in log] == ["claimed", "corrected", "pass"]
    assert os.stat(tmp_path / ".clockwork" / "reconcile.log").st_mode & 0o777 == 0o600
    unit = project.cw("reconcile", "--print-systemd-unit", "-i", "inventory.py").output
    assert f"WorkingDirectory={tmp_path}\n" in unit
    assert "reconcile -i inventory.py\n" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
