"""What the benchmarks share: the fleet, the project (Clockwork and pyinfra), timing, tables.

The project is one ``DirectoryResource`` (``app``, mode 750) and ten
``FileResource``s (``app/file00.conf`` … ``app/file09.conf``, mode 640, small
distinct contents) on every host, written twice: as a Clockwork ``main.py`` and
as the equivalent pyinfra ``deploy.py`` (``files.directory`` + ``files.put``).
Relative paths are relative to the login user's home in both tools.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from testsupport.fleet import Fleet, FleetHost, PrefixInUse, start_fleet  # noqa: E402

#: Fleet users are cwb01, cwb02…: the tests use other prefixes.
PREFIX = "cwb"
BENCH_DIR = Path(__file__).resolve().parent


def _bin_dir() -> Path:
    """The venv's bin: the running interpreter's own (not resolved: a venv python is a symlink)."""
    here = Path(sys.executable).parent
    return here if (here / "clockwork").exists() else REPO_ROOT / ".venv" / "bin"


BIN = _bin_dir()
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
CLOCKWORK = str(BIN / "clockwork")
PYINFRA = str(BIN / "pyinfra")

DIRECTORY = "app"
DIRECTORY_MODE = "750"
FILE_MODE = "640"
FILES = {f"file{i:02d}.conf": f"setting = {i}\nname = file{i:02d}\n" for i in range(10)}
#: The 11 paths the project manages, relative to the login user's home.
PATHS = [DIRECTORY] + [f"{DIRECTORY}/{name}" for name in FILES]
#: The file that gets drifted, and what it is drifted to.
DRIFT_FILE = "file03.conf"
DRIFT_CONTENT = "setting = 3\nname = drifted by hand\n"


# Fleet and project -------------------------------------------------------------------


def arguments(doc: str, hosts: int = 50, runs: int = 5) -> argparse.Namespace:
    """``--hosts`` (default ``hosts``) and ``--runs`` (default ``runs``), described by the script's docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=hosts, help=f"fleet size (default {hosts})")
    parser.add_argument("--runs", type=int, default=runs, help=f"timed runs of each command (default {runs})")
    return parser.parse_args()


def start(hosts: int, prefixes: Sequence[str] = (PREFIX,)) -> tuple[Fleet, float]:
    """A fleet of ``hosts`` sshd hosts under a fresh /tmp directory, and how long it took to start.

    The users' prefix is the first of ``prefixes`` that no other running fleet holds.
    """
    print(f"Starting a {hosts}-host fleet…", file=sys.stderr, flush=True)
    root = Path(tempfile.mkdtemp(prefix="cwb-fleet-", dir="/tmp"))
    began = time.perf_counter()
    for prefix in prefixes:
        try:
            fleet = start_fleet(hosts, root, prefix=prefix)
            break
        except PrefixInUse:
            if prefix == prefixes[-1]:
                raise
    return fleet, time.perf_counter() - began


def main_py(reconcile: bool = False) -> str:
    """The Clockwork project; with ``reconcile``, every resource is also ``reconcile=True`` with an hour's
    ``check_interval`` (due again only when a benchmark makes it so)."""
    extra = ', reconcile=True, check_interval="1h"' if reconcile else ""
    lines = [
        '"""Benchmark project: one directory and ten small files on every host."""',
        "",
        "from clockwork.resources import DirectoryResource, FileResource",
        "",
        f"app = DirectoryResource(name={DIRECTORY!r}, mode={DIRECTORY_MODE!r}{extra})",
    ]
    for i, (name, content) in enumerate(FILES.items()):
        lines.append(
            f"f{i:02d} = FileResource(name={name!r}, directory={DIRECTORY!r}, content={content!r}, mode={FILE_MODE!r}{extra})"
        )
    return "\n".join(lines) + "\n"


def deploy_py() -> str:
    lines = [
        '"""Benchmark deploy, the pyinfra equivalent of main.py."""',
        "",
        "import io",
        "",
        "from pyinfra.operations import files",
        "",
        f"files.directory(name={DIRECTORY!r}, path={DIRECTORY!r}, mode={DIRECTORY_MODE!r})",
    ]
    for name, content in FILES.items():
        dest = f"{DIRECTORY}/{name}"
        lines.append(
            f"files.put(name={dest!r}, src=io.StringIO({content!r}), dest={dest!r}, mode={FILE_MODE!r})"
        )
    return "\n".join(lines) + "\n"


def write_project(fleet: Fleet) -> Path:
    """main.py, deploy.py and inventory.py in ``<fleet root>/project``; returns that directory."""
    project = fleet.root / "project"
    project.mkdir()
    (project / "main.py").write_text(main_py())
    (project / "deploy.py").write_text(deploy_py())
    fleet.write_inventory(project / "inventory.py")
    return project


def on_every_host(fleet: Fleet, command: str) -> dict[str, str]:
    """Run ``command`` locally as every host's user, in parallel; raise if one fails. Returns each host's stdout."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda host: (host, fleet.run(host, command)), fleet.hosts))
    failed = [f"{host.name}: {result.stderr.strip()}" for host, result in results if result.returncode != 0]
    if failed:
        raise RuntimeError(f"{command!r} failed on {len(failed)} hosts: {failed[:3]}")
    return {host.name: result.stdout for host, result in results}


def drift_host(fleet: Fleet) -> FleetHost:
    """The host that gets drifted: one in the middle of the fleet."""
    return fleet.hosts[len(fleet.hosts) // 2]


def set_drift(fleet: Fleet, drifted: bool) -> None:
    """Overwrite one file on one host with other content (or put the declared content back)."""
    content = DRIFT_CONTENT if drifted else FILES[DRIFT_FILE]
    command = f"printf %s {shlex.quote(content)} > {DIRECTORY}/{DRIFT_FILE}"
    result = fleet.run(drift_host(fleet), command)
    if result.returncode != 0:
        raise RuntimeError(f"could not {'drift' if drifted else 'restore'} {DRIFT_FILE}: {result.stderr}")


Drift = tuple[float, str, str]  # (epoch seconds when written, host, file name)


def inject_drifts(fleet: Fleet, pick: Callable[[], tuple[FleetHost, str]], seconds: float, per_second: float,
                  directory: str = "rc") -> list[Drift]:
    """For ``seconds``, overwrite a file (``pick()``: which host, which file in ``directory``) with new content
    by hand, about ``per_second`` times a second (exponential gaps); returns the drifts that were written."""
    drifts: list[Drift] = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        host, name = pick()
        drifted_at = time.time()
        result = fleet.run(host, f"printf %s {shlex.quote(f'drift {drifted_at}')} > {directory}/{name}")
        if result.returncode == 0:
            drifts.append((drifted_at, host.name, name))
        time.sleep(random.expovariate(per_second))
    return drifts


# Processes and their logs ------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    """A running process's resident memory, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def log_events(log: Path, name: str | None = None) -> list[dict]:
    """The JSON-line events (``{"at": …, "event": …}``) of a reconcile log, or only those called ``name``;
    other lines (a traceback) are skipped. Each gets ``t``: its ``at`` in epoch seconds."""
    events = []
    for line in log.read_text().splitlines() if log.exists() else []:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if name is None or event["event"] == name:
            event["t"] = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
            events.append(event)
    return events


def percentile(values: Sequence[float], share: float) -> float:
    """The value at ``share`` (0.95: p95) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# Timing ------------------------------------------------------------------------------


def connected_hosts(output: str) -> int:
    """How many hosts pyinfra's output says it connected (``[web-1]  Connected``: names padded to one width)."""
    return len(re.findall(r"^\s*\[[^\]\n]+\]\s+Connected", output, re.M))


def expect(*needles: str) -> Callable[[str], str | None]:
    """A check that the output holds every one of ``needles``."""

    def check(output: str) -> str | None:
        missing = [needle for needle in needles if needle not in output]
        return f"output lacks {missing}" if missing else None

    return check


def pyinfra_check(hosts: int, changed: int) -> Callable[[str], str | None]:
    """A check that pyinfra connected every host and that, of the project's operations, ``changed`` per host
    succeeded with a change and the others changed nothing, everywhere (its "Grand total" line)."""
    total = hosts * len(PATHS)

    def count(value: int) -> str:
        return str(value) if value else "-"

    wanted = (str(total), count(hosts * changed), "-", count(total - hosts * changed))

    def check(output: str) -> str | None:
        connected = connected_hosts(output)
        if connected != hosts:
            return f"{connected} hosts connected, expected {hosts}"
        match = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", output, re.M)
        if match is None:
            return "no 'Grand total' line in pyinfra's results"
        if match.groups() != wanted:
            return f"Grand total (hosts, success, error, no change) = {match.groups()}, expected {wanted}"
        return None

    return check


class BenchError(RuntimeError):
    """A benchmarked command did not do what it should: the numbers would mean nothing."""


@dataclass
class Command:
    """One benchmarked process: its argv, the exit status it must have, and a check of its output."""

    label: str
    argv: list[str]
    cwd: Path
    status: int = 0
    check: Callable[[str], str | None] | None = None  # output → complaint, or None when fine
    before: Callable[[], None] | None = None  # untimed preparation before each run
    #: A known failure (text of its output): a run that fails with it is run again (at most twice), untimed.
    retry_on: str | None = None
    times: list[float] = field(default_factory=list)
    retried: int = 0  # runs thrown away for ``retry_on``

    def run(self, timed: bool = True) -> str:
        """Run once (preparation untimed), check it, record the wall-clock time; returns stdout+stderr."""
        for attempt in range(3):
            if self.before is not None:
                self.before()
            began = time.perf_counter()
            result = subprocess.run(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            elapsed = time.perf_counter() - began
            output = result.stdout + result.stderr
            if result.returncode == self.status or self.retry_on is None or self.retry_on not in output or attempt == 2:
                break
            self.retried += 1
            print(f"  {self.label}: exited {result.returncode} with {self.retry_on!r}: run again", file=sys.stderr, flush=True)
        if result.returncode != self.status:
            raise BenchError(
                f"{self.label}: `{shlex.join(self.argv)}` exited with {result.returncode}, expected {self.status}\n"
                + _tail(output) + _saved(output)
            )
        complaint = self.check(output) if self.check is not None else None
        if complaint:
            raise BenchError(f"{self.label}: `{shlex.join(self.argv)}`: {complaint}\n" + _tail(output) + _saved(output))
        if timed:
            self.times.append(elapsed)
        return output

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def interleave(commands: Sequence[Command], runs: int, progress: bool = True) -> None:
    """Run A, B, C, A, B, C… ``runs`` times each, timing every run."""
    for round_number in range(1, runs + 1):
        for command in commands:
            command.run()
            if progress:
                print(f"  run {round_number}/{runs} {command.label}: {command.times[-1]:.3f} s", file=sys.stderr, flush=True)


def warm_and_interleave(commands: Sequence[Command], runs: int) -> None:
    """One untimed run of each command, then ``runs`` timed runs of each, interleaved (progress on stderr)."""
    print(f"Untimed run of each, then {runs} interleaved timed runs: {', '.join(c.label for c in commands)}",
          file=sys.stderr, flush=True)
    for command in commands:
        command.run(timed=False)
    interleave(commands, runs)


def _saved(output: str) -> str:
    """Keep a failed run's whole output in /tmp (the fleet's directory goes when it stops); says where."""
    descriptor, path = tempfile.mkstemp(prefix="cwb-failed-", suffix=".log", dir="/tmp")
    with os.fdopen(descriptor, "w") as file:
        file.write(output)
    return f"\n    (whole output in {path})"


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


# Reporting ---------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def environment(hosts: int, runs: int | None, load: str, kind: str = "sshd on 127.0.0.1") -> list[str]:
    """A few lines saying where and what was measured; ``load``: the load average before the fleet started.

    ``runs``: how many timed runs of each command, or ``None`` for one long measurement; ``kind``: what the
    hosts are.
    """
    from importlib.metadata import version

    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        rev, dirty = "?", ""
    return [
        f"clockwork {version('clockwork')} (git {rev}{'+dirty' if dirty else ''}), pyinfra {version('pyinfra')}, "
        f"paramiko {version('paramiko')}, gevent {version('gevent')}, Python {platform.python_version()}",
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, load average before the benchmark {load}; "
        f"{hosts} hosts ({kind})"
        + (f", {runs} runs each, interleaved, whole processes, wall clock" if runs is not None else ""),
    ]


def stop_fleet(fleet: Any) -> float:
    """Stop a fleet (an sshd one or root hosts); how long that took, in seconds."""
    began = time.perf_counter()
    fleet.stop()
    return time.perf_counter() - began


def print_report(script: str, environment_lines: list[str], notes: list[str], rows: Sequence[tuple[str, Command]],
                 ratios: list[str]) -> None:
    """What a timing benchmark prints: its heading, where it ran, what it measured, the table, the ratios."""
    lines = [f"## bench/{script} — {time.strftime('%Y-%m-%d %H:%M')}", "", *environment_lines, *notes, "",
             *table(rows), "", *ratios]
    print("\n".join(lines))


def table(rows: Sequence[tuple[str, Command]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    lines = [f"| {'':{width}} | median s |  min s  | runs (s) |", f"|{'-' * (width + 2)}|---------:|--------:|---|"]
    for label, command in rows:
        runs = " ".join(f"{t:.2f}" for t in command.times)
        lines.append(f"| {label:{width}} | {command.median:8.3f} | {command.best:7.3f} | {runs} |")
    return lines


def ratio_line(name: str, numerator: Command, denominator: Command, target: str | None = None) -> str:
    """``name  1.23  (ratio of mins 1.20)  target ≤ 1.5 met``; ``target`` like ``<= 1.5`` or ``>= 3``."""
    value = numerator.median / denominator.median
    best = numerator.best / denominator.best
    line = f"{name:<34} {value:6.2f}  (ratio of mins {best:5.2f})"
    if target is None:
        return line
    op, bound = target.split()
    met = value <= float(bound) if op == "<=" else value >= float(bound)
    sign = "≤" if op == "<=" else "≥"
    return f"{line}  target {sign} {bound:<4} {'met' if met else 'NOT met'}"
