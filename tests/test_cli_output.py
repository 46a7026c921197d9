"""What the CLI prints: names and details with control characters shown escaped, never raw, never dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli
from clockwork.output import escape
from testsupport.fleet import closed_port

ESCAPED = "esc\\x1b[31mred"


@pytest.mark.parametrize(("text", "shown"), [
    ("esc\x1b[31mred", "esc\\x1b[31mred"),
    ("cr\rname", "cr\\rname"),
    ("new\nline\ttab", "new\\nline\\ttab"),
    ("nul\x00 del\x7f csi\x9b", "nul\\x00 del\\x7f csi\\x9b"),
    ("rtl\u202eoverride line\u2028sep", "rtl\\u202eoverride line\\u2028sep"),
    ("lone\udc80", "lone\\udc80"),
    ("plain: é ✓ 日本 -_.", "plain: é ✓ 日本 -_."),
])
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown
    assert escape("a\nb", keep_newlines=True) == "a\nb"


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


def test_a_name_with_an_escape_sequence_is_shown_escaped_by_every_command(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import FileResource\n"
        "red = FileResource(name='esc\\x1b[31mred', directory='out', content='x\\n')\n"
    )
    outputs = {}
    for command in (["plan"], ["apply"], ["evaluate"], ["destroy", "--yes"]):
        result = run(tmp_path, *command, "-i", "@local")
        assert result.exit_code == 0, result.output
        outputs[command[0]] = result.output
        assert "\x1b" not in result.output
    assert f"~ {ESCAPED}: would be created: missing" in outputs["plan"]
    assert f"✓ {ESCAPED}: created" in outputs["apply"]
    assert f"  ✓ {ESCAPED}: present at {tmp_path}/out/{ESCAPED}" in outputs["evaluate"]
    assert f"✓ {ESCAPED}: removed" in outputs["destroy"]


def test_an_escape_sequence_in_a_host_name_or_an_error_is_shown_escaped(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import FileResource\nf = FileResource(name='f.txt', directory='out', content='x\\n')\n")
    (tmp_path / "inventory.py").write_text(
        f'hosts = [("web\\x1b[1m-1", {{"ssh_hostname": "127.0.0.1", "ssh_port": {closed_port()}}})]\n')
    result = run(tmp_path, "evaluate")
    assert result.exit_code == 3, result.output
    assert "\x1b" not in result.output
    assert "✗ 1 of 1 not as specified (1 error); unreachable: web\\x1b[1m-1" in result.output
    assert "  ✗ [web\\x1b[1m-1] unreachable: Could not connect" in result.output
    refused = run(tmp_path, "evaluate", "--limit", "db\x1b[2J")
    assert refused.exit_code == 2
    assert refused.output.startswith("Error: --limit db\\x1b[2J: no host or group of that name in the inventory")


def test_the_top_level_help_shows_every_command_summary_whole() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n")[1].splitlines()
    assert [line.split()[0] for line in commands] == sorted(cli.commands)
    for line in commands:
        assert not line.endswith("...") and line.endswith("."), line
        assert len(line) <= 80
    assert "4  internal error (a bug in Clockwork): the traceback is in .clockwork/debug.log" in result.output


@pytest.mark.parametrize("command", ["destroy", "rollback", "update"])
def test_every_confirming_command_documents_what_declining_does(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert "changes nothing and exits 2" in " ".join(result.output.split())


def test_counts_are_singular_or_plural(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import clockwork.reconcile
    from clockwork.reconcile.status import StatusRow

    rows = [StatusRow("FileResource", "a.conf", "web-1", "auto_correct", "ok", "corrected", "2026-11-24T14:02:11Z",
                      "2026-11-24T14:02:41Z", None, corrections_last_hour=1, corrections_total=total, detail="")
            for total in (1, 2, 0)]
    monkeypatch.setattr(clockwork.reconcile, "status", lambda project_dir, settings: rows)
    lines = CliRunner().invoke(cli, ["--project-dir", str(tmp_path), "status"]).output.splitlines()
    assert [line.split("; ")[-1] for line in lines] == [
        "1 correction (1 in the last hour)", "2 corrections (1 in the last hour)", "0 corrections (1 in the last hour)"]
    (tmp_path / "main.py").write_text(
        "from clockwork.resources import FileResource\nf = FileResource(name='f.txt', content='x\\n')\n")
    (tmp_path / "inventory.py").write_text(
        f'hosts = [("web-1", {{"ssh_hostname": "127.0.0.1", "ssh_port": {closed_port()}}}), '
        f'("web-2", {{"ssh_hostname": "127.0.0.1", "ssh_port": {closed_port()}}})]\n')
    result = run(tmp_path, "evaluate")
    assert result.output.splitlines()[0] == "✗ 2 of 2 not as specified (2 errors); unreachable: web-1, web-2"
