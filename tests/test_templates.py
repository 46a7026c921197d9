"""Templated files: rendered per host on the controller, compared rendered, never stored rendered."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli
from clockwork.engine.types import Target
from clockwork.resources import FileResource
from clockwork.resources.base import InvalidResource
from clockwork.templates import TemplateError, render, TemplateHost
from testsupport.fleet import Fleet

MAIN = """\
from clockwork.resources import FileResource, Secret

conf = FileResource(name="app.conf", directory="out", template="templates/app.conf.j2",
                    vars={"port": 8080, "token": Secret("env:APP_TOKEN")})
"""

TEMPLATE = "# {{ host.name }}\nport={{ port }}\ntoken={{ token }}\n"


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args], env={"APP_TOKEN": "s3cr3t-value"})


def write_project(tmp_path: Path, template: str = TEMPLATE, main: str = MAIN) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "app.conf.j2").write_text(template)
    (tmp_path / "main.py").write_text(main)
    return tmp_path


def test_a_template_is_rendered_with_its_vars_and_secrets_and_the_final_newline_kept(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    result = run(project, "apply")
    assert result.exit_code == 0, result.output
    assert (project / "out/app.conf").read_text() == "# @local\nport=8080\ntoken=s3cr3t-value\n"
    assert run(project, "evaluate").exit_code == 0


def test_the_store_keeps_the_template_and_references_never_the_rendered_text(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    assert run(project, "apply").exit_code == 0
    database = sqlite3.connect(project / ".clockwork/state.db")
    dump = "\n".join(database.iterdump())
    assert "s3cr3t-value" not in dump
    assert "port={{ port }}" in dump  # the template's text, kept with the version
    assert "secret:env:APP_TOKEN" in dump


def test_evaluate_diff_shows_the_rendered_text_against_the_file_and_masks_secrets(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    assert run(project, "apply").exit_code == 0
    (project / "out/app.conf").write_text("# @local\nport=9090\ntoken=s3cr3t-value\n")
    result = run(project, "evaluate", "--diff")
    assert result.exit_code == 1, result.output
    assert "-port=9090" in result.output and "+port=8080" in result.output
    assert "s3cr3t-value" not in result.output
    assert (project / "out/app.conf").read_text().startswith("# @local\nport=9090")  # evaluate changes nothing


@pytest.mark.parametrize(("template", "message"), [
    ("port={{ port }}\nname={{ nmae }}\n", "main.py:3: FileResource 'app.conf': templates/app.conf.j2:2: 'nmae' is undefined "
                                           "(rendering for @local)"),
    ("port={{ port }\n", "main.py:3: FileResource 'app.conf': templates/app.conf.j2:1: unexpected '}'"),
    ("{{ port | nosuchfilter }}\n", "templates/app.conf.j2:1: No filter named 'nosuchfilter'"),
])
def test_a_template_that_does_not_render_is_refused_before_anything_changes(tmp_path: Path, template: str,
                                                                             message: str) -> None:
    project = write_project(tmp_path, template)
    for command in ("apply", "evaluate", "plan"):
        result = run(project, command)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert not (project / "out").exists()


def test_a_missing_template_file_names_the_resource_and_the_file(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    (project / "templates/app.conf.j2").unlink()
    result = run(project, "apply")
    assert result.exit_code == 2
    assert "main.py:3: FileResource 'app.conf': template templates/app.conf.j2 cannot be read: No such file or directory" \
        in result.output


def test_a_changed_template_is_pending_until_applied_and_reconcile_keeps_what_was_applied(tmp_path: Path) -> None:
    project = write_project(tmp_path, main=MAIN.replace('Secret("env:APP_TOKEN")}', 'Secret("env:APP_TOKEN")}, reconcile=True'))
    assert run(project, "apply").exit_code == 0
    (project / "templates/app.conf.j2").write_text(TEMPLATE + "extra=1\n")
    result = run(project, "evaluate")
    assert result.exit_code == 1
    assert "pending: main.py changes template_text since the last apply (version 1)" in result.output
    (project / "out/app.conf").write_text("tampered\n")
    assert run(project, "reconcile", "--once").exit_code in (0, 1)
    assert (project / "out/app.conf").read_text() == "# @local\nport=8080\ntoken=s3cr3t-value\n"  # version 1, not the edit


@pytest.mark.parametrize(("fields", "message"), [
    ({"content": "x", "template_text": "y"}, "give content or a template (template, template_text), not both"),
    ({"vars": {"a": 1}}, "vars are for a template: give template or template_text"),
    ({"template_text": "{% if %}"}, "Expected an expression"),
])
def test_template_fields_that_do_not_go_together_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(InvalidResource, match=re.escape(message)):
        FileResource(name="app.conf", **fields)


def test_a_template_sees_the_hosts_inventory_data_and_groups() -> None:
    conf = FileResource(name="app.conf", template_text="{{ host.data.port }} {{ host.groups | join(',') }} {{ x }}\n",
                        vars={"x": "y"})
    assert conf.rendered(Target("web-1", data={"port": 81}, groups=("web",))) == "81 web y\n"
    assert conf.missing_fields() == []  # nothing for completion to write


def test_an_error_inside_a_template_names_its_line() -> None:
    with pytest.raises(TemplateError, match=r"t\.j2:3: ZeroDivisionError: integer division or modulo by zero \(rendering for h\)"):
        render("a\nb\n{{ 1 // 0 }}\n", "t.j2", {}, TemplateHost("h"))


def test_templates_render_per_host_over_ssh(fleet: Fleet, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    lines = ["hosts = ["]
    lines += [f"    ({host.name!r}, {{**{fleet.host_data(host)!r}, 'port': {8000 + index}}}),"
              for index, host in enumerate(fleet.hosts)]
    (project / "inventory.py").write_text("\n".join(lines + ["]"]) + "\n")
    write_project(project, "name={{ host.name }}\nport={{ host.data.port }}\n", main=textwrap.dedent("""\
        from clockwork.resources import FileResource
        conf = FileResource(name="app.conf", template="templates/app.conf.j2")
        """))
    result = CliRunner().invoke(cli, ["--project-dir", str(project), "apply"])
    assert result.exit_code == 0, result.output
    for index, host in enumerate(fleet.hosts):
        assert fleet.run(host, "cat app.conf").stdout == f"name={host.name}\nport={8000 + index}\n"
    changed = fleet.hosts[1]
    fleet.run(changed, "echo port=1 > app.conf")
    result = CliRunner().invoke(cli, ["--project-dir", str(project), "evaluate"])
    assert result.exit_code == 1
    assert f"✗ [{changed.name}] app.conf: content differs" in result.output
    assert result.output.count("content differs") == 1
