"""The CLI over real SSH hosts: a host lost mid-apply, names shown escaped, apply after update."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.fleet import Fleet

REPO = Path(__file__).resolve().parent.parent
CLOCKWORK = REPO / ".venv" / "bin" / "clockwork"

#: Two small files, one large one (hundreds of write commands: time to lose the host), one more small file.
LOSING = """\
from clockwork.resources import FileResource

a = FileResource(name="a.txt", directory="out", content="a\\n")
b = FileResource(name="b.txt", directory="out", content="b\\n")
big = FileResource(name="big.txt", directory="out", content="0123456789abcdef" * 150_000)
c = FileResource(name="c.txt", directory="out", content="c\\n")
"""


def test_a_host_lost_mid_apply_is_one_line_naming_what_was_applied(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, LOSING)
    lost = fleet.hosts[1]
    temp = lost.home / "out" / ".big.txt.clockwork-tmp"
    run = subprocess.Popen([str(CLOCKWORK), "apply"], cwd=project.directory, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not temp.exists():  # the large file is being written on that host: lose it now
            assert run.poll() is None, "apply ended before the host could be lost"
            assert time.monotonic() < deadline, "the large file never started on the host"
            time.sleep(0.005)
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
