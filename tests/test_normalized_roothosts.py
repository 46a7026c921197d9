"""Values a Debian host normalizes compare equal to what was declared (root test hosts): a package version with
epoch 0, a service named with its ``.service`` suffix, a mode with a leading zero, a directory with a slash."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_services_roothosts import _RESET, REPO, cw
from testsupport.roothosts import RootFleet


@pytest.fixture
def normalized(root_fleet: RootFleet, tmp_path: Path) -> Iterator[Path]:
    project = tmp_path / "web-service"
    shutil.copytree(REPO / "examples" / "web-service", project)
    root_fleet.write_inventory(project / "inventory.py", user="root")
    main = project / "main.py"
    text = (main.read_text().replace('version="1.1"', 'version="0:1.1"')
            .replace('name="cwdemo", running=True', 'name="cwdemo.service", running=True')
            .replace('directory="/etc",', 'directory="/etc/", mode="0644",'))
    assert text.count("0:1.1") == 1 and text.count("cwdemo.service") == 1 and text.count('"/etc/"') == 1
    main.write_text(text)
    yield project
    for host in root_fleet.hosts:
        root_fleet.ssh(host, _RESET)


def test_normalizable_package_service_and_file_forms_evaluate_ok_after_apply(normalized: Path) -> None:
    applied = cw(normalized, "apply")
    assert applied.exit_code == 0, applied.output
    evaluated = cw(normalized, "evaluate")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Nothing to do" in cw(normalized, "apply").output
