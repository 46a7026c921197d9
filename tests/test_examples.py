"""The examples and the README's promises: run as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from clockwork.cli import cli
from clockwork.resources import RESOURCE_TYPES, Resource
from tests.conftest import CwProject
from testsupport.fleet import Fleet

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
CLOCKWORK = REPO / ".venv" / "bin" / "clockwork"


def copy_example(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns("build"))
    return target


def test_quickstart_as_documented(tmp_path: Path) -> None:
    project = CwProject(copy_example("quickstart", tmp_path))
    plan = project.cw("plan")
    assert plan.exit_code == 0 and "Plan: 3 to change, 0 unchanged, 0 failed on 1 host" in plan.output
    assert project.cw("apply").exit_code == 0
    assert (project.directory / "build/site/index.html").read_text() == "<h1>Hello from Clockwork</h1>\n"
    evaluated = project.cw("evaluate")
    assert evaluated.exit_code == 0
    assert evaluated.output.splitlines()[0] == "✓ All resources running as specified"
    with open(project.directory / "build/site/index.html", "a") as page:
        page.write("tampered\n")
    drift = project.cw("evaluate", "--diff")
    assert drift.exit_code == 1
    assert "✗ index.html: content differs" in drift.output and "-tampered" in drift.output
    assert project.cw("apply").exit_code == 0
    assert project.cw("evaluate").exit_code == 0
    assert project.cw("destroy", "--yes").exit_code == 0
    assert not (project.directory / "build/site").exists()


def test_make_demo_command_line_works_from_the_example_directory(tmp_path: Path) -> None:
    """`make demo` runs `clockwork apply && clockwork evaluate` in examples/quickstart."""
    directory = copy_example("quickstart", tmp_path)
    for command in ("apply", "evaluate"):
        result = subprocess.run([str(CLOCKWORK), command], cwd=directory, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ All resources running as specified" in result.stdout


def test_ssh_fleet_example(fleet: Fleet, tmp_path: Path) -> None:
    directory = copy_example("ssh-fleet", tmp_path)
    inventory = (directory / "inventory.py").read_text()
    assert "web = [" in inventory and "db = [" in inventory
    fleet.write_inventory(directory / "inventory.py", groups={"web": ["host-01", "host-02"], "db": ["host-03"]})
    project = CwProject(directory)
    assert project.cw("plan").exit_code == 0
    assert project.cw("apply", "--limit", "web").exit_code == 0
    assert fleet.run(fleet.hosts[0], "cat srv/app/site.conf").stdout == "listen 8080\nroot /srv/app/www\n"
    assert fleet.run(fleet.hosts[2], "test -e srv").returncode == 1
    # As the README says: exit 1, because --limit web left host-03 (db-1 there) out.
    junit = directory / "evaluate.xml"
    assert project.cw("evaluate", "--format", "junit", "--output", str(junit)).exit_code == 1
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    failed = [case.get("classname") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["host-03", "host-03"]
    assert project.cw("apply").exit_code == 0
    assert fleet.run(fleet.hosts[2], "test -e srv/app/site.conf").returncode == 1, "site.conf is for the web group only"
    assert project.cw("evaluate").exit_code == 0
    assert project.cw("evaluate", "--format", "junit", "--output", str(junit)).exit_code == 0
    assert junit.read_text().startswith("<?xml")
    ignored = subprocess.run(["git", "check-ignore", "-q", "examples/ssh-fleet/evaluate.xml"], cwd=REPO, check=False)
    assert ignored.returncode == 0, "evaluate.xml written in the example is ignored by git"


@pytest.mark.parametrize("example", sorted(path.name for path in (REPO / "examples").iterdir() if path.is_dir()))
def test_example_readmes_run_clockwork_as_installed_by_make_demo(example: str) -> None:
    """After `make demo`, `clockwork` is in .venv/bin, not on PATH: each README activates it before using it."""
    text = (REPO / "examples" / example / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        commands = [line.split("#")[0].strip() for line in block.splitlines()]
        uses = [i for i, command in enumerate(commands) if re.match(r"^(CW_\w+=\S+ )*clockwork\b", command)]
        activated = [i for i, command in enumerate(commands) if command == ". ../../.venv/bin/activate"]
        assert not uses or (activated and activated[0] < uses[0]), block
        assert (REPO / "examples" / example / "../../.venv/bin/activate").resolve().is_file()


def test_docker_service_example(docker_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = copy_example("docker-service", tmp_path)
    docker_fleet.write_inventory(directory / "my-inventory.py")
    monkeypatch.setenv("CW_EXAMPLE_IMAGE", docker_fleet.docker_image)
    project = CwProject(directory)
    # One network namespace for the whole test fleet: one host serves port 8080.
    assert project.cw("apply", "-i", "my-inventory.py", "--limit", "host-01").exit_code == 0
    result = project.cw("evaluate", "-i", "my-inventory.py", "--limit", "host-01", "--retry-timeout", "10s")
    assert result.exit_code == 0, result.output
    assert f"✓ web: running (image {docker_fleet.docker_image})" in result.output


@pytest.mark.parametrize("resource", [Resource, *RESOURCE_TYPES.values()], ids=["Resource", *RESOURCE_TYPES])
def test_readme_documents_every_field(resource: type[Resource]) -> None:
    section = README if resource is Resource else README.split(f"### `{resource.__name__}`")[1].split("\n### ")[0]
    for field in resource.model_fields:
        if resource is not Resource and field in Resource.model_fields and field != "name":
            continue
        assert re.search(rf"^\| `{field}` \|", section, re.MULTILINE), f"{resource.__name__}.{field} is not in README.md"


def test_readme_documents_every_command_and_option() -> None:
    for name, command in cli.commands.items():
        assert f"clockwork {name}" in README, name
        for parameter in command.params:
            for option in parameter.opts:
                if option.startswith("--"):
                    assert option in README, f"{name} {option} is not in README.md"
