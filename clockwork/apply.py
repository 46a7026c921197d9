"""Make hosts match main.py: evaluate first, then run operations only where a host differs."""

from __future__ import annotations

from clockwork.engine import Progress, Session
from clockwork.evaluate import Reading, read_fleet
from clockwork.placement import place
from clockwork.project import Project
from clockwork.results import Report, Result


def _change_summary(reading: Reading) -> str:
    fields = [diff.field for diff in reading.evaluation.diffs]
    if fields == ["present"]:
        return "created" if reading.evaluation.diffs[0].expected else "removed"
    return "updated " + ", ".join(dict.fromkeys(field.split(".")[0] for field in fields))


def apply(
    project: Project,
    inventory: str | None = None,
    limit: list[str] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Apply main.py to the selected hosts; with ``dry_run``, only say what would change.

    Only host × resource pairs that differ get an operation, so a second apply
    on an unchanged fleet costs one read per host and changes nothing.

    >>> report = apply(load_project(Path(".")), inventory="@local")
    >>> report.changed
    2
    """
    placement = place(project, inventory, limit)
    with Session(placement.inventory, project.directory, placement.hosts, progress) as session:
        readings, unreachable = read_fleet(session, placement, health=False)
        drifted = [reading for reading in readings if reading.evaluation.status == "drift"]
        outcomes = {} if dry_run else session.operate({
            host: [(id(reading), reading.resource.apply) for reading in drifted if reading.host is host]
            for host in dict.fromkeys(reading.host for reading in drifted)
        })
    results = []
    for reading in readings:
        if reading.evaluation.status != "drift":
            results.append(reading.result(changed=False if reading.evaluation.status == "ok" else None))
        elif dry_run:
            results.append(reading.result(detail=f"would be {_change_summary(reading)}: {reading.evaluation.detail}"))
        else:
            outcome = outcomes[(reading.host, id(reading))]
            result = reading.result(detail=_change_summary(reading), changed=outcome.changed)
            result.status, result.error = ("error", outcome.error) if outcome.error else ("ok", None)
            if outcome.error:
                result.detail = f"failed: {outcome.error}"
            results.append(result)
    return Report(results, placement.hosts, unreachable, len(project.resources))
