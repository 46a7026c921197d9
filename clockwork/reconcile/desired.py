"""What the reconciler keeps true: the last recorded version of each resource, not unapplied edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clockwork.exceptions import ProjectError
from clockwork.history import rebuild
from clockwork.project import load_resources
from clockwork.resources.base import InvalidResource, Resource
from clockwork.state.base import StateStore


@dataclass
class Desired:
    """The recorded resources, rebuilt (secrets from main.py), and the ones that could not be.

    >>> desired = desired_state(store, Path("."))
    >>> [resource.label for resource in desired.reconciled]
    ["FileResource 'app.conf'"]
    """

    resources: list[Resource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def reconciled(self) -> list[Resource]:
        """The resources with ``reconcile=True``."""
        return [resource for resource in self.resources if resource.reconcile]

    def get(self, type_name: str, name: str) -> Resource | None:
        return next((r for r in self.resources if (r.type_name, r.name) == (type_name, name)), None)


def desired_state(store: StateStore, project_dir: Path) -> Desired:
    """Rebuild every resource's latest version. Secrets are never stored: they come from main.py when it has them.

    A resource that cannot be rebuilt (its secret is no longer declared) is a
    problem of its own; the others are still returned.
    """
    desired = Desired()
    declared: dict[tuple[str, str], Resource] = {}
    main = project_dir / "main.py"
    if main.is_file():
        try:
            declared = {(r.type_name, r.name): r for r in load_resources(main)}
        except ProjectError as error:
            desired.problems.append(f"main.py not loaded, secrets cannot be restored: {error}")
    for version in store.latest_versions():
        try:
            desired.resources.append(rebuild(version, declared.get((version.type, version.resource))))
        except (ProjectError, InvalidResource) as error:
            desired.problems.append(str(error))
    return desired
