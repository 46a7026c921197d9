"""Find a project directory and load its resources from main.py (or update.py), in declaration order."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from clockwork.dependencies import check_dependencies
from clockwork.exceptions import ProjectError
from clockwork.resources.base import InvalidResource, Resource
from clockwork.secrets import Resolver


@dataclass
class Project:
    """A project directory and the resources its file declares.

    .. code:: python

        project = load_project(Path("examples/quickstart"))
        [resource.label for resource in project.resources]  # ["DirectoryResource 'scratch'", "FileResource 'hello.txt'"]
    """

    directory: Path
    file: Path
    resources: list[Resource]

    @cached_property
    def resolver(self) -> Resolver:
        """Resolves the secret references of this command (the environment, then ``.env``, then files)."""
        return Resolver(self.directory)

    @property
    def default_inventory(self) -> str:
        """``inventory.py`` in the project when present, else ``@local``."""
        inventory = self.directory / "inventory.py"
        return str(inventory) if inventory.is_file() else "@local"


def _where(file: Path, error: BaseException) -> str:
    """``main.py:12`` for the deepest traceback frame inside ``file``, else ``main.py``."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename) == str(file):
            line = frame.lineno
    return f"{file.name}:{line}" if line else file.name


def _collect(namespace: dict[str, object]) -> list[Resource]:
    resources: list[Resource] = []
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        resources += [item for item in items if isinstance(item, Resource)]
    return resources


def load_resources(file: Path) -> list[Resource]:
    """Run ``file`` and return the Resource instances among its globals, in declaration order.

    Lists or tuples of resources at module level are included in place.
    """
    file = file.resolve()
    try:
        source = file.read_text()
    except OSError as error:
        raise ProjectError(f"{file.name}: cannot be read: {error.strerror}") from None
    try:
        code = compile(source, str(file), "exec")
    except SyntaxError as error:
        raise ProjectError(f"{file.name}:{error.lineno}: syntax error: {error.msg}") from None
    namespace: dict[str, object] = {"__file__": str(file), "__name__": "__clockwork_project__"}
    try:
        exec(code, namespace)
    except InvalidResource as error:
        raise ProjectError(f"{_where(file, error)}: {error}") from None
    except Exception as error:
        raise ProjectError(f"{_where(file, error)}: {type(error).__name__}: {error}") from None
    resources = _collect(namespace)
    if not resources:
        raise ProjectError(f"{file.name}: declares no resources (assign Resource instances to module-level names)")
    _check_unique(file, resources)
    for resource in resources:
        try:
            resource.read_files(file.parent)
        except ProjectError as error:
            raise ProjectError(f"{resource.origin or file.name}: {resource.label}: {error}") from None
    return resources


def _check_unique(file: Path, resources: list[Resource]) -> None:
    seen: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        key = (resource.type_name, resource.name)
        if key in seen and seen[key] is not resource:
            first = seen[key].origin or file.name
            raise ProjectError(f"{resource.origin or file.name}: duplicate {resource.label} (first declared at {first})")
        seen[key] = resource


def load_project(directory: Path, file_name: str = "main.py") -> Project:
    """Load ``directory/file_name``; every problem is a ``ProjectError`` naming the file and line."""
    directory = directory.resolve()
    file = directory / file_name
    if not file.is_file():
        raise ProjectError(f"no {file_name} in {directory} (run from a project directory or pass --project-dir)")
    resources = load_resources(file)
    check_dependencies(resources, file.name)
    return Project(directory, file, resources)
