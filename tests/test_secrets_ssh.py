"""What is applied is kept exactly; secrets are references; manifests hold no content (real sshd hosts)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import CwProject
from testsupport.fleet import Fleet

PLAIN = """\
from clockwork.resources import FileResource

secret_conf = FileResource(name="s.conf", directory="srv/r7", content="password = hunter2\\n", reconcile=True)
"""

REFERENCED = """\
from clockwork.resources import DirectoryResource, FileResource, Secret

conf = FileResource(name="db.conf", directory="srv",
                    content=f"user = app\\npassword = {Secret('env:CW_TEST_DB_PASSWORD')}\\n", reconcile=True)
key = FileResource(name="key.txt", directory="srv", content=Secret("file:secrets/key.txt"), mode="600")
"""


def host_text(fleet: Fleet, host, path: str) -> str:
    return fleet.run(host, f"cat {path}").stdout


def store_bytes(project: CwProject) -> bytes:
    return b"".join(path.read_bytes() for path in (project.directory / ".clockwork").iterdir() if path.is_file())


def test_reconcile_rewrites_exactly_what_was_applied(fleet: Fleet, make_project) -> None:
    """Issue 11 §1: reconcile and rollback wrote the masked copy ("password = ***") back to the hosts."""
    project = make_project(fleet, PLAIN)
    assert project.cw("apply").exit_code == 0
    for host in fleet.hosts:
        fleet.run(host, "echo tampered > srv/r7/s.conf")
    outcome = project.cw("reconcile", "--once")
    assert outcome.exit_code == 0, outcome.output
    assert "3 corrected" in outcome.output
    for host in fleet.hosts:
        assert host_text(fleet, host, "srv/r7/s.conf") == "password = hunter2\n"
    assert project.cw("evaluate").exit_code == 0
    # What people read is masked; the history shows the spec, not the password.
    history = project.cw("history", "--format", "json").output
    assert "hunter2" not in history and "password = ***" in history

    project.write_main(PLAIN.replace("hunter2", "swordfish"))
    assert project.cw("apply").exit_code == 0
    rolled = project.cw("rollback", "s.conf", "--yes")
    assert rolled.exit_code == 0, rolled.output
    for host in fleet.hosts:
        assert host_text(fleet, host, "srv/r7/s.conf") == "password = hunter2\n"


def test_secret_references_resolve_at_run_time_and_are_never_kept(
    fleet: Fleet, make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(fleet, REFERENCED)
    (project.directory / "secrets").mkdir()
    (project.directory / "secrets" / "key.txt").write_text("k3y-material-42\n")

    missing = project.cw("apply")
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines()[-1] == (
        "Error: FileResource 'db.conf'.content: Secret('env:CW_TEST_DB_PASSWORD') cannot be resolved: "
        "CW_TEST_DB_PASSWORD is not set in the environment or in .env")
    for host in fleet.hosts:
        assert fleet.run(host, "test -e srv").returncode == 1, "nothing is touched before every secret resolves"

    monkeypatch.setenv("CW_TEST_DB_PASSWORD", "correct horse staple")
    applied = project.cw("-vv", "apply")
    assert applied.exit_code == 0, applied.output
    assert "correct horse staple" not in applied.output and "k3y-material-42" not in applied.output
    for host in fleet.hosts:
        assert host_text(fleet, host, "srv/db.conf") == "user = app\npassword = correct horse staple\n"
        assert host_text(fleet, host, "srv/key.txt") == "k3y-material-42"
        manifest = host_text(fleet, host, ".clockwork/manifest.json")
        assert "correct horse" not in manifest and "k3y-material" not in manifest
        assert "env:CW_TEST_DB_PASSWORD" in manifest and "file:secrets/key.txt" in manifest
    assert b"correct horse" not in store_bytes(project) and b"k3y-material" not in store_bytes(project)
    with sqlite3.connect(project.directory / ".clockwork" / "state.db") as db:
        fingerprints = [json.loads(row[0]) for row in db.execute("SELECT fingerprints FROM versions ORDER BY id")]
    assert list(fingerprints[0]) == ["env:CW_TEST_DB_PASSWORD"]
    assert fingerprints[0]["env:CW_TEST_DB_PASSWORD"].startswith("hmac:")

    # Reconcile resolves the reference again and writes the value back.
    fleet.run(fleet.hosts[1], "echo tampered > srv/db.conf")
    assert project.cw("reconcile", "--once").exit_code == 0
    assert host_text(fleet, fleet.hosts[1], "srv/db.conf") == "user = app\npassword = correct horse staple\n"

    # A rotated secret is a change: evaluate sees it, apply writes it and records a new version.
    monkeypatch.setenv("CW_TEST_DB_PASSWORD", "battery")
    evaluated = project.cw("evaluate", "--format", "json")
    assert evaluated.exit_code == 1
    assert "battery" not in evaluated.output
    assert project.cw("apply").exit_code == 0
    assert host_text(fleet, fleet.hosts[0], "srv/db.conf") == "user = app\npassword = battery\n"
    versions = json.loads(project.cw("history", "db.conf", "--format", "json").output)
    assert [v["version"] for v in versions] == [1, 2]
    assert "<secret env:CW_TEST_DB_PASSWORD>" in versions[1]["spec"]["content"]


def test_manifests_hold_no_content_and_the_store_keeps_it_once(fleet: Fleet, make_project) -> None:
    big = "line of configuration\n" * 20000  # 440 KB
    source = (
        "from clockwork.resources import FileResource\n"
        f"big = FileResource(name='big.txt', directory='srv', content={big!r})\n"
        "small = FileResource(name='small.txt', directory='srv', content='v1\\n')\n"
    )
    project = make_project(fleet, source)
    assert project.cw("apply").exit_code == 0
    project.write_main(source.replace("v1", "v2"))
    assert project.cw("apply").exit_code == 0
    for host in fleet.hosts:
        size = int(fleet.run(host, "stat -c %s .clockwork/manifest.json").stdout)
        assert size < 4096, size
        assert fleet.run(host, "sha1sum < srv/big.txt").stdout.split()[0] in host_text(
            fleet, host, ".clockwork/manifest.json")
    with sqlite3.connect(project.directory / ".clockwork" / "state.db") as db:
        (blobs,) = db.execute("SELECT count(*) FROM blobs").fetchone()
        (stored,) = db.execute("SELECT sum(length(data)) FROM blobs").fetchone()
    assert blobs == 1 and stored == len(big)
    versions = json.loads(project.cw("history", "big.txt", "--format", "json").output)
    assert versions[0]["spec"]["content"] == big, "history shows the content as applied"


@pytest.mark.parametrize("garbage", ["{garbage", "[1,2,3]"])
def test_a_corrupt_manifest_is_kept_aside_with_a_warning(fleet: Fleet, make_project, garbage: str) -> None:
    project = make_project(fleet, PLAIN)
    host = fleet.hosts[0]
    fleet.run(host, f"mkdir -p .clockwork && printf %s '{garbage}' > .clockwork/manifest.json")
    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    assert (f"! [{host.name}] .clockwork/manifest.json is not a Clockwork manifest (not JSON or not its shape): "
            "kept aside as manifest.json.corrupt-<time>, a new one is written") in applied.output
    assert applied.output.count("! [") == 1
    kept = fleet.run(host, "cat .clockwork/manifest.json.corrupt-*").stdout
    assert kept == garbage
    assert "FileResource/s.conf" in json.loads(host_text(fleet, host, ".clockwork/manifest.json"))["resources"]


def test_local_manifests_belong_to_their_project(tmp_path: Path, private_home: Path) -> None:
    projects = []
    for name in ("one", "two"):
        project = CwProject(tmp_path / name)
        project.directory.mkdir()
        project.write_main(
            f"from clockwork.resources import FileResource\n{name} = FileResource(name='{name}.txt', content='x\\n')\n")
        assert project.cw("apply").exit_code == 0
        projects.append(project)
    for project, name in zip(projects, ("one", "two"), strict=True):
        entries = json.loads((project.directory / ".clockwork" / "manifest.json").read_text())["resources"]
        assert list(entries) == [f"FileResource/{name}.txt"]
    assert not (private_home / ".clockwork").exists()


def test_update_from_the_manifests_keeps_content_known_only_by_its_hash(
    fleet: Fleet, make_project, tmp_path: Path
) -> None:
    big = "setting = value\n" * 1000
    project = make_project(fleet, (
        "from clockwork.resources import FileResource\n"
        f"big = FileResource(name='big.conf', directory='srv', content={big!r}, mode='644')\n"))
    assert project.cw("apply").exit_code == 0
    elsewhere = CwProject(tmp_path / "elsewhere")
    elsewhere.directory.mkdir()
    fleet.write_inventory(elsewhere.directory / "inventory.py")
    (elsewhere.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\nbig = FileResource(name='big.conf', mode='600')\n")
    updated = elsewhere.cw("update", "--yes")
    assert updated.exit_code == 0, updated.output
    assert "    mode: \"644\" → \"600\"" in updated.output
    for host in fleet.hosts:
        assert fleet.run(host, "stat -c %a srv/big.conf").stdout.strip() == "600"
        assert host_text(fleet, host, "srv/big.conf") == big, "the content left out of update.py is kept"
    # Content known only by its hash cannot be written back: a clear error, nothing else changed.
    fleet.run(fleet.hosts[0], "echo tampered > srv/big.conf")
    (elsewhere.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\nbig = FileResource(name='big.conf', mode='640')\n")
    again = elsewhere.cw("update", "--yes")
    assert again.exit_code != 0
    assert "content is known here only by its sha1" in again.output
    assert host_text(fleet, fleet.hosts[0], "srv/big.conf") == "tampered\n"
