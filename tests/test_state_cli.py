"""The state store as the CLI meets it on @local: unusable files, interrupted writers, nothing to do."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import CwProject

MAIN = "from clockwork.resources import FileResource\nnote = FileResource(name='note.txt', content='{text}\\n')\n"


@pytest.fixture
def local(tmp_path: Path) -> CwProject:
    project = CwProject(tmp_path / "project")
    project.directory.mkdir()
    project.write_main(MAIN.format(text="one"))
    return project


def test_reconcile_with_nothing_to_reconcile_says_so(local: CwProject) -> None:
    """Issue 11 §2: right after the quick start, `reconcile --once` died on an infinite next-due time."""
    assert local.cw("apply").exit_code == 0
    result = local.cw("reconcile", "--once")
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        0, "Nothing to reconcile: no resource was applied with reconcile=True or a max_duration.")


@pytest.mark.parametrize("content", [b"", os.urandom(2048)], ids=["empty", "random"])
@pytest.mark.parametrize("command", [["evaluate"], ["apply"], ["history"], ["status"], ["rollback", "note.txt", "--yes"]])
def test_an_unusable_state_file_is_exit_2_naming_it(local: CwProject, content: bytes, command: list[str]) -> None:
    assert local.cw("apply").exit_code == 0
    state = local.directory / ".clockwork" / "state.db"
    for name in ("state.db-wal", "state.db-shm"):
        (state.parent / name).unlink(missing_ok=True)
    state.write_bytes(content)
    (local.directory / "note.txt").write_text("changed by hand\n")
    result = local.cw(*command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {state} ")
    assert "restore it from a backup, or move it away to start with no history" in result.output
    assert state.read_bytes() == content
    assert (local.directory / "note.txt").read_text() == "changed by hand\n", "nothing changed on the host"


def test_rollback_with_a_single_version_says_there_is_no_earlier_one(local: CwProject) -> None:
    assert local.cw("apply").exit_code == 0
    result = local.cw("rollback", "note.txt", "--yes")
    assert (result.exit_code, result.output) == (
        2, "Error: FileResource 'note.txt' has no earlier version to roll back to: version 1 is the only one recorded\n")


def test_an_interrupted_apply_is_marked_and_shown(local: CwProject) -> None:
    assert local.cw("apply").exit_code == 0
    state = local.directory / ".clockwork" / "state.db"
    with sqlite3.connect(state) as db:  # what a SIGKILLed apply leaves: a deployment that never finished
        db.execute("INSERT INTO deployments (command, user, pid, started_at) VALUES ('apply', 'root', 4242, 1796119200.0)")
    local.write_main(MAIN.format(text="two"))
    assert local.cw("apply").exit_code == 0
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT result FROM deployments WHERE pid = 4242").fetchone() == ("interrupted",)
    line = ("! apply (pid 4242) started 2026-12-01T10:00:00Z was interrupted: what it changed on the hosts "
            "has no version here; `clockwork evaluate` shows where they stand")
    assert line in local.cw("history").output.splitlines()
    assert line in local.cw("status").output.splitlines()
