"""Make hosts match main.py: evaluate first, then run operations only where a host differs."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from clockwork.engine import Action, HostOperation, Observed, Pipeline, Probe, Progress, Reading, Run, Step, Target
from clockwork.facts.manifest import Manifest
from clockwork.placement import Placement, place
from clockwork.project import Project
from clockwork.durations import stamp
from clockwork.record import (
    corrupt_manifest_warning,
    manifest_path,
    manifest_updates,
    manifest_writer,
    manifests_left,
    read_manifest,
    record_versions,
    settle_versions,
    stored_spec,
    write_manifests,
)
from clockwork.resources.base import Resource
from clockwork.secrets import Resolver, references
from clockwork.settings import Settings, load_settings
from clockwork.results import Report, Result
from clockwork.state import Version, open_store, state_exists


def _results(run: Run, assume_success: bool = False) -> list[Result]:
    """A result per step; a drifted step without an operation (plan) says what apply would do, or, with
    ``assume_success``, what it will be once its chosen operation succeeds."""
    results = []
    for step in run.steps:
        reading, outcome = step.reading, step.outcome
        if reading.evaluation.status != "drift":
            results.append(_handled(step, reading.result(changed=False if reading.evaluation.status == "ok" else None)))
            continue
        summary = reading.resource.change_summary(reading.evaluation.diffs)
        if assume_success and step.action is not None:
            result = reading.result(detail=summary, changed=True)
            result.status = "ok"
            results.append(result)
        elif outcome is None:
            results.append(reading.result(detail=f"would be {summary}: {reading.evaluation.detail}"))
        else:
            result = reading.result(detail=summary, changed=outcome.changed)
            result.status, result.error = ("error", outcome.error) if outcome.error else ("ok", None)
            if outcome.error:
                result.detail = outcome.error if outcome.skipped else f"failed: {outcome.error}"
            results.append(_handled(step, result))
    return results


def _handled(step: Step, result: Result) -> Result:
    """``result`` with what a handler did after what the resource names changed (``restarted: …``)."""
    if step.handler is None or step.handler_outcome is None:
        return result
    because = ", ".join(ref.partition("/")[2] for ref in step.handler.because)  # Type/name: the names
    done = step.handler.done if result.changed else f"{step.handler.done}: {because} changed"
    if step.handler_outcome.error:
        result.status, result.error = "error", step.handler_outcome.error
        done = f"{step.handler.done} failed: {step.handler_outcome.error}"
    result.detail = f"{result.detail}, {done}" if result.changed else done
    result.changed = result.changed or step.handler_outcome.changed
    return result


def _drifted(reading: Reading) -> Action | None:
    """apply's choice: operate only where the host differs."""
    return "apply" if reading.evaluation.status == "drift" else None


def _manifest_probe(target: Target) -> list[Probe]:
    return [(Manifest, manifest_path(target))]


def run_apply(project: Project, placement: Placement, source: str, settings: Settings, progress: Progress | None,
              pipeline: Pipeline | None = None) -> Report:
    """Apply under the project's lock, then record versions and events and update the hosts' manifests.

    ``pipeline`` is the caller's when it has one open on these hosts (update: one connection per host).
    """
    with (open_store(project.directory, settings) as store, store.writer(source) as deployment,
          nullcontext(pipeline) if pipeline else Pipeline.open(placement, progress) as pipeline):
        at = stamp(time.time())
        planned: dict[str, dict[str, dict[str, Any] | None]] = {}
        recorded: dict[str, dict[str, Version]] = {}

        def record(run: Run) -> dict[str, HostOperation]:  # written with the changes, where they all succeed
            assumed = _results(run, assume_success=True)
            versions, new = record_versions(store, deployment, project.resources, assumed, source, project.resolver)
            recorded.update(versions=versions, new=new)
            planned.update(manifest_updates(pipeline, run, assumed, versions, at))
            return {host: manifest_writer(entries) for host, entries in planned.items()}

        run = pipeline.run(placement, _drifted, health=False, extra=_manifest_probe, record=record)
        results = _results(run)
        versions = settle_versions(store, project.resources, results, recorded["versions"], recorded["new"])
        read = {step.reading.host for step in run.steps}
        warnings = [corrupt_manifest_warning(pipeline.target(host)) for host, observed in run.observed.items()
                    if host in read and isinstance(observed, Observed)
                    and read_manifest(observed, pipeline.target(host))["corrupt"]]
        unreachable = run.unreachable | pipeline.lost
        updates = manifests_left(pipeline, run, manifest_updates(pipeline, run, results, versions, at), planned)
        if updates:  # the last operations of the same run, on the same connections
            failed = write_manifests(pipeline, updates)
            for result in results:
                if result.host in failed and result.status == "ok":
                    result.status, result.error = "error", f"manifest not written: {failed[result.host]}"
        report = Report(results, placement.hosts, unreachable, len(project.resources), warnings)
        store.finish(deployment, "ok" if report.status == "ok" else f"{report.count('error')} errors")
    return report


def apply(
    project: Project,
    inventory: str | None = None,
    limit: list[str] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> Report:
    """Apply main.py to the selected hosts; with ``dry_run``, only say what would change.

    Only host × resource pairs that differ get an operation, so a second apply
    on an unchanged fleet costs one read per host and changes nothing. A real
    apply holds the project's lock and records what it did (see ``run_apply``) in the
    store that ``settings`` (by default the project's) name.

    .. code:: python

        report = apply(load_project(Path(".")), inventory="@local")
        report.changed  # 2
    """
    placement = place(project, inventory, limit)
    if not dry_run:
        return run_apply(project, placement, "apply", settings or load_settings(project.directory), progress)
    with Pipeline.open(placement, progress) as pipeline:
        run = pipeline.read(placement, health=False)
    return Report(_results(run), placement.hosts, run.unreachable, len(project.resources))


@dataclass
class Revert:
    """A resource that ``clockwork update`` deployed last and that main.py declares otherwise.

    ``fields`` are the top-level fields that apply would put back to main.py's values.
    """

    resource: Resource
    version: Version
    fields: list[str]


def reverted_updates(project: Project, settings: Settings) -> list[Revert]:
    """The resources whose apply would silently undo the version ``clockwork update`` deployed.

    .. code:: python

        [revert.resource.label for revert in reverted_updates(load_project(Path(".")), settings)]  # ["FileResource 'app.conf'"]
    """
    if not state_exists(project.directory, settings):
        return []
    reverts = []
    with open_store(project.directory, settings) as store:
        key = store.secret_key()
        for resource in project.resources:
            latest = store.latest(resource.type_name, resource.name)
            if latest is not None and latest.source == "update":
                fields = differing_fields(latest, resource, key, project.resolver)
                if fields:
                    reverts.append(Revert(resource, latest, fields))
    return reverts


def differing_fields(version: Version, resource: Resource, key: bytes, resolver: Resolver) -> list[str]:
    """The fields where ``resource`` (as declared) differs from ``version`` (as recorded), in the spec's order;
    a secret reference whose value changed counts as a change of its field."""
    declared, fingerprints = stored_spec(resource, key, resolver)
    changed = [name for name in dict.fromkeys([*version.spec, *declared]) if version.spec.get(name) != declared.get(name)]
    rotated = {ref for ref, digest in fingerprints.items() if version.fingerprints.get(ref) != digest}
    return changed + [name for name in declared if name not in changed and rotated & set(references(declared[name]))]
