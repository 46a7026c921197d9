"""``clockwork.lock``: completed values pinned per resource and hash of its given fields."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clockwork.exceptions import ProjectError
from clockwork.resources.base import Resource

LOCK_FILE = "clockwork.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class Pinned:
    """One completed field: its value, which provider gave it (and model), and when."""

    value: Any
    provider: str
    model: str | None
    completed_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "provider": self.provider, "model": self.model, "completed_at": self.completed_at}


def resource_key(resource: Resource) -> str:
    """``DockerServiceResource/web``: how the lock names a resource."""
    return f"{resource.type_name}/{resource.name}"


def given_hash(resource: Resource) -> str:
    """A hash of the fields the user gave: a change to any of them makes the entry stale."""
    given = resource.model_dump(mode="json", include=resource.model_fields_set - set(resource.missing_fields()))
    return "sha256:" + hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()


class Lock:
    """The lock file of a project: read once, updated in memory, written in one atomic step.

    .. code:: python

        lock = Lock.read(Path("."))
        lock.get(resource)            # {"image": Pinned(...)} or None when stale/missing
    """

    def __init__(self, path: Path, entries: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def read(cls, project_dir: Path) -> Lock:
        path = project_dir / LOCK_FILE
        if not path.is_file():
            return cls(path, {})
        try:
            document = json.loads(path.read_text())
            entries = document["resources"]
            if document.get("version") != LOCK_VERSION or not isinstance(entries, dict):
                raise ValueError(f"unknown lock version {document.get('version')!r}")
        except (ValueError, KeyError, TypeError) as error:
            raise ProjectError(f"{LOCK_FILE}: cannot be read ({error}); fix it or delete it to complete again") from None
        return cls(path, entries)

    def get(self, resource: Resource) -> dict[str, Pinned] | None:
        """The pinned values for ``resource`` if its given fields are unchanged since they were pinned."""
        entry = self.entries.get(resource_key(resource))
        if not entry or entry.get("given_hash") != given_hash(resource):
            return None
        try:
            return {field: Pinned(**pinned) for field, pinned in entry["fields"].items()}
        except (KeyError, TypeError):
            return None

    def put(self, resource: Resource, values: dict[str, Pinned]) -> None:
        self.entries[resource_key(resource)] = {
            "given_hash": given_hash(resource),
            "fields": {field: pinned.as_dict() for field, pinned in sorted(values.items())},
        }

    def keep_only(self, resources: list[Resource]) -> bool:
        """Forget entries of resources that main.py no longer declares; whether any was forgotten."""
        wanted = {resource_key(resource) for resource in resources}
        kept = {key: entry for key, entry in self.entries.items() if key in wanted}
        forgotten = len(kept) != len(self.entries)
        self.entries = kept
        return forgotten

    def write(self) -> None:
        """Write sorted, indented JSON (diff-friendly) through a temporary file."""
        document = {"version": LOCK_VERSION, "resources": dict(sorted(self.entries.items()))}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        os.replace(temporary, self.path)
