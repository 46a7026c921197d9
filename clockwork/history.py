"""Recorded versions of resources: listing them, rebuilding one, rolling back to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clockwork.engine import Progress
from clockwork.exceptions import ProjectError
from clockwork.placement import place
from clockwork.project import Project
from clockwork.resources import RESOURCE_TYPES
from clockwork.resources.base import REDACTED, Resource
from clockwork.results import Report
from clockwork.state import Version, open_store
from clockwork.state.sqlite import STATE_DIR


def has_state(project_dir: Path) -> bool:
    """Whether anything was ever applied from this directory (reading never creates the store)."""
    return (project_dir / STATE_DIR / "state.db").is_file()


def history(project_dir: Path, resource: str | None = None) -> list[Version]:
    """Every recorded version, oldest first; ``resource`` is a name or ``Type/name``."""
    if not has_state(project_dir):
        return []
    type_name, _, name = resource.rpartition("/") if resource else ("", "", None)
    with open_store(project_dir) as store:
        versions = store.versions(type_name or None, name)
    if resource and not versions:
        raise ProjectError(f"no history for {resource!r}: it was never applied from {project_dir}")
    return versions


def restore(version: Version, *declared: Resource | None) -> dict[str, Any]:
    """A recorded spec with its redacted secrets taken back from the declarations at hand.

    Secrets are never stored, so a value redacted in the record comes from the
    first declaration (update.py, main.py) of the same resource that has it.
    """
    present: dict[str, Any] = {}
    for resource in reversed([resource for resource in declared if resource is not None]):
        present.update(resource.model_dump(mode="json", include=resource.model_fields_set))

    def fill(recorded: Any, now: Any, where: str) -> Any:
        if recorded == REDACTED:
            if now is None or now == REDACTED:
                raise ProjectError(
                    f"{version.type} {version.resource!r}: {where} is a secret, which is never stored: "
                    "declare it in main.py (or update.py) to restore it"
                )
            return now
        if isinstance(recorded, dict):
            return {key: fill(value, now.get(key) if isinstance(now, dict) else None, f"{where}.{key}".lstrip("."))
                    for key, value in recorded.items()}
        return recorded

    return fill(version.spec, present, "")


def rebuild(version: Version, *declared: Resource | None) -> Resource:
    """The resource as it was at ``version`` (secrets from the declarations, see ``restore``)."""
    cls = RESOURCE_TYPES.get(version.type)
    if cls is None:
        raise ProjectError(f"{version.type} {version.resource!r}: unknown resource type in the state store")
    return cls(**restore(version, *declared))


def versions_of(project_dir: Path, resource: str) -> list[Version]:
    """The versions of the one resource that ``resource`` (a name or ``Type/name``) names, oldest first."""
    versions = history(project_dir, resource)
    if not versions:
        raise ProjectError(f"no history for {resource!r}: nothing was ever applied from {project_dir}")
    types = {version.type for version in versions}
    if len(types) > 1:
        raise ProjectError(f"{resource!r} names several resources ({', '.join(sorted(types))}): use Type/name")
    return versions


def choose_version(project_dir: Path, resource: str, to: int | None) -> tuple[Version, Version]:
    """(current, target) versions of one resource; the target defaults to the one before the current."""
    versions = versions_of(project_dir, resource)
    current = versions[-1]
    number = current.version - 1 if to is None else to
    target = next((version for version in versions if version.version == number), None)
    if target is None:
        known = ", ".join(str(version.version) for version in versions)
        raise ProjectError(f"{current.type} {current.resource!r} has no version {number} (versions: {known})")
    return current, target


def rollback(
    project: Project, current: Version, target: Version, inventory: str | None = None, progress: Progress | None = None
) -> Report:
    """Re-apply ``target``'s spec to the hosts and record it as a new version with source ``rollback``."""
    from clockwork.apply import run_apply

    declared = next((r for r in project.resources if (r.type_name, r.name) == (target.type, target.resource)), None)
    resource = rebuild(target, declared)
    single = Project(project.directory, project.file, [resource])
    return run_apply(single, place(single, inventory), "rollback", progress)
