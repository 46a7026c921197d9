"""The host's Clockwork manifest: what Clockwork deployed there (``~/.clockwork/manifest.json``)."""

from __future__ import annotations

import json
import shlex
from typing import Any, TypedDict

from pyinfra.api import FactBase

#: Where the manifest lives, relative to the login user's home.
MANIFEST_PATH = "~/.clockwork/manifest.json"


class ManifestFile(TypedDict):
    """One manifest: its entries by ``Type/name``; ``corrupt`` when the file is there but is not a manifest."""

    entries: dict[str, Any]
    corrupt: bool


def no_manifest() -> ManifestFile:
    """What a host without a manifest file has: no entries."""
    return ManifestFile(entries={}, corrupt=False)


def _parse(text: str) -> ManifestFile:
    if not text:
        return no_manifest()
    try:
        document = json.loads(text)
    except ValueError:
        return ManifestFile(entries={}, corrupt=True)
    entries = document.get("resources") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(entry, dict) for entry in entries.values()):
        return ManifestFile(entries={}, corrupt=True)
    return ManifestFile(entries=entries, corrupt=False)


class Manifest(FactBase[dict[str, ManifestFile]]):
    """
    Returns each manifest's entries by ``Type/name`` (none when there is no file), and whether the file
    is corrupt (there, but not JSON holding ``{"resources": {…}}``):

    .. code:: python

        host.get_fact(Manifest, keys=(".clockwork/manifest.json",))
        {".clockwork/manifest.json": {"corrupt": False, "entries": {"FileResource/config.json": {
            "type": "FileResource", "name": "config.json", "version": 2, "spec": {...},
            "deployed_at": "2026-11-24T11:40:00+00:00"}}}}
    """

    def command(self, keys: tuple[str, ...]) -> str:
        return "; ".join(
            f"printf '%s\\t' {shlex.quote(path)}; cat -- {shlex.quote(path)} 2>/dev/null | tr -d '\\n'; echo"
            for path in keys
        )

    @staticmethod
    def default() -> dict[str, ManifestFile]:
        return {}

    def process(self, output: list[str]) -> dict[str, ManifestFile]:
        manifests: dict[str, ManifestFile] = {}
        for line in output:
            path, tab, text = line.partition("\t")
            if tab:
                manifests[path] = _parse(text)
        return manifests
