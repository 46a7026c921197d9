"""How ``update.py`` changes what is deployed: like a JSON Merge Patch (RFC 7386, what ``kubectl patch --type
merge`` does). A mapping field merges key by key: a key given replaces, a key set to ``None`` is removed, keys not
given are kept; any other field given (a list, a scalar) replaces; fields not given keep their deployed value.

>>> merge_fields({"image": "app:1", "env_vars": {"MODE": "v1", "KEEP": "yes"}}, {"env_vars": {"MODE": "v2"}})
{'image': 'app:1', 'env_vars': {'MODE': 'v2', 'KEEP': 'yes'}}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Set while update.py runs: a mapping key given as ``None`` there means "remove it", not a value.
_PATCHING: ContextVar[bool] = ContextVar("clockwork_patching", default=False)


class _Missing:
    """A mapping key that one side of a change does not have."""

    def __repr__(self) -> str:
        return "(not set)"


#: What a per-key change shows for a key that is not there (before it was added, after it was removed).
MISSING: Any = _Missing()


@contextmanager
def patching() -> Iterator[None]:
    """While the ``with`` block runs (update.py is executed), resources keep their mapping keys set to ``None``
    apart, as removals (``Resource.removed_keys``)."""
    token = _PATCHING.set(True)
    try:
        yield
    finally:
        _PATCHING.reset(token)


def split_removals(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A resource's arguments without the mapping keys set to ``None`` (only while ``patching``), and those keys
    per field.

    >>> with patching():
    ...     split_removals({"name": "api", "env_vars": {"MODE": "v2", "KEEP": None}})
    ({'name': 'api', 'env_vars': {'MODE': 'v2'}}, {'env_vars': ['KEEP']})
    """
    if not _PATCHING.get():
        return data, {}
    removed = {name: sorted(key for key, item in value.items() if item is None)
               for name, value in data.items() if isinstance(value, dict) and None in value.values()}
    kept = {name: {key: item for key, item in value.items() if item is not None} if name in removed else value
            for name, value in data.items()}
    return kept, removed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` applied to ``target``.

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 4}, "e": [5]})
    {'b': {'c': 4, 'd': 3}, 'e': [5]}
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def merge_fields(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``current``'s fields with ``patch`` applied: a mapping field (given as a mapping where a mapping is
    deployed) merged key by key; any other field given replaced."""
    merged = dict(current)
    for name, value in patch.items():
        deployed = current.get(name)
        merged[name] = merge_patch(deployed, value) if isinstance(value, dict) and isinstance(deployed, dict) else value
    return merged


def key_changes(name: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """A field's change as people read it: a mapping key by key (``env_vars.MODE``, ``MISSING`` where a key is not
    there), anything else whole.

    >>> key_changes("env_vars", {"MODE": "v1", "KEEP": "yes"}, {"MODE": "v2"})
    [('env_vars.KEEP', 'yes', (not set)), ('env_vars.MODE', 'v1', 'v2')]
    """
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [(name, before, after)]
    return [(f"{name}.{key}", before.get(key, MISSING), after.get(key, MISSING))
            for key in sorted(before.keys() | after.keys()) if before.get(key, MISSING) != after.get(key, MISSING)]
