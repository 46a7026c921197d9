"""What apply, update, rollback and destroy leave behind (versions and events in the store, manifests on hosts),
and the resource a recorded version describes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from clockwork.complete.lock import resource_key
from clockwork.engine import HostOperation, Pipeline, Run
from clockwork.facts.manifest import MANIFEST_PATH, Manifest, ManifestFile, no_manifest
from clockwork.operations.manifest import manifest
from clockwork.exceptions import ProjectError
from clockwork.resources import RESOURCE_TYPES
from clockwork.resources.base import Resource
from clockwork.engine.types import Observed, Target
from clockwork.results import Result
from clockwork.secrets import REDACTED, Resolver, held, held_digest, matches_held, protect, shows_secrets, transform
from clockwork.state.base import StateStore, Version

#: Where a project's manifest lives on ``@local`` (relative to the project), so projects do not share one.
PROJECT_MANIFEST = ".clockwork/manifest.json"

#: How events are labelled: a change someone asked for (apply, update, rollback, destroy, extend),
#: or one the reconciler made to undo drift or end a resource's life.
INTENTIONAL = "intentional"
CORRECTIVE = "corrective"


#: Strings longer than this are kept in host manifests only as their sha1 (``⟦sha1:…⟧``).
MANIFEST_VALUE_SIZE = 256


def manifest_path(target: Target) -> str:
    """The manifest of the login user (``~/.clockwork/manifest.json``); on ``@local`` the project's own."""
    if target.local and target.base_dir:
        return target.path(PROJECT_MANIFEST)
    return target.path(MANIFEST_PATH)


def manifest_spec(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as a host manifest keeps it: no content and no secret values.

    Long strings, and strings that hold something masking would hide (``password = …``,
    a URL's password), are kept as their sha1 (``⟦sha1:…⟧``): enough to see that a
    field left out of an update keeps its deployed value.
    """

    def keep(text: str, _where: str) -> str:
        if held_digest(text) or (len(text) <= MANIFEST_VALUE_SIZE and not shows_secrets(text)):
            return text
        return held("sha1", hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest())

    return transform(stored, keep)


def stored_spec(resource: Resource, key: bytes, resolver: Resolver) -> tuple[dict[str, Any], dict[str, str]]:
    """What the store keeps of a resource: its exact spec (references as references, plain values under
    secret-looking names as keyed hashes) and a keyed hash of each reference's current value."""
    spec = resource.spec()
    return protect(spec, key), resolver.fingerprints(spec, key, resource.label)


def record_versions(
    store: StateStore, deployment: int, resources: list[Resource], results: list[Result], source: str,
    resolver: Resolver,
) -> tuple[dict[str, Version], dict[str, Version]]:
    """A new version for each resource whose spec differs from its last one and that is in place somewhere
    after ``results``. An apply records them before it runs, from the results it expects (each chosen
    operation succeeding), so that no host's manifest, written in the same command as the changes, names a
    version the store does not hold; ``settle_versions`` says after where they really are.

    Returns every resource's current version (new or unchanged) by ``Type/name``, and the new ones.
    """
    versions: dict[str, Version] = {}
    new: dict[str, Version] = {}
    key = store.secret_key()
    for resource in resources:
        placed = [r.host for r in results
                  if (r.type, r.resource) == (resource.type_name, resource.name) and r.status == "ok"]
        latest = store.latest(resource.type_name, resource.name)
        spec, fingerprints = stored_spec(resource, key, resolver)
        if placed and (latest is None or (latest.spec, latest.fingerprints) != (spec, fingerprints)
                       or source == "rollback"):
            latest = new[resource_key(resource)] = store.record_version(
                deployment, resource.type_name, resource.name, spec, source, placed, fingerprints)
        if latest is not None:
            versions[resource_key(resource)] = latest
    return versions, new


def settle_versions(store: StateStore, resources: list[Resource], results: list[Result],
                    versions: dict[str, Version], new: dict[str, Version]) -> dict[str, Version]:
    """After the run: each new version holds the hosts where it really is in place (in place nowhere, it is
    removed), what is deployed where is recorded, and an event for each change. Returns the current versions."""
    versions = dict(versions)
    at = time.time()
    for resource in resources:
        key = resource_key(resource)
        mine = [r for r in results if (r.type, r.resource) == (resource.type_name, resource.name)]
        placed = [r.host for r in mine if r.status == "ok"]
        if key in new and new[key].hosts != placed:
            settled = store.settle_version(new[key], placed)
            if settled is None:
                versions.pop(key)
            else:
                versions[key] = settled
        if placed:
            store.mark_deployed(resource.type_name, resource.name, placed, at, resource.lifetime)
        for result in mine:
            if result.changed:
                store.record_event("changed", result.type, result.resource, result.host, result.detail, INTENTIONAL)
    return versions


def read_manifest(observed: Observed, target: Target) -> ManifestFile:
    """The host's manifest as the ``Manifest`` probe read it (no file: no entries)."""
    return observed[Manifest].get(manifest_path(target)) or no_manifest()


def corrupt_manifest_warning(target: Target) -> str:
    """What a host with a manifest that is not one is told (the operation keeps the file aside)."""
    return (f"[{target.host}] {manifest_path(target)} is not a Clockwork manifest (not JSON or not its shape): "
            "kept aside as manifest.json.corrupt-<time>, a new one is written")


def manifest_updates(
    pipeline: Pipeline, run: Run, results: list[Result], versions: dict[str, Version], at: str,
) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Per host name, the manifest entries that differ from what the host's manifest says (as the run read it),
    deployed ``at``."""
    updates: dict[str, dict[str, dict[str, Any] | None]] = {}
    hosts = {host.name: (host, observed) for host, observed in run.observed.items()}
    for result in results:
        key = f"{result.type}/{result.resource}"
        host, observed = hosts.get(result.host, (None, None))
        if result.status != "ok" or key not in versions or not isinstance(observed, Observed) or host is None:
            continue
        current = read_manifest(observed, pipeline.target(host))["entries"].get(key)
        version = versions[key]
        entry = {"type": result.type, "name": result.resource, "version": version.version,
                 "spec": manifest_spec(version.spec), "fingerprints": version.fingerprints, "deployed_at": at}
        if current is None or {**current, "deployed_at": at} != entry:
            updates.setdefault(host.name, {})[key] = entry
    return updates


def manifests_left(pipeline: Pipeline, run: Run, updates: dict[str, dict[str, dict[str, Any] | None]],
                   planned: dict[str, dict[str, dict[str, Any] | None]]) -> dict[str, dict[str, dict[str, Any] | None]]:
    """What is still to be written of the manifests after a run that wrote ``planned`` on the hosts in
    ``run.recorded`` (in the same command as their changes): nothing where that is what ``updates`` says; where
    it is not, ``updates`` with every other planned entry put back as the run read it; elsewhere ``updates``."""
    left: dict[str, dict[str, dict[str, Any] | None]] = {}
    hosts = {host.name: (host, observed) for host, observed in run.observed.items()}
    for name in set(updates) | set(planned):
        wanted = updates.get(name, {})
        if name not in run.recorded:
            if wanted:
                left[name] = wanted
            continue
        if planned.get(name, {}) == wanted:
            continue
        host, observed = hosts[name]
        assert isinstance(observed, Observed)  # a host whose manifest was written was read
        entries = read_manifest(observed, pipeline.target(host))["entries"]
        left[name] = {**{key: entries.get(key) for key in planned.get(name, {})}, **wanted}
    return left


def manifest_writer(entries: dict[str, dict[str, Any] | None]) -> HostOperation:
    """The manifest operation that sets these entries (``None``: removes one) in a host's manifest."""
    return lambda target: manifest(path=manifest_path(target), entries=entries)


def write_manifests(pipeline: Pipeline, updates: dict[str, dict[str, dict[str, Any] | None]]) -> dict[str, str]:
    """The pipeline's record step: the manifest operation on each connected host with updates, as the last
    operation of the run; returns host → error for those that failed."""
    return pipeline.record({host: manifest_writer(entries) for host, entries in updates.items()})


def restore(version: Version, *declared: Resource | None, key: bytes | None = None) -> dict[str, Any]:
    """A recorded spec, with the values kept only as a keyed hash taken back from the declarations at hand.

    A plain value under a secret-looking name is never stored (a ``Secret``
    reference is, and is resolved when used): it comes from the first declaration
    (update.py, main.py) of the same resource that has it, and must be the value
    that was applied (its keyed hash is checked when ``key`` is given).
    """
    present: dict[str, Any] = {}
    for resource in reversed([resource for resource in declared if resource is not None]):
        present.update(resource.spec(include=resource.model_fields_set))

    def fill(recorded: Any, now: Any, where: str) -> Any:
        digest = held_digest(recorded)
        if recorded == REDACTED or (digest is not None and digest[0] == "hmac"):
            if not isinstance(now, str) or now == REDACTED or held_digest(now):
                raise ProjectError(
                    f"{version.type} {version.resource!r}: {where} is a secret value, which is never stored: "
                    "declare it in main.py (or update.py), or better as a Secret('env:NAME') reference"
                )
            if not matches_held(recorded, now, key):
                raise ProjectError(
                    f"{version.type} {version.resource!r}: {where} in main.py is not the value applied in version "
                    f"{version.version}: apply main.py first, or declare it as a Secret('env:NAME') reference"
                )
            return now
        if isinstance(recorded, dict):
            return {name: fill(value, now.get(name) if isinstance(now, dict) else None, f"{where}.{name}".lstrip("."))
                    for name, value in recorded.items()}
        return recorded

    return fill(version.spec, present, "")


def rebuild(version: Version, *declared: Resource | None, key: bytes | None = None) -> Resource:
    """The resource exactly as it was at ``version`` (secret values as described in ``restore``)."""
    cls = RESOURCE_TYPES.get(version.type)
    if cls is None:
        raise ProjectError(f"{version.type} {version.resource!r}: unknown resource type in the state store")
    return cls(**restore(version, *declared, key=key))
