"""``ignore_fields``: which paths are accepted, and the clear error for the others."""

from __future__ import annotations

import pytest

from clockwork.resources import DockerServiceResource, FileResource
from clockwork.resources.base import InvalidResource


@pytest.mark.parametrize("paths", [["mode"], ["content", "owner"], ["checks"]])
def test_a_files_own_fields_may_be_ignored(paths: list[str]) -> None:
    assert FileResource(name="a", directory="d", content="x", ignore_fields=paths).ignore_fields == paths


def test_a_mapping_key_may_be_ignored_by_a_dotted_path() -> None:
    api = DockerServiceResource(name="api", image="x", ignore_fields=["env_vars.BUILD_ID", "ports"])
    assert api.ignore_fields == ["env_vars.BUILD_ID", "ports"]


@pytest.mark.parametrize(("kind", "paths", "message"), [
    (FileResource, ["mdoe"], "invalid value for FileResource 'a'.ignore_fields: 'mdoe' names no field "
                             "(did you mean 'mode'?)"),
    (FileResource, ["name"], "invalid value for FileResource 'a'.ignore_fields: 'name' cannot be ignored: it says "
                             "which resource this is or how Clockwork looks after it, not how the host has it"),
    (FileResource, ["reconcile"], "'reconcile' cannot be ignored"),
    (FileResource, ["mode.x"], "'mode.x': only a mapping field's keys can be named after a dot ('mode' is not a "
                               "mapping)"),
    (DockerServiceResource, ["env_vars."], "'env_vars.': a key must follow the dot"),
    (DockerServiceResource, ["present"], "'present' cannot be ignored"),
    (DockerServiceResource, "env_vars", "ignore_fields: Input should be a valid list"),
], ids=["typo", "identity", "meta", "dot-into-scalar", "empty-key", "presence", "not-a-list"])
def test_a_bad_ignored_field_is_a_clear_error(kind: type, paths: object, message: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        kind(name="a", image="x", ignore_fields=paths) if kind is DockerServiceResource else \
            kind(name="a", directory="d", content="x", ignore_fields=paths)
    assert message in str(raised.value)
