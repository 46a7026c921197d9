"""How well the reconcile service keeps a fleet true: correction latency, CPU and memory of the daemon.

    python bench/reconcile.py [--hosts 50] [--files 10] [--interval 5] [--minutes 3] [--drifts-per-second 1]

Starts a fleet of real sshd hosts on 127.0.0.1 (testsupport/fleet.py, users cwb01…),
applies ``--files`` small files per host with ``reconcile=True`` and
``check_interval=--interval`` seconds, and starts ``clockwork reconcile`` as a
process. For ``--minutes`` it drifts a random file on a random host about
``--drifts-per-second`` times a second (new content written by hand), and
reads the daemon's log (``.clockwork/reconcile.log``) for the corrections.

Reports, for each drift, the time from writing it to the daemon's
``corrected`` event (median, p95, max; the interval bounds what to expect:
a drift waits up to one interval for its next check), how many drifts were
corrected, the CPU the daemon used (share of one core over the busy phase),
and its resident memory at the start and the end of that phase. Then it
applies the same files with ``check_interval="1h"`` and measures the idle
daemon's CPU for 30 s. Nothing is asserted about the figures.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402


def main_py(files: int, interval: int | str) -> str:
    lines = ["from clockwork.resources import FileResource", ""]
    lines += [f"f{i:02d} = FileResource(name='r{i:02d}.conf', directory='rc', content='value = {i}\\n', "
              f"reconcile=True, check_interval={interval!r})" for i in range(files)]
    return "\n".join(lines) + "\n"


def corrections(log: Path) -> list[tuple[float, str, str]]:
    """(time, host, resource) of every ``corrected`` event in the daemon's log."""
    return [(event["t"], event["host"], event["resource"]) for event in common.log_events(log, "corrected")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--interval", type=int, default=5, help="check_interval in seconds (default 5)")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long drift is injected (default 3)")
    parser.add_argument("--drifts-per-second", type=float, default=1.0)
    args = parser.parse_args()

    load = common.load_average()
    fleet, start_time = common.start(args.hosts)
    daemon = None
    try:
        project = fleet.root / "project"
        project.mkdir()
        fleet.write_inventory(project / "inventory.py")
        (project / "main.py").write_text(main_py(args.files, args.interval))
        subprocess.run([common.CLOCKWORK, "apply", "-q"], cwd=project, check=True, capture_output=True)
        log = project / ".clockwork" / "reconcile.log"
        daemon = subprocess.Popen([common.CLOCKWORK, "reconcile", "-q"], cwd=project, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2 * args.interval)  # first passes: every pair checked once
        rss_start, cpu_start, began = common.rss_mib(daemon.pid), common.cpu_seconds(daemon.pid), time.time()
        print(f"Drifting for {args.minutes} min…", file=sys.stderr, flush=True)
        drifts = common.inject_drifts(
            fleet, lambda: (random.choice(fleet.hosts), f"r{random.randrange(args.files):02d}.conf"),
            args.minutes * 60, args.drifts_per_second)
        time.sleep(2 * args.interval)  # the last drifts get their correction
        busy_wall, busy_cpu = time.time() - began, common.cpu_seconds(daemon.pid) - cpu_start
        rss_end = common.rss_mib(daemon.pid)

        fixed = corrections(log)
        latencies = []
        for drifted_at, host, name in drifts:
            later = [at for at, h, n in fixed if (h, n) == (host, name) and at >= drifted_at]
            if later:
                latencies.append(min(later) - drifted_at)

        print("Idle phase: check_interval='1h'…", file=sys.stderr, flush=True)
        (project / "main.py").write_text(main_py(args.files, "1h"))
        subprocess.run([common.CLOCKWORK, "apply", "-q"], cwd=project, check=True, capture_output=True)
        time.sleep(2 * args.interval + 2)  # every pair's last short-interval check
        idle_cpu_start, idle_began = common.cpu_seconds(daemon.pid), time.time()
        time.sleep(30)
        idle_share = (common.cpu_seconds(daemon.pid) - idle_cpu_start) / (time.time() - idle_began)
        daemon.send_signal(signal.SIGTERM)
        stopped_began = time.monotonic()
        status = daemon.wait(timeout=60)
        stop_time = time.monotonic() - stopped_began
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        fleet.stop()

    pairs = args.hosts * args.files
    lines = [f"## bench/reconcile.py — {time.strftime('%Y-%m-%d %H:%M')}", ""]
    lines += common.environment(args.hosts, None, load)
    lines += [
        f"{pairs} reconciled pairs ({args.files} files × {args.hosts} hosts), check_interval {args.interval}s, "
        f"{len(drifts)} drifts injected at random over {args.minutes:g} min; fleet start {start_time:.2f} s",
        "",
        f"corrected: {len(latencies)} of {len(drifts)} drifts",
    ]
    if latencies:
        lines.append(f"drift written → corrected: median {statistics.median(latencies):.2f} s, "
                     f"p95 {common.percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
                     f"(a drift waits up to one interval, {args.interval} s, for its next check)")
    lines += [
        f"daemon CPU while busy: {busy_cpu:.1f} s over {busy_wall:.0f} s = {100 * busy_cpu / busy_wall:.1f}% of one core",
        f"daemon memory (RSS): {rss_start:.1f} MiB at the start, {rss_end:.1f} MiB at the end "
        f"({rss_end - rss_start:+.1f} MiB)",
        f"daemon CPU idle (check_interval 1h, 30 s): {100 * idle_share:.2f}% of one core",
        f"SIGTERM → exit {status} in {stop_time:.2f} s",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
