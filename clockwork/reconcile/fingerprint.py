"""A pair's fingerprint: what one read found of a resource on a host, kept so that a later read can tell whether
anything changed it since (``policy.unchanged``)."""

from __future__ import annotations

import json

from clockwork.engine.types import Observed, Target
from clockwork.exceptions import HostReadError
from clockwork.resources.base import Resource
from clockwork.secrets import keyed_hash


def fingerprint(resource: Resource, target: Target, observed: Observed, key: bytes) -> str | None:
    """A keyed hash (secret values may be part of it) of what is declared for the host (the resource as sent, its
    secrets resolved, and the host's inventory data and groups that templates render) and of what the host
    answered for it (``observed_state``: all that the kind compares); ``None`` when the host could not say. The
    same inputs give the same fingerprint, in any process.

    >>> from clockwork.resources import FileResource
    >>> from clockwork.facts.paths import Paths
    >>> conf = FileResource(name="app.conf", directory="/etc/app", content="x = 1\\n")
    >>> info = {"type": "file", "mode": "644", "user": "app", "group": "app", "sha1": "3f2a"}
    >>> seen = Observed({Paths: {"/etc/app/app.conf": info}})
    >>> fingerprint(conf, Target("web-1"), seen, b"k") == fingerprint(conf, Target("web-1"), seen, b"k")
    True
    >>> edited = Observed({Paths: {"/etc/app/app.conf": {**info, "sha1": "9c1e"}}})
    >>> fingerprint(conf, Target("web-1"), seen, b"k") == fingerprint(conf, Target("web-1"), edited, b"k")
    False
    """
    try:
        state = resource.observed_state(target, observed)
    except HostReadError:
        return None
    document = {
        "declared": resource.model_dump(mode="json"),
        "host": {"name": target.host, "data": dict(target.data), "groups": list(target.groups)},
        "state": state,
    }
    return keyed_hash(key, json.dumps(document, sort_keys=True, default=repr))
