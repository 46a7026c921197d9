"""Durations ("30s", "5m", "2h", "1h30m"), check intervals (seconds, duration or cron), and how times read."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> int:
    """Seconds in a duration string.

    >>> parse_duration("1h30m")
    5400
    """
    value = text.strip().lower()
    if not _DURATION.match(value):
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, e.g. '30s', '5m', '2h', '1d', '1h30m'")
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(value))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration: it must be longer than 0s")
    return seconds


def is_cron(text: str) -> bool:
    """Whether ``text`` is a valid 5-field cron expression (``"*/5 * * * *"``)."""
    from croniter import croniter

    return len(text.split()) == 5 and croniter.is_valid(text)


def validate_interval(value: int | str) -> int | str:
    """A check interval: positive seconds, a duration string, or a cron expression."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("a check interval is seconds, a duration like '5m', or a cron expression")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value} is not a check interval: seconds must be more than 0")
        return value
    if is_cron(value):
        return value
    try:
        parse_duration(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a check interval: use seconds (60), a duration ('30s', '5m') "
            "or a cron expression ('*/5 * * * *')"
        ) from None
    return value


def stamp(moment: float) -> str:
    """An epoch time (how every time is kept) as RFC 3339 UTC, as output, logs, alerts and JSON show it.

    >>> stamp(0)
    '1970-01-01T00:00:00Z'
    >>> stamp(float("inf"))
    'never'
    """
    if not math.isfinite(moment):
        return "never"
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
