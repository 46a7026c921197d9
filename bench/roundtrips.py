"""Round trips per host: how many remote commands Clockwork and pyinfra run on each host, and how long they take.

    python bench/roundtrips.py [--hosts 5] [--runs 3]

Starts a small fleet of real sshd hosts on 127.0.0.1 (testsupport/fleet.py, users
cwb01…, or cwbr01… when another fleet holds cwb) and writes the project of
bench/common.py: one directory and ten small files per host, as a Clockwork
``main.py`` and as the equivalent pyinfra ``deploy.py``. The fleet's sshd logs
every exec request ("Starting session: command", ``FleetHost.commands()``) and
every SFTP session; the difference of those counts over one run, per host, is
what that run cost each host. For each case, one untimed run of each command,
then ``--runs`` timed runs, interleaved, whole processes (wall clock):

1. first apply on a clean fleet (``app`` and ``.clockwork`` removed on every host
   before each run, untimed): ``clockwork apply -q`` (every pair changed) vs
   ``pyinfra -y inventory.py deploy.py`` (every operation a change everywhere);
2. correcting apply: before each run (untimed), three of the ten files drifted on
   every host (one rewritten, one chmod 600, one removed); the same two commands,
   which must change exactly those three per host;
3. no-change apply: the same two commands ("Nothing to do"; no change anywhere);
4. reconcile pass that corrects drift: every resource of ``main.py`` made
   ``reconcile=True`` (``check_interval="1h"``), applied, and one reconcile pass
   with nothing to correct run (untimed: it records the checks); before
   each run, the same three files drifted and every check made due in the state
   store (as tests/test_reconcile_ssh.py's ``make_due``: no waiting); then
   ``clockwork reconcile --once`` (11 checked, 3 corrected per host). pyinfra has
   no reconciler: this row is compared with pyinfra's correcting apply (case 2).

After every run the fleet is read back (untimed): every file's content and mode,
the directory's mode, nothing else in it. A run that does not check out stops the
benchmark. Commands per host are given as min / median / max over every host of
every timed run. pyinfra uploads files over SFTP: its SFTP sessions are counted
apart (one session carries several SFTP requests, which sshd does not log).
Nothing is asserted about the counts or the times.
"""

from __future__ import annotations

import shlex
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402
from testsupport.fleet import Fleet  # noqa: E402

#: Fleet user prefixes, the first one free: the benchmarks' own, then one for running beside another fleet.
PREFIXES = (common.PREFIX, "cwbr")
DRIFTED_CONTENT = "setting = 1\nname = drifted by hand\n"
#: The three files drifted on every host, and how.
DRIFTS = {
    "file01.conf": f"printf %s {shlex.quote(DRIFTED_CONTENT)} > {common.DIRECTORY}/file01.conf",
    "file04.conf": f"chmod 600 {common.DIRECTORY}/file04.conf",
    "file07.conf": f"rm {common.DIRECTORY}/file07.conf",
}
#: A check of a command's output: a complaint, or None when fine.
Check = Callable[[str], str | None]
SFTP_SESSION = "Starting session: subsystem 'sftp'"


def remote_sessions(fleet: Fleet) -> dict[str, tuple[int, int]]:
    """Per host: (exec requests, SFTP sessions) its sshd has logged so far."""
    counts = {}
    for host in fleet.hosts:
        log = host.dir / "sshd.log"
        sftp = log.read_text(errors="replace").count(SFTP_SESSION) if log.exists() else 0
        counts[host.name] = (host.commands(), sftp)
    return counts


@dataclass(kw_only=True)
class CountedCommand(Command):
    """A benchmarked command that also records, for every timed run, the remote commands and SFTP sessions
    each host saw (the preparation before it runs locally, as the hosts' users: it adds none)."""

    fleet: Fleet
    commands: list[int] = field(default_factory=list)  # one per host per timed run
    sftp: list[int] = field(default_factory=list)

    def run(self, timed: bool = True) -> str:
        before = remote_sessions(self.fleet)
        output = super().run(timed)
        if timed:
            after = remote_sessions(self.fleet)
            for name, (commands, sftp) in after.items():
                self.commands.append(commands - before[name][0])
                self.sftp.append(sftp - before[name][1])
        return output


def spread(values: list[int]) -> str:
    """``min / median / max``."""
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}"


def declared_listing() -> str:
    """What ``read_back`` prints on a host where everything is as declared."""
    names = sorted(common.FILES)
    modes = [f"{common.DIRECTORY_MODE} {common.DIRECTORY}"] + [f"{common.FILE_MODE} {common.DIRECTORY}/{n}" for n in names]
    return "\n".join([*names, *modes]) + "\n" + "".join(common.FILES[n] for n in names)


def read_back(fleet: Fleet) -> str | None:
    """Every host as declared (files, contents, modes, nothing more), or a complaint naming the first that is not."""
    paths = " ".join(f"{common.DIRECTORY}/{name}" for name in sorted(common.FILES))
    command = f"ls -A {common.DIRECTORY} && stat -c '%a %n' {common.DIRECTORY} {paths} && cat {paths}"
    wanted = declared_listing()
    for name, listing in common.on_every_host(fleet, command).items():
        if listing != wanted:
            return f"{name} is not as declared after the run:\n{listing}"
    return None


def checked(fleet: Fleet, output_check: Check) -> Check:
    """``output_check`` on the output, then the fleet read back."""

    def check(output: str) -> str | None:
        return output_check(output) or read_back(fleet)

    return check


def make_due(project: Path) -> None:
    """Let time pass in the state store instead of waiting: every check is due now (tests/test_reconcile_ssh.py)."""
    past = time.time() - 1
    database = sqlite3.connect(project / ".clockwork" / "state.db")
    try:
        with database:
            changed = database.execute("UPDATE watches SET next_due = ?", (past,)).rowcount
            database.execute("UPDATE host_health SET retry_at = ?", (past,))
            database.execute("UPDATE reconcile_hosts SET next_due = ?", (past,))
    finally:
        database.close()
    if not changed:
        raise BenchError("no reconcile watch in the state store: nothing to make due")


def main() -> int:
    args = common.arguments(__doc__, hosts=5, runs=3)
    n, per_host = args.hosts, len(common.PATHS)
    load = common.load_average()
    fleet, start_time = common.start(n, PREFIXES)
    try:
        project = common.write_project(fleet)
        apply = [common.CLOCKWORK, "apply", "-q"]
        deploy = [common.PYINFRA, "-y", "inventory.py", "deploy.py"]

        def wipe() -> None:
            common.on_every_host(fleet, f"rm -rf {common.DIRECTORY} .clockwork")

        def drift() -> None:
            common.on_every_host(fleet, " && ".join(DRIFTS.values()))

        def drift_and_make_due() -> None:
            drift()
            make_due(project)

        def counted(label: str, argv: list[str], check: Check, before: Callable[[], None] | None = None) -> CountedCommand:
            return CountedCommand(label=label, argv=argv, cwd=project, check=checked(fleet, check), before=before,
                                  fleet=fleet)

        drifted = len(DRIFTS)
        cw_first = counted("clockwork apply, first", apply,
                           common.expect(f"Applied: {n * per_host} changed, 0 unchanged, 0 failed on {n} hosts"), wipe)
        py_first = counted("pyinfra -y, first", deploy, common.pyinfra_check(n, changed=per_host), wipe)
        cw_fix = counted("clockwork apply, correcting", apply, common.expect(
            f"Applied: {n * drifted} changed, {n * (per_host - drifted)} unchanged, 0 failed on {n} hosts"), drift)
        py_fix = counted("pyinfra -y, correcting", deploy, common.pyinfra_check(n, changed=drifted), drift)
        nothing = f"Nothing to do: every resource is already as declared on {n} hosts"
        cw_same = counted("clockwork apply, no change", apply, common.expect(nothing))
        py_same = counted("pyinfra -y, no change", deploy, common.pyinfra_check(n, changed=0))
        once = [common.CLOCKWORK, "reconcile", "--once", "-q"]
        cw_reconcile = counted("clockwork reconcile --once", once, common.expect(
            f"Reconciled: {n * per_host} checked, {n * drifted} corrected, 0 expired, 0 drift, 0 errors"),
            drift_and_make_due)
        watched = [  # main.py made reconcile=True, applied, and a first pass that finds nothing records the checks
            Command("clockwork apply, reconcile=True", apply, project, check=common.expect(f"on {n} hosts")),
            Command("clockwork reconcile --once, first", once, project, check=common.expect(
                f"Reconciled: {n * per_host} checked, 0 corrected, 0 expired, 0 drift, 0 errors")),
        ]

        for phase in ([cw_first, py_first], [cw_fix, py_fix], [cw_same, py_same], [cw_reconcile]):
            if phase[0] is cw_reconcile:
                print("main.py: every resource reconcile=True; one untimed apply and reconcile pass",
                      file=sys.stderr, flush=True)
                (project / "main.py").write_text(common.main_py(reconcile=True))
                for command in watched:
                    command.run(timed=False)
            common.warm_and_interleave(phase, args.runs)
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        fleet.stop()

    cases = [
        ("first apply (clean fleet)", cw_first, py_first),
        (f"correcting apply ({drifted} files drifted)", cw_fix, py_fix),
        ("no-change apply", cw_same, py_same),
        (f"reconcile pass correcting {drifted} files (pyinfra: correcting apply)", cw_reconcile, py_fix),
    ]
    width = max(len(case) for case, _, _ in cases)
    commands_table = [
        "Remote commands (SSH exec requests) per host, min / median / max over every host of every timed run:",
        "",
        f"| {'case':{width}} | clockwork commands/host | pyinfra commands/host | pyinfra / clockwork "
        "| clockwork SFTP sessions/host | pyinfra SFTP sessions/host |",
        f"|{'-' * (width + 2)}|---:|---:|---:|---:|---:|",
    ]
    for case, clockwork, pyinfra in cases:
        ratio = statistics.median(pyinfra.commands) / statistics.median(clockwork.commands)
        commands_table.append(
            f"| {case:{width}} | {spread(clockwork.commands)} | {spread(pyinfra.commands)} | {ratio:.1f} "
            f"| {spread(clockwork.sftp)} | {spread(pyinfra.sftp)} |")
    common.print_report("roundtrips.py", common.environment(n, args.runs, load), [
        f"project: 1 DirectoryResource + {len(common.FILES)} FileResources per host = {n * per_host} host × resource "
        f"pairs (pyinfra: files.directory + {len(common.FILES)} files.put); drift: {', '.join(DRIFTS)} on every host "
        "(rewritten, chmod 600, removed); pyinfra default --parallel",
        f"fleet start {start_time:.2f} s",
        "",
        *commands_table,
        "",
        "Wall time, whole processes:",
    ], [
        ("clockwork apply -q, first (clean fleet)", cw_first),
        ("pyinfra -y deploy.py, first (clean fleet)", py_first),
        ("clockwork apply -q, correcting", cw_fix),
        ("pyinfra -y deploy.py, correcting", py_fix),
        ("clockwork apply -q, no change", cw_same),
        ("pyinfra -y deploy.py, no change", py_same),
        ("clockwork reconcile --once, correcting", cw_reconcile),
    ], [
        common.ratio_line("first apply: pyinfra / clockwork", py_first, cw_first),
        common.ratio_line("correcting: pyinfra / clockwork", py_fix, cw_fix),
        common.ratio_line("no change: pyinfra / clockwork", py_same, cw_same),
        common.ratio_line("pyinfra correcting / reconcile", py_fix, cw_reconcile),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
