"""How fast the ``clockwork`` command starts when it contacts no host, against pyinfra's and Python's own start-up.

    python bench/startup.py [--runs 20]

Times, as whole processes (wall clock), interleaved A, B, C… ``--runs`` times each
after one untimed run of each (which also writes the bytecode caches):

A. ``python -c pass`` — the floor: the interpreter alone (with the venv's site);
B. ``python -c 'import clockwork.cli'`` — what the command imports before it parses;
C. ``clockwork --help``;
D. ``clockwork version``;
E. ``clockwork nosuch`` — a usage error, must exit 2;
F. ``clockwork status`` in an empty project directory — reads the settings and finds no state;
G. ``pyinfra --version``.

Each run is checked (exit status and output). The runs see the environment without
``PYTHONDONTWRITEBYTECODE``, so that Clockwork's modules load from their bytecode
as they do after a first run. Prints the table of medians (and minimums), the
ratios, and the target: ``clockwork --help`` and a usage error within 0.3 s on a
quiet machine (the load average before the runs is printed). Nothing is asserted
about the times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402

#: The most ``clockwork --help`` and a usage error should take on a quiet machine (median, seconds).
TARGET = 0.3


def target_line(label: str, command: Command) -> str:
    """``clockwork --help  0.142 s  target ≤ 0.3 s met``."""
    return f"{label:<34} {command.median:6.3f} s  target ≤ {TARGET} s {'met' if command.median <= TARGET else 'NOT met'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each command (default 20)")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    load = common.load_average()
    project = Path(tempfile.mkdtemp(prefix="cwb-startup-", dir="/tmp"))
    try:
        floor = Command("python -c pass (floor)", [common.PYTHON, "-c", "pass"], project)
        imports = Command("python -c 'import clockwork.cli'", [common.PYTHON, "-c", "import clockwork.cli"], project)
        help_ = Command("clockwork --help", [common.CLOCKWORK, "--help"], project,
                        check=common.expect("Usage: clockwork [OPTIONS] COMMAND [ARGS]..."))
        version = Command("clockwork version", [common.CLOCKWORK, "version"], project, check=common.expect("clockwork "))
        usage = Command("clockwork nosuch (usage error, exit 2)", [common.CLOCKWORK, "nosuch"], project, status=2,
                        check=common.expect("Error: No such command 'nosuch'."))
        status = Command("clockwork status (empty project)", [common.CLOCKWORK, "status"], project,
                         check=common.expect("Nothing is reconciled"))
        pyinfra = Command("pyinfra --version", [common.PYINFRA, "--version"], project, check=common.expect("pyinfra: v"))
        commands = [floor, imports, help_, version, usage, status, pyinfra]

        print("One untimed run of each…", file=sys.stderr, flush=True)
        for command in commands:
            command.run(timed=False)
        print(f"Timing {args.runs} interleaved runs of each…", file=sys.stderr, flush=True)
        common.interleave(commands, args.runs, progress=False)
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(project, ignore_errors=True)

    common.print_report("startup.py", common.environment(0, args.runs, load, kind="none contacted"), [
        "commands run in an empty project directory, bytecode cached (one untimed run of each first)",
    ], [(command.label, command) for command in commands], [
        target_line("clockwork --help", help_),
        target_line("clockwork nosuch (usage error)", usage),
        common.ratio_line("--help / python -c pass", help_, floor),
        common.ratio_line("usage error / --help", usage, help_),
        common.ratio_line("status / --help", status, help_),
        common.ratio_line("pyinfra --version / --help", pyinfra, help_),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
