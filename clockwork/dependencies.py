"""Order between resources: ``requires=[...]`` (and a service's ``restart_on``/``reload_on``), checked once as the
project loads; the engine's pipeline applies them in that order (``clockwork/engine/pipeline.py``).

>>> from clockwork.resources import FileResource, ServiceResource
>>> conf = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=8080\\n")
>>> web = ServiceResource(name="cwdemo", restart_on=[conf], requires=["FileResource/cwdemo.conf"])
>>> check_dependencies([web, conf], "main.py")
>>> try:
...     check_dependencies([web], "main.py")
... except ProjectError as error:
...     print(str(error).split(": ", 1)[1])  # after where web was declared
ServiceResource 'cwdemo' requires FileResource/cwdemo.conf, which main.py does not declare
"""

from __future__ import annotations

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
