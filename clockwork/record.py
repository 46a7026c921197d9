"""What apply, update, rollback and destroy leave behind: versions and events in the store, manifests on hosts."""

from __future__ import annotations

from typing import Any

from pyinfra.api.host import Host

from clockwork.complete.lock import resource_key
from clockwork.engine import Session
from clockwork.facts.manifest import MANIFEST_PATH, Manifest
from clockwork.operations.manifest import manifest
from clockwork.resources.base import Observed, Resource, Target
from clockwork.results import Result
from clockwork.state.base import StateStore, Version
from clockwork.state.sqlite import now

#: How events are labelled: a change someone asked for (apply, update, rollback, destroy, extend),
#: or one the reconciler made to undo drift or end a resource's life.
INTENTIONAL = "intentional"
CORRECTIVE = "corrective"


def manifest_path(target: Target) -> str:
    return target.path(MANIFEST_PATH)


def record_versions(
    store: StateStore, deployment: int, resources: list[Resource], results: list[Result], source: str
) -> dict[str, Version]:
    """A new version for each resource whose spec differs from its last one and that is in place somewhere.

    Returns every resource's current version (new or unchanged) by ``Type/name``.
    """
    versions: dict[str, Version] = {}
    at = now()
    for resource in resources:
        mine = [r for r in results if r.type == resource.type_name and r.resource == resource.name]
        placed = [r.host for r in mine if r.status == "ok"]
        latest = store.latest(resource.type_name, resource.name)
        spec = resource.redacted()
        if placed and (latest is None or latest.spec != spec or source == "rollback"):
            latest = store.record_version(deployment, resource.type_name, resource.name, spec, source, placed)
        if latest is not None:
            versions[resource_key(resource)] = latest
        if placed:
            store.mark_deployed(resource.type_name, resource.name, placed, at, resource.lifetime)
        for result in mine:
            if result.changed:
                store.record_event("changed", result.type, result.resource, result.host, result.detail, INTENTIONAL)
    return versions


def manifest_updates(
    hosts: dict[str, tuple[Host, Observed | None]], results: list[Result], resources: dict[str, Resource],
    versions: dict[str, Version], session: Session,
) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Per host name, the manifest entries that differ from what the host's manifest says."""
    updates: dict[str, dict[str, dict[str, Any] | None]] = {}
    at = now()
    for result in results:
        key = f"{result.type}/{result.resource}"
        host, observed = hosts[result.host]
        if result.status != "ok" or key not in versions or observed is None:
            continue
        current = observed[Manifest].get(manifest_path(session.target(host)), {}).get(key)
        version = versions[key]
        entry = {"type": result.type, "name": result.resource, "version": version.version,
                 "spec": resources[key].redacted(), "deployed_at": at}
        if current is None or {**current, "deployed_at": at} != entry:
            updates.setdefault(host.name, {})[key] = entry
    return updates


def write_manifests(session: Session, updates: dict[str, dict[str, dict[str, Any] | None]]) -> dict[str, str]:
    """Run the manifest operation on each connected host with updates; returns host → error for those that failed."""
    outcomes = session.operate({
        host: [("manifest", lambda target, entries=updates[host.name]: manifest(path=manifest_path(target), entries=entries))]
        for host in session.hosts if host.name in updates
    })
    return {host.name: outcome.error for (host, _key), outcome in outcomes.items() if outcome.error}
