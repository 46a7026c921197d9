"""How fast Clockwork reads a fleet: ``clockwork evaluate`` against pyinfra's dry run and the floor.

    python bench/evaluate.py [--hosts 50] [--runs 5]

Starts a fleet of real sshd hosts on 127.0.0.1 (testsupport/fleet.py, users cwb01…)
and writes a project of one directory and ten small files per host, as a
Clockwork ``main.py`` and as the equivalent pyinfra ``deploy.py``. Applies it
once with ``clockwork apply``, then drifts one file on one host. Then it times,
as whole processes (wall clock, start-up and imports included), interleaved
A, B, C, D, A, B, C, D… ``--runs`` times each:

A. ``clockwork evaluate -q`` — must exit 1 and name the drifted file;
B. ``pyinfra inventory.py deploy.py --dry`` — without ``-y`` (``--dry -y``
   skips change detection), stdin closed; must connect every host and show
   the one change on the drifted host;
C. the floor, ``bench/floor.py``: a minimal pyinfra-API script that connects
   every host (``connect_all``, TCP_NODELAY) and runs one command per host
   that stats and sha1sums the same 11 paths — the least any tool built on
   pyinfra can do to read this state;
D. ``clockwork apply -q`` with nothing to change — must say "Nothing to do".

The drifted file is put back (untimed) before D and drifted again (untimed)
before A, so A–C see one drifted file and D a clean fleet.

Prints a table of medians (and minimums) and the ratios with their targets:
evaluate/floor ≤ 1.5, pyinfra-dry/evaluate ≥ 3, no-change-apply/evaluate ≤ 1.2.
Nothing is asserted about the times; a command that does not do what it should
(wrong exit status, drift not found) stops the benchmark.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402


def pyinfra_dry_check(hosts: int, drifted: str):
    """pyinfra connected every host and its plan shows exactly the drifted file on the drifted host."""
    drift_op = f"{common.DIRECTORY}/{common.DRIFT_FILE}"

    def check(output: str) -> str | None:
        connected = common.connected_hosts(output)
        if connected != hosts:
            return f"{connected} hosts connected, expected {hosts}"
        if "--> Detected changes:" not in output:
            return "no change detection in the output"
        if not re.search(rf"^\s*{re.escape(drift_op)}\s+1 \({re.escape(drifted)}\)\s", output, re.M):
            return f"the plan does not show {drift_op} changing on {drifted} only"
        unchanged = re.findall(rf"^\s*{re.escape(common.DIRECTORY)}\S*\s+-\s+-\s*$", output, re.M)
        if len(unchanged) != len(common.PATHS) - 1:
            return f"{len(unchanged)} operations without change, expected {len(common.PATHS) - 1}"
        return None

    return check


def main() -> int:
    args = common.arguments(__doc__)
    n, pairs = args.hosts, args.hosts * len(common.PATHS)
    load = common.load_average()
    fleet, start_time = common.start(n)
    try:
        project = common.write_project(fleet)
        drifted = common.drift_host(fleet).name

        first_apply = Command("clockwork apply (first)", [common.CLOCKWORK, "apply", "-q"], project,
                              check=common.expect(f"Applied: {pairs} changed, 0 unchanged, 0 failed on {n} hosts"))
        reapply = Command("clockwork apply (1 drifted file)", [common.CLOCKWORK, "apply", "-q"], project,
                          check=common.expect(f"Applied: 1 changed, {pairs - 1} unchanged, 0 failed on {n} hosts"))
        evaluate = Command(
            "clockwork evaluate -q", [common.CLOCKWORK, "evaluate", "-q"], project, status=1,
            check=common.expect(f"1 of {pairs} not as specified (1 drift)", f"[{drifted}] {common.DRIFT_FILE}: content differs"),
            before=lambda: common.set_drift(fleet, True),
        )
        pyinfra_dry = Command(
            "pyinfra --dry", [common.PYINFRA, "inventory.py", "deploy.py", "--dry"], project,
            check=pyinfra_dry_check(n, drifted),
        )
        floor = Command(
            "floor (bench/floor.py)", [common.PYTHON, str(common.BENCH_DIR / "floor.py"), "inventory.py", *common.PATHS],
            project, check=common.expect(f"floor: {n} of {n} hosts read, 2 distinct sets of sha1sums"),
        )
        no_change = Command(
            "clockwork apply -q, no change", [common.CLOCKWORK, "apply", "-q"], project,
            check=common.expect(f"Nothing to do: every resource is already as declared on {n} hosts"),
            before=lambda: common.set_drift(fleet, False),
        )

        print("First apply, drift, and one untimed run of each command…", file=sys.stderr, flush=True)
        first_apply.run()
        common.set_drift(fleet, True)
        for command in (evaluate, pyinfra_dry, floor):
            command.run(timed=False)
        reapply.run()  # puts the drifted file back: the fleet is clean
        no_change.run(timed=False)

        print(f"Timing {args.runs} interleaved runs of each…", file=sys.stderr, flush=True)
        common.interleave([evaluate, pyinfra_dry, floor, no_change], args.runs)
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        stop_time = common.stop_fleet(fleet)

    common.print_report("evaluate.py", common.environment(n, args.runs, load), [
        f"project: 1 DirectoryResource + {len(common.FILES)} FileResources per host = {pairs} host × resource pairs; "
        f"drift: app/{common.DRIFT_FILE} on {drifted}",
        f"fleet start {start_time:.2f} s, stop {stop_time:.2f} s; first clockwork apply {first_apply.times[0]:.2f} s; "
        f"apply fixing the drift {reapply.times[0]:.2f} s",
    ], [
        ("clockwork evaluate -q (drift, exit 1)", evaluate),
        ("pyinfra inventory.py deploy.py --dry", pyinfra_dry),
        ("floor: connect_all + 1 command/host", floor),
        ("clockwork apply -q, no change", no_change),
    ], [
        common.ratio_line("evaluate / floor", evaluate, floor, "<= 1.5"),
        common.ratio_line("pyinfra --dry / evaluate", pyinfra_dry, evaluate, ">= 3"),
        common.ratio_line("no-change apply / evaluate", no_change, evaluate, "<= 1.2"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
