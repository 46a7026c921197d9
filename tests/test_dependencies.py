"""requires=[...]: checked as the project loads (unknown names, cycles: exit 2, nothing touched), and the order."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli
from clockwork.dependencies import in_order
from clockwork.resources import FileResource, PackageResource, ServiceResource


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


@pytest.mark.parametrize(("body", "message"), [
    ('a = FileResource(name="a", content="", requires=["FileResource/b"])\n'
     'b = FileResource(name="b", content="", requires=[a])\n',
     "main.py:3: requires form a cycle: FileResource 'a' → FileResource 'b' → FileResource 'a'"),
    ('a = FileResource(name="a", content="", requires=["FileResource/c"])\n'
     'b = FileResource(name="b", content="", requires=[a])\n'
     'c = FileResource(name="c", content="", requires=["FileResource/b"])\n',
     "main.py:3: requires form a cycle: FileResource 'a' → FileResource 'c' → FileResource 'b' → FileResource 'a'"),
    ('a = FileResource(name="a", content="", requires=["FileResource/a"])\n', "main.py:3: FileResource 'a' requires itself"),
    ('a = FileResource(name="a", content="", requires=["FileResource/nope"])\n',
     "main.py:3: FileResource 'a' requires FileResource/nope, which main.py does not declare"),
    ('a = FileResource(name="a", content="", requires=["Files/nope"])\n',
     "main.py:3: invalid value for FileResource 'a'.requires: 'Files/nope' names no resource kind 'Files'"),
    ('s = ServiceResource(name="cwdemo", restart_on=["FileResource/x"])\n',
     "main.py:3: ServiceResource 'cwdemo' requires FileResource/x, which main.py does not declare"),
])
def test_bad_requires_are_refused_before_any_host_is_touched(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "main.py").write_text("from clockwork.resources import FileResource, ServiceResource\n\n" + body)
    for command in ("apply", "evaluate", "plan"):
        result = run(tmp_path, command)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["main.py"]  # no file written, no state


def test_the_order_puts_each_resource_after_what_it_needs_and_keeps_declaration_order_otherwise() -> None:
    conf = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=1\n")
    service = ServiceResource(name="cwdemo", requires=["PackageResource/cwdemo"], restart_on=[conf])
    package = PackageResource(name="cwdemo")
    notes = FileResource(name="notes", content="")
    assert [r.ref for r in in_order([service, notes, conf, package])] == [
        "FileResource/notes", "FileResource/cwdemo.conf", "PackageResource/cwdemo", "ServiceResource/cwdemo"]
    # A requirement placed on other hosts only is not there to wait for.
    assert [r.ref for r in in_order([service, notes])] == ["ServiceResource/cwdemo", "FileResource/notes"]
