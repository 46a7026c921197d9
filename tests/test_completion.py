"""Completion over real HTTP to a loopback OpenAI-compatible server, offline rules, and clockwork.lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clockwork.resources.docker import IMAGES
from tests.conftest import CwProject
from testsupport.model_server import ModelServer, Reply, model_server

FILES = """\
from clockwork.resources import FileResource

motd = FileResource(name="motd.txt", directory="out", description="A one-line welcome message for operators")
notes = FileResource(name="notes.txt", directory="out", content="given\\n")
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with model_server() as started:
        monkeypatch.setenv("CW_BASE_URL", started.url)
        monkeypatch.setenv("CW_MODEL", "test-model")
        monkeypatch.setenv("CW_API_KEY", "test-key")
        monkeypatch.delenv("CW_MODEL_TIMEOUT", raising=False)
        yield started


@pytest.fixture
def project(tmp_path: Path) -> CwProject:
    (tmp_path / "main.py").write_text(FILES)
    return CwProject(tmp_path)


def lock(project: CwProject) -> dict:
    return json.loads((project.directory / "clockwork.lock").read_text())


def test_model_completes_a_file_and_the_lock_pins_it(server: ModelServer, project: CwProject) -> None:
    server.answer({"content": "Welcome, operator.\n"})
    plan = project.cw("plan")
    assert plan.exit_code == 0, plan.output
    assert "◆ completed FileResource 'motd.txt'.content = 'Welcome, operator.\\n' (model test-model)" in plan.output
    request = server.requests[0]
    assert request["model"] == "test-model"
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["content"] and schema["properties"]["content"]["type"] == "string"
    assert schema["additionalProperties"] is False
    entry = lock(project)["resources"]["FileResource/motd.txt"]
    assert entry["fields"]["content"]["value"] == "Welcome, operator.\n"
    assert (entry["fields"]["content"]["provider"], entry["fields"]["content"]["model"]) == ("model", "test-model")
    assert "FileResource/notes.txt" not in lock(project)["resources"], "given fields are never completed"

    applied = project.cw("apply")
    assert applied.exit_code == 0, applied.output
    assert len(server.requests) == 1, "the lock answers later runs"
    assert (project.directory / "out/motd.txt").read_text() == "Welcome, operator.\n"
    assert "(lock)" in project.cw("plan").output
    assert project.cw("evaluate").exit_code == 0
    assert len(server.requests) == 1


def test_the_api_key_is_sent_as_bearer_token(server: ModelServer, project: CwProject) -> None:
    server.answer({"content": "hi\n"})
    assert project.cw("plan").exit_code == 0
    assert server.headers[0]["Authorization"] == "Bearer test-key"
    assert server.headers[0]["Content-Type"] == "application/json"


def test_invalid_json_is_retried_once(server: ModelServer, project: CwProject) -> None:
    server.answer("not json at all", {"content": "second try\n"})
    result = project.cw("apply")
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 2
    retry = server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "not json at all"}
    assert retry[-1]["content"].startswith("That answer is invalid (")
    assert (project.directory / "out/motd.txt").read_text() == "second try\n"


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        (["nope", "still nope"], "Expecting value: line 1 column 1 (char 0)"),
        ([{"content": 5}, {"content": 6}], "6 is not of type 'string'"),
        ([{"content": "x", "extra": 1}, {"content": "y", "extra": 2}], "Additional properties are not allowed ('extra' was unexpected)"),
        ([[1, 2], [3]], "the answer is not a JSON object"),
    ],
    ids=["not-json", "wrong-type", "extra-field", "not-an-object"],
)
def test_invalid_twice_is_reported_and_nothing_changes(server: ModelServer, project: CwProject, answers, problem: str) -> None:
    server.answer(*answers)
    result = project.cw("apply")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: completion of FileResource 'motd.txt': the model's answer was invalid twice: {problem}"
    )
    assert not (project.directory / "out").exists(), "a failed completion changes nothing on any host"
    assert not (project.directory / "clockwork.lock").exists()


def test_pydantic_validation_of_the_answer(server: ModelServer, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import DockerServiceResource\n"
        "web = DockerServiceResource(name='web', description='a web server', networks=['host'])\n"
    )
    server.answer({"image": "nginx latest"}, {"image": "nginx:1.27-alpine"})
    result = CwProject(tmp_path).cw("plan", "--limit", "@local")
    assert "◆ completed DockerServiceResource 'web'.image = 'nginx:1.27-alpine' (model test-model)" in result.output
    assert "is not an image reference" in server.requests[1]["messages"][-1]["content"]


def test_http_500(server: ModelServer, project: CwProject) -> None:
    (project.directory / "clockwork.lock").write_text('{"version": 1, "resources": {}}\n')
    server.answer(Reply(status=500))
    result = project.cw("apply")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: completion of FileResource 'motd.txt': the model server answered HTTP 500: "
        '{"error": {"message": "prepared failure"}}'
    )
    assert (project.directory / "clockwork.lock").read_text() == '{"version": 1, "resources": {}}\n'
    assert not (project.directory / "out").exists()


def test_timeout(server: ModelServer, project: CwProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_MODEL_TIMEOUT", "1s")
    server.answer(Reply({"content": "late"}, delay=3))
    result = project.cw("plan")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: completion of FileResource 'motd.txt': the model server did not answer within 1s "
        f"({server.url}/chat/completions)"
    )


def test_unreachable_model_server(project: CwProject, monkeypatch: pytest.MonkeyPatch) -> None:
    from testsupport.fleet import closed_port

    monkeypatch.setenv("CW_MODEL", "test-model")
    monkeypatch.setenv("CW_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    result = project.cw("plan")
    assert result.exit_code == 2
    assert "cannot reach the model server at http://127.0.0.1:" in result.output


def test_changed_description_refreshes_only_its_own_entry(server: ModelServer, project: CwProject) -> None:
    source = FILES + 'more = FileResource(name="more.txt", directory="out", description="A haiku")\n'
    project.write_main(source)
    server.answer({"content": "welcome\n"}, {"content": "haiku\n"})
    assert project.cw("plan").exit_code == 0
    before = lock(project)["resources"]
    project.write_main(source.replace("A haiku", "A limerick"))
    server.answer({"content": "limerick\n"})
    assert project.cw("plan").exit_code == 0
    after = lock(project)["resources"]
    assert len(server.requests) == 3
    assert "A limerick" in server.requests[2]["messages"][1]["content"]
    assert after["FileResource/motd.txt"] == before["FileResource/motd.txt"]
    assert after["FileResource/more.txt"]["fields"]["content"]["value"] == "limerick\n"


def test_refresh_asks_again(server: ModelServer, project: CwProject) -> None:
    server.answer({"content": "one\n"}, {"content": "two\n"})
    assert project.cw("apply").exit_code == 0
    assert project.cw("apply", "--refresh").exit_code == 0
    assert (project.directory / "out/motd.txt").read_text() == "two\n"
    assert len(server.requests) == 2


def test_removed_resources_leave_the_lock(server: ModelServer, project: CwProject) -> None:
    server.answer({"content": "one\n"})
    assert project.cw("plan").exit_code == 0
    project.write_main(FILES.split("motd =")[0] + 'notes = FileResource(name="notes.txt", directory="out", content="x")\n')
    assert project.cw("plan").exit_code == 0
    assert lock(project)["resources"] == {}


def test_secrets_never_reach_the_model(server: ModelServer, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import DockerServiceResource\n"
        "api = DockerServiceResource(name='api', description='REST API', networks=['host'],\n"
        "    env_vars={'API_TOKEN': 's3cr3t-token', 'DB_PASSWORD': 'hunter2', 'MODE': 'prod'},\n"
        "    command=['serve', '--password=letmein'])\n"
    )
    server.answer({"image": "example/api:1.0"})
    CwProject(tmp_path).cw("plan", "--limit", "@local")
    body = server.raw_requests[0].decode()
    for secret in ("s3cr3t-token", "hunter2", "letmein"):
        assert secret not in body
    given = json.loads(server.requests[0]["messages"][1]["content"])["resource"]["given"]
    assert given["env_vars"] == {"API_TOKEN": "<redacted>", "DB_PASSWORD": "<redacted>", "MODE": "prod"}
    assert given["command"] == ["serve", "--password=***"]


def test_model_option_overrides_the_setting(server: ModelServer, project: CwProject) -> None:
    server.answer({"content": "x\n"})
    assert project.cw("plan", "--model", "other-model").exit_code == 0
    assert server.requests[0]["model"] == "other-model"
    assert lock(project)["resources"]["FileResource/motd.txt"]["fields"]["content"]["model"] == "other-model"


def test_dotenv_settings_and_the_environment_wins(server: ModelServer, project: CwProject, monkeypatch) -> None:
    monkeypatch.delenv("CW_MODEL")
    (project.directory / ".env").write_text(f"# model settings\nCW_MODEL=dotenv-model\nexport CW_BASE_URL='{server.url}'\n")
    server.answer({"content": "a\n"}, {"content": "b\n"})
    assert project.cw("plan").exit_code == 0
    assert server.requests[0]["model"] == "dotenv-model"
    monkeypatch.setenv("CW_MODEL", "env-model")
    assert project.cw("plan", "--refresh").exit_code == 0
    assert server.requests[1]["model"] == "env-model"


def test_offline_rules_choose_an_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CW_MODEL", raising=False)
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import DockerServiceResource\n"
        "cache = DockerServiceResource(name='sessions', description='Redis cache for sessions', networks=['host'])\n"
    )
    project = CwProject(tmp_path)
    result = project.cw("plan", "--limit", "@local")
    assert "◆ completed DockerServiceResource 'sessions'.image = 'redis:7.4-alpine' (rules)" in result.output
    pinned = lock(project)["resources"]["DockerServiceResource/sessions"]["fields"]["image"]
    assert (pinned["provider"], pinned["model"]) == ("rules", None)


@pytest.mark.parametrize(
    ("description", "image"),
    [
        ("nginx reverse proxy", "nginx:1.27-alpine"),
        ("Reverse proxy in front of the API", "nginx:1.27-alpine"),
        ("PostgreSQL database for orders", "postgres:16-alpine"),
        ("MariaDB for the wiki", "mariadb:11.4"),
        ("mysql", "mysql:8.4"),
        ("MongoDB document store", "mongo:7.0"),
        ("memcached", "memcached:1.6-alpine"),
        ("RabbitMQ broker", "rabbitmq:3.13-management-alpine"),
        ("Prometheus scraping the fleet", "prom/prometheus:v2.54.1"),
        ("Grafana dashboards", "grafana/grafana:11.2.0"),
        ("node-exporter on every host", "prom/node-exporter:v1.8.2"),
        ("a static website", "nginx:1.27-alpine"),
        ("something nobody knows", None),
    ],
)
def test_catalog(description: str, image: str | None) -> None:
    assert IMAGES.match(description) == image


def test_catalog_is_large_and_pinned() -> None:
    assert len(IMAGES) >= 15
    for _keywords, image in IMAGES:
        assert ":" in image and not image.endswith(":latest"), image
