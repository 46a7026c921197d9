"""``clockwork rollback``: re-apply an earlier recorded version of one resource, recorded as a new version."""

from __future__ import annotations

from pathlib import Path

from clockwork.commands.apply import run_apply
from clockwork.commands.history import versions_of
from clockwork.engine import Progress
from clockwork.exceptions import ProjectError
from clockwork.placement import place
from clockwork.project import Project
from clockwork.record import rebuild
from clockwork.results import Report
from clockwork.settings import Settings, load_settings
from clockwork.state import Version, open_store


def choose_version(project_dir: Path, resource: str, to: int | None, settings: Settings) -> tuple[Version, Version]:
    """(current, target) versions of one resource; the target defaults to the one before the current."""
    versions = versions_of(project_dir, resource, settings)
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
    project: Project, resource: str, to: int | None = None, inventory: str | None = None,
    progress: Progress | None = None, settings: Settings | None = None,
) -> Report:
    """Re-apply version ``to`` of ``resource`` (a name or ``Type/name``; default: the version before the current)
    to the hosts and record it as a new version with source ``rollback``.

    Secret values that are never stored come from ``project``'s main.py (an empty project when there is none);
    ``settings`` (by default the project's) name the store.

    .. code:: python

        report = rollback(load_project(Path(".")), "app.conf", to=1, inventory="inventory.py")
        report.status  # 'ok'
    """
    settings = settings or load_settings(project.directory)
    _current, target = choose_version(project.directory, resource, to, settings)
    declared = next((r for r in project.resources if (r.type_name, r.name) == (target.type, target.resource)), None)
    with open_store(project.directory, settings) as store:
        key = store.secret_key()
    single = Project(project.directory, project.file, [rebuild(target, declared, key=key)])
    return run_apply(single, place(single, inventory), "rollback", settings, progress)
