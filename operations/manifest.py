"""The host's Clockwork manifest, kept up to date after each change."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from clockwork.facts.manifest import Manifest, no_manifest
from clockwork.operations.files import write_commands


@operation()
def manifest(path: str, entries: dict[str, dict[str, Any] | None]):
    """
    Merge ``entries`` into the manifest at ``path`` (an entry of ``None`` removes that resource).

    + path: the manifest file (relative paths are relative to the login directory)
    + entries: ``Type/name`` → ``{"type", "name", "version", "spec", "fingerprints", "deployed_at"}``
      (no secret values, no content)

    A file at ``path`` that is not a manifest is never overwritten: it is moved
    aside to ``<path>.corrupt-<UTC time>`` first (it may hold what other projects wrote).

    **Example:**

    .. code:: python

        manifest.manifest(path=".clockwork/manifest.json",
                          entries={"FileResource/motd": {"type": "FileResource", "name": "motd", "version": 1,
                                                         "spec": {...}, "deployed_at": "2026-11-24T11:40:00+00:00"}})
    """
    found = host.get_fact(Manifest, keys=(path,)).get(path) or no_manifest()
    current = found["entries"]
    merged = {key: value for key, value in {**current, **entries}.items() if value is not None}
    if merged == current and not found["corrupt"]:
        host.noop(f"manifest {path} is already up to date")
        return
    if found["corrupt"]:
        quoted = shlex.quote(path)
        yield f'mv -f {quoted} {quoted}.corrupt-"$(date -u +%Y%m%dT%H%M%SZ)"'
    document = json.dumps({"version": 1, "resources": dict(sorted(merged.items()))}, indent=2, sort_keys=True) + "\n"
    yield from write_commands(path, document, mode="600", user=None, group=None, keep_from_existing=False)
