"""Which resources go to which hosts: the inventory, ``--limit`` and each resource's ``hosts=``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from pyinfra.api import Inventory

from clockwork.engine import host_groups, load_inventory, select_hosts
from clockwork.engine.inventory import host_target
from clockwork.exceptions import ProjectError
from clockwork.project import Project
from clockwork.resources.base import Resource


@dataclass
class Placement:
    """The selected hosts, in inventory order, and the resources each one gets, in declaration order.

    .. code:: python

        placement = place(project, inventory="inventory.py", limit=["web"])
        placement.resources["web-1"]  # [FileResource(name='config.json', ...)]
    """

    inventory: Inventory
    hosts: list[str]
    resources: dict[str, list[Resource]]
    source: str
    directory: Path

    def only(self, hosts: list[str]) -> Placement:
        """The same placement limited to ``hosts`` (in its own order), on the same inventory."""
        return Placement(self.inventory, [h for h in self.hosts if h in hosts],
                         {h: r for h, r in self.resources.items() if h in hosts}, self.source, self.directory)

    @property
    def pairs(self) -> int:
        return sum(len(resources) for resources in self.resources.values())


def place(project: Project, inventory: str | None = None, limit: list[str] | None = None,
          resolve: bool = True, loaded: Inventory | None = None) -> Placement:
    """Load the inventory and place every resource; unknown names are errors before anything runs.

    With ``resolve`` the placed resources hold the values of their secret references
    (an unresolvable one is a ``SecretError`` here, before any host is touched);
    destroy needs no values and passes ``resolve=False``. ``loaded`` is the inventory
    when the caller has loaded it already (it is executed once per command).
    """
    source = inventory or project.default_inventory
    loaded = loaded if loaded is not None else load_inventory(source, project.directory)
    selected = select_hosts(loaded, limit)
    groups = host_groups(loaded)
    for resource in project.resources:
        for name in resource.hosts or ():
            if name not in groups and not any(name in member_of for member_of in groups.values()):
                known = ", ".join(sorted(set(groups) | set().union(*groups.values())))
                raise ProjectError(
                    f"{resource.origin or project.file.name}: {resource.label} names unknown host or group "
                    f"{name!r} (the inventory has: {known})"
                )
    sent = {id(r): r.resolved(project.resolver) if resolve else r for r in project.resources}
    resources = {
        host: [
            sent[id(resource)] for resource in project.resources
            if resource.hosts is None or host in resource.hosts or groups[host] & set(resource.hosts)
        ]
        for host in selected
    }
    if resolve:
        _check_targets(loaded, resources, project)
    return Placement(loaded, selected, resources, source, project.directory)


def _check_targets(inventory: Inventory, resources: dict[str, list[Resource]], project: Project) -> None:
    """Every placed resource can be sent to its host as declared (templates render), or a ``ProjectError``."""
    for name, placed in resources.items():
        target = host_target(inventory.get_host(name), project.directory)
        for resource in placed:
            try:
                resource.check_target(target)
            except ProjectError as error:
                raise ProjectError(f"{resource.origin or project.file.name}: {resource.label}: {error}") from None

