"""What the ``clockwork`` command imports before it does its work.

A command that contacts no host (help, version, a usage error, history, status, the systemd unit) imports none
of pyinfra, gevent, paramiko, psycopg, the engine or the model client, and pydantic only for the settings it reads:
each case runs the installed entry point (``clockwork.cli:main``) in a fresh interpreter and then lists the heavy
packages it imported. A command that contacts hosts has gevent's cooperative sockets before it does anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Packages that only a command contacting hosts (or completing fields with the model) may import.
HEAVY = ["clockwork.complete", "clockwork.engine", "gevent", "jsonschema", "openai", "paramiko", "psycopg", "pyinfra"]

#: Runs ``clockwork`` with the interpreter's arguments, then prints on a last line of stderr which of the
#: packages in ``PROBED`` it imported (and whether gevent patched the socket module).
PROBE = """
import sys
from clockwork.cli import main

PROBED = {probed!r}
try:
    main()
finally:
    imported = [name for name in PROBED if name in sys.modules]
    patched = "gevent.monkey" in sys.modules and sys.modules["gevent.monkey"].is_module_patched("socket")
    print(f"probe: {{imported}} patched={{patched}}", file=sys.stderr)
"""


def run_probed(cwd: Path, *args: str) -> tuple[int, str, str, str]:
    """Run ``clockwork ARGS`` in ``cwd``: its exit status, stdout, stderr without the probe's line, the probe's line."""
    code = PROBE.format(probed=[*HEAVY, "pydantic"])
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, check=False)
    *stderr, probe = done.stderr.splitlines()
    return done.returncode, done.stdout, "\n".join(stderr), probe


#: Commands that read neither hosts nor settings: arguments, exit status, a line of what they print.
WITHOUT_SETTINGS = [
    (["--help"], 0, "Usage: clockwork [OPTIONS] COMMAND [ARGS]..."),
    (["--version"], 0, "clockwork "),
    (["version"], 0, "clockwork "),
    (["apply", "--help"], 0, "Usage: clockwork apply [OPTIONS]"),
    (["reconcile", "--print-systemd-unit"], 0, "ExecStart="),
    (["nosuch"], 2, "Error: No such command 'nosuch'."),
    (["evaluate", "--format", "xml"], 2, "Error: Invalid value for '--format': 'xml' is not one of"),
    (["apply", "--nosuch"], 2, "Error: No such option '--nosuch'."),
]


@pytest.mark.parametrize(("args", "status", "says"), WITHOUT_SETTINGS, ids=[" ".join(args) for args, _, _ in WITHOUT_SETTINGS])
def test_a_command_without_hosts_or_settings_imports_nothing_heavy(tmp_path: Path, args: list[str], status: int,
                                                                  says: str) -> None:
    returncode, stdout, stderr, probe = run_probed(tmp_path, *args)
    assert returncode == status, stderr
    assert says in stdout + stderr
    assert probe == "probe: [] patched=False"


@pytest.mark.parametrize(("args", "says"), [
    (["history"], "No history yet: nothing was applied from this project directory."),
    (["status"], "Nothing is reconciled: no resource was applied with reconcile=True or a max_duration."),
], ids=["history", "status"])
def test_history_and_status_import_only_the_settings(tmp_path: Path, args: list[str], says: str) -> None:
    returncode, stdout, stderr, probe = run_probed(tmp_path, *args)
    assert (returncode, stdout, stderr) == (0, says + "\n", "")
    assert probe == "probe: ['pydantic'] patched=False"


@pytest.mark.parametrize("args", [["apply"], ["plan"], ["destroy", "--yes"], ["evaluate"], ["rollback", "x", "--yes"],
                                  ["update", "--yes"], ["reconcile", "--once"]], ids=" ".join)
def test_a_command_that_contacts_hosts_patches_gevent_first(tmp_path: Path, args: list[str]) -> None:
    """Even one that stops at once (no main.py, no history, no update.py) had gevent's sockets from its start, and
    gevent had nothing to warn about (no ssl or threads before it)."""
    returncode, _, stderr, probe = run_probed(tmp_path, *args)
    assert returncode == 2
    assert stderr.startswith("Error: ") and "\n" not in stderr, stderr
    assert probe.endswith(" patched=True")
