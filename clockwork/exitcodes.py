"""The one mapping from what a command ended with (a report, an error, a bug) to its exit status (DESIGN.md).

>>> from clockwork.results import Report
>>> exit_status(Report([], ["web-1"], unreachable={"web-1": "timed out"}))
<ExitStatus.HOST: 3>
>>> exit_status(ProjectError("main.py:3: duplicate FileResource 'a'"))
<ExitStatus.USAGE: 2>
>>> exit_status(KeyError("mode"))
<ExitStatus.INTERNAL: 4>
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clockwork.exceptions import ClockworkError, ExitStatus, ProjectError

if TYPE_CHECKING:
    from clockwork.results import Report

__all__ = ["ExitStatus", "ProjectError", "exit_status"]


def exit_status(outcome: Report | BaseException | None, drift_fails: bool = False) -> ExitStatus:
    """0 success; 1 drift or pending (when ``drift_fails``: evaluate, reconcile --once); 2 a usage, project,
    settings or state error; 3 a host unreachable or a check or operation failed there; 4 anything else raised
    (a bug)."""
    if outcome is None:
        return ExitStatus.OK
    if isinstance(outcome, ClockworkError):
        return ExitStatus(outcome.exit_code)
    if isinstance(outcome, BaseException):
        return ExitStatus.INTERNAL
    if outcome.count("error") or outcome.unreachable:
        return ExitStatus.HOST
    if drift_fails and (outcome.count("drift") or outcome.count("pending")):
        return ExitStatus.DRIFT
    return ExitStatus.OK
