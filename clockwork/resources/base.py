"""The base ``Resource``: common fields, validation, the interface every kind provides, and the registry of kinds."""

from __future__ import annotations

import difflib
import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pyinfra.api.operation import OperationMeta

from clockwork.checks import HealthCheck
from clockwork.patch import split_removals
from clockwork.durations import parse_duration, validate_interval
from clockwork.exceptions import HostReadError
from clockwork.engine.types import Observed, Probe, Target
from clockwork.facts.commands import Commands, command_id
from clockwork.resources import ignored
from clockwork.resources.catalog import Catalog
from clockwork.results import Diff, Evaluation
from clockwork.secrets import REDACTED, Resolver, mask_value, references


AlertKind = Literal["drift", "failure", "expired", "recovered"]
DEFAULT_ALERTS: tuple[AlertKind, ...] = ("drift", "failure")

#: The diff of a resource that is missing (``present``, True, False) or there but declared absent (False, True).
PRESENCE = "present"

#: Every kind by class name, filled as each kind is defined: how recorded specs are rebuilt.
RESOURCE_TYPES: dict[str, type[Resource]] = {}

class FieldValueError(ValueError):
    """A model validator's error about one field (``content``, ``env_vars.DB_URL``): InvalidResource names it."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location


class InvalidResource(ValueError):
    """A resource's fields do not validate; names the type, the resource and each field."""

    def __init__(self, type_name: str, name: object, error: ValidationError, fields: Iterable[str] = ()) -> None:
        self.type_name, self.name, self.error = type_name, name, error
        label = f"{type_name} {name!r}" if isinstance(name, str) else type_name
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"])
            location = getattr(item.get("ctx", {}).get("error"), "location", None) or location
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
                close = difflib.get_close_matches(location, list(fields), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the fields are {', '.join(fields)}"
                problems.append(f"invalid {label}: unknown field {location!r} ({hint})")
            else:
                problems.append(f"invalid value for {label}.{location}: {message}" if location else f"invalid {label}: {message}")
        super().__init__("; ".join(problems))


def name_field(description: str) -> Any:
    """The ``name`` field, with what a name means for one kind; in the kind's class body:

    .. code:: python

        class FileResource(_PathResource):
            name: str = name_field("the file name (no `/`)")
    """
    return Field(min_length=1, description=description)


def _lone_surrogate(value: Any, location: str) -> tuple[str, str, int] | None:
    """The first (location, text, index) of a lone surrogate in any string of ``value``: not text, not UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:  # only surrogates cannot be encoded
            return location, value, error.start
        return None
    if isinstance(value, BaseModel):
        value = {field: getattr(value, field) for field in type(value).model_fields}
    if isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, location) or _lone_surrogate(item, f"{location}.{key}" if location else str(key))
            if found:
                return found
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            found = _lone_surrogate(item, f"{location}.{position}")
            if found:
                return found
    return None


class Resource(BaseModel):
    """Something Clockwork keeps true on hosts. Each kind (a subclass) says how to read, check, apply and remove
    it, and declares the rest in class attributes: identity, hashed and masked fields, offline completion, root.

    A kind registers itself in ``RESOURCE_TYPES`` when its module is imported. A class whose name starts with
    ``_`` is a base for kinds, and one that a project file defines (main.py, update.py) is the project's own:
    neither is registered.

    >>> from clockwork.resources import FileResource
    >>> motd = FileResource(name="motd", directory="/etc", content="hello\\n", hosts=["web"])
    >>> motd.label, RESOURCE_TYPES["FileResource"] is FileResource
    ("FileResource 'motd'", True)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = name_field("identity within its type; two resources of one type and one name are an error")
    description: str = Field("", description="what it is for; also the input to completion when fields are left out")
    hosts: list[str] | None = Field(None, description="host or group names from the inventory; default: every host")
    reconcile: bool = Field(False, description="the reconciler looks after this resource")
    check_interval: int | str = Field(60, description="how often the reconciler checks it: seconds, a duration (`\"30s\"`, "
                                                      "`\"5m\"`, `\"1h30m\"`) or a cron expression (`\"*/5 * * * *\"`)")
    max_duration: str | None = Field(None, description="a duration (`\"2h\"`): after that long since first deployed on a "
                                                       "host, the reconciler destroys it there")
    on_drift: Literal["auto_correct", "alert", "ignore"] = Field(
        "auto_correct", description="what the reconciler does on drift: `\"auto_correct\"`, `\"alert\"` or `\"ignore\"`")
    alert_on: list[AlertKind] = Field(default_factory=lambda: list(DEFAULT_ALERTS),
                                      description="which alerts it sends: any of `\"drift\"`, `\"failure\"`, "
                                                  "`\"expired\"`, `\"recovered\"`")
    checks: list[HealthCheck] = Field(default_factory=list, description="health checks run on the target host: "
                                                                        "`HttpCheck`, `PortCheck`, `CommandCheck`")
    sudo: bool | None = Field(None, description="run as root: its reads and operations use sudo when the login user "
                                                 "is not root; `None`: as its kind needs (packages and services run as "
                                                 "root; files, directories and containers as the login user)")
    requires: list[str] = Field(default_factory=list, description="resources (objects or `\"Type/name\"`) applied "
                                                                  "before this one on each host; when one of them "
                                                                  "fails there, this one is skipped there")
    ignore_fields: list[str] = Field(default_factory=list, description="fields the host may change: never reported "
                                     "as drift nor corrected, still applied on create; a mapping's key by a dotted "
                                     "path (`[\"env_vars.BUILD_ID\", \"mode\"]`)")

    #: The fields that say which resource it is and where it lives: a model proposing an update never changes them.
    identity_fields: ClassVar[tuple[str, ...]] = ("name", "hosts")
    #: Fields that completion may fill when left out (never identity fields).
    completable_fields: ClassVar[tuple[str, ...]] = ()
    #: Offline completion: a completable field's catalog from description keywords to values.
    catalogs: ClassVar[dict[str, Catalog]] = {}
    #: Fields shown as their sha1 (``sha1:…``) wherever declared values are shown (a file's whole content).
    hashed_fields: ClassVar[tuple[str, ...]] = ()
    #: Fields whose values are never shown (``<redacted>``), whatever their name.
    masked_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether its facts and operations need root: the engine runs them with sudo when the login user is not root
    #: (unless the resource says otherwise in ``sudo``).
    privileged: ClassVar[bool] = False
    #: Where in the user's file the resource was declared ("main.py:12"), for messages.
    _origin: str | None = PrivateAttr(None)
    #: In update.py: the mapping keys given as ``None`` per field, which the update removes (clockwork/patch.py).
    _removed: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Register each kind as its module is imported (not the ``_``-named bases, nor a project file's classes)."""
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__name__.startswith("_") or cls.__module__ not in sys.modules:
            return
        known = RESOURCE_TYPES.get(cls.__name__)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"two resource kinds are named {cls.__name__}: in {known.__module__} and in {cls.__module__}")
        RESOURCE_TYPES[cls.__name__] = cls

    def __init__(self, **data: Any) -> None:
        data, removed = split_removals(data)
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise InvalidResource(type(self).__name__, data.get("name"), error, type(self).model_fields) from None
        self._removed = removed
        caller: FrameType | None = sys._getframe(1)
        while caller and caller.f_code.co_filename == __file__:
            caller = caller.f_back
        if caller is not None:
            self._origin = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"

    @field_validator("*")
    @classmethod
    def _only_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Every string of every field, nested ones too, is text UTF-8 can carry (no lone surrogate ``"\\udc80"``).

        A validator of every field rather than of the model: a refused assignment then keeps the old value.
        """
        found = _lone_surrogate(value, info.field_name or "")
        if found:
            location, text, index = found
            raise FieldValueError(location, f"{text[index]!r} at character {index} is a lone surrogate, not text "
                                            "(it cannot be written as UTF-8)")
        return value

    @field_validator("requires", mode="before")
    @classmethod
    def _requires(cls, value: object) -> list[str]:
        return resource_refs(value)

    @field_validator("ignore_fields")
    @classmethod
    def _ignore_fields(cls, value: list[str]) -> list[str]:
        ignorable = [name for name in cls.model_fields
                     if (name not in Resource.model_fields or name == "checks") and name != PRESENCE]
        return ignored.check_paths(value, cls.model_fields, ignorable)

    @field_validator("check_interval", mode="before")
    @classmethod
    def _interval(cls, value: int | str) -> int | str:
        return validate_interval(value)

    @field_validator("max_duration")
    @classmethod
    def _max_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def type_name(self) -> str:
        return type(self).__name__

    @property
    def needs_root(self) -> bool:
        """Whether it is read and operated as root: ``sudo`` when given, else what its kind needs."""
        return self.sudo if self.sudo is not None else self.privileged

    @property
    def ref(self) -> str:
        """``FileResource/app.conf``: how ``requires=[...]`` names this resource."""
        return f"{self.type_name}/{self.name}"

    def dependencies(self) -> list[str]:
        """The resources (``Type/name``) applied before this one on each host: ``requires``, and what a kind adds
        (a service's ``restart_on``)."""
        return list(self.requires)

    @property
    def label(self) -> str:
        """``FileResource 'config.json'``: how messages name this resource."""
        return f"{self.type_name} {self.name!r}"

    @property
    def origin(self) -> str | None:
        return self._origin

    def patch(self) -> dict[str, Any]:
        """What this resource of update.py changes, as a merge patch: the fields it gives, and its mapping keys
        given as ``None`` (to remove) among them."""
        given = self.model_dump(include=self.model_fields_set)
        for field, keys in self._removed.items():
            given[field] = {**given.get(field, {}), **dict.fromkeys(keys)}
        return given

    @property
    def lifetime(self) -> int | None:
        """``max_duration`` in seconds, or ``None`` when it lives until destroyed."""
        return parse_duration(self.max_duration) if self.max_duration else None

    def spec(self, include: set[str] | None = None) -> dict[str, Any]:
        """The spec as JSON data, exactly as declared: secret references stay references (``Secret``)."""
        return self.model_dump(mode="json", include=include)

    def shown(self, include: set[str] | None = None) -> dict[str, Any]:
        """The spec as people and other systems may read it (output, prompts): secrets masked.

        References read ``<secret env:NAME>``, values under secret-looking names
        (``API_TOKEN``, ``db_password``) ``<redacted>``, ``password=…``-style
        assignments and URL passwords inside text ``***``.
        """
        shown = mask_value(self.spec(include))
        return {name: REDACTED if name in self.masked_fields else value for name, value in shown.items()}

    def shown_value(self, field: str) -> Any:
        """One declared value as results show it: a hashed field as ``sha1:…``, secrets masked (see ``shown``)."""
        value = getattr(self, field, None)
        if field in self.hashed_fields and isinstance(value, str):
            return f"sha1:{hashlib.sha1(value.encode()).hexdigest()}"
        return self.shown(include={field}).get(field)

    def resolved(self, resolver: Resolver) -> Resource:
        """A copy holding the values of its secret references (what goes to hosts); itself when it has none."""
        spec = self.spec()
        if not references(spec):
            return self
        copy = type(self)(**resolver.resolve(spec, self.label))
        copy._origin = self._origin
        return copy

    def read_files(self, directory: Path) -> None:
        """Read what the resource names in the project ``directory`` (a template), once, as the project loads;
        a ``ProjectError`` when it cannot."""

    def check_target(self, target: Target) -> None:
        """Raise a ``ProjectError`` when the resource cannot be sent to this host as declared (a template that does
        not render for it), before any host is touched."""

    def missing_fields(self) -> list[str]:
        """Completable fields that were left out."""
        return [name for name in self.completable_fields if getattr(self, name) is None]

    def complete_offline(self, fields: list[str]) -> dict[str, Any]:
        """The values the kind's ``catalogs`` give for ``fields``, from the name and description (no network)."""
        text = f"{self.name} {self.description}"
        found = {field: self.catalogs[field].match(text) for field in fields if field in self.catalogs}
        return {field: value for field, value in found.items() if value is not None}

    # How results read ---------------------------------------------------------

    def diff(self, field: str, expected: Any, actual: Any) -> Diff:
        """One difference, worded by this kind (``describe_diff``); a masked field's values read ``<redacted>``."""
        if field.split(".")[0].split("[")[0] in self.masked_fields:
            expected, actual = REDACTED, REDACTED
        plain = Diff(field, expected, actual)
        return replace(plain, wording=self.describe_diff(plain))

    def diffs(self, differences: Iterable[tuple[str, Any, Any]]) -> list[Diff]:
        """``diff`` for each ``(field, expected, actual)``, as an operation's ``*_differences`` lists them."""
        return [self.diff(*difference) for difference in differences]

    def describe_diff(self, diff: Diff) -> str | None:
        """How this kind words ``diff`` for people (masked afterwards); ``None`` leaves the generic
        ``field actual, wanted expected``. A kind overrides it for its own fields and calls this one."""
        if diff.field == PRESENCE:
            return "missing" if diff.expected else "present, wanted absent"
        return None

    def change_summary(self, diffs: list[Diff]) -> str:
        """What applying makes of these diffs, for apply's output: ``created``, ``removed``, ``updated mode, owner``."""
        presence = next((diff for diff in diffs if diff.field == PRESENCE), None)
        if presence is not None:
            return "created" if presence.expected else "removed"
        return "updated " + ", ".join(dict.fromkeys(diff.field.split(".")[0] for diff in diffs))

    # The interface the engine uses, without knowing the type ------------------

    def probes(self, target: Target, health: bool = True) -> list[Probe]:
        """Everything to read from the host to evaluate this resource there (``health``: with its checks)."""
        checks = [(Commands, check.shell()) for check in self.checks] if health else []
        return self.state_probes(target) + checks

    def evaluate(self, target: Target, observed: Observed, health: bool = True) -> Evaluation:
        """Compare the host with the declaration: state first, then (``health``) the health checks."""
        try:
            evaluation = self._unignored(self.evaluate_state(target, observed))
            if health and not evaluation.diffs:
                evaluation.diffs += self._failed_checks(observed)
                evaluation.detail = describe(evaluation.diffs) or evaluation.detail
        except HostReadError as error:  # the host could not answer; anything else is a bug (exit 4)
            return Evaluation(error=str(error), detail=f"could not evaluate: {error}")
        return evaluation

    def _unignored(self, evaluation: Evaluation) -> Evaluation:
        """``evaluation`` without the diffs of ``ignore_fields``: what the host may change is never drift."""
        kept = [diff for diff in evaluation.diffs if not ignored.covers(self.ignore_fields, diff.field)]
        if len(kept) == len(evaluation.diffs):
            return evaluation
        left_out = ", ".join(diff.field for diff in evaluation.diffs if diff not in kept)
        return replace(evaluation, diffs=kept, detail=describe(kept) or f"as declared (ignored: {left_out})")

    def as_applied(self, target: Target, observed: Observed | None) -> Resource:
        """What applying sends to a host: itself, except that a resource the host already has keeps its
        ``ignore_fields`` as the host has them (they are applied only on create)."""
        if not self.ignore_fields or observed is None:
            return self
        try:
            found = self.from_observed(target, observed)
        except HostReadError:
            return self
        if found is None:
            return self
        kept = type(self)(**ignored.keep_found(self.model_dump(), found.model_dump(), self.ignore_fields))
        kept._origin = self._origin
        return kept

    def _failed_checks(self, observed: Observed) -> list[Diff]:
        if not self.checks:
            return []
        results = observed[Commands]
        diffs = []
        for check in self.checks:
            result = results.get(command_id(check.shell()))
            if result is None:
                raise HostReadError(f"health check {check.label()} did not report")
            passed, expected, actual = check.verdict(result)
            if not passed:
                diffs.append(self.diff(f"checks[{check.label()}]", expected, actual))
        return diffs

    def state_probes(self, target: Target) -> list[Probe]:
        raise NotImplementedError

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        raise NotImplementedError

    def explain_probes(self, target: Target, evaluation: Evaluation) -> list[Probe]:
        """Extra reads that would show a person what drifted (e.g. a file's current text)."""
        return []

    def explain(self, target: Target, observed: Observed) -> str | None:
        """A readable account of the drift from ``explain_probes``' answers, e.g. a unified diff."""
        return None

    def is_present(self, target: Target, observed: Observed) -> bool:
        """Whether anything of this resource exists on the host (what destroy would remove)."""
        raise NotImplementedError

    def observed_state(self, target: Target, observed: Observed) -> Any:
        """What the host answered to this resource's ``state_probes``, as JSON data: its own entries only (not
        those of other resources read in the same batch) and all that ``evaluate_state`` compares, so that the
        same answer always evaluates the same (the reconciler fingerprints it to tell whether anything changed
        the resource since Clockwork's correction). A fact that failed raises, as in ``evaluate_state``."""
        raise NotImplementedError

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The inverse of ``evaluate_state``: this resource as the host has it (what its ``state_probes`` read
        replaces the declared values, the rest is kept), or ``None`` when the host has none. A fact that
        failed raises, as in ``evaluate_state``."""
        raise NotImplementedError

    def _found(self, **fields: Any) -> Resource:
        """A copy with ``fields`` as a host has them, validated (for ``from_observed``)."""
        found = type(self)(**{**self.model_dump(), **fields})
        found._origin = self._origin
        return found

    def apply(self, target: Target) -> OperationMeta:
        """Call the pyinfra operation that makes the current host match (inside a host context)."""
        raise NotImplementedError

    def destroy(self, target: Target) -> OperationMeta:
        """Call the pyinfra operation that removes this resource from the current host."""
        raise NotImplementedError

    def handler(self, changed: set[str], applied: list[Diff]) -> Handler | None:
        """What to run once on a host after the resources in ``changed`` (``Type/name``) changed there in this
        run: a service's ``restart_on``. ``applied`` are this resource's own diffs that this run made true there
        (none when it was already as declared). Default: nothing."""
        return None


@dataclass(frozen=True)
class Handler:
    """An operation a resource runs once on a host because others changed there: what it does (``"restarted"``),
    the resources (``Type/name``) whose change called for it, and the operation."""

    done: str
    because: list[str]
    operation: Callable[[Target], OperationMeta]


def resource_refs(value: object) -> list[str]:
    """``requires=[conf, "ServiceResource/cwdemo"]`` as ``Type/name`` strings; anything else is a ``ValueError``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError("give a list of resources or 'Type/name' strings")  # noqa: TRY004 (pydantic wants ValueError)
    refs = []
    for item in value:
        if isinstance(item, Resource):
            refs.append(item.ref)
        elif isinstance(item, str) and item.count("/") >= 1 and all(item.split("/", 1)):
            kind = item.split("/", 1)[0]
            if kind not in RESOURCE_TYPES:
                close = difflib.get_close_matches(kind, list(RESOURCE_TYPES), n=1)
                raise ValueError(f"{item!r} names no resource kind {kind!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            refs.append(item)
        else:
            raise ValueError(f"{item!r} is not a resource: give the resource object or 'Type/name' "
                             "(\"FileResource/app.conf\")")
    return refs


def describe(diffs: list[Diff]) -> str:
    """One line for a list of diffs: ``content differs (…); mode 644, wanted 640``."""
    return "; ".join(diff.describe() for diff in diffs)
