"""The CLI over real SSH hosts: a host lost mid-apply, names shown escaped, apply after update."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CwProject
from testsupport.fleet import Fleet, wait_until

REPO = Path(__file__).resolve().parent.parent
CLOCKWORK = REPO / ".venv" / "bin" / "clockwork"

#: Two small files, one large one (hundreds of write commands: time to lose the host), one more small file.
LOSING = """\
from clockwork.resources import FileResource

a = FileResource(name="a.txt", directory="out", content="a\\n")
b = FileResource(name="b.txt", directory="out", content="b\\n")
big = FileResource(name="big.txt", directory="out", content="0123456789abcdef" * 262_144)  # 4 MiB: 86 commands
c = FileResource(name="c.txt", directory="out", content="c\\n")
"""


def test_a_host_lost_mid_apply_is_one_line_naming_what_was_applied(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, LOSING)
    lost = fleet.hosts[1]
    temp = lost.home / "out" / ".big.txt.clockwork-tmp"
    run = subprocess.Popen([str(CLOCKWORK), "apply"], cwd=project.directory, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        # the large file is being written on that host: lose it now
        wait_until(temp.exists, 60, "the large file started on the host", pause=0.005, process=run)
        fleet.stop_host(lost)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert (lost.home / "out" / "b.txt").exists() and not (lost.home / "out" / "c.txt").exists(), "lost mid-apply"
    assert run.returncode == 3, stdout + stderr
    assert "Traceback" not in stderr and stderr.strip() == "", stderr
    mine = [line for line in stdout.splitlines() if lost.name in line]
    assert mine[0] == (f"✗ [{lost.name}] connection lost during apply: applied a.txt (created), b.txt (created); "
                       "not run: big.txt, c.txt")
    assert mine[1:] == [] or mine[1:] == [line for line in mine[1:] if line.startswith("Applied:")]
    for host in (fleet.hosts[0], fleet.hosts[2]):
        assert f"✓ [{host.name}] big.txt: created" in stdout
    assert stdout.splitlines()[-1] == f"Applied: 10 changed, 0 unchanged, 0 failed on 3 hosts; unreachable: {lost.name}"


def on_terminal(argv: list[str], cwd: Path, answer: bytes, prompt: bytes = b"[y/N]: ") -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdin/stdout/stderr; type ``answer`` at ``prompt``."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    seen, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the command ended and closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and seen.rstrip().endswith(prompt.rstrip()):
                os.write(controller, answer)
                answered = True
            if process.poll() is not None and not ready:
                break
        return process.wait(timeout=60), seen.decode().replace("\r\n", "\n")
    finally:
        process.kill()
        os.close(controller)


@pytest.mark.parametrize("answer", [b"n\n", b"\n", b"\x04"], ids=["no", "default", "ctrl-d"])
def test_declining_destroy_names_the_hosts_and_changes_nothing(fleet: Fleet, make_project, answer: bytes) -> None:
    project = make_project(fleet, "from clockwork.resources import FileResource\n"
                                  "a = FileResource(name='a.txt', directory='out', content='a\\n')\n")
    assert project.cw("apply").exit_code == 0
    code, output = on_terminal([str(CLOCKWORK), "destroy"], project.directory, answer)
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0].startswith("Destroy FileResource 'a.txt' on host-01, host-02, host-03? [y/N]: ")
    assert lines[-1] == "Error: destroy declined: nothing was changed"
    assert "Aborted" not in output
    assert code == 2
    assert all((host.home / "out" / "a.txt").read_text() == "a\n" for host in fleet.hosts)


def test_confirming_destroy_on_a_terminal_removes(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, "from clockwork.resources import FileResource\n"
                                  "a = FileResource(name='a.txt', directory='out', content='a\\n')\n")
    assert project.cw("apply").exit_code == 0
    code, output = on_terminal([str(CLOCKWORK), "destroy", "--limit", "host-02"], project.directory, b"y\n")
    assert output.splitlines()[0].startswith("Destroy FileResource 'a.txt' on host-02? [y/N]: ")
    assert code == 0, output
    assert [(host.home / "out" / "a.txt").exists() for host in fleet.hosts] == [True, False, True]


UPDATED = """\
from clockwork.resources import FileResource

conf = FileResource(name="app.conf", directory="app", content="workers = 2\\n", mode="640")
other = FileResource(name="other.txt", directory="app", content="other\\n")
"""


def updated(fleet: Fleet, make_project) -> CwProject:
    """A project applied, then changed by ``clockwork update`` (main.py still says workers = 2)."""
    project = make_project(fleet, UPDATED)
    assert project.cw("apply").exit_code == 0
    (project.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\nconf = FileResource(name='app.conf', content='workers = 8\\n')\n")
    assert project.cw("update", "--yes").exit_code == 0
    return project


def test_apply_after_update_says_it_would_revert_it_and_asks(fleet: Fleet, make_project) -> None:
    project = updated(fleet, make_project)
    contents = lambda: [(host.home / "app" / "app.conf").read_text() for host in fleet.hosts]
    assert contents() == ["workers = 8\n"] * 3
    note = ("! FileResource 'app.conf': apply would revert version 2, which `clockwork update` deployed "
            "(main.py differs in content); `clockwork history app.conf` shows the spec to copy into main.py")

    refused = project.cw("apply")
    assert refused.exit_code == 2
    assert refused.stdout.splitlines() == [note]
    assert refused.stderr.splitlines() == [
        "Error: apply needs confirmation and stdin is not a terminal: pass --yes to apply without asking"]
    assert contents() == ["workers = 8\n"] * 3, "nothing changed"

    planned = project.cw("plan")
    assert planned.exit_code == 0 and planned.stdout.splitlines()[0] == note

    code, output = on_terminal([str(CLOCKWORK), "apply"], project.directory, b"n\n")
    assert code == 2, output
    assert output.splitlines()[0] == note
    assert "Revert 1 update to what main.py declares? [y/N]: " in output
    assert output.splitlines()[-1] == "Error: apply declined: nothing was changed"
    assert contents() == ["workers = 8\n"] * 3, "nothing changed"

    applied = project.cw("apply", "--yes")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines()[0] == note
    assert contents() == ["workers = 2\n"] * 3
    again = project.cw("apply")  # the last version is main.py's again: nothing to ask
    assert again.exit_code == 0 and not again.stdout.startswith("!")


def test_apply_does_not_ask_once_main_py_is_in_line_with_the_update(fleet: Fleet, make_project) -> None:
    project = updated(fleet, make_project)
    project.write_main(UPDATED.replace("workers = 2", "workers = 8"))
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert not result.stdout.startswith("!")
    assert result.stdout.splitlines()[-1] == "Nothing to do: every resource is already as declared on 3 hosts"
