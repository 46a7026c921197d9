"""Read-only verification: every placed resource compared with its host, in one round trip per host."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api.host import Host

from clockwork.engine import Progress, Session
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.resources.base import Observed, Resource
from clockwork.results import Evaluation, Report, Result


@dataclass
class Reading:
    """One host × resource as read from the host."""

    host: Host
    resource: Resource
    evaluation: Evaluation
    observed: Observed | None = None

    def result(self, detail: str | None = None, changed: bool | None = None) -> Result:
        return Result(
            host=self.host.name, resource=self.resource.name, type=self.resource.type_name,
            status=self.evaluation.status, detail=self.evaluation.detail if detail is None else detail,
            diffs=self.evaluation.diffs, error=self.evaluation.error, changed=changed,
        )


def read_fleet(session: Session, placement: Placement, health: bool = True) -> tuple[list[Reading], dict[str, str]]:
    """Connect, read every selected host in parallel, and evaluate each host × resource.

    Returns the readings in inventory then declaration order, and the
    unreachable hosts with their error (their resources are error readings).
    """
    unreachable = session.connect()
    probes = {
        host: [probe for resource in placement.resources[host.name] for probe in resource.probes(session.target(host), health)]
        for host in session.hosts
    }
    observed: dict[Host, Observed | str] = dict(session.observe(probes))
    readings = []
    for name in placement.hosts:
        host = placement.inventory.get_host(name)
        seen = f"host unreachable: {unreachable[name]}" if name in unreachable else observed[host]
        for resource in placement.resources[name]:
            if isinstance(seen, str):
                readings.append(Reading(host, resource, Evaluation(error=seen, detail=seen)))
            else:
                readings.append(Reading(host, resource, resource.evaluate(session.target(host), seen, health), seen))
    return readings, unreachable


def evaluate(
    project: Project, inventory: str | None = None, limit: list[str] | None = None, progress: Progress | None = None
) -> Report:
    """Compare every host with main.py, changing nothing.

    >>> report = evaluate(load_project(Path(".")), inventory="inventory.py")
    >>> report.status
    'ok'
    """
    placement = place(project, inventory, limit)
    with Session(placement.inventory, project.directory, placement.hosts, progress) as session:
        readings, unreachable = read_fleet(session, placement)
    return Report([reading.result() for reading in readings], placement.hosts, unreachable, len(project.resources))
