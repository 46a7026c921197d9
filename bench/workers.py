"""How several reconcile workers share one fleet through PostgreSQL: correction latency, lost or doubled
corrections, database statements per pass, and the cost of a claim and its end as the claim grows.

    python bench/workers.py [--hosts 200] [--files 10] [--interval 5] [--workers 1,2,3] [--minutes 2]
                            [--drifts-per-second 1] [--capacity 100] [--lease 60s] [--micro 50,200,500,1000]

Starts a fleet of real sshd hosts on 127.0.0.1 (testsupport/fleet.py, users cwb01…)
and a real PostgreSQL on a loopback port (testsupport/postgres.py) with
``pg_stat_statements`` loaded, writes a project whose ``.env`` points
``CW_STATE_URL`` at it, and applies ``--files`` small files per host with
``reconcile=True`` and ``check_interval=--interval`` seconds (bench/reconcile.py's
project). Then, for each worker count of ``--workers``, it starts that many
``clockwork reconcile`` processes (each with its own stderr file: its JSON event
log), waits until every host was claimed once, and for ``--minutes`` drifts a
random file on a random host about ``--drifts-per-second`` times a second (new
content written by hand; never the same file on the same host twice in the whole
benchmark, so that each drift must be corrected exactly once). It waits until every
drift is corrected (at most ``max(60 s, 6 intervals)``), stops the workers with
SIGTERM, and puts back by hand whatever stayed drifted.

Reports per worker count: the time from writing each drift to its ``corrected``
event (median, p95, max); corrections lost (a drift without a correction after it),
doubled (more than one ``corrected`` event for a drifted file) and spurious (a file
corrected that was not drifted); claims held twice (the same host and fence in two
workers' ``claimed`` events); passes, hosts per pass and pass duration; the workers'
CPU; and what the database executed for the workers while drift was injected,
counted by the server itself: ``pg_stat_statements`` calls in the project's
database (every statement a client sent, BEGIN/COMMIT included) per pass and per
claimed host, the connections opened (``pg_stat_database.sessions``) and the
transactions committed. psycopg's ``executemany`` pipelines its statements, so the
statement count bounds the network round trips from above.

Then, in this process, a micro-benchmark of ``PostgresStore.claim`` +
``finish_pass`` with a ``PassWrites`` of one ``Watch`` per file per host (what a
quiet pass records) over ``--micro`` hosts: median of 5 runs, ms per host, the
marginal cost of each step up (constant when the cost is linear) and statements
per host. Nothing is asserted about the figures; lost or doubled corrections are
printed as such.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench import common  # noqa: E402
from bench.reconcile import main_py  # noqa: E402
from clockwork.state.base import PassWrites, Watch  # noqa: E402
from clockwork.state.postgres import PostgresStore  # noqa: E402
from testsupport.fleet import Fleet, FleetHost  # noqa: E402
from testsupport.postgres import PostgresServer, start_postgres  # noqa: E402

#: The database the workers use, and the one the micro-benchmark uses (statements are counted per database).
DATABASE, MICRO_DATABASE = "clockwork", "micro"
#: Fleet user prefixes, the first one free: the benchmarks' own, then one for running beside another benchmark.
PREFIXES = (common.PREFIX, f"{common.PREFIX}w")
#: How long workers get to claim every host once, and to stop on SIGTERM.
WARM_UP_TIMEOUT, STOP_TIMEOUT = 300.0, 30.0
MICRO_RUNS = 5
#: What each statement the server counted is, by the start of its normalized text (first match wins).
KINDS = [
    ("claim", ("SELECT host FROM reconcile_hosts", "UPDATE reconcile_hosts SET worker = $1, fence",
               "SELECT host, fence FROM reconcile_hosts")),
    # (pg_stat_statements shows constants, NULL too, as $n)
    ("finish: release host", ("UPDATE reconcile_hosts SET worker = $6, lease_expires = $7, next_due",
                              "UPDATE reconcile_hosts SET worker = NULL, lease_expires = NULL, next_due")),
    ("finish: watches", ("INSERT INTO watches",)),
    ("finish: events", ("INSERT INTO events",)),
    ("lease left", ("SELECT host, fence, lease_expires",)),
    ("heartbeat", ("UPDATE workers SET heartbeat", "UPDATE reconcile_hosts SET lease_expires")),
    ("write lock (shared)", ("SET lock_timeout", "SELECT pg_advisory_lock_shared", "SELECT pg_advisory_unlock_shared",
                             "DELETE FROM lock_holders", "INSERT INTO lock_holders")),
    ("store opened (schema check)", ("SELECT pg_advisory_xact_lock", "CREATE TABLE IF NOT EXISTS clockwork_schema",
                                     "SELECT max(version)", "SELECT current_schema")),
    ("read recorded versions", ("SELECT type, name, version",)),
    ("read watches", ("SELECT type, name, host, next_due",)),
    ("read lifetimes", ("SELECT type, name, host, at, expires_at",)),
    ("read host health", ("SELECT host, failures",)),
    ("read secret key", ("SELECT value FROM meta",)),
    ("hosts from inventory", ("INSERT INTO reconcile_hosts",)),
    ("next due", ("SELECT MIN(CASE",)),
    ("BEGIN / COMMIT", ("BEGIN", "COMMIT", "ROLLBACK")),
]


# The server and what it counted ------------------------------------------------------------------


def start_server() -> PostgresServer:
    """A PostgreSQL with ``pg_stat_statements`` loaded (one restart), and the two databases."""
    print("Starting PostgreSQL…", file=sys.stderr, flush=True)
    server = start_postgres()
    try:
        with psycopg.connect(server.url(), autocommit=True) as db:
            db.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        server.stop()
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as db:
            db.execute("CREATE EXTENSION pg_stat_statements")  # its default track_utility = on: BEGIN, COMMIT…
        for name in (DATABASE, MICRO_DATABASE):
            server.create_database(name)
    except BaseException:
        server.close()
        raise
    return server


@dataclass
class Counts:
    """What the server counted for one database: calls per normalized statement, sessions, commits."""

    calls: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    commits: int = 0

    def __sub__(self, before: Counts) -> Counts:
        return Counts(self.calls - before.calls, self.sessions - before.sessions, self.commits - before.commits)

    @property
    def statements(self) -> int:
        return sum(self.calls.values())

    def by_kind(self) -> Counter[str]:
        """Calls grouped by ``KINDS`` (what is left: ``other``)."""
        kinds: Counter[str] = Counter()
        for query, calls in self.calls.items():
            kinds[kind_of(query)] += calls
        return kinds

    def others(self) -> Counter[str]:
        """Calls of the statements ``KINDS`` does not name, by their text (shortened)."""
        return Counter({" ".join(query.split())[:90]: calls for query, calls in self.calls.items()
                        if calls and kind_of(query) == "other"})


def kind_of(query: str) -> str:
    text = " ".join(query.split())
    return next((kind for kind, starts in KINDS if text.startswith(starts)), "other")


def counts(server: PostgresServer, database: str) -> Counts:
    """A snapshot of the server's counters for ``database`` (read from the ``postgres`` database, so that
    reading them is not counted)."""
    with psycopg.connect(server.url(), autocommit=True) as db:
        db.execute("SELECT pg_stat_clear_snapshot()")
        rows = db.execute("SELECT query, calls FROM pg_stat_statements JOIN pg_database d ON d.oid = dbid "
                          "WHERE d.datname = %s", (database,)).fetchall()
        sessions, commits = db.execute("SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = %s",
                                       (database,)).fetchone()
    calls: Counter[str] = Counter()
    for query, number in rows:
        calls[query] += number
    return Counts(calls, sessions, commits)


def settle_stats() -> None:
    """Cumulative statistics reach shared memory when a backend is idle, at most about once a second."""
    time.sleep(1.5)


# One run: N workers, random drift ------------------------------------------------------------------


@dataclass
class Run:
    """What one worker count did while drift was injected."""

    workers: int
    load: str
    drifts: list[common.Drift]
    #: (epoch seconds, host, file) of every ``corrected`` event, all workers.
    corrections: list[common.Drift]
    events: list[list[dict[str, Any]]]  # per worker, its log
    window: tuple[float, float]
    cpu: list[float]  # per worker, CPU seconds over the window
    counted: Counts
    restored: int = 0  # drifts put back by hand at the end (never corrected)

    def in_window(self, name: str) -> list[dict[str, Any]]:
        return [e for log in self.events for e in log if e["event"] == name and self.window[0] <= e["t"] <= self.window[1]]

    @property
    def latencies(self) -> list[float]:
        fixed: dict[tuple[str, str], list[float]] = {}
        for at, host, name in self.corrections:
            fixed.setdefault((host, name), []).append(at)
        return [min(later) - at for at, host, name in self.drifts
                if (later := [t for t in fixed.get((host, name), []) if t >= at])]

    @property
    def lost(self) -> int:
        return len(self.drifts) - len(self.latencies)

    @property
    def doubled(self) -> int:
        per_pair = Counter((host, name) for _, host, name in self.corrections)
        return sum(1 for _, host, name in self.drifts if per_pair[(host, name)] > 1)

    @property
    def spurious(self) -> int:
        drifted = {(host, name) for _, host, name in self.drifts}
        return sum(1 for _, host, name in self.corrections if (host, name) not in drifted)

    @property
    def claimed_twice(self) -> int:
        """Claims (host, fence) that appear in more than one ``claimed`` event: a host held twice at once."""
        claims = Counter((host, fence) for log in self.events for e in log if e["event"] == "claimed"
                         for host, fence in e["fences"].items())
        return sum(1 for number in claims.values() if number > 1)

    @property
    def passes(self) -> list[dict[str, Any]]:
        return self.in_window("pass")

    def claimed_per_worker(self) -> list[int]:
        """Hosts each worker claimed over the drift phase (summed over its passes): how the fleet was shared."""
        return [sum(e["hosts"] for e in log if e["event"] == "pass" and self.window[0] <= e["t"] <= self.window[1])
                for log in self.events]

    def pass_seconds(self) -> list[float]:
        """How long each pass that claimed hosts took, from its ``claimed`` event to its ``pass`` event."""
        durations = []
        for log in self.events:
            claimed_at = None
            for event in log:
                if event["event"] == "claimed":
                    claimed_at = event["t"]
                elif event["event"] == "pass" and claimed_at is not None and event["hosts"]:
                    if self.window[0] <= event["t"] <= self.window[1]:
                        durations.append(event["t"] - claimed_at)
                    claimed_at = None
        return durations

    def trouble(self) -> Counter[str]:
        """Events that say something went wrong, counted over the whole run."""
        names = ("lease-lost", "gave-up", "store-unavailable", "heartbeat-failed", "pass-failed", "error", "locked")
        return Counter(e["event"] for log in self.events for e in log if e["event"] in names)


class Workers:
    """``count`` ``clockwork reconcile`` processes in ``project``, each logging to ``worker-<run>-<i>.stderr``."""

    def __init__(self, project: Path, count: int) -> None:
        self.logs = [project / f"worker-{count}-{i}.stderr" for i in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for log in self.logs:
            with log.open("wb") as stderr:
                self.processes.append(subprocess.Popen([common.CLOCKWORK, "reconcile"], cwd=project,
                                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                       stderr=stderr))

    def events(self, name: str | None = None) -> list[list[dict[str, Any]]]:
        return [common.log_events(log, name) for log in self.logs]

    def check_alive(self) -> None:
        for log, process in zip(self.logs, self.processes, strict=True):
            if process.poll() is not None:
                raise common.BenchError(f"worker {log.name} exited with {process.returncode}:\n"
                                        + log.read_text()[-3000:])

    def cpu(self) -> list[float]:
        return [common.cpu_seconds(process.pid) for process in self.processes]

    def stop(self) -> list[int | None]:
        """SIGTERM to each; their exit statuses (``None``: killed after ``STOP_TIMEOUT``)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        statuses: list[int | None] = []
        for process in self.processes:
            try:
                statuses.append(process.wait(STOP_TIMEOUT))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                statuses.append(None)
        return statuses

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_until(done: Callable[[], bool], timeout: float, check: Callable[[], None] | None = None,
               step: float = 0.5) -> bool:
    """Poll ``done()`` until true (then ``True``) or ``timeout`` seconds (``False``); ``check()`` between polls."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        if check is not None:
            check()
        time.sleep(step)
    return True


def measure(fleet: Fleet, server: PostgresServer, project: Path, count: int, args: argparse.Namespace,
            pick: Picker) -> Run:
    """Start ``count`` workers, let them claim every host once, inject drift, wait for the corrections, stop them."""
    load = common.load_average()
    print(f"{count} worker(s): load average {load}; starting…", file=sys.stderr, flush=True)
    workers = Workers(project, count)
    try:
        every = {host.name for host in fleet.hosts}
        claimed = lambda: {h for log in workers.events("claimed") for e in log for h in e["fences"]}  # noqa: E731
        if not wait_until(lambda: claimed() >= every, WARM_UP_TIMEOUT, workers.check_alive):
            raise common.BenchError(f"{count} worker(s) did not claim every host within {WARM_UP_TIMEOUT:g} s "
                                    f"({len(claimed())} of {len(every)})")
        time.sleep(args.interval)  # every pair checked once since the start
        settle_stats()
        before, cpu_before, began = counts(server, DATABASE), workers.cpu(), time.time()
        print(f"  drifting for {args.minutes:g} min…", file=sys.stderr, flush=True)
        drifts = common.inject_drifts(fleet, pick, args.minutes * 60, args.drifts_per_second)
        drifted = {(host, name) for _, host, name in drifts}

        def all_corrected() -> bool:
            fixed = {(e["host"], e["resource"]) for log in workers.events("corrected") for e in log}
            return drifted <= fixed

        wait_until(all_corrected, max(60.0, 6 * args.interval), workers.check_alive)
        ended, cpu_after = time.time(), workers.cpu()
        settle_stats()
        counted = counts(server, DATABASE) - before
        statuses = workers.stop()
        if any(status != 0 for status in statuses):
            print(f"  worker exit statuses: {statuses}", file=sys.stderr, flush=True)
    finally:
        workers.kill()
    events = workers.events()
    for log in workers.logs:
        shutil.copy(log, args.logs / log.name)
    run = Run(count, load, drifts,
              [(e["t"], e["host"], e["resource"]) for log in events for e in log if e["event"] == "corrected"],
              events, (began, ended), [b - a for a, b in zip(cpu_before, cpu_after, strict=True)], counted)
    run.restored = restore(fleet, run)
    return run


def restore(fleet: Fleet, run: Run) -> int:
    """Put back by hand the drifts no worker corrected, so that the next run starts from a true fleet."""
    fixed = {(host, name) for _, host, name in run.corrections}
    hosts = {host.name: host for host in fleet.hosts}
    left = [(host, name) for _, host, name in run.drifts if (host, name) not in fixed]
    for host, name in left:
        index = int(name[1:3])
        fleet.run(hosts[host], f"printf 'value = {index}\\n' > rc/{name}")
    return len(left)


Picker = Callable[[], tuple[FleetHost, str]]


def drift_picker(fleet: Fleet, files: int) -> Picker:
    """``pick()`` for ``common.inject_drifts``: a random (host, file) never picked before in this process."""
    pairs = [(host, f"r{i:02d}.conf") for host in fleet.hosts for i in range(files)]
    random.shuffle(pairs)

    def pick() -> tuple[FleetHost, str]:
        if not pairs:
            raise common.BenchError("every file on every host was drifted once: use fewer drifts or more hosts")
        return pairs.pop()

    return pick


# The micro-benchmark: claim + finish_pass in this process -------------------------------------------


@dataclass
class Micro:
    hosts: int
    claim: float  # median seconds
    finish: float
    statements: float  # per host, of one claim + finish_pass

    @property
    def total(self) -> float:
        return self.claim + self.finish


def micro_pass(store: PostgresStore, hosts: list[str], files: int) -> tuple[float, float]:
    """One claim of every host and its ``finish_pass`` (one watch per file per host, every host due again at
    once); their seconds."""
    now = time.time()
    began = time.perf_counter()
    claims = store.claim("bench", now, len(hosts), 60)
    claimed = time.perf_counter()
    if len(claims) != len(hosts):
        raise common.BenchError(f"claim took {len(claims)} of {len(hosts)} hosts")
    writes = PassWrites(now)
    writes.save_watches([Watch("FileResource", f"r{i:02d}.conf", host, next_due=now + 5, last_checked=now,
                               last_result="ok") for host in hosts for i in range(files)])
    written = time.perf_counter()
    rejected = store.finish_pass("bench", claims, writes, {host: 0.0 for host in hosts})
    finished = time.perf_counter()
    if rejected:
        raise common.BenchError(f"finish_pass rejected {len(rejected)} hosts")
    return claimed - began, finished - written


def micro(server: PostgresServer, sizes: list[int], files: int) -> list[Micro]:
    """Median time of ``claim`` (every host, capacity = all) and ``finish_pass`` (one watch per file per host),
    one project per size, the sizes interleaved (50, 200, …, 50, 200, …) so that a slow moment of the machine
    does not land on one size only; the first round, untimed, is the one whose statements are counted."""
    url = server.url(MICRO_DATABASE)
    stores = {size: PostgresStore(url, project=f"micro-{size}") for size in sizes}
    try:
        hosts = {size: [f"host-{i:04d}" for i in range(size)] for size in sizes}
        statements: dict[int, float] = {}
        for size, store in stores.items():
            store.add_hosts(hosts[size])
            store.register_worker("bench", 60)
            settle_stats()
            before = counts(server, MICRO_DATABASE)
            micro_pass(store, hosts[size], files)
            settle_stats()
            statements[size] = (counts(server, MICRO_DATABASE) - before).statements / size
        times: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
        for round_number in range(1, MICRO_RUNS + 1):
            print(f"  micro-benchmark: round {round_number}/{MICRO_RUNS} over {sizes} hosts…", file=sys.stderr,
                  flush=True)
            for size, store in stores.items():
                times[size].append(micro_pass(store, hosts[size], files))
    finally:
        for store in stores.values():
            store.close()
    return [Micro(size, statistics.median(claim for claim, _ in times[size]),
                  statistics.median(finish for _, finish in times[size]), statements[size]) for size in sizes]


# Report ----------------------------------------------------------------------------------------------


def report(runs: list[Run], micros: list[Micro], args: argparse.Namespace, header: list[str]) -> list[str]:
    lines = header + [""]
    lines += [
        "| workers | load before | drifts | corrected | lost | doubled | spurious | claimed twice | median s | p95 s "
        "| max s | passes that claimed | hosts/pass | hosts claimed, per worker | pass s (median) "
        "| CPU % of a core (all workers) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for run in runs:
        latencies, passes = run.latencies, [p for p in run.passes if p["hosts"]]
        wall = run.window[1] - run.window[0]
        median = statistics.median(latencies) if latencies else float("nan")
        p95 = common.percentile(latencies, 0.95) if latencies else float("nan")
        durations = run.pass_seconds()
        lines.append(
            f"| {run.workers} | {run.load} | {len(run.drifts)} | {len(latencies)} | {run.lost} | {run.doubled} "
            f"| {run.spurious} | {run.claimed_twice} | {median:.2f} | {p95:.2f} | {max(latencies, default=float('nan')):.2f} "
            f"| {len(passes)} | {statistics.mean(p['hosts'] for p in passes) if passes else 0:.0f} "
            f"| {' / '.join(str(n) for n in run.claimed_per_worker())} "
            f"| {statistics.median(durations) if durations else float('nan'):.2f} | {100 * sum(run.cpu) / wall:.0f} |")
    lines += ["", "Database, counted by the server over the drift phase (pg_stat_statements calls in the workers' "
                  "database; sessions = connections opened):", "",
              "| workers | statements | passes (all) | per pass | claimed hosts | per claimed host | sessions | per pass "
              "| commits | per pass |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        passes = len(run.passes) or 1
        hosts = sum(p["hosts"] for p in run.passes) or 1
        c = run.counted
        lines.append(f"| {run.workers} | {c.statements} | {len(run.passes)} | {c.statements / passes:.1f} | {hosts} "
                     f"| {c.statements / hosts:.2f} | {c.sessions} | {c.sessions / passes:.2f} | {c.commits} "
                     f"| {c.commits / passes:.1f} |")
    kinds = sorted({kind for run in runs for kind in run.counted.by_kind()},
                   key=lambda kind: -max(run.counted.by_kind()[kind] / (len(run.passes) or 1) for run in runs))
    lines += ["", "Statements per pass, by what they do:", "",
              "| statement | " + " | ".join(f"{run.workers} worker(s)" for run in runs) + " |",
              "|---|" + "---:|" * len(runs)]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(f"{run.counted.by_kind()[kind] / (len(run.passes) or 1):.1f}"
                                                 for run in runs) + " |")
    others = sum((run.counted.others() for run in runs), Counter())
    if others:
        lines += ["", "other: " + "; ".join(f"`{text}` ×{calls}" for text, calls in others.most_common(6))]
    trouble = [f"{run.workers} worker(s): {dict(run.trouble())}" for run in runs if run.trouble()]
    restored = [f"{run.workers} worker(s): {run.restored}" for run in runs if run.restored]
    lines += [""]
    if trouble:
        lines.append("worker events saying something went wrong: " + "; ".join(trouble))
    if restored:
        lines.append("drifts never corrected, put back by hand after the run: " + "; ".join(restored))
    if len(runs) > 1:
        base = runs[0]
        for run in runs[1:]:
            if base.latencies and run.latencies:
                lines.append(f"median latency {run.workers} workers / {base.workers}: "
                             f"{statistics.median(run.latencies) / statistics.median(base.latencies):.2f}; "
                             f"p95 {common.percentile(run.latencies, .95) / common.percentile(base.latencies, .95):.2f}")
    if micros:
        lines += ["", f"PostgresStore.claim + finish_pass in one process ({args.files} watches per host in PassWrites, "
                      f"median of {MICRO_RUNS} runs):", "",
                  "| hosts | claim ms | finish_pass ms | total ms | ms per host | marginal ms per host "
                  "| statements per host |", "|---:|---:|---:|---:|---:|---:|---:|"]
        previous: Micro | None = None
        for m in micros:
            marginal = ((m.total - previous.total) / (m.hosts - previous.hosts) * 1000) if previous else float("nan")
            lines.append(f"| {m.hosts} | {m.claim * 1000:.1f} | {m.finish * 1000:.1f} | {m.total * 1000:.1f} "
                         f"| {m.total * 1000 / m.hosts:.3f} | {marginal:.3f} | {m.statements:.2f} |")
            previous = m
        first, last = micros[0], micros[-1]
        lines.append("")
        lines.append(f"ms per host, {last.hosts} hosts / {first.hosts} hosts: "
                     f"{(last.total / last.hosts) / (first.total / first.hosts):.2f} (≤ 1: linear, the fixed cost "
                     "spread thinner; a quadratic cost would make it ≈ "
                     f"{last.hosts / first.hosts:.0f})")
    return lines


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200, help="fleet size (default 200)")
    parser.add_argument("--files", type=int, default=10, help="reconciled files per host (default 10)")
    parser.add_argument("--interval", type=int, default=5, help="check_interval in seconds (default 5)")
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run, in order (default 1,2,3)")
    parser.add_argument("--minutes", type=float, default=2.0, help="drift phase of each run (default 2)")
    parser.add_argument("--drifts-per-second", type=float, default=1.0, help="default 1")
    parser.add_argument("--capacity", type=int, default=100, help="CW_RECONCILE_CAPACITY (default 100)")
    parser.add_argument("--lease", default="60s", help="CW_RECONCILE_LEASE (default 60s)")
    parser.add_argument("--micro", default="50,200,500,1000",
                        help="host counts of the claim/finish_pass micro-benchmark ('' to skip; default 50,200,500,1000)")
    args = parser.parse_args()
    args.worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    args.micro_sizes = [int(n) for n in args.micro.split(",") if n.strip()]
    #: Where the workers' logs are kept (the fleet's directory goes when it stops).
    args.logs = Path(tempfile.mkdtemp(prefix="cwb-workers-logs-", dir="/tmp"))
    return args


def main() -> int:
    args = arguments()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # clean up as on Ctrl-C
    load = common.load_average()
    server = start_server()
    fleet: Fleet | None = None
    runs: list[Run] = []
    try:
        fleet, start_time = common.start(args.hosts, PREFIXES)
        project = fleet.root / "project"
        project.mkdir()
        fleet.write_inventory(project / "inventory.py")
        (project / "main.py").write_text(main_py(args.files, args.interval))
        (project / ".env").write_text(f"CW_STATE_URL={server.url(DATABASE)}\nCW_PROJECT=bench\n"
                                      f"CW_RECONCILE_LEASE={args.lease}\nCW_RECONCILE_CAPACITY={args.capacity}\n"
                                      "CW_FLAPPING_LIMIT=1000\n")
        print(f"First apply ({args.hosts * args.files} pairs)…", file=sys.stderr, flush=True)
        began = time.perf_counter()
        common.Command("clockwork apply", [common.CLOCKWORK, "apply", "-q"], project).run()
        apply_time = time.perf_counter() - began
        pick = drift_picker(fleet, args.files)
        for count in args.worker_counts:
            runs.append(measure(fleet, server, project, count, args, pick))
        micros = micro(server, args.micro_sizes, args.files)
        with psycopg.connect(server.url(), autocommit=True) as db:
            pg_version = db.execute("SHOW server_version").fetchone()[0]
    except common.BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        try:
            if fleet is not None:
                fleet.stop()
        finally:
            server.close()

    header = [f"## bench/workers.py — {time.strftime('%Y-%m-%d %H:%M')}", ""]
    header += common.environment(args.hosts, None, load)
    header += [
        f"PostgreSQL {pg_version} on 127.0.0.1 (fsync off); {args.hosts * args.files} reconciled pairs "
        f"({args.files} files × {args.hosts} hosts), check_interval {args.interval}s, CW_RECONCILE_CAPACITY "
        f"{args.capacity}, CW_RECONCILE_LEASE {args.lease}; drift ≈ {args.drifts_per_second:g}/s for "
        f"{args.minutes:g} min per run, each file on each host drifted at most once",
        f"fleet start {start_time:.1f} s, first apply {apply_time:.1f} s; the workers' logs are in {args.logs}",
    ]
    print("\n".join(report(runs, micros, args, header)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
