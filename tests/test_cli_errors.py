"""Every bad input exits 2 with one clear line naming the file (and line), and changes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli

VALID = """\
from clockwork.resources import FileResource
first = FileResource(name="first.txt", directory="out", content="one\\n")
"""


def run(project: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args], input=input)


def write_main(tmp_path: Path, body: str) -> Path:
    (tmp_path / "main.py").write_text(VALID + textwrap.dedent(body))
    return tmp_path


def assert_refused(result, message: str, project: Path) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (project / "out").exists(), "nothing may be applied when the project is invalid"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = (\n", "main.py:3: syntax error: '(' was never closed"),
        ("import not_a_module_anywhere\n", "main.py:3: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        ("raise RuntimeError('boom')\n", "main.py:3: RuntimeError: boom"),
        (
            "bad = FileResource(name='b.txt', content='x', mode='999')\n",
            "main.py:3: invalid value for FileResource 'b.txt'.mode: '999' is not a file mode: "
            "use octal digits such as '644' or '0750'",
        ),
        (
            "bad = FileResource(name='b.txt', content='x', colour='red')\n",
            "main.py:3: invalid value for FileResource 'b.txt'.colour: Extra inputs are not permitted",
        ),
        (
            "bad = FileResource(name='b.txt', content='x', check_interval='5 parsecs')\n",
            "main.py:3: invalid value for FileResource 'b.txt'.check_interval: '5 parsecs' is not a check interval: "
            "use seconds (60), a duration ('30s', '5m') or a cron expression ('*/5 * * * *')",
        ),
        (
            "bad = FileResource(name='b.txt', content='x', on_drift='panic')\n",
            "main.py:3: invalid value for FileResource 'b.txt'.on_drift: Input should be 'auto_correct', 'alert' or 'ignore'",
        ),
        (
            "again = FileResource(name='first.txt', directory='elsewhere', content='two')\n",
            "main.py:3: duplicate FileResource 'first.txt' (first declared at main.py:2)",
        ),
        (
            "web = FileResource(name='w.txt', content='x', hosts=['web-9'])\n",
            "main.py:3: FileResource 'w.txt' names unknown host or group 'web-9' (the inventory has: @local)",
        ),
    ],
    ids=["syntax", "import", "exception", "invalid-field", "unknown-field", "bad-interval", "bad-on-drift",
         "duplicate", "unknown-host"],
)
@pytest.mark.parametrize("command", ["apply", "plan", "evaluate"])
def test_bad_project_is_refused(tmp_path: Path, body: str, message: str, command: str) -> None:
    project = write_main(tmp_path, body)
    assert_refused(run(project, command, "-i", "@local"), message, project)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("apply", "main.py:3: FileResource 't.txt'.content is not set and the offline rules cannot complete it: "
                  "set content, or configure a model (CW_MODEL, CW_BASE_URL, CW_API_KEY or --model)"),
        ("plan", "main.py:3: FileResource 't.txt'.content is not set and the offline rules cannot complete it: "
                 "set content, or configure a model (CW_MODEL, CW_BASE_URL, CW_API_KEY or --model)"),
        ("evaluate", "main.py:3: FileResource 't.txt'.content is not completed yet: run `clockwork plan` or "
                     "`clockwork apply` to complete it and pin it in clockwork.lock"),
    ],
)
def test_a_field_nothing_can_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, message: str) -> None:
    monkeypatch.delenv("CW_MODEL", raising=False)
    project = write_main(tmp_path, "todo = FileResource(name='t.txt', description='a greeting')\n")
    assert_refused(run(project, command, "-i", "@local"), message, project)
    assert not (project / "clockwork.lock").exists()


def test_no_resources(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("x = 1\n")
    result = run(tmp_path, "apply")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: main.py: declares no resources (assign Resource instances to module-level names)"


def test_no_main_py(tmp_path: Path) -> None:
    result = run(tmp_path, "apply")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: no main.py in {tmp_path.resolve()} (run from a project directory or pass --project-dir)"


def test_unknown_limit(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    result = run(project, "apply", "-i", "@local", "--limit", "db")
    assert_refused(result, "--limit db: no host or group of that name in the inventory", project)


def test_missing_inventory_file(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    assert_refused(run(project, "apply", "-i", "nowhere.py"), "inventory file not found: nowhere.py", project)


def test_broken_inventory_file(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text("hosts = [\n")
    result = run(project, "apply")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: inventory ")
    assert not (project / "out").exists()


def test_bad_retry_timeout(tmp_path: Path) -> None:
    result = run(write_main(tmp_path, ""), "evaluate", "--retry-timeout", "soon")
    assert result.exit_code == 2
    assert "Invalid value for '--retry-timeout': 'soon' is not a duration" in result.output


def test_destroy_refuses_without_terminal_or_yes(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    assert run(project, "apply", "-i", "@local").exit_code == 0
    result = run(project, "destroy", "-i", "@local")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: destroy needs confirmation and stdin is not a terminal: pass --yes to destroy without asking"
    )
    assert (project / "out" / "first.txt").read_text() == "one\n"
