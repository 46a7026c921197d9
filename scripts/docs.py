"""Write the README's resource reference from the kinds: their docstrings, class attributes and fields.

Run by ``make docs``; ``tests/test_kinds.py`` fails when README.md is not what this writes.

.. code:: console

    $ .venv/bin/python scripts/docs.py
    README.md: resource reference updated
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from clockwork.resources import RESOURCE_TYPES, Resource

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"
NOTE = "<!-- Generated from clockwork/resources by `make docs` (scripts/docs.py): edit the kinds, not this section. -->"


def _literal(value: Any) -> str:
    """A default as Python code: ``"644"``, ``["drift", "failure"]``, ``False``, ``None``."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(key)}: {_literal(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _default(kind: type[Resource], name: str, field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    if name in kind.completable_fields:
        return "completed"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return "" if value is PydanticUndefined else f"`{_literal(value)}`"


def _table(kind: type[Resource], names: list[str]) -> str:
    rows = ["| field | default | meaning |", "| --- | --- | --- |"]
    for name in names:
        field = kind.model_fields[name]
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {_default(kind, name, field)} | {meaning} |")
    return "\n".join(rows)


def _summary(kind: type[Resource]) -> str:
    """The docstring's first paragraph on one line, in Markdown (``x`` → `x`)."""
    paragraph = (kind.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("``", "`")


def _own_fields(kind: type[Resource]) -> list[str]:
    """``name`` (what a name is for this kind), then the fields that are not common or say more for this kind."""
    common = Resource.model_fields
    return ["name"] + [name for name, field in kind.model_fields.items()
                       if name != "name" and (name not in common or field.description != common[name].description)]


def _facts(kind: type[Resource]) -> str:
    identity = ", ".join(f"`{name}`" for name in kind.identity_fields)
    root = "needs root" if kind.privileged else "runs as the login user"
    return f"Identity: {identity} (which resource it is and where it lives: never completed, never changed by an update); {root}."


def reference() -> str:
    """The generated section: the fields every resource has, then each kind."""
    parts = [NOTE, "Every resource has these fields:", _table(Resource, list(Resource.model_fields))]
    for name, kind in RESOURCE_TYPES.items():
        parts += [f"### `{name}`", _summary(kind), _facts(kind), _table(kind, _own_fields(kind))]
    return "\n\n".join(parts)


def with_reference(readme: str) -> str:
    """``readme`` with the text between the two markers replaced by ``reference()``."""
    before, start, rest = readme.partition(START)
    _old, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md needs the markers {START} and {END} around the resource reference")
    return f"{before}{START}\n{reference()}\n{END}{after}"


def main() -> None:
    readme = README.read_text()
    updated = with_reference(readme)
    if updated != readme:
        README.write_text(updated)
    print(f"README.md: resource reference {'updated' if updated != readme else 'already up to date'}", file=sys.stderr)


if __name__ == "__main__":
    main()
