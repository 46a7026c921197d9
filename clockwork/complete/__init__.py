"""Filling the fields a user left out, by a model or by offline rules, pinned in ``clockwork.lock``.

.. code:: python

    completions = complete_project(project, load_settings(project.directory))
    [(c.label, c.value, c.source) for c in completions]  # [("DockerServiceResource 'cache'.image", 'redis:7.4-alpine', 'rules')]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from clockwork.complete.lock import LOCK_FILE, Lock, Pinned
from clockwork.exceptions import CompletionError
from clockwork.project import Project
from clockwork.resources.base import Resource
from clockwork.settings import Settings

if TYPE_CHECKING:
    from clockwork.complete.model import ModelClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Completion:
    """One completed field and where its value came from: ``lock``, ``rules`` or ``model``."""

    resource: Resource
    field: str
    value: Any
    source: str
    model: str | None = None

    @property
    def label(self) -> str:
        return f"{self.resource.label}.{self.field}"


def field_schema(resource: Resource, fields: list[str]) -> dict[str, Any]:
    """A JSON schema for an object holding exactly ``fields``, derived from the resource model (never null)."""
    properties = type(resource).model_json_schema()["properties"]
    schema: dict[str, Any] = {"type": "object", "properties": {}, "required": list(fields), "additionalProperties": False}
    for field in fields:
        prop = dict(properties[field])
        options = [option for option in prop.pop("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        prop.pop("default", None)
        prop.pop("title", None)
        schema["properties"][field] = prop
    return schema


def _with_values(resource: Resource, values: dict[str, Any]) -> Resource:
    given = resource.model_dump(include=resource.model_fields_set)
    completed = type(resource)(**{**given, **values})
    completed._origin = resource.origin
    return completed


def _model_client(settings: Settings, model: str | None) -> ModelClient:
    from clockwork.complete.model import ModelClient

    if model is None:
        raise CompletionError("no model is configured: set CW_MODEL or pass --model")
    return ModelClient(settings.base_url or DEFAULT_BASE_URL, model, settings.api_key, settings.model_timeout)


def _ask(resource: Resource, missing: list[str], settings: Settings, model: str | None) -> dict[str, Pinned]:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if model is None:
        values = resource.complete_offline(missing)
        for field in missing:
            if field not in values:
                raise CompletionError(
                    f"{resource.origin or 'main.py'}: {resource.label}.{field} is not set and the offline rules cannot "
                    f"complete it: set {field}, or configure a model (CW_MODEL, CW_BASE_URL, CW_API_KEY or --model)"
                )
        return {field: Pinned(values[field], "rules", None, now) for field in missing}
    request = {
        "type": resource.type_name,
        "name": resource.name,
        "description": resource.description,
        "given": resource.shown(include=resource.model_fields_set - set(missing)),
        "fields_to_fill": missing,
    }
    answer = _model_client(settings, model).complete(
        request, field_schema(resource, missing), resource.label, check=lambda values: _with_values(resource, values)
    )
    return {field: Pinned(answer[field], "model", model, now) for field in missing}


def complete_project(
    project: Project, settings: Settings, *, model: str | None = None, refresh: bool = False, providers: bool = True,
    prune: bool = True,
) -> list[Completion]:
    """Complete every resource's left-out fields in place (``project.resources``) and pin them.

    Pinned values are reused while the resource's given fields are unchanged
    (``refresh`` asks again). Without ``providers`` only the lock is used: a
    missing entry is an error. ``prune`` drops lock entries of resources the
    project no longer declares (not for update.py, which declares only some). The lock is written only when every resource
    completed, so a failure leaves it as it was.
    """
    model = model or settings.model
    lock = Lock.read(project.directory)
    completions: list[Completion] = []
    resources: list[Resource] = []
    asked = False
    for resource in project.resources:
        missing = resource.missing_fields()
        if not missing:
            resources.append(resource)
            continue
        pinned = None if refresh else lock.get(resource)
        source = "lock"
        if pinned is None or not set(missing) <= set(pinned):
            if not providers:
                raise CompletionError(
                    f"{resource.origin or 'main.py'}: {resource.label}.{missing[0]} is not completed yet: run "
                    f"`clockwork plan` or `clockwork apply` to complete it and pin it in {LOCK_FILE}"
                )
            pinned = _ask(resource, missing, settings, model)
            lock.put(resource, pinned)
            source, asked = pinned[missing[0]].provider, True
        try:
            completed = _with_values(resource, {field: pinned[field].value for field in missing})
        except ValueError as error:
            raise CompletionError(f"{resource.origin or 'main.py'}: pinned value for {resource.label} is invalid ({error}): "
                                  f"fix {LOCK_FILE} or run with --refresh") from None
        resources.append(completed)
        completions += [Completion(completed, field, pinned[field].value, source, pinned[field].model) for field in missing]
    if providers and ((prune and lock.keep_only(project.resources)) or asked):
        lock.write()
    project.resources = resources
    return completions
