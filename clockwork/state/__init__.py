"""The state store: deployments, versions of each resource, first-deployed times, events, one writer at a time.

>>> with open_store(project.directory) as store, store.writer("apply"):
...     store.record_version(resource_type, name, spec, source="apply", hosts=["web-1"])
"""

from clockwork.state.base import StateStore, Version
from clockwork.state.sqlite import SqliteStore, open_store

__all__ = ["SqliteStore", "StateStore", "Version", "open_store"]
