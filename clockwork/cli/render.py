"""How commands show what they did: one line per host × resource, per lost or unreachable host, and the tallies;
every name and detail with its control characters escaped."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from clockwork.durations import stamp
from clockwork.output import escape
from clockwork.patch import MISSING
from clockwork.results import Report, Result

if TYPE_CHECKING:
    from clockwork.commands.apply import Revert
    from clockwork.commands.update import Change, UpdateOutcome
    from clockwork.complete import Completion
    from clockwork.reconcile.passes import PassOutcome
    from clockwork.reconcile.status import StatusRow
    from clockwork.state.base import Lifetime, Version, Worker

MARKS = {"ok": "✓", "drift": "✗", "pending": "⋯", "error": "✗"}


def echo(text: str = "", nl: bool = True, err: bool = False) -> None:
    """``click.echo`` with control characters shown escaped (lines stay lines)."""
    click.echo(escape(text, keep_newlines=True), nl=nl, err=err)


def host_word(count: int) -> str:
    return "host" if count == 1 else "hosts"


def line(result: Result, several_hosts: bool, mark: str | None = None) -> str:
    """``✗ [web-1] config.json: content differs (…)``; names and details with control characters escaped."""
    host = f"[{escape(result.host)}] " if several_hosts else ""
    return f"{mark or MARKS[result.status]} {host}{escape(result.resource)}: {escape(result.detail)}"


def print_results(
    report: Report, show: Callable[[Result], bool], mark: Callable[[Result], str] | None = None,
    during: str = "apply", done: str = "applied",
) -> None:
    """One line per shown result; one line per unreachable host, and per host lost ``during`` the command."""
    from clockwork.engine import NOT_RUN_LOST

    several = len(report.hosts) > 1
    lost = {result.host: None for result in report.results if result.error == NOT_RUN_LOST}
    for result in report.results:
        if show(result) and result.host not in report.unreachable and result.host not in lost:
            echo(line(result, several, mark(result) if mark else None))
    for host in {**report.unreachable, **lost}:
        if host in lost:
            mine = [result for result in report.results if result.host == host]
            changed = ", ".join(f"{escape(r.resource)} ({escape(r.detail)})" for r in mine if r.changed and r.status == "ok")
            not_run = ", ".join(escape(r.resource) for r in mine if r.error == NOT_RUN_LOST)
            echo(f"✗ [{escape(host)}] connection lost during {during}: "
                 f"{f'{done} {changed}' if changed else f'nothing was {done}'}; not run: {not_run}")
        else:
            echo(f"✗ [{escape(host)}] unreachable: {escape(report.unreachable[host])}")
    for warning in report.warnings:
        echo(f"! {escape(warning)}")


def unreachable_line(report: Report) -> str:
    if not report.unreachable:
        return ""
    return f"; unreachable: {escape(', '.join(sorted(report.unreachable)))}"


def tally(report: Report, changed: str, unchanged: str, left: int = 0) -> str:
    """``3 changed, 6 unchanged, 0 failed on 3 hosts; unreachable: …`` (unreachable hosts apart); ``left``:
    how many of the unchanged were left in place (destroy of a directory that holds other things)."""
    hosts = len(report.hosts)
    kept = f", {left} left in place" if left else ""
    return (f"{report.changed} {changed}, {report.count('ok') - report.changed - left} {unchanged}{kept}, "
            f"{report.failed} failed on {hosts} {host_word(hosts)}{unreachable_line(report)}")


def host_list(hosts: list[str], at_most: int = 10) -> str:
    """``host-01, host-02`` or ``50 hosts (host-01, …, host-10 and 40 more)``."""
    if len(hosts) <= at_most:
        return ", ".join(hosts) or "no host"
    return f"{len(hosts)} hosts ({', '.join(hosts[:at_most])} and {len(hosts) - at_most} more)"


def count(number: int, noun: str) -> str:
    """``1 correction``, ``2 corrections``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def evaluation_text(report: Report, quiet: bool) -> str:
    """evaluate's text report: a verdict line, a line per result (``quiet``: only what is not ok) with its
    explanation, a line per unreachable host; control characters escaped."""
    lines = []
    total = len(report.results)
    if report.status == "ok":
        lines.append("✓ All resources running as specified")
    else:
        counts = ", ".join(count(report.count(s), s) if s == "error" else f"{report.count(s)} {s}"
                           for s in ("drift", "pending", "error") if report.count(s))
        lines.append(f"✗ {total - report.count('ok')} of {total} not as specified ({counts}){unreachable_line(report)}")
    several = len(report.hosts) > 1
    for result in report.results:
        if result.host in report.unreachable:
            continue
        if not quiet or result.status != "ok":
            lines.append(f"  {line(result, several)}")
        if result.explanation:
            lines += [f"      {line}" for line in result.explanation.splitlines()]
    for host, error in report.unreachable.items():
        lines.append(f"  ✗ [{escape(host)}] unreachable: {escape(error)}")
    return escape("".join(f"{line}\n" for line in lines), keep_newlines=True)


def print_history(versions: list[Version]) -> None:
    """Each resource, then a line per version: ``v2  2026-11-24T14:02:11Z  update    web-1, web-2  (current)``."""
    if not versions:
        echo("No history yet: nothing was applied from this project directory.")
        return
    latest = {(v.type, v.resource): v.version for v in versions}
    for key in dict.fromkeys((v.type, v.resource) for v in versions):
        echo(f"{escape(key[0])} {escape(key[1])}")
        for v in (v for v in versions if (v.type, v.resource) == key):
            mark = "  (current)" if latest[key] == v.version else ""
            echo(f"  v{v.version}  {stamp(v.created_at)}  {v.source:<8}  {escape(', '.join(v.hosts))}{mark}")


def print_status(rows: list[StatusRow]) -> None:
    """A line per reconciled resource and host (state, last result, next due, corrections, expiry), its detail
    below when it is not ok."""
    if not rows:
        echo("Nothing is reconciled: no resource was applied with reconcile=True or a max_duration.")
        return
    for row in rows:
        corrections = f"{count(row.corrections_total, 'correction')} ({row.corrections_last_hour} in the last hour)"
        parts = [f"{row.state}", f"last {row.last_result or '-'} at {row.last_checked or '-'}"]
        if row.last_event:
            parts.append(f"last change {row.last_event} ({row.last_intent}) at {row.last_event_at}")
        if row.next_correction:
            parts.append(f"{count(row.failed_corrections, 'failed correction')}, next try at {row.next_correction}")
        parts += [f"next due {row.next_due or '-'}", corrections]
        if row.expires_at:
            parts.append(f"expires {row.expires_at}")
        mark = "✓" if row.state == "ok" else "✗" if row.state in ("drift", "failure", "flapping", "unstable",
                                                                   "unreachable") else "·"
        echo(f"{mark} [{escape(row.host)}] {escape(row.type)} {escape(row.resource)}: {escape('; '.join(parts))}")
        if row.detail and row.state not in ("ok",):
            echo(f"    {escape(row.detail)}")


def worker_dict(worker: Worker) -> dict[str, Any]:
    """A reconcile worker as ``clockwork status --format json`` lists it."""
    return {"id": worker.id, "machine": worker.machine, "pid": worker.pid, "started_at": stamp(worker.started_at),
            "last_heartbeat": stamp(worker.heartbeat), "lease_seconds": worker.lease,
            "state": "alive" if worker.alive else "dead", "hosts": worker.hosts}


def print_workers(workers: list[Worker]) -> None:
    """A line per reconcile worker: alive or dead, its last heartbeat, the hosts it holds now."""
    if not workers:
        return
    echo("Reconcile workers:")
    for worker in workers:
        held = f"holds {count(len(worker.hosts), 'host')}" + (f": {', '.join(worker.hosts)}" if worker.hosts else "")
        state = "alive" if worker.alive else "dead (silent for over three lease periods)"
        echo(f"{'✓' if worker.alive else '✗'} {escape(worker.id)} (pid {worker.pid} on {escape(worker.machine)}): {state}, "
             f"last heartbeat {stamp(worker.heartbeat)}; {escape(held)}")


def print_update_plan(changes: list[Change]) -> None:
    """Per resource of update.py: new or where its deployed spec came from, then ``field: before → after``."""
    for change in changes:
        if change.previous is None:
            echo(f"✓ New resource: {change.label}")
        else:
            echo(f"✓ Detected existing deployment: {change.label} ({escape(change.origin)})")
        for name, before, after in change.diffs() if change.previous is not None else []:
            echo(f"    {escape(name)}: {escape(describe_value(before))} → {escape(describe_value(after))}")
        if change.previous is not None and not change.fields:
            echo("    no change")
        if change.note:
            echo(f"    ({escape(change.note)})")


def print_update_outcome(outcome: UpdateOutcome, kept: bool) -> None:
    """What the update changed, whether its evaluation passed, and the rollback (or ``kept``: none, on purpose)."""
    print_results(outcome.applied, lambda r: bool(r.changed) or r.status != "ok")
    verified = outcome.verified
    if verified is not None and verified.status == "ok":
        echo("✓ All checks passing")
        return
    if verified is not None:
        echo("✗ Evaluation after the update failed:")
        for result in verified.results:
            if result.status != "ok":
                echo(f"  {line(result, len(verified.hosts) > 1)}")
    if outcome.rolled_back is not None:
        echo(f"↩ Rolled back: {tally(outcome.rolled_back, 'changed', 'unchanged')}")
    elif kept:
        echo("Kept the failed update in place (--no-rollback).")


def describe_value(value: Any) -> str:
    """A value as one line of JSON, at most 80 characters.

    >>> describe_value({"workers": 4})
    '{"workers": 4}'
    """
    if value is MISSING:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


def print_completions(completions: list[Completion], include_lock: bool) -> None:
    """``◆ completed FileResource 'motd'.content = 'hello\\n' (rules)`` per completed field (pinned ones too
    with ``include_lock``)."""
    for completion in completions:
        if include_lock or completion.source != "lock":
            value = repr(completion.value)
            value = value if len(value) <= 60 else value[:57] + "…"
            source = f"model {completion.model}" if completion.source == "model" else completion.source
            echo(f"◆ completed {completion.label} = {value} ({source})")


def print_reverts(reverts: list[Revert]) -> None:
    """A warning per resource whose apply would undo what ``clockwork update`` deployed."""
    for revert in reverts:
        echo(f"! {revert.resource.label}: apply would revert version {revert.version.version}, which `clockwork "
             f"update` deployed (main.py differs in {escape(', '.join(revert.fields))}); "
             f"`clockwork history {escape(revert.resource.name)}` shows the spec to copy into main.py")


def print_plan(report: Report, quiet: bool) -> None:
    """plan's lines (``=`` unchanged, ``~`` to change, ``✗`` failed) and its ``Plan: …`` tally."""
    print_results(report, lambda r: not quiet or r.status != "ok", lambda r: {"ok": "=", "drift": "~"}.get(r.status, "✗"))
    hosts = len(report.hosts)
    echo(f"Plan: {report.count('drift')} to change, {report.count('ok')} unchanged, {report.failed} failed "
         f"on {hosts} {host_word(hosts)}{unreachable_line(report)}")


def print_applied(report: Report, quiet: bool) -> None:
    """apply's lines (``quiet``: only changes and problems) and its tally."""
    print_results(report, lambda r: not quiet or r.status != "ok" or bool(r.changed))
    if not report.changed and report.status == "ok":
        echo(f"Nothing to do: every resource is already as declared on {len(report.hosts)} {host_word(len(report.hosts))}")
    else:
        echo(f"Applied: {tally(report, 'changed', 'unchanged')}")


def print_destroyed(report: Report, quiet: bool) -> None:
    """destroy's lines and its tally, with what was left in place on purpose."""
    print_results(report, lambda r: not quiet or r.status != "ok" or bool(r.changed), during="destroy", done="removed")
    left = sum(1 for result in report.results if result.status == "ok" and result.declined)
    echo(f"Destroyed: {tally(report, 'removed', 'already absent', left)}")


def print_rolled_back(report: Report, current: Version, target: Version) -> None:
    """rollback's lines and, when it held, the version it was recorded as."""
    print_results(report, lambda r: True)
    if report.status == "ok":
        echo(f"Rolled back {target.type} {target.resource!r} to version {target.version} "
             f"(recorded as version {current.version + 1})")


def print_reconciled(outcome: PassOutcome, quiet: bool) -> None:
    """A reconcile pass's lines and its tally, with when the next check is due."""
    report = outcome.report
    if not outcome.looked_after:
        echo("Nothing to reconcile: no resource was applied with reconcile=True or a max_duration.")
        return
    print_results(report, lambda r: not quiet or r.status != "ok" or bool(r.changed))
    next_due = "nothing scheduled" if outcome.next_wake == float("inf") else f"next check due {stamp(outcome.next_wake)}"
    echo(f"Reconciled: {len(report.results)} checked, {outcome.corrected} corrected, {outcome.expired} expired, "
         f"{report.count('drift')} drift, {count(report.count('error'), 'error')}; {next_due}")


def print_extended(lifetimes: list[Lifetime]) -> None:
    """The new expiry per host."""
    for lifetime in lifetimes:
        echo(f"✓ [{escape(lifetime.host)}] {escape(lifetime.type)} {escape(lifetime.name)}: expires {stamp(lifetime.expires_at)}")


def print_interrupted(deployments: list[dict[str, Any]]) -> None:
    """A warning per deployment whose process died before it finished."""
    for killed in deployments:
        echo(f"! {killed['command']} (pid {killed['pid']}) started {stamp(killed['started_at'])} was interrupted: "
             "what it changed on the hosts has no version here; `clockwork evaluate` shows where they stand")
