"""``clockwork history``: the recorded versions of resources, and the deployments that were interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from clockwork.exceptions import ProjectError
from clockwork.state import Version, open_store, state_exists

if TYPE_CHECKING:
    from clockwork.settings import Settings


def history(project_dir: Path, resource: str | None = None, settings: Settings | None = None) -> list[Version]:
    """Every recorded version, oldest first; ``resource`` is a name or ``Type/name``; ``settings`` (by default
    the project's) name the store.

    .. code:: python

        [(version.resource, version.version, version.source) for version in history(Path("."))]
        # [('app.conf', 1, 'apply'), ('app.conf', 2, 'update')]
    """
    if settings is None:
        from clockwork.settings import load_settings  # (pydantic: only when not given)

        settings = load_settings(project_dir)
    if not state_exists(project_dir, settings):
        return []
    type_name, _, name = resource.rpartition("/") if resource else ("", "", None)
    with open_store(project_dir, settings) as store:
        versions = store.versions(type_name or None, name)
    if resource and not versions:
        raise ProjectError(f"no history for {resource!r}: it was never applied from {project_dir}")
    return versions


def interrupted(project_dir: Path, settings: Settings) -> list[dict[str, Any]]:
    """Deployments whose process died before they finished (marked by the next writer): what they wrote on the
    hosts has no version in the history."""
    if not state_exists(project_dir, settings):
        return []
    with open_store(project_dir, settings) as store:
        return store.interrupted()


def versions_of(project_dir: Path, resource: str, settings: Settings) -> list[Version]:
    """The versions of the one resource that ``resource`` (a name or ``Type/name``) names, oldest first."""
    versions = history(project_dir, resource, settings)
    if not versions:
        raise ProjectError(f"no history for {resource!r}: nothing was ever applied from {project_dir}")
    types = {version.type for version in versions}
    if len(types) > 1:
        raise ProjectError(f"{resource!r} names several resources ({', '.join(sorted(types))}): use Type/name")
    return versions
