"""How fast Clockwork applies: ``clockwork apply`` against ``pyinfra -y`` on the same project.

    python bench/apply.py [--hosts 50] [--runs 5]

Starts a fleet of real sshd hosts on 127.0.0.1 (testsupport/fleet.py, users cwb01…)
and writes a project of one directory and ten small files per host, as a
Clockwork ``main.py`` and as the equivalent pyinfra ``deploy.py``
(``files.directory`` + ``files.put``). Then it times, as whole processes (wall
clock, start-up and imports included), interleaved, ``--runs`` times each:

1. first apply on a clean fleet — ``app`` is removed on every host (untimed)
   before each run: ``clockwork apply -q`` (must report every pair changed)
   vs ``pyinfra -y inventory.py deploy.py`` (must report every operation a
   success on every host);
2. no-change apply, with everything already in place: ``clockwork apply -q``
   (must say "Nothing to do") vs ``pyinfra -y inventory.py deploy.py`` (must
   report no change on every host).

pyinfra runs with ``-y``, as a deploy is normally run unattended: without it
pyinfra would read every fact twice (change detection, then execution). Each
timed phase is preceded by one untimed run of each command. Prints medians (and
minimums) and the ratios pyinfra/Clockwork; nothing is asserted about the times.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402


def pyinfra_check(hosts: int, changed: bool):
    """pyinfra connected every host and every operation succeeded (``changed``) or changed nothing, everywhere."""
    total = hosts * len(common.PATHS)
    columns = (total, "-", "-") if changed else ("-", "-", total)

    def check(output: str) -> str | None:
        connected = common.connected_hosts(output)
        if connected != hosts:
            return f"{connected} hosts connected, expected {hosts}"
        match = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", output, re.M)
        if match is None:
            return "no 'Grand total' line in pyinfra's results"
        wanted = (str(total), *map(str, columns))
        if match.groups() != wanted:
            return (f"Grand total (hosts, success, error, no change) = {match.groups()}, expected {wanted}")
        return None

    return check


def main() -> int:
    args = common.arguments(__doc__)
    n, pairs = args.hosts, args.hosts * len(common.PATHS)
    load = common.load_average()
    fleet, start_time = common.start(n)
    try:
        project = common.write_project(fleet)

        def wipe() -> None:
            common.on_every_host(fleet, f"rm -rf {common.DIRECTORY}")

        clockwork_first = Command(
            "clockwork apply, first", [common.CLOCKWORK, "apply", "-q"], project, before=wipe,
            check=common.expect(f"Applied: {pairs} changed, 0 unchanged, 0 failed on {n} hosts"),
        )
        pyinfra_first = Command(
            "pyinfra -y, first", [common.PYINFRA, "-y", "inventory.py", "deploy.py"], project, before=wipe,
            check=pyinfra_check(n, changed=True),
        )
        clockwork_again = Command(
            "clockwork apply, no change", [common.CLOCKWORK, "apply", "-q"], project,
            check=common.expect(f"Nothing to do: every resource is already as declared on {n} hosts"),
        )
        pyinfra_again = Command(
            "pyinfra -y, no change", [common.PYINFRA, "-y", "inventory.py", "deploy.py"], project,
            check=pyinfra_check(n, changed=False),
        )

        for phase in ([clockwork_first, pyinfra_first], [clockwork_again, pyinfra_again]):
            print(f"Untimed run of each, then {args.runs} interleaved timed runs: "
                  f"{', '.join(c.label for c in phase)}", file=sys.stderr, flush=True)
            for command in phase:
                command.run(timed=False)
            common.interleave(phase, args.runs)
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        fleet.stop()

    common.print_report("apply.py", common.environment(n, args.runs, load), [
        f"project: 1 DirectoryResource + {len(common.FILES)} FileResources per host = {pairs} host × resource pairs "
        f"(pyinfra: files.directory + {len(common.FILES)} files.put); pyinfra default --parallel",
        f"fleet start {start_time:.2f} s",
    ], [
        ("clockwork apply -q, first (clean fleet)", clockwork_first),
        ("pyinfra -y deploy.py, first (clean fleet)", pyinfra_first),
        ("clockwork apply -q, no change", clockwork_again),
        ("pyinfra -y deploy.py, no change", pyinfra_again),
    ], [
        common.ratio_line("first apply: pyinfra / clockwork", pyinfra_first, clockwork_first),
        common.ratio_line("no change: pyinfra / clockwork", pyinfra_again, clockwork_again),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
