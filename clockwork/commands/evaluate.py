"""Read-only verification: every placed resource compared with its host, in one round trip per host."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyinfra.api.host import Host

from clockwork.engine import Observed, Pipeline, Probe, Progress, Reading
from clockwork.exceptions import ProjectError
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.record import rebuild, stored_spec
from clockwork.resources.base import Resource
from clockwork.results import Evaluation, Report
from clockwork.secrets import references
from clockwork.settings import Settings, load_settings
from clockwork.state import open_store, state_exists


#: Pause between two passes of ``--retry-timeout``, in seconds.
RETRY_PAUSE = 1.0


def explain_drift(pipeline: Pipeline, readings: list[Reading]) -> None:
    """Attach a readable account (e.g. a unified diff) to each drifted reading, in one more read per host."""
    probes: dict[Host, list[Probe]] = {}
    for reading in readings:
        if reading.evaluation.status == "drift":
            probes.setdefault(reading.host, []).extend(
                reading.resource.explain_probes(pipeline.target(reading.host), reading.evaluation))
    observed = pipeline.session.observe({host: host_probes for host, host_probes in probes.items() if host_probes})
    for reading in readings:
        seen = observed.get(reading.host)
        if isinstance(seen, Observed) and reading.evaluation.status == "drift":
            try:
                reading.explanation = reading.resource.explain(pipeline.target(reading.host), seen)
            except (KeyError, RuntimeError):  # nothing was read for it: no account to give
                reading.explanation = None


@dataclass
class Applied:
    """The last applied version of a resource whose declaration changed since: the fields that changed and the
    resource as applied (with its secrets resolved, to compare with the hosts)."""

    version: int
    changed: list[str]
    resource: Resource


def last_applied(project: Project, settings: Settings) -> dict[tuple[str, str], Applied]:
    """For each resource whose declaration changed since its last apply: that version and the resource as applied."""
    if not state_exists(project.directory, settings):
        return {}
    applied = {}
    with open_store(project.directory, settings) as store:
        key = store.secret_key()
        for resource in project.resources:
            latest = store.latest(resource.type_name, resource.name)
            if latest is None:
                continue
            spec, fingerprints = stored_spec(resource, key, project.resolver)
            if (latest.spec, latest.fingerprints) == (spec, fingerprints):
                continue
            changed = [name for name in spec if spec[name] != latest.spec.get(name)]
            changed += [name for name in spec if name not in changed and references(spec[name])
                        and {ref: fingerprints[ref] for ref in references(spec[name])}
                        != {ref: latest.fingerprints.get(ref) for ref in references(spec[name])}]
            try:
                was = rebuild(latest, resource, key=key).resolved(project.resolver)
            except ProjectError:  # its secret value changed or cannot be resolved: compare with main.py only
                continue
            applied[(resource.type_name, resource.name)] = Applied(latest.version, changed, was)
    return applied


def mark_pending(pipeline: Pipeline, readings: list[Reading], applied: dict[tuple[str, str], Applied]) -> None:
    """A drifted reading whose host still matches the last apply is pending, not drift."""
    for reading in readings:
        key = (reading.resource.type_name, reading.resource.name)
        if reading.evaluation.status != "drift" or key not in applied or reading.observed is None:
            continue
        was = applied[key]
        if was.resource.evaluate(pipeline.target(reading.host), reading.observed, health=False).status != "ok":
            continue
        reading.evaluation = Evaluation(
            [reading.resource.diff(name, reading.resource.shown_value(name), was.resource.shown_value(name))
             for name in was.changed],
            f"pending: main.py changes {', '.join(was.changed)} since the last apply (version {was.version})",
            pending=True,
        )


def _evaluate_hosts(pipeline: Pipeline, placement: Placement, applied: dict[tuple[str, str], Applied],
                    resources: int, explain: bool) -> Report:
    run = pipeline.read(
        placement, extra=lambda target: [p for a in applied.values() for p in a.resource.probes(target, False)]
    )
    mark_pending(pipeline, run.readings, applied)
    if explain:
        explain_drift(pipeline, run.readings)
    return Report([reading.result() for reading in run.readings], placement.hosts, run.unreachable, resources)


def evaluate(
    project: Project,
    inventory: str | None = None,
    limit: list[str] | None = None,
    progress: Progress | None = None,
    explain: bool = False,
    retry_timeout: float = 0.0,
    settings: Settings | None = None,
) -> Report:
    """Compare every host with main.py, changing nothing.

    ``explain`` adds a unified diff to each drifted text file. ``retry_timeout``
    re-checks the hosts that are not as declared, about once a second, until they
    are or the time is up (for services that need a moment after a deploy). ``settings``
    (by default the project's) name the store that says what was last applied.

    .. code:: python

        report = evaluate(load_project(Path(".")), inventory="inventory.py")
        report.status  # 'ok'
    """
    placement = place(project, inventory, limit)
    with Pipeline.open(placement, progress) as pipeline:
        return evaluate_placed(pipeline, project, placement, settings or load_settings(project.directory), explain,
                               retry_timeout)


def evaluate_placed(pipeline: Pipeline, project: Project, placement: Placement, settings: Settings,
                    explain: bool = False, retry_timeout: float = 0.0) -> Report:
    """``evaluate`` on a pipeline the caller holds (update verifies on the connections it applied with)."""
    applied = last_applied(project, settings)
    deadline = time.monotonic() + retry_timeout
    report = _evaluate_hosts(pipeline, placement, applied, len(project.resources), explain)
    while report.status != "ok" and time.monotonic() < deadline:
        time.sleep(max(0.0, min(RETRY_PAUSE, deadline - time.monotonic())))
        failing = [host for host in placement.hosts if host not in report.unreachable
                   and any(r.host == host and r.status != "ok" for r in report.results)]
        if not failing:
            break  # only unreachable hosts are left: this session will not reach them
        again = _evaluate_hosts(pipeline, placement.only(failing), applied, len(project.resources), explain)
        results = {(r.host, r.type, r.resource): r for r in report.results}
        results.update({(r.host, r.type, r.resource): r for r in again.results})
        report = Report(list(results.values()), placement.hosts, report.unreachable, report.resources)
    return report
