"""requires=[...]: checked as the project loads (unknown names, cycles: exit 2, nothing touched), and the order."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli
from pyinfra.api import Inventory

from clockwork.engine.pipeline import Action, Reading, Step, _levels
from clockwork.resources import FileResource, PackageResource, Resource, ServiceResource
from clockwork.results import Evaluation


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


def _steps(*resources: Resource, action: Action | None = "apply") -> list[Step]:
    host = Inventory((["web-1"], {})).get_host("web-1")
    return [Step(Reading(host, resource, Evaluation()), action) for resource in resources]


def _waves(steps: list[Step]) -> list[list[str]]:
    levels = _levels(steps)
    waves: list[list[str]] = [[] for _ in range(max(levels.values()) + 1)]
    for step in steps:
        waves[levels[id(step)]].append(step.reading.resource.ref)
    return [wave for wave in waves if wave]


def test_each_resource_runs_in_a_wave_after_what_it_needs_and_is_removed_before_it() -> None:
    conf = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=1\n")
    service = ServiceResource(name="cwdemo", requires=["PackageResource/cwdemo"], restart_on=[conf])
    package = PackageResource(name="cwdemo")
    notes = FileResource(name="notes", content="")
    assert _waves(_steps(service, notes, conf, package)) == [
        ["FileResource/notes", "FileResource/cwdemo.conf", "PackageResource/cwdemo"], ["ServiceResource/cwdemo"]]
    assert _waves(_steps(service, notes, conf, package, action="destroy")) == [
        ["ServiceResource/cwdemo", "FileResource/notes"], ["FileResource/cwdemo.conf", "PackageResource/cwdemo"]]
    # A requirement placed on other hosts only is not there to wait for.
    assert _waves(_steps(service, notes)) == [["ServiceResource/cwdemo", "FileResource/notes"]]
