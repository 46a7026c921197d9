"""update.py as a merge patch (RFC 7386): only there is a mapping key set to None a removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from clockwork.exceptions import ProjectError
from clockwork.patch import merge_fields, patching
from clockwork.project import load_resources
from clockwork.resources import DockerServiceResource

SOURCE = "from clockwork.resources import DockerServiceResource\napi = DockerServiceResource(name='api', env_vars={'KEEP': None})\n"


def test_a_key_set_to_none_is_a_removal_in_update_py_only(tmp_path: Path) -> None:
    file = tmp_path / "main.py"
    file.write_text(SOURCE)
    with pytest.raises(ProjectError, match=r"main.py:2: .*env_vars"):
        load_resources(file)  # in main.py a value must be a value
    with patching():
        [api] = load_resources(file)
    assert api.patch() == {"name": "api", "env_vars": {"KEEP": None}}
    deployed = DockerServiceResource(name="api", image="app:1", env_vars={"MODE": "v1", "KEEP": "yes"}).model_dump()
    merged = DockerServiceResource(**merge_fields(deployed, api.patch()))
    assert (merged.image, merged.env_vars) == ("app:1", {"MODE": "v1"})


def test_lists_and_scalars_replace_and_unmentioned_fields_are_kept() -> None:
    deployed = {"image": "app:1", "command": ["a", "b"], "env_vars": {"MODE": "v1"}, "ports": ["80:80"]}
    assert merge_fields(deployed, {"command": ["c"], "image": "app:2"}) == {
        "image": "app:2", "command": ["c"], "env_vars": {"MODE": "v1"}, "ports": ["80:80"]}
