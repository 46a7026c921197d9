"""``clockwork update``: evolve what is deployed from a partial or vague ``update.py``, with a diff, confirmation
and automatic rollback.

.. code:: python

    plan = plan_update(Path("."), "update.py", inventory=None, settings=settings, model=None)
    [change.fields for change in plan.changes]  # [['env_vars']]
    outcome = run_update(plan, progress=None, keep_failed=False)
"""

from __future__ import annotations

from datetime import datetime
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clockwork.commands.apply import run_apply
from clockwork.complete import _model_client, complete_project
from clockwork.commands.destroy import remove
from clockwork.engine import Pipeline, Progress
from clockwork.commands.evaluate import evaluate_placed
from clockwork.exceptions import ProjectError
from clockwork.facts.manifest import Manifest
from clockwork.patch import key_changes, merge_fields, patching
from clockwork.placement import Placement, place
from clockwork.project import Project, load_resources
from clockwork.record import manifest_path, read_manifest, rebuild
from clockwork.resources.base import Resource
from clockwork.results import Report
from clockwork.settings import Settings, load_settings
from clockwork.state import Version, open_store, state_exists

PROPOSAL_PROMPT = (
    "The resource below is deployed with `current`. Its description is now `new_description`. Propose the "
    "field changes that make the deployment match the new description, keeping everything else. You may add "
    "health checks (`checks`) that verify what changed, e.g. an HttpCheck for a new endpoint. Answer with a "
    "JSON object holding only the fields to change."
)


@dataclass
class Change:
    """One resource of update.py: where its current spec came from, and the merged result."""

    resource: Resource
    previous: Resource | None
    origin: str
    fields: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def label(self) -> str:
        return self.resource.label

    def field_diff(self, name: str) -> tuple[Any, Any]:
        """(before, after) of a field as shown to people: hashed fields as a hash, secrets redacted."""
        return (self.previous.shown_value(name) if self.previous else None), self.resource.shown_value(name)

    def diffs(self) -> list[tuple[str, Any, Any]]:
        """Each changed field as shown to people, a mapping key by key: ``("env_vars.MODE", "v1", "v2")``."""
        return [row for name in self.fields for row in key_changes(name, *self.field_diff(name))]


@dataclass
class UpdatePlan:
    """What an update would do, and the pipeline it reads and writes the hosts with: one connection per host
    for the whole update (manifests, apply, verification, rollback), opened at the first read. Close it."""

    project: Project
    placement: Placement
    changes: list[Change]
    pipeline: Pipeline
    settings: Settings

    def close(self) -> None:
        self.pipeline.close()


def _from_manifests(pipeline: Pipeline, hosts: Placement) -> dict:
    """The newest manifest entry per ``Type/name`` over every host, with the hosts that have it."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    manifests = replace(hosts, resources={host: [] for host in hosts.hosts})  # the manifests, nothing else
    run = pipeline.read(manifests, health=False, extra=lambda target: [(Manifest, manifest_path(target))])
    for host, seen in run.observed.items():
        if isinstance(seen, str):
            continue
        for key, entry in read_manifest(seen, pipeline.target(host))["entries"].items():
            best = found.get(key)
            if best is None or entry.get("version", 0) > best[0].get("version", 0):
                found[key] = (entry, [host.name])
            elif entry.get("version") == best[0].get("version"):
                best[1].append(host.name)
    return found


def _deployed_at(entry: dict[str, Any]) -> float:
    """When a manifest entry was deployed (epoch seconds; 0 when the entry does not say)."""
    try:
        return datetime.fromisoformat(str(entry.get("deployed_at", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _propose(resource: Resource, current: dict[str, Any], settings: Settings, model: str) -> dict[str, Any]:
    """The model's field changes for a new description (the kind's identity fields excluded), validated."""
    schema = type(resource).model_json_schema()
    properties = {name: prop for name, prop in schema["properties"].items() if name not in resource.identity_fields}
    proposal_schema = {"type": "object", "properties": properties, "additionalProperties": False,
                       "$defs": schema.get("$defs", {})}
    request = {"instructions": PROPOSAL_PROMPT, "current": resource.shown(), "new_description": resource.description,
               "previous_description": current.get("description", "")}
    return _model_client(settings, model).complete(
        request, proposal_schema, resource.label, check=lambda values: type(resource)(**{**resource.model_dump(), **values})
    )


def plan_update(
    directory: Path, file_name: str, inventory: str | None, settings: Settings, model: str | None,
    progress: Progress | None = None,
) -> UpdatePlan:
    """Merge each resource of ``file_name`` with what is deployed, without changing anything.

    The inventory is loaded once; the plan's pipeline connects when it first reads
    the hosts (here only when the deployed spec must come from their manifests).
    """
    file = directory / file_name
    if not file.is_file():
        raise ProjectError(f"no {file_name} in {directory} (write the changes there or pass --file)")
    with patching():  # a mapping key set to None there is removed, not a value
        partial = load_resources(file)
    hosts = place(Project(directory, file, partial), inventory, resolve=False)
    pipeline = Pipeline.open(hosts, progress)
    try:
        return _plan(directory, file, partial, hosts, pipeline, settings, model)
    except BaseException:
        pipeline.close()
        raise


def _plan(directory: Path, file: Path, partial: list[Resource], hosts: Placement, pipeline: Pipeline,
          settings: Settings, model: str | None) -> UpdatePlan:
    model = model or settings.model
    main = {(r.type_name, r.name): r for r in load_resources(directory / "main.py")} if (directory / "main.py").is_file() else {}
    stored: dict[str, tuple[Version, str]] = {}
    secret_key: bytes | None = None
    if state_exists(directory, settings):
        with open_store(directory, settings) as store:
            secret_key = store.secret_key()
            for resource in partial:
                latest = store.latest(resource.type_name, resource.name)
                if latest is not None:
                    stored[f"{resource.type_name}/{resource.name}"] = (latest, f"version {latest.version}")
    missing = [r for r in partial if f"{r.type_name}/{r.name}" not in stored]
    if missing:
        for key, (entry, found_on) in _from_manifests(pipeline, hosts).items():
            version = Version(entry["type"], entry["name"], entry.get("version", 0), _deployed_at(entry),
                              "manifest", entry["spec"], found_on, entry.get("fingerprints", {}))
            stored.setdefault(key, (version, f"version {version.version} on {', '.join(sorted(found_on))}"))
    changes = []
    for resource in partial:
        name = f"{resource.type_name}/{resource.name}"
        given = resource.patch()
        if name not in stored:
            changes.append(Change(resource, None, "new"))
            continue
        recorded, origin = stored[name]
        previous = rebuild(recorded, resource, main.get((resource.type_name, resource.name)),
                           key=secret_key if recorded.source != "manifest" else None)
        merged = type(resource)(**merge_fields(previous.model_dump(), given))
        note = None
        if "description" in given and given["description"] != previous.description:
            if model:
                proposal = {k: v for k, v in _propose(merged, recorded.spec, settings, model).items() if k not in given}
                merged = type(resource)(**merge_fields(merged.model_dump(), proposal))
                note = f"the model proposed changes to {', '.join(sorted(proposal)) or 'nothing'}"
            else:
                note = "description recorded, not interpreted (no model configured)"
        merged._origin = resource.origin
        before, after = previous.spec(), merged.spec()
        changes.append(Change(merged, previous, origin, [field for field in after if after[field] != before.get(field)],
                              note))
    project = Project(directory, file, [change.resource for change in changes])
    complete_project(project, settings, model=model, prune=False)
    for change, completed in zip(changes, project.resources, strict=True):
        change.resource = completed
    return UpdatePlan(project, place(project, hosts.source, loaded=hosts.inventory), changes, pipeline, settings)


@dataclass
class UpdateOutcome:
    """What an update did: the apply, the evaluation after it (``None``: nothing to change), and the rollback
    when that evaluation failed."""

    applied: Report
    verified: Report | None
    rolled_back: Report | None = None


def update(
    directory: Path, file_name: str = "update.py", inventory: str | None = None, settings: Settings | None = None,
    model: str | None = None, progress: Progress | None = None, keep_failed: bool = False,
) -> UpdateOutcome:
    """Merge ``file_name`` with what is deployed and apply it, without asking (``plan_update`` then ``run_update``,
    which the CLI runs with the plan shown and a question in between). ``settings`` default to the project's.

    .. code:: python

        outcome = update(Path("."), inventory="inventory.py")
        outcome.verified.status  # 'ok'
    """
    plan = plan_update(directory, file_name, inventory, settings or load_settings(directory), model, progress)
    try:
        return run_update(plan, progress, keep_failed)
    finally:
        plan.close()


def run_update(plan: UpdatePlan, progress: Progress | None, keep_failed: bool) -> UpdateOutcome:
    """Apply the merged resources (recorded with source ``update``), evaluate them with their health checks,
    and roll back what changed when that evaluation fails (unless ``keep_failed``)."""
    changed = [change for change in plan.changes if change.fields or change.previous is None]
    if not changed:
        return UpdateOutcome(Report([], plan.placement.hosts), None)
    pipeline, inventory, settings = plan.pipeline, plan.placement.inventory, plan.settings

    def placed(resources: list[Resource]) -> tuple[Project, Placement]:
        project = Project(plan.project.directory, plan.project.file, resources)
        return project, place(project, plan.placement.source, loaded=inventory)

    project, placement = placed([change.resource for change in changed])
    applied = run_apply(project, placement, "update", settings, progress, pipeline)
    verified = evaluate_placed(pipeline, project, placement, settings)
    if verified.status == "ok" or keep_failed:
        return UpdateOutcome(applied, verified)
    restored = [change.previous for change in changed if change.previous is not None]
    created = [change.resource for change in changed if change.previous is None]
    rolled = None
    if restored:
        rolled = run_apply(*placed(restored), "rollback", settings, progress, pipeline)
    if created:
        gone, where = placed(created)
        with open_store(gone.directory, settings) as store, store.writer("destroy") as deployment:
            removed = remove(store, where, progress, len(created), pipeline=pipeline)
            store.finish(deployment, "ok" if removed.status == "ok" else f"{removed.count('error')} errors")
        rolled = removed if rolled is None else Report(rolled.results + removed.results, rolled.hosts,
                                                       rolled.unreachable | removed.unreachable, rolled.resources)
    return UpdateOutcome(applied, verified, rolled)
