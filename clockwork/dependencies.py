"""Order between resources: ``requires=[...]`` (and a service's ``restart_on``/``reload_on``), checked once as the
project loads, and the order of application that follows from it.

>>> from clockwork.resources import FileResource, ServiceResource
>>> conf = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=8080\\n")
>>> web = ServiceResource(name="cwdemo", restart_on=[conf])
>>> [resource.ref for resource in in_order([web, conf])]
['FileResource/cwdemo.conf', 'ServiceResource/cwdemo']
"""

from __future__ import annotations

import heapq

from clockwork.exceptions import ProjectError
from clockwork.resources.base import Resource


def check_dependencies(resources: list[Resource], file_name: str) -> None:
    """Every named resource is declared, and no resource depends on itself through others: else a
    ``ProjectError`` naming the file, the line and the cycle."""
    known = {resource.ref: resource for resource in resources}
    for resource in resources:
        for ref in resource.dependencies():
            if ref not in known:
                raise ProjectError(f"{resource.origin or file_name}: {resource.label} requires {ref}, which "
                                   f"{file_name} does not declare")
            if ref == resource.ref:
                raise ProjectError(f"{resource.origin or file_name}: {resource.label} requires itself")
    cycle = _cycle(resources, known)
    if cycle:
        path = " → ".join(known[ref].label for ref in cycle)
        raise ProjectError(f"{known[cycle[0]].origin or file_name}: requires form a cycle: {path}")


def _cycle(resources: list[Resource], known: dict[str, Resource]) -> list[str] | None:
    """The first cycle found (its refs, the first repeated at the end), by depth-first search in declaration order."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(ref: str) -> list[str] | None:
        state[ref] = "open"
        stack.append(ref)
        for dependency in known[ref].dependencies():
            if state.get(dependency) == "open":
                return stack[stack.index(dependency):] + [dependency]
            if dependency not in state:
                found = visit(dependency)
                if found:
                    return found
        stack.pop()
        state[ref] = "done"
        return None

    for resource in resources:
        if resource.ref not in state:
            found = visit(resource.ref)
            if found:
                return found
    return None


def in_order(resources: list[Resource]) -> list[Resource]:
    """``resources`` with every one after what it depends on (among them), otherwise in declaration order.
    Dependencies on resources not in the list (placed on other hosts) are left out."""
    position = {resource.ref: index for index, resource in enumerate(resources)}
    waiting = {resource.ref: {ref for ref in resource.dependencies() if ref in position} for resource in resources}
    dependents: dict[str, list[str]] = {ref: [] for ref in position}
    for ref, needs in waiting.items():
        for need in needs:
            dependents[need].append(ref)
    ready = [position[ref] for ref, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered = []
    while ready:
        resource = resources[heapq.heappop(ready)]
        ordered.append(resource)
        for dependent in dependents[resource.ref]:
            waiting[dependent].discard(resource.ref)
            if not waiting[dependent]:
                heapq.heappush(ready, position[dependent])
    if len(ordered) != len(resources):  # a cycle: check_dependencies refuses it as the project loads
        raise ProjectError("requires form a cycle")
    return ordered
