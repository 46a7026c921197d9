"""Results of evaluating or applying resources, per host × resource; the CLI renders them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from clockwork.secrets import mask_text, mask_value

Status = Literal["ok", "drift", "pending", "error"]


#: A field path that names one key of a mapping field (``FIELD.KEY``): ``None`` on either side means unset.
_MAPPING_KEY = re.compile(r"[A-Za-z_]\w*\.")


@dataclass(frozen=True)
class Diff:
    """One declared field that a host does not match.

    ``wording`` is how the resource's kind says it (``Resource.describe_diff``); without
    it, a diff reads ``field actual, wanted expected``.

    >>> Diff("owner", "app", "root").describe()
    'owner root, wanted app'
    >>> Diff("labels.tier", "web", None).describe()
    'labels.tier unset, wanted web'
    """

    field: str
    expected: Any
    actual: Any
    wording: str | None = None

    def describe(self) -> str:
        """One line for people: values under secret-looking names and secret values masked."""
        return mask_text(self._generic() if self.wording is None else self.wording)

    def _generic(self) -> str:
        name = self.field.rpartition(".")[2]
        expected, actual = mask_value(self.expected, name), mask_value(self.actual, name)
        if _MAPPING_KEY.match(self.field) and actual is None:
            return f"{self.field} unset, wanted {expected}"
        if _MAPPING_KEY.match(self.field) and expected is None:
            return f"{self.field} set, wanted unset"
        return f"{self.field} {_show(actual)}, wanted {_show(expected)}"

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON output shows it (secrets masked)."""
        name = self.field.rpartition(".")[2]
        return {"field": self.field, "expected": mask_value(self.expected, name), "actual": mask_value(self.actual, name)}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


@dataclass
class Evaluation:
    """How one resource stands on one host: no diffs means it is as declared."""

    diffs: list[Diff] = field(default_factory=list)
    detail: str = ""
    error: str | None = None
    pending: bool = False

    @property
    def status(self) -> Status:
        """``pending`` when the host matches the last apply and main.py has changed since."""
        if self.error is not None:
            return "error"
        if self.pending:
            return "pending"
        return "drift" if self.diffs else "ok"


@dataclass
class Result:
    """One host × resource line of a report.

    ``status`` is the evaluation's (ok, drift, pending, error); ``changed`` says
    whether apply/destroy changed the host (``None`` for read-only commands);
    ``declined``, that its operation declined on purpose to change it (destroy left
    a directory holding other things in place: ``detail`` says why);
    ``explanation`` is a readable account of a drift (``evaluate --diff``).
    """

    host: str
    resource: str
    type: str
    status: Status
    detail: str
    diffs: list[Diff] = field(default_factory=list)
    error: str | None = None
    changed: bool | None = None
    explanation: str | None = None
    declined: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "resource": self.resource,
            "type": self.type,
            "status": self.status,
            "detail": mask_text(self.detail),
            "diffs": [diff.as_dict() for diff in self.diffs],
            "error": None if self.error is None else mask_text(self.error),
        }


@dataclass
class Report:
    """Everything one command found or did: results, hosts, unreachable hosts."""

    results: list[Result]
    hosts: list[str]
    unreachable: dict[str, str] = field(default_factory=dict)
    resources: int = 0
    #: Problems worth telling that changed no result (e.g. a host's manifest was corrupt and kept aside).
    warnings: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def failed(self) -> int:
        """Errors on hosts that were reached (unreachable hosts are counted apart)."""
        return sum(1 for result in self.results if result.status == "error" and result.host not in self.unreachable)

    @property
    def changed(self) -> int:
        return sum(1 for result in self.results if result.changed)

    @property
    def status(self) -> Status:
        for status in ("error", "drift", "pending"):
            if self.count(status):
                return status
        return "ok"
