"""``ignore_fields``: field paths (``mode``, ``env_vars.BUILD_ID``) that are never drift and never corrected."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic.fields import FieldInfo

#: Fields that say what and where a resource is, or how Clockwork treats it: never ignorable.
#: (A kind's own fields and ``checks`` are.)
NOT_IGNORABLE_REASON = "it says which resource this is or how Clockwork looks after it, not how the host has it"


def _is_mapping(info: FieldInfo) -> bool:
    """Whether a field holds a mapping (``dict[str, str]``), so that a dotted path may name one of its keys."""
    annotation = info.annotation
    candidates = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, type(int | None)) \
        else (annotation,)
    return any(typing.get_origin(candidate) is dict or candidate is dict for candidate in candidates)


def check_paths(paths: Iterable[str], fields: Mapping[str, FieldInfo], ignorable: Iterable[str]) -> list[str]:
    """``paths`` when each names an ignorable field (``mode``) or a key of a mapping field (``env_vars.BUILD_ID``);
    a ``ValueError`` naming the first that does not.

    >>> from clockwork.resources import DockerServiceResource as D
    >>> check_paths(["env_vars.BUILD_ID"], D.model_fields, ["env_vars", "image"])
    ['env_vars.BUILD_ID']
    """
    allowed = list(ignorable)
    checked = []
    for path in paths:
        field, dot, key = path.partition(".")
        if field not in fields:
            close = difflib.get_close_matches(field, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the fields are {', '.join(allowed)}"
            raise ValueError(f"{path!r} names no field ({hint})")
        if field not in allowed:
            raise ValueError(f"{field!r} cannot be ignored: {NOT_IGNORABLE_REASON}")
        if dot and (not key or not _is_mapping(fields[field])):
            raise ValueError(f"{path!r}: only a mapping field's keys can be named after a dot "
                             f"({field!r} is not a mapping)" if key else f"{path!r}: a key must follow the dot")
        checked.append(path)
    return checked


def covers(paths: Iterable[str], diff_field: str) -> bool:
    """Whether a diff's field (``env_vars.BUILD_ID``, ``checks[port 80]``) falls under one of ``paths``.

    >>> covers(["env_vars.BUILD_ID"], "env_vars.BUILD_ID"), covers(["env_vars"], "env_vars.X"), covers(["mode"], "owner")
    (True, True, False)
    """
    return any(diff_field == path or diff_field.startswith((f"{path}.", f"{path}[")) for path in paths)


def keep_found(declared: dict[str, Any], found: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``declared`` with each of ``paths`` as ``found`` has it (a key missing there is removed): what applying an
    existing resource sends, so that it leaves the ignored fields as the host has them.

    >>> keep_found({"env_vars": {"A": "1", "B": "2"}}, {"env_vars": {"A": "9"}}, ["env_vars.A", "env_vars.B"])
    {'env_vars': {'A': '9'}}
    """
    spec = {name: dict(value) if isinstance(value, dict) else value for name, value in declared.items()}
    for path in paths:
        field, dot, key = path.partition(".")
        if not dot:
            spec[field] = found.get(field)
            continue
        mapping = dict(spec.get(field) or {})
        there = found.get(field) or {}
        if key in there:
            mapping[key] = there[key]
        else:
            mapping.pop(key, None)
        spec[field] = mapping
    return spec
