"""When things are due: check intervals (seconds, durations, cron), jitter, host backoff, expiry warnings."""

from __future__ import annotations

from clockwork.durations import is_cron, parse_duration

#: The most a host's checks are spread after their due time, as a share of the interval and in seconds.
JITTER_SHARE = 0.1
JITTER_MAX = 10.0
#: An unreachable host is retried after 2 s, 4 s, 8 s… at most this long.
BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0
#: The warning before expiry: this share of max_duration before it, at most this long.
WARN_SHARE = 0.1
WARN_MAX = 900.0
#: Corrections are counted over this window for flapping.
FLAPPING_WINDOW = 3600.0


def interval_seconds(interval: int | str, after: float) -> float:
    """How long after ``after`` (epoch seconds) the next check is due.

    >>> interval_seconds("5m", 0)
    300.0
    """
    if isinstance(interval, int):
        return float(interval)
    if is_cron(interval):
        from croniter import croniter

        return croniter(interval, after).get_next(float) - after
    return float(parse_duration(interval))


def jitter(interval: float, share: float) -> float:
    """A delay that spreads a fleet's checks: ``share`` (0–1, random per host) of 10% of the interval, at most 10 s.

    >>> jitter(60, 0.5)
    3.0
    """
    return share * min(interval * JITTER_SHARE, JITTER_MAX)


def backoff(failures: int) -> float:
    """Seconds before trying a host again after ``failures`` consecutive failures (2, 4, 8… ≤ 300).

    >>> backoff(3)
    8.0
    """
    return min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)


def warning_lead(lifetime: float) -> float:
    """How long before expiry the warning goes out: 10% of the lifetime, at most 15 minutes."""
    return min(lifetime * WARN_SHARE, WARN_MAX)


def recent(times: list[float], now: float) -> list[float]:
    """The times within the flapping window."""
    return [moment for moment in times if now - moment < FLAPPING_WINDOW]
