"""Remove what main.py declares from the selected hosts, newest declaration first."""

from __future__ import annotations

from contextlib import nullcontext

from clockwork.engine import Action, Choose, Pipeline, Progress, Reading
from clockwork.facts.manifest import Manifest
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.record import CORRECTIVE, INTENTIONAL, manifest_path, read_manifest, write_manifests
from clockwork.results import Report, Result
from clockwork.settings import Settings, load_settings
from clockwork.state import open_store
from clockwork.state.base import Recorder


def destroy(
    project: Project, inventory: str | None = None, limit: list[str] | None = None, progress: Progress | None = None,
    settings: Settings | None = None,
) -> Report:
    """Remove every placed resource that exists; what is already gone is reported unchanged.

    Resources are removed in reverse declaration order (files before their
    directory), under the project's lock; the hosts' manifests forget them. A
    directory that still holds what Clockwork did not create is left in place
    (``left in place: not empty (…)``, not an error) unless it is declared ``purge``.

    .. code:: python

        destroy(load_project(Path(".")), inventory="@local").changed  # 2
    """
    placement = place(project, inventory, limit, resolve=False)
    with (open_store(project.directory, settings or load_settings(project.directory)) as store,
          store.writer("destroy") as deployment):
        report = remove(store, placement, progress, len(project.resources))
        store.finish(deployment, "ok" if report.status == "ok" else f"{report.count('error')} errors")
    return report



def _was_read(reading: Reading) -> bool:
    """The host was read for this resource. An error that comes with diffs is a state the resource
    will not change (a directory where a file is declared), which destroy leaves alone."""
    return reading.observed is not None and (reading.evaluation.error is None or bool(reading.evaluation.diffs))


def _present(pipeline: Pipeline) -> Choose:
    """destroy's choice: remove what exists of a resource on a host that was read for it."""
    def choose(reading: Reading) -> Action | None:
        present = (reading.observed is not None and _was_read(reading)
                   and reading.resource.is_present(pipeline.target(reading.host), reading.observed))
        return "destroy" if present else None

    return choose


def remove(
    store: Recorder, placement: Placement, progress: Progress | None, resources: int, kind: str = "destroyed",
    pipeline: Pipeline | None = None,
) -> Report:
    """Remove the placed resources (the caller holds the lock) and record it; the hosts' manifests forget them
    as the last operations of the same run.

    ``kind`` is ``destroyed`` (someone asked: an intentional event) or
    ``expired`` (the reconciler ended a resource's ``max_duration``: corrective).
    Either way the reconciler leaves the resource alone until it is applied again.
    ``pipeline`` is the caller's, when it has one open on these hosts (a reconcile pass).
    """
    with nullcontext(pipeline) if pipeline else Pipeline.open(placement, progress) as connected:
        return _remove(store, placement, connected, resources, kind)


def _remove(store: Recorder, placement: Placement, pipeline: Pipeline, resources: int, kind: str) -> Report:
    intent = INTENTIONAL if kind == "destroyed" else CORRECTIVE
    run = pipeline.run(placement, _present(pipeline), health=False,
                       extra=lambda target: [(Manifest, manifest_path(target))])
    results = []
    forget: dict[str, dict] = {}
    for step in run.steps:
        reading, outcome = step.reading, step.outcome
        if not _was_read(reading):
            results.append(reading.result())
            continue
        result = Result(reading.host.name, reading.resource.name, reading.resource.type_name, "ok",
                        "removed" if outcome else "already absent", changed=bool(outcome and outcome.changed))
        if outcome and outcome.declined:
            result.detail, result.declined = outcome.declined, True
        elif outcome and outcome.error:
            result.status, result.error, result.detail = "error", outcome.error, f"failed: {outcome.error}"
        else:
            store.forget_deployed(result.type, result.resource, [result.host], kind)
            if result.changed:
                store.record_event(kind, result.type, result.resource, result.host, "removed", intent)
            key = f"{result.type}/{result.resource}"
            listed = read_manifest(reading.observed, pipeline.target(reading.host))["entries"] if reading.observed else {}
            if key in listed:
                forget.setdefault(reading.host.name, {})[key] = None
        results.append(result)
    unreachable = run.unreachable | pipeline.lost
    if forget:
        write_manifests(pipeline, forget)
    return Report(results, placement.hosts, unreachable, resources)
