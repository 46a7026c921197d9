"""Recorded versions of resources: listing them, rebuilding one, rolling back to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clockwork.apply import run_apply
from clockwork.engine import Progress
from clockwork.exceptions import ProjectError
from clockwork.placement import place
from clockwork.project import Project
from clockwork.resources import RESOURCE_TYPES
from clockwork.resources.base import Resource
from clockwork.results import Report
from clockwork.secrets import REDACTED, held_digest, matches_held
from clockwork.state import Version, open_store, state_exists


def history(project_dir: Path, resource: str | None = None) -> list[Version]:
    """Every recorded version, oldest first; ``resource`` is a name or ``Type/name``."""
    if not state_exists(project_dir):
        return []
    type_name, _, name = resource.rpartition("/") if resource else ("", "", None)
    with open_store(project_dir) as store:
        versions = store.versions(type_name or None, name)
    if resource and not versions:
        raise ProjectError(f"no history for {resource!r}: it was never applied from {project_dir}")
    return versions


def interrupted(project_dir: Path) -> list[dict[str, Any]]:
    """Deployments whose process died before they finished (marked by the next writer): what they wrote on the
    hosts has no version in the history."""
    if not state_exists(project_dir):
        return []
    with open_store(project_dir) as store:
        return store.interrupted()


def restore(version: Version, *declared: Resource | None, key: bytes | None = None) -> dict[str, Any]:
    """A recorded spec, with the values kept only as a keyed hash taken back from the declarations at hand.

    A plain value under a secret-looking name is never stored (a ``Secret``
    reference is, and is resolved when used): it comes from the first declaration
    (update.py, main.py) of the same resource that has it, and must be the value
    that was applied (its keyed hash is checked when ``key`` is given).
    """
    present: dict[str, Any] = {}
    for resource in reversed([resource for resource in declared if resource is not None]):
        present.update(resource.spec(include=resource.model_fields_set))

    def fill(recorded: Any, now: Any, where: str) -> Any:
        digest = held_digest(recorded)
        if recorded == REDACTED or (digest is not None and digest[0] == "hmac"):
            if not isinstance(now, str) or now == REDACTED or held_digest(now):
                raise ProjectError(
                    f"{version.type} {version.resource!r}: {where} is a secret value, which is never stored: "
                    "declare it in main.py (or update.py), or better as a Secret('env:NAME') reference"
                )
            if not matches_held(recorded, now, key):
                raise ProjectError(
                    f"{version.type} {version.resource!r}: {where} in main.py is not the value applied in version "
                    f"{version.version}: apply main.py first, or declare it as a Secret('env:NAME') reference"
                )
            return now
        if isinstance(recorded, dict):
            return {name: fill(value, now.get(name) if isinstance(now, dict) else None, f"{where}.{name}".lstrip("."))
                    for name, value in recorded.items()}
        return recorded

    return fill(version.spec, present, "")


def rebuild(version: Version, *declared: Resource | None, key: bytes | None = None) -> Resource:
    """The resource exactly as it was at ``version`` (secret values as described in ``restore``)."""
    cls = RESOURCE_TYPES.get(version.type)
    if cls is None:
        raise ProjectError(f"{version.type} {version.resource!r}: unknown resource type in the state store")
    return cls(**restore(version, *declared, key=key))


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
    if to is None and len(versions) == 1:
        raise ProjectError(f"{current.type} {current.resource!r} has no earlier version to roll back to: "
                           f"version {current.version} is the only one recorded")
    target = next((version for version in versions if version.version == number), None)
    if target is None:
        known = ", ".join(str(version.version) for version in versions)
        raise ProjectError(f"{current.type} {current.resource!r} has no version {number} (versions: {known})")
    return current, target


def rollback(
    project: Project, current: Version, target: Version, inventory: str | None = None, progress: Progress | None = None
) -> Report:
    """Re-apply ``target``'s spec to the hosts and record it as a new version with source ``rollback``."""
    declared = next((r for r in project.resources if (r.type_name, r.name) == (target.type, target.resource)), None)
    with open_store(project.directory) as store:
        key = store.secret_key()
    resource = rebuild(target, declared, key=key)
    single = Project(project.directory, project.file, [resource])
    return run_apply(single, place(single, inventory), "rollback", progress)
