"""How commands show what they did: one line per host × resource, per lost or unreachable host, and the tallies;
every name and detail with its control characters escaped."""

from __future__ import annotations

from collections.abc import Callable

import click

from clockwork.output import escape
from clockwork.results import Report, Result

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
