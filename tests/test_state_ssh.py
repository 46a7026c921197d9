"""State, history, rollback and update over real SSH hosts and dockerd."""

from __future__ import annotations

import json
import os
import socket
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CwProject
from testsupport.fleet import Fleet, wait_until
from testsupport.model_server import model_server

REPO = Path(__file__).resolve().parent.parent
CLOCKWORK = REPO / ".venv" / "bin" / "clockwork"

MAIN = """\
from clockwork.resources import DockerServiceResource, FileResource

config = FileResource(name="app.conf", directory="srv", content="workers = 2\\n", mode="640")
web = DockerServiceResource(
    name="web", image="{image}", command=["sleep", "3600"], networks=["host"],
    env_vars={{"MODE": "prod", "API_TOKEN": "s3cr3t-value"}},
)
"""


@pytest.fixture
def deployed(docker_fleet: Fleet, make_project):
    project = make_project(docker_fleet, MAIN.format(image=docker_fleet.docker_image))
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    return docker_fleet, project


def inspect(fleet: Fleet, host, name: str = "web") -> dict:
    return json.loads(fleet.run(host, f"docker inspect --type container {name}").stdout)[0]


def env(fleet: Fleet, host, name: str = "web") -> dict[str, str]:
    return dict(item.split("=", 1) for item in inspect(fleet, host, name)["Config"]["Env"])


def manifest(fleet: Fleet, host) -> dict:
    return json.loads(fleet.run(host, "cat .clockwork/manifest.json").stdout)


def test_apply_records_versions_and_manifests_without_secrets(deployed) -> None:
    fleet, project = deployed
    history = json.loads(project.cw("history", "--format", "json").output)
    assert [(v["type"], v["resource"], v["version"], v["source"]) for v in history] == [
        ("FileResource", "app.conf", 1, "apply"), ("DockerServiceResource", "web", 1, "apply")]
    assert set(history[0]) == {"resource", "type", "version", "created_at", "source", "spec"}
    assert history[1]["spec"]["env_vars"] == {"API_TOKEN": "<redacted>", "MODE": "prod"}
    for host in fleet.hosts:
        entries = manifest(fleet, host)["resources"]
        assert entries["FileResource/app.conf"]["version"] == 1
        assert entries["DockerServiceResource/web"]["spec"]["env_vars"]["API_TOKEN"].startswith("\u27e6hmac:")
        assert "s3cr3t-value" not in fleet.run(host, "cat .clockwork/manifest.json").stdout
        assert fleet.run(host, "stat -c %a .clockwork/manifest.json").stdout.strip() == "600"
    state = project.directory / ".clockwork" / "state.db"
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert not any(b"s3cr3t-value" in path.read_bytes() for path in state.parent.iterdir() if path.is_file())
    # A second apply with nothing new records nothing new.
    assert project.cw("apply").exit_code == 0
    assert len(json.loads(project.cw("history", "--format", "json").output)) == 2


def test_pending_is_told_apart_from_drift(deployed) -> None:
    fleet, project = deployed
    project.write_main(MAIN.format(image=fleet.docker_image).replace("workers = 2", "workers = 4"))
    result = project.cw("evaluate", "--format", "json")
    assert result.exit_code == 1
    statuses = {(r["host"], r["resource"]): r["status"] for r in json.loads(result.output)["results"]}
    assert set(statuses.values()) == {"ok", "pending"}
    assert {key for key, status in statuses.items() if status == "pending"} == {(h.name, "app.conf") for h in fleet.hosts}
    fleet.run(fleet.hosts[1], "echo tampered > srv/app.conf")
    text = project.cw("evaluate", "-q")
    assert "  ⋯ [host-01] app.conf: pending: main.py changes content since the last apply (version 1)" in text.output
    assert "  ✗ [host-02] app.conf: content differs" in text.output


def test_update_from_an_empty_directory_merges_with_the_hosts(deployed, tmp_path: Path) -> None:
    fleet, _project = deployed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fleet.write_inventory(elsewhere / "inventory.py")
    (elsewhere / "update.py").write_text(
        "from clockwork.resources import DockerServiceResource, FileResource\n"
        "web = DockerServiceResource(name='web', env_vars={'MODE': 'staging', 'API_TOKEN': 's3cr3t-value'})\n"
        "config = FileResource(name='app.conf', content='workers = 8\\n')\n"
    )
    update = CwProject(elsewhere)
    dry = update.cw("update", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "✓ Detected existing deployment: DockerServiceResource 'web' (version 1 on host-01, host-02, host-03)" in dry.output
    assert '    env_vars.MODE: "prod" → "staging"' in dry.output, dry.output
    assert "API_TOKEN" not in dry.output, "a key that does not change is not listed"
    assert env(fleet, fleet.hosts[0])["MODE"] == "prod", "--dry-run changes nothing"

    refused = update.cw("update")
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines()[-1] == (
        "Error: update needs confirmation and stdin is not a terminal: pass --yes to update without asking")
    assert env(fleet, fleet.hosts[0])["MODE"] == "prod"

    result = update.cw("update", "--yes")
    assert result.exit_code == 0, result.output
    assert "✓ All checks passing" in result.output
    for host in fleet.hosts:
        container = inspect(fleet, host)
        assert container["Config"]["Image"] == fleet.docker_image, "the image is kept"
        assert env(fleet, host) == {"MODE": "staging", "API_TOKEN": "s3cr3t-value"}
        assert fleet.run(host, "cat srv/app.conf").stdout == "workers = 8\n"
        assert fleet.run(host, "stat -c %a srv/app.conf").stdout.strip() == "640", "directory and mode are kept"
    history = json.loads(update.cw("history", "--format", "json").output)
    assert {(v["resource"], v["source"]) for v in history} == {("web", "update"), ("app.conf", "update")}


def test_rollback_restores_a_file_and_a_container_exactly(deployed) -> None:
    fleet, project = deployed
    project.write_main(MAIN.format(image=fleet.docker_image_2).replace("workers = 2", "workers = 3")
                       .replace('"MODE": "prod"', '"MODE": "canary"'))
    assert project.cw("apply").exit_code == 0
    host = fleet.hosts[2]
    assert inspect(fleet, host)["Config"]["Image"] == fleet.docker_image_2
    assert project.cw("rollback", "web").exit_code == 2, "asks first"
    result = project.cw("rollback", "web", "--yes")
    assert result.exit_code == 0, result.output
    assert "Rolled back DockerServiceResource 'web' to version 1 (recorded as version 3)" in result.output
    assert project.cw("rollback", "app.conf", "--to", "1", "--yes").exit_code == 0
    for each in fleet.hosts:
        assert inspect(fleet, each)["Config"]["Image"] == fleet.docker_image
        assert env(fleet, each) == {"MODE": "prod", "API_TOKEN": "s3cr3t-value"}
        assert fleet.run(each, "cat srv/app.conf").stdout == "workers = 2\n"
    sources = [(v["resource"], v["version"], v["source"]) for v in json.loads(project.cw("history", "--format", "json").output)]
    assert ("web", 3, "rollback") in sources and ("app.conf", 3, "rollback") in sources
    text = project.cw("history", "web").output.splitlines()
    assert text[0] == "DockerServiceResource web" and text[-1].endswith("(current)") and "rollback" in text[-1]
    bad = project.cw("rollback", "web", "--to", "7", "--yes")
    assert bad.exit_code == 2 and "has no version 7 (versions: 1, 2, 3)" in bad.output


def test_update_whose_health_check_fails_is_rolled_back(deployed) -> None:
    fleet, project = deployed
    (project.directory / "update.py").write_text(
        "from clockwork.checks import CommandCheck\nfrom clockwork.resources import FileResource\n"
        "config = FileResource(name='app.conf', content='workers = 99\\n',"
        " checks=[CommandCheck('grep -q \"workers = 2\" srv/app.conf')])\n"
    )
    result = project.cw("update", "--yes")
    assert result.exit_code == 1, result.output
    assert "✗ Evaluation after the update failed:" in result.output
    assert "↩ Rolled back:" in result.output
    for host in fleet.hosts:
        assert fleet.run(host, "cat srv/app.conf").stdout == "workers = 2\n"
    sources = [v["source"] for v in json.loads(project.cw("history", "app.conf", "--format", "json").output)]
    assert sources == ["apply", "update", "rollback"]

    kept = project.cw("update", "--yes", "--no-rollback")
    assert kept.exit_code == 1
    assert "Kept the failed update in place (--no-rollback)." in kept.output
    assert fleet.run(fleet.hosts[0], "cat srv/app.conf").stdout == "workers = 99\n"


def test_update_merges_a_mapping_key_by_key_and_removes_a_key_set_to_none(
    docker_fleet: Fleet, make_project, tmp_path: Path
) -> None:
    """The issue's new user: a partial spec from an empty directory never deletes what it does not mention
    (RFC 7386, as kubectl patch --type merge)."""
    fleet = docker_fleet
    project = make_project(fleet, "from clockwork.resources import DockerServiceResource\n"
                                  f"api = DockerServiceResource(name='api', image='{fleet.docker_image}', "
                                  "command=['sleep', '3600'], networks=['host'], env_vars={'MODE': 'v1', 'KEEP': 'yes'})\n")
    assert project.cw("apply").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fleet.write_inventory(elsewhere / "inventory.py")
    update = CwProject(elsewhere)
    (elsewhere / "update.py").write_text("from clockwork.resources import DockerServiceResource\n"
                                         "api = DockerServiceResource(name='api', env_vars={'MODE': 'v2'})\n")
    result = update.cw("update", "--yes")
    assert result.exit_code == 0, result.output
    assert '    env_vars.MODE: "v1" → "v2"' in result.output and "KEEP" not in result.output, result.output
    for host in fleet.hosts:
        assert env(fleet, host, "api") == {"MODE": "v2", "KEEP": "yes"}
    (elsewhere / "update.py").write_text("from clockwork.resources import DockerServiceResource\n"
                                         "api = DockerServiceResource(name='api', env_vars={'KEEP': None, 'NEW': '1'})\n")
    result = update.cw("update", "--yes")
    assert result.exit_code == 0, result.output
    assert '    env_vars.KEEP: "yes" → (not set)' in result.output
    assert '    env_vars.NEW: (not set) → "1"' in result.output
    for host in fleet.hosts:
        assert env(fleet, host, "api") == {"MODE": "v2", "NEW": "1"}
    latest = json.loads(update.cw("history", "api", "--format", "json").output)[-1]
    assert (latest["source"], latest["spec"]["env_vars"]) == ("update", {"MODE": "v2", "NEW": "1"})


def test_vague_update_through_the_model(deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, project = deployed
    (project.directory / "update.py").write_text(
        "from clockwork.resources import DockerServiceResource\n"
        "web = DockerServiceResource(name='web', description='Run in verbose debug mode and check it is up')\n"
    )
    with model_server() as server:
        monkeypatch.setenv("CW_BASE_URL", server.url)
        monkeypatch.setenv("CW_MODEL", "test-model")
        renaming = {"env_vars": {"MODE": "debug"}, "name": "renamed"}
        server.answer(renaming, renaming)
        dry = project.cw("update", "--dry-run")
        assert dry.exit_code == 2, "identity fields are not the model's to change"
        assert dry.output.strip() == ("Error: completion of DockerServiceResource 'web': the model's answer was invalid "
                                      "twice: Additional properties are not allowed ('name' was unexpected)")
        assert env(fleet, fleet.hosts[0])["MODE"] == "prod"
        server.answer({"env_vars": {"LOG_LEVEL": "debug"},  # one key: the others are kept (a merge patch)
                       "checks": [{"kind": "command", "command": "docker ps --filter name=web -q", "exit_code": 0}]})
        result = project.cw("update", "--yes")
        assert result.exit_code == 0, result.output
        assert "(the model proposed changes to checks, env_vars)" in result.output
        request = json.loads(server.requests[-1]["messages"][1]["content"])
        assert request["resource"]["new_description"] == "Run in verbose debug mode and check it is up"
        assert "s3cr3t-value" not in server.raw_requests[-1].decode()
    for host in fleet.hosts:
        assert env(fleet, host) == {"MODE": "prod", "API_TOKEN": "s3cr3t-value", "LOG_LEVEL": "debug"}
    latest = json.loads(project.cw("history", "web", "--format", "json").output)[-1]
    assert latest["source"] == "update"
    assert latest["spec"]["checks"][0]["command"] == "docker ps --filter name=web -q"


def test_update_without_a_model_records_the_description(deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CW_MODEL", raising=False)
    _fleet, project = deployed
    (project.directory / "update.py").write_text(
        "from clockwork.resources import FileResource\nconfig = FileResource(name='app.conf', description='more workers')\n"
    )
    result = project.cw("update", "--yes")
    assert result.exit_code == 0, result.output
    assert "(description recorded, not interpreted (no model configured))" in result.output
    latest = json.loads(project.cw("history", "app.conf", "--format", "json").output)[-1]
    assert (latest["source"], latest["spec"]["description"]) == ("update", "more workers")


def test_a_second_writer_waits_then_gives_up_and_a_killed_holder_frees_the_lock(fleet: Fleet, make_project) -> None:
    project = make_project(fleet, MAIN.split("web =")[0].replace("DockerServiceResource, ", ""))
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys\nfrom pathlib import Path\nfrom clockwork.settings import Settings\n"
         "from clockwork.state import open_store\nwith open_store(Path(sys.argv[1]), Settings()) as store, store.writer('apply'):\n"
         "    print('held', flush=True)\n"
         "    sys.stdin.read()  # held until killed (or its stdin closes)\n"), str(project.directory)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        env_vars = {**os.environ, "CW_LOCK_TIMEOUT": "1s"}
        started = time.monotonic()
        waited = subprocess.run([str(CLOCKWORK), "apply"], cwd=project.directory, env=env_vars, capture_output=True, text=True, check=False)
        assert waited.returncode == 3
        assert waited.stderr.startswith(f"Error: the project is locked by pid {holder.pid} on {socket.gethostname()} (apply, since ")
        assert waited.stderr.rstrip().endswith("; gave up after waiting 1s")
        assert time.monotonic() - started >= 1
        assert fleet.run(fleet.hosts[0], "test -e srv").returncode == 1, "nothing was applied"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        freed = subprocess.run([str(CLOCKWORK), "apply", "-q"], cwd=project.directory, env=env_vars, capture_output=True, text=True, check=False)
        assert freed.returncode == 0, freed.stderr
    finally:
        holder.kill()
        holder.wait()


def test_sigkill_during_apply_leaves_a_store_that_opens(fleet: Fleet, make_project) -> None:
    source = "from clockwork.resources import FileResource\n" + "".join(
        f"f{i} = FileResource(name='f{i}.txt', directory='many', content='{i}\\n' * 20000)\n" for i in range(30))
    project = make_project(fleet, source)

    def written() -> int:
        return sum(1 for host in fleet.hosts for _file in (host.home / "many").glob("f*.txt"))

    run = subprocess.Popen([str(CLOCKWORK), "apply", "-q"], cwd=project.directory, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        # the first file is in place on some host: the apply is writing
        wait_until(written, 60, "apply started writing", pause=0.005, process=run)
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
    assert run.returncode == -signal.SIGKILL
    assert 0 < written() < 90, f"the kill landed mid-apply: {written()} of 90 files were written"
    database = sqlite3.connect(project.directory / ".clockwork" / "state.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    database.close()
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert project.cw("evaluate").exit_code == 0
    assert len(json.loads(project.cw("history", "--format", "json").output)) == 30
