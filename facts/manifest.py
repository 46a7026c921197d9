"""The host's Clockwork manifest: what Clockwork deployed there (``~/.clockwork/manifest.json``)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

#: Where the manifest lives, relative to the login user's home.
MANIFEST_PATH = "~/.clockwork/manifest.json"


class Manifest(FactBase[dict[str, Any]]):
    """
    Returns the manifest's entries by ``Type/name`` (``{}`` when there is none or it is unreadable):

    .. code:: python

        host.get_fact(Manifest, keys=(".clockwork/manifest.json",))
        {".clockwork/manifest.json": {"FileResource/config.json": {"type": "FileResource",
            "name": "config.json", "version": 2, "spec": {...}, "deployed_at": "2026-11-24T11:40:00+00:00"}}}
    """

    def command(self, keys: tuple[str, ...]) -> str:
        return "; ".join(
            f"printf '%s\\t' {shlex.quote(path)}; cat -- {shlex.quote(path)} 2>/dev/null | tr -d '\\n'; echo"
            for path in keys
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def process(self, output: list[str]) -> dict[str, Any]:
        manifests: dict[str, Any] = {}
        for line in output:
            path, tab, text = line.partition("\t")
            if not tab:
                continue
            try:
                document = json.loads(text) if text else {}
                entries = document.get("resources", {}) if isinstance(document, dict) else {}
            except ValueError:
                entries = {}
            manifests[path] = entries if isinstance(entries, dict) else {}
        return manifests
