"""What the reconciler keeps true: the last recorded version of each resource, not unapplied edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clockwork.exceptions import ProjectError
from clockwork.record import rebuild
from clockwork.project import load_resources
from clockwork.resources.base import InvalidResource, Resource
from clockwork.secrets import REDACTED, Resolver, held_digest, strings
from clockwork.state.base import StateStore


@dataclass
class Desired:
    """The recorded resources, rebuilt (secrets from main.py), and the ones that could not be.

    .. code:: python

        desired = desired_state(store, Path("."))
        [resource.label for resource in desired.reconciled]  # ["FileResource 'app.conf'"]
    """

    resources: list[Resource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Each resource's (``type``, ``name``) recorded version number: a new one resets its correction backoff.
    versions: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def reconciled(self) -> list[Resource]:
        """The resources with ``reconcile=True``."""
        return [resource for resource in self.resources if resource.reconcile]

    def get(self, type_name: str, name: str) -> Resource | None:
        return next((r for r in self.resources if (r.type_name, r.name) == (type_name, name)), None)


def desired_state(store: StateStore, project_dir: Path) -> Desired:
    """Rebuild every resource's latest version exactly as it was applied.

    The resources come back with their secret references resolved (once, here: the
    pass places them as they are). Only a plain value under a secret-looking name,
    which is never stored, comes from main.py, and only when it is the value that
    was applied. A resource that cannot be rebuilt, or whose secret cannot be
    resolved now, is a problem of its own; the others are still returned.
    """
    desired = Desired()
    versions = store.latest_versions()
    declared: dict[tuple[str, str], Resource] = {}
    main = project_dir / "main.py"
    if main.is_file() and any(_holds_values(version.spec) for version in versions):
        try:
            declared = {(r.type_name, r.name): r for r in load_resources(main)}
        except ProjectError as error:
            desired.problems.append(f"main.py not loaded, secret values cannot be restored: {error}")
    key = store.secret_key()
    resolver = Resolver(project_dir)
    for version in versions:
        try:
            resource = rebuild(version, declared.get((version.type, version.resource)), key=key).resolved(resolver)
        except (ProjectError, InvalidResource) as error:
            desired.problems.append(str(error))
            continue
        desired.resources.append(resource)
        desired.versions[(version.type, version.resource)] = version.version
    return desired


def _holds_values(spec: dict) -> bool:
    """Whether a stored spec keeps some value only as a keyed hash (so main.py must give it)."""
    return any(text == REDACTED or held_digest(text) for text in strings(spec))
