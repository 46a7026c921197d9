"""Files and directories on real SSH hosts: modes, owners, odd names, failed writes, debris and destroy."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testsupport.fleet import NSENTER, Fleet, descendants, wait_until

REPO = Path(__file__).resolve().parent.parent
CLOCKWORK = REPO / ".venv" / "bin" / "clockwork"

IMPORTS = "from clockwork.resources import DirectoryResource, FileResource\n"


def mode_of(fleet: Fleet, host, path: str) -> str:
    done = fleet.run(host, f"stat -c %a {path}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def listing(fleet: Fleet) -> list[str]:
    """Every path in every host's home with its mode, size and mtime: what 'nothing changed' compares."""
    return [fleet.run(host, "find . -path ./.ssh -prune -o -exec stat -c '%n %a %s %Y %i' {} + | sort").stdout
            for host in fleet.hosts]


def temp_files(fleet: Fleet, host) -> list[str]:
    return sorted(fleet.run(host, "find . -name '*.clockwork-tmp'").stdout.split())


def ok(result) -> None:
    assert result.exit_code == 0, result.output


# 1. Modes given as numbers ----------------------------------------------------------------


def test_an_int_mode_is_its_octal_value(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + (
        "app = DirectoryResource(name='app', mode=0o750)\n"
        "conf = FileResource(name='a.conf', directory='app', content='x\\n', mode=0o644)\n"
        "tool = FileResource(name='tool', directory='app', content='#!/bin/sh\\n', mode=0o4755)\n"))
    ok(project.cw("apply"))
    for host in fleet.hosts:
        assert mode_of(fleet, host, "app") == "750"
        assert mode_of(fleet, host, "app/a.conf") == "644"
        assert mode_of(fleet, host, "app/tool") == "4755"
    assert project.cw("apply").output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts")


@pytest.mark.parametrize(("field", "message"), [
    ("mode=True", "True is not a file mode: use octal digits as a string ('644') or an octal number (0o644)"),
    ("mode=644", "644 is not a file mode: as a number it is 0o1204, not 0o644; write mode='644' or mode=0o644"),
    ("mode=-1", "-0o1 is not a file mode: it must be between 0o0 and 0o7777"),
    ("mode=0o17777", "0o17777 is not a file mode: it must be between 0o0 and 0o7777"),
    ("mode='6_4_4'", "'6_4_4' is not a file mode: use octal digits such as '644' or '0750'"),
    ("mode=6.44", "6.44 is not a file mode: use octal digits as a string ('644') or an octal number (0o644)"),
])
def test_a_bad_mode_is_refused_and_nothing_changes(fleet: Fleet, make_project, field: str, message: str) -> None:
    fleet.run(fleet.hosts[0], "mkdir app && echo old > app/a.conf")
    before = listing(fleet)
    project = make_project(fleet, IMPORTS + f"conf = FileResource(name='a.conf', directory='app', content='x\\n', {field})\n")
    for command in ("apply", "plan", "evaluate"):
        result = project.cw(command)
        assert result.exit_code == 2, result.output
        assert result.output.strip() == f"Error: main.py:2: invalid value for FileResource 'a.conf'.mode: {message}"
    assert listing(fleet) == before


# 2. Temporary files --------------------------------------------------------------------------


def test_a_stale_temporary_file_is_reported_then_removed_by_apply(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + "conf = FileResource(name='a.conf', directory='app', content='x\\n')\n")
    ok(project.cw("apply"))
    host = fleet.hosts[1]
    fleet.run(host, "printf 'half a fi' > app/.a.conf.clockwork-tmp")  # what a killed apply leaves
    result = project.cw("evaluate", "-q")
    assert result.exit_code == 1, result.output
    assert "  ✗ [host-02] a.conf: stale_temp app/.a.conf.clockwork-tmp, wanted absent at app/a.conf" in result.output
    plan = project.cw("plan", "-q")
    assert "~ [host-02] a.conf: would be updated stale_temp: " in plan.output
    applied = project.cw("apply")
    ok(applied)
    assert "✓ [host-02] a.conf: updated stale_temp" in applied.output
    assert temp_files(fleet, host) == []
    assert fleet.run(host, "cat app/a.conf").stdout == "x\n"
    ok(project.cw("evaluate"))
    assert project.cw("apply").output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts")


def test_a_stale_temporary_file_goes_with_a_rewrite_and_with_destroy(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + "conf = FileResource(name='a.conf', directory='app', content='x\\n')\n")
    ok(project.cw("apply"))
    first, second = fleet.hosts[0], fleet.hosts[1]
    fleet.run(first, "echo tampered > app/a.conf && echo half > app/.a.conf.clockwork-tmp")
    fleet.run(second, "rm app/a.conf && echo half > app/.a.conf.clockwork-tmp")  # killed before the first write
    ok(project.cw("apply"))
    for host in (first, second):
        assert temp_files(fleet, host) == [] and fleet.run(host, "cat app/a.conf").stdout == "x\n"
    fleet.run(first, "echo half > app/.a.conf.clockwork-tmp")
    fleet.run(second, "rm app/a.conf && echo half > app/.a.conf.clockwork-tmp")
    destroyed = project.cw("destroy", "--yes")
    ok(destroyed)
    for host in fleet.hosts:
        assert fleet.run(host, "ls -A app").stdout == ""


def _batches(host) -> set[int]:
    """The sessions of the apply commands running on ``host``."""
    sessions = set()
    assert host.sshd is not None
    for pid in descendants([host.sshd.pid]):
        try:
            if b'eval "$(cat)"' in Path(f"/proc/{pid}/cmdline").read_bytes():
                sessions.add(os.getsid(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended
    return sessions


def _kill_batches(host) -> None:
    """SIGKILL what the apply commands on ``host`` run, whole (their sessions)."""
    sessions = _batches(host)
    assert host.sshd is not None
    for pid in descendants([host.sshd.pid]):
        try:
            if os.getsid(pid) in sessions:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


#: 4 MiB of content: 86 commands of 64 KiB of base64 each, so that a kill lands while it is written.
BIG = "0123456789abcdef" * (256 * 1024)


def _writing_big(fleet: Fleet, make_project, more: str = "") -> tuple[Any, subprocess.Popen]:
    """A project with ``BIG`` in app/big.txt (then ``more``), and its apply on host-01 once the write began."""
    project = make_project(fleet, IMPORTS + f"big = FileResource(name='big.txt', directory='app', content={BIG!r})\n"
                           + more)
    temp = fleet.hosts[0].home / "app" / ".big.txt.clockwork-tmp"
    run = subprocess.Popen([str(CLOCKWORK), "apply", "-q", "--limit", "host-01"], cwd=project.directory,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _size(temp) > 0, 60, "the write began", pause=0.005, process=run)
    except BaseException:
        run.kill()
        raise
    return project, run


def test_a_write_killed_on_the_host_leaves_a_temporary_file_that_evaluate_reports_and_apply_removes(
        fleet: Fleet, make_project) -> None:
    project, run = _writing_big(fleet, make_project)
    host, temp = fleet.hosts[0], fleet.hosts[0].home / "app" / ".big.txt.clockwork-tmp"
    try:
        _kill_batches(host)
        assert run.wait(timeout=60) == 3, "apply reports the resource as failed"
    finally:
        run.kill()
    assert 0 < _size(temp) < len(BIG), "the kill landed mid-write"
    assert not (host.home / "app" / "big.txt").exists()
    result = project.cw("evaluate", "-q", "--limit", "host-01")
    assert result.exit_code == 1
    assert "  ✗ big.txt: missing; stale_temp app/.big.txt.clockwork-tmp, wanted absent at app/big.txt" in result.output
    ok(project.cw("apply", "--limit", "host-01"))
    assert temp_files(fleet, host) == []
    assert (host.home / "app" / "big.txt").read_text() == BIG
    ok(project.cw("evaluate", "--limit", "host-01"))


def test_a_killed_apply_lets_the_write_in_progress_finish_and_nothing_after_it_run(fleet: Fleet, make_project) -> None:
    _project, run = _writing_big(fleet, make_project, "after = FileResource(name='after.txt', directory='app', "
                                                      "content='x\\n')\n")
    host = fleet.hosts[0]
    try:
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
    wait_until(lambda: not _batches(host), 60, "the command on the host ended")
    assert (host.home / "app" / "big.txt").read_text() == BIG, "the write in progress finished, whole"
    assert temp_files(fleet, host) == []
    assert not (host.home / "app" / "after.txt").exists(), "nothing after it ran"
    assert not (host.home / ".clockwork" / "manifest.json").exists(), "no manifest records what the store did not"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _tiny_disk(fleet: Fleet, host, path: str, size: str = "16k") -> None:
    """Mount a tmpfs of ``size`` at ``~/path`` in the host's own mount namespace (it goes with the host)."""
    user = pwd.getpwnam(host.user)
    target = host.home / path
    fleet.run(host, f"mkdir -p {path}")
    assert host.sshd is not None
    subprocess.run([NSENTER, f"--target={host.sshd.pid}", "--mount", "--", "mount", "-t", "tmpfs", "-o",
                    f"size={size},uid={user.pw_uid},gid={user.pw_gid},mode=0755", "cw-full", str(target)],
                   check=True, capture_output=True)


def test_a_full_disk_fails_the_write_and_leaves_no_temporary_file(fleet: Fleet, make_project) -> None:
    host = fleet.hosts[0]
    _tiny_disk(fleet, host, "full")
    project = make_project(fleet, IMPORTS + (
        "big = FileResource(name='big.txt', directory='full', content='x' * 200_000, hosts=['host-01'])\n"
        "small = FileResource(name='small.txt', directory='full', content='fits\\n', hosts=['host-01'])\n"))
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert "✗ [host-01] big.txt: failed: base64: write error: No space left on device" in result.output.splitlines()
    assert "✓ [host-01] small.txt: created" in result.output
    assert temp_files(fleet, host) == []
    assert fleet.run(host, "ls -A full").stdout.split() == ["small.txt"]


def test_a_failed_chown_leaves_no_temporary_file_and_says_why(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + "conf = FileResource(name='a.conf', directory='app', content='x\\n', "
                                            "owner='root', hosts=['host-01'])\n")
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert "✗ [host-01] a.conf: failed: chown: changing ownership of 'app/.a.conf.clockwork-tmp': Operation not permitted" \
        in result.output
    host = fleet.hosts[0]
    assert temp_files(fleet, host) == []
    assert fleet.run(host, "ls -A app").stdout == ""


# 3. A parent directory that cannot be made -----------------------------------------------------


def test_a_parent_directory_that_cannot_be_created_stops_the_write_with_mkdirs_error(
        fleet: Fleet, make_project) -> None:
    host = fleet.hosts[0]
    fleet.run(host, "mkdir locked && chmod 555 locked")
    before = listing(fleet)
    project = make_project(fleet, IMPORTS + "conf = FileResource(name='a.conf', directory='locked/sub', "
                                            "content='x\\n', hosts=['host-01'])\n")
    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert "✗ [host-01] a.conf: failed: mkdir: cannot create directory 'locked/sub': Permission denied" in result.output
    assert listing(fleet) == before


# 4. destroy never removes what it did not create -------------------------------------------------


DESTROYED = IMPORTS + """\
app = DirectoryResource(name="app", mode="750")
config = FileResource(name="config.json", directory="app", content='{"debug": false}\\n', mode="640")
"""


def test_destroy_leaves_a_directory_that_holds_what_it_did_not_create(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, DESTROYED)
    ok(project.cw("apply"))
    first, second = fleet.hosts[0], fleet.hosts[1]
    fleet.run(first, "echo mine > app/x.txt && mkdir app/cache && echo data > app/cache/blob")
    result = project.cw("destroy", "--yes")
    ok(result)
    assert "✓ [host-01] app: left in place: not empty (cache, x.txt)" in result.output
    assert "✓ [host-01] config.json: removed" in result.output
    assert "✓ [host-02] app: removed" in result.output
    assert "Destroyed: 5 removed, 0 already absent, 1 left in place, 0 failed on 3 hosts" in result.output
    assert fleet.run(first, "cat app/x.txt app/cache/blob").stdout == "mine\ndata\n"
    assert fleet.run(first, "ls -A app").stdout.split() == ["cache", "x.txt"]
    assert fleet.run(second, "test -e app").returncode == 1


def test_destroy_lists_a_few_names_of_what_is_left(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + "app = DirectoryResource(name='app', hosts=['host-01'])\n")
    ok(project.cw("apply"))
    fleet.run(fleet.hosts[0], "cd app && touch a b c d e f g .hidden 'sp ace' \"$(printf 'esc\\033')\"")
    result = project.cw("destroy", "--yes")
    ok(result)
    assert "✓ [host-01] app: left in place: not empty (.hidden, a, b, c, d, … and 5 more)" in result.output
    assert fleet.run(fleet.hosts[0], "ls -A app | wc -l").stdout.strip() == "10"


def test_destroy_with_purge_removes_the_directory_whole(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, DESTROYED.replace('mode="750")', 'mode="750", purge=True)'))
    ok(project.cw("apply"))
    host = fleet.hosts[0]
    fleet.run(host, "echo mine > app/x.txt && mkdir app/cache && echo data > app/cache/blob")
    result = project.cw("destroy", "--yes")
    ok(result)
    assert "✓ [host-01] app: removed" in result.output
    assert "Destroyed: 6 removed, 0 already absent, 0 failed on 3 hosts" in result.output
    for each in fleet.hosts:
        assert fleet.run(each, "test -e app").returncode == 1


# 5. and 6. setuid, setgid -------------------------------------------------------------------------


def test_setuid_survives_the_owner_being_set_on_create_and_on_every_rewrite(fleet: Fleet, make_project) -> None:
    host = fleet.hosts[0]
    project = make_project(fleet, IMPORTS + (
        f"tool = FileResource(name='tool', directory='repro', content='#!/bin/sh\\necho hi\\n', mode='4755', "
        f"owner={host.user!r}, hosts=['host-01'])\n"
        f"shared = FileResource(name='shared', directory='repro', content='x\\n', mode='2755', "
        f"group='cwdocker', hosts=['host-01'])\n"))
    ok(project.cw("apply"))
    assert mode_of(fleet, host, "repro/tool") == "4755"
    assert mode_of(fleet, host, "repro/shared") == "2755"
    fleet.run(host, "echo tampered > repro/tool && chmod 4755 repro/tool")
    applied = project.cw("apply")
    ok(applied)
    assert "✓ [host-01] tool: updated content" in applied.output
    assert mode_of(fleet, host, "repro/tool") == "4755"
    # only the group differs: changing it clears setgid, which must be set again
    fleet.run(host, f"chgrp {host.user} repro/shared && chmod 2755 repro/shared")
    applied = project.cw("apply")
    ok(applied)
    assert "✓ [host-01] shared: updated group" in applied.output
    assert fleet.run(host, "stat -c '%a %G' repro/shared").stdout.strip() == "2755 cwdocker"
    assert project.cw("apply").output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts")


def test_a_directory_inside_a_setgid_directory_gets_the_mode_declared(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + (
        "shared = DirectoryResource(name='shared', mode='2775')\n"
        "sub = DirectoryResource(name='sub', directory='shared', mode='755')\n"))
    ok(project.cw("apply"))
    for host in fleet.hosts:
        assert mode_of(fleet, host, "shared") == "2775" and mode_of(fleet, host, "shared/sub") == "755"
    assert project.cw("apply").output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts")
    fleet.run(fleet.hosts[2], "chmod 2700 shared/sub")
    applied = project.cw("apply")
    ok(applied)
    assert "✓ [host-03] sub: updated mode" in applied.output
    assert mode_of(fleet, fleet.hosts[2], "shared/sub") == "755"
    ok(project.cw("evaluate"))


# 7. Control characters in names ------------------------------------------------------------------------

#: Every control character a name may hold (a name refuses NUL, tab and newline).
CONTROLS = [chr(code) for code in [*range(1, 32), 127] if chr(code) not in "\t\n"]


def test_every_control_character_in_names_and_directories(fleet: Fleet, make_project) -> None:
    lines = [IMPORTS, "cc = DirectoryResource(name='cc')\n"]
    for char in CONTROLS:
        code = ord(char)
        name, content, directory = f"f{code}{char}x", f"{code}{char}\n", f"cc/d{code}{char}x"
        lines.append(f"f{code} = FileResource(name={name!r}, directory='cc', content={content!r})\n")
        lines.append(f"d{code} = DirectoryResource(name={directory[3:]!r}, directory='cc', mode='700')\n")
        lines.append(f"n{code} = FileResource(name='in{code}', directory={directory!r}, content='in\\n')\n")
        lines.append(f"e{code} = FileResource(name={f'{char}e{code}{char}'!r}, directory='cc', content='e\\n')\n")
    project = make_project(fleet, "".join(lines))
    ok(project.cw("apply", "-q"))
    evaluated = project.cw("evaluate", "--format", "json")
    assert evaluated.exit_code == 0, [line for line in evaluated.output.splitlines() if '"status": "ok"' not in line]
    again = project.cw("apply")
    assert again.output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts"), again.output
    host = fleet.hosts[0]
    names = set(os.listdir(host.home / "cc"))
    for char in CONTROLS:
        code = ord(char)
        assert {f"f{code}{char}x", f"d{code}{char}x", f"{char}e{code}{char}"} <= names
        assert (host.home / "cc" / f"f{code}{char}x").read_bytes() == f"{code}{char}\n".encode()
        assert (host.home / "cc" / f"d{code}{char}x" / f"in{code}").read_text() == "in\n"
    destroyed = project.cw("destroy", "--yes")
    ok(destroyed)
    assert fleet.run(host, "test -e cc").returncode == 1


@pytest.mark.parametrize(("field", "message"), [
    ("name='a\\nb'", "'a\\nb' is not a file name: it holds a newline, a tab or a NUL character"),
    ("name='a\\tb'", "'a\\tb' is not a file name: it holds a newline, a tab or a NUL character"),
    ("name='a\\x00b'", "'a\\x00b' is not a file name: it holds a newline, a tab or a NUL character"),
    ("name='a\\udc80b'", "Input should be a valid string, unable to parse raw data as a unicode string"),
    ("name='x', directory='a\\udc80b'", "'\\udc80' at character 1 is a lone surrogate, not text (it cannot be written as UTF-8)"),
    ("name='x', directory='a\\x00b'", "'a\\x00b' is not a directory: it holds a newline, a tab or a NUL character"),
])
def test_a_name_that_cannot_be_a_path_is_refused_and_nothing_changes(
        fleet: Fleet, make_project, field: str, message: str) -> None:
    before = listing(fleet)
    project = make_project(fleet, IMPORTS + f"conf = FileResource({field}, content='x\\n')\n")
    result = project.cw("apply")
    assert result.exit_code == 2, result.output
    location = "directory" if "directory" in field else "name"
    assert result.output.strip().endswith(f".{location}: {message}"), result.output
    assert listing(fleet) == before


# 8. A directory where a file is declared --------------------------------------------------------------


def test_a_directory_in_place_of_a_file_is_refused_the_same_way_by_plan_apply_and_evaluate(
        fleet: Fleet, make_project) -> None:
    project = make_project(fleet, DESTROYED)
    ok(project.cw("apply"))
    host = fleet.hosts[1]
    fleet.run(host, "rm -f app/config.json && mkdir app/config.json && echo keep > app/config.json/keep")
    refusal = ("✗ [host-02] config.json: app/config.json is a directory, not a file: "
               "Clockwork will not replace a directory")
    plan = project.cw("plan")
    assert plan.exit_code == 3, plan.output
    assert refusal in plan.output.splitlines()
    assert "Plan: 0 to change, 5 unchanged, 1 failed on 3 hosts" in plan.output
    for _ in range(2):
        applied = project.cw("apply")
        assert applied.exit_code == 3, applied.output
        assert refusal in applied.output.splitlines()
        assert "Applied: 0 changed, 5 unchanged, 1 failed on 3 hosts" in applied.output
        assert fleet.run(host, "cat app/config.json/keep").stdout == "keep\n"
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 3
    assert "  " + refusal in evaluated.output.splitlines()
    fleet.run(host, "rm -r app/config.json")
    ok(project.cw("apply"))
    ok(project.cw("evaluate"))


# 9. A file Clockwork cannot read, with mode left alone --------------------------------------------------


def test_an_unreadable_file_with_mode_none_is_rewritten_readable_and_converges(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, IMPORTS + "conf = FileResource(name='a.conf', directory='app', content='x\\n', mode=None)\n")
    ok(project.cw("apply"))
    host = fleet.hosts[0]
    fleet.run(host, "chmod 200 app/a.conf")
    evaluated = project.cw("evaluate", "-q")
    assert evaluated.exit_code == 1
    assert "  ✗ [host-01] a.conf: content differs (sha1 unreadable wanted " in evaluated.output
    applied = project.cw("apply")
    ok(applied)
    assert "✓ [host-01] a.conf: updated content" in applied.output
    assert mode_of(fleet, host, "app/a.conf") == "600"
    assert fleet.run(host, "cat app/a.conf").stdout == "x\n"
    ok(project.cw("evaluate"))
    assert project.cw("apply").output.strip().endswith("Nothing to do: every resource is already as declared on 3 hosts")
