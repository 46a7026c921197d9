"""Remove what main.py declares from the selected hosts, newest declaration first."""

from __future__ import annotations

from clockwork.engine import Progress, Session
from clockwork.evaluate import read_fleet
from clockwork.placement import place
from clockwork.project import Project
from clockwork.results import Report, Result


def destroy(
    project: Project, inventory: str | None = None, limit: list[str] | None = None, progress: Progress | None = None
) -> Report:
    """Remove every placed resource that exists; what is already gone is reported unchanged.

    Resources are removed in reverse declaration order (files before their directory).

    >>> destroy(load_project(Path(".")), inventory="@local").changed
    2
    """
    placement = place(project, inventory, limit)
    with Session(placement.inventory, project.directory, placement.hosts, progress) as session:
        readings, unreachable = read_fleet(session, placement, health=False)
        present = [
            reading for reading in reversed(readings)
            if reading.observed is not None and reading.evaluation.error is None
            and reading.resource.is_present(session.target(reading.host), reading.observed)
        ]
        outcomes = session.operate({
            host: [(id(reading), reading.resource.destroy) for reading in present if reading.host is host]
            for host in dict.fromkeys(reading.host for reading in present)
        })
    results = []
    for reading in readings:
        outcome = outcomes.get((reading.host, id(reading)))
        if reading.evaluation.error is not None:
            results.append(reading.result())
            continue
        result = Result(reading.host.name, reading.resource.name, reading.resource.type_name, "ok",
                        "removed" if outcome else "already absent", changed=bool(outcome and outcome.changed))
        if outcome and outcome.error:
            result.status, result.error, result.detail = "error", outcome.error, f"failed: {outcome.error}"
        results.append(result)
    return Report(results, placement.hosts, unreachable, len(project.resources))
