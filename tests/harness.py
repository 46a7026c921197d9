"""Test data as JSON, in the style of pyinfra's own tests: load fixtures, fake a host, compare.

Three kinds of fixture folders live beside this module:

``tests/facts/<module>.<Fact>/<case>.json``
    ``keys`` (the fact's ``keys`` argument; ``requests`` instead for ``batch.Batch``,
    as ``[[fact name, [keys…]], …]``), optional ``command_kwargs`` (other arguments,
    e.g. ``{"timeout": 5}``), then either ``command`` (the exact command string),
    ``output`` (raw output lines) and ``fact`` (the processed value), or ``exception``
    (``{"name": …, "message": …}``) that ``command()`` must raise.

``tests/operations/<module>.<op>/<case>.json``
    ``args``/``kwargs`` for the operation, ``facts`` the host answers with, and
    either ``commands`` (the exact shell strings, in order) — with
    ``noop_description`` required whenever ``commands`` is empty — or
    ``exception`` (``{"name": …, "message": …}``).

``tests/resources/<Resource>/<case>.json``
    ``resource`` (constructor keyword arguments), ``target`` (``Target`` keyword
    arguments), ``probes`` (``[[fact name, key], …]`` that the resource asks for),
    ``facts`` (fact name → the *processed* value the resource sees through
    ``Observed``), ``status``, ``detail`` and ``diffs`` (``[{field, expected, actual}]``).

Fact names
    ``"paths.Paths"`` means ``clockwork.facts.paths.Paths`` (pyinfra's own tests say
    ``"files.File"`` for ``pyinfra.facts.files.File``); a name starting with
    ``tests.`` is a test-only fact class imported from there.

Fact keying in operation fixtures
    ``facts[<fact name>][<arguments>]``, where ``<arguments>`` is
    ``", ".join(f"{name}={value!r}")`` over the keyword arguments the operation
    passes to ``host.get_fact``, sorted by name — i.e. Python's repr, so
    ``host.get_fact(Paths, keys=("/etc/app.conf",))`` is looked up as
    ``facts["paths.Paths"]["keys=('/etc/app.conf',)"]``.  A tuple and a list key
    differ (``"keys=['x']"`` would not match), as pyinfra's fact cache needs
    hashable arguments.  The fake host fails on any fact the fixture does not
    hold, and the test fails on any fixture fact the operation never asked for.

Values
    Anywhere in a fixture, ``{"$repeat": [text, n]}`` is ``text * n`` and
    ``{"$join": [part, …]}`` concatenates its (expanded) parts, so that large
    contents and their chunked commands stay readable; in resource facts,
    ``{"$exception": {"name": …, "message": …}}`` is a fact that failed on the host.

Known bugs
    A fixture may hold ``"xfail": "<why>"``: it states the behaviour that *should*
    be, and runs as ``xfail(strict=True)`` — so it turns into a failure the day the
    bug is fixed, and the marker must then be removed.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
from collections.abc import Callable
from types import ModuleType
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FactBase
from pyinfra.context import ctx_host

TESTS = Path(__file__).resolve().parent


# Fixtures --------------------------------------------------------------------


def expand(value: Any) -> Any:
    """Expand the ``$repeat``/``$join`` macros anywhere in a loaded fixture."""
    if isinstance(value, dict):
        if set(value) == {"$repeat"}:
            text, count = value["$repeat"]
            return expand(text) * count
        if set(value) == {"$join"}:
            return "".join(expand(part) for part in value["$join"])
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def load(path: Path) -> dict[str, Any]:
    return expand(json.loads(path.read_text()))


def cases(kind: str) -> list:
    """One ``pytest.param(name, data)`` per ``tests/<kind>/<folder>/<case>.json``, id ``folder/case``."""
    root = TESTS / kind
    params = []
    for path in sorted(root.glob("*/*.json")):
        name = f"{path.parent.name}/{path.stem}"
        data = load(path)
        marks = [pytest.mark.xfail(strict=True, reason=data["xfail"])] if "xfail" in data else []
        params.append(pytest.param(name, data, id=name, marks=marks))
    if not params:
        raise AssertionError(f"no fixtures under {root}")
    return params


def discover(package: ModuleType, wanted: Callable[[Any], bool]) -> dict[str, Any]:
    """``{"module.Name": value}`` for everything ``wanted`` that a module of ``package`` defines (its fixture
    folder name): how the harness finds every fact and operation without a list to keep."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found |= {f"{info.name}.{name}": value for name, value in vars(module).items()
                  if wanted(value) and getattr(value, "__module__", None) == module.__name__}
    return found


def fact_class(name: str) -> type[FactBase]:
    """``"paths.Paths"`` → ``clockwork.facts.paths.Paths``; ``"tests.x.Y"`` → that test fact."""
    module_name, _, class_name = name.rpartition(".")
    if not module_name.startswith("tests."):
        module_name = f"clockwork.facts.{module_name}"
    cls = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type) and issubclass(cls, FactBase), f"{name} is not a fact class"
    return cls


def fact_name(cls: type[FactBase]) -> str:
    """The fixture name of a fact class (the inverse of ``fact_class``)."""
    return cls.name.removeprefix("clockwork.facts.")


def fact_key(kwargs: dict[str, Any]) -> str:
    """How an operation fixture keys one ``get_fact`` call's arguments: ``keys=('x',)``."""
    return ", ".join(f"{name}={value!r}" for name, value in sorted(kwargs.items()))


def check_exception(raised: BaseException, wanted: dict[str, str]) -> None:
    assert type(raised).__name__ == wanted["name"], f"raised {type(raised).__name__}: {raised}"
    assert str(raised) == wanted["message"]


# A fake host for operations ----------------------------------------------------


class MissingFact(AssertionError):
    """The operation asked for a fact the fixture does not provide."""


class FakeHost:
    """Just enough of ``pyinfra.api.Host`` for an operation generator: facts from a fixture, noops recorded.

    ``get_fact`` also calls the fact's ``command()`` with the same arguments, as
    pyinfra does before it runs anything, so that arguments the fact rejects
    raise here too. Any other attribute access fails loudly.
    """

    def __init__(self, facts: dict[str, dict[str, Any]]) -> None:
        self.facts = facts
        self.noops: list[str] = []
        self.fact_calls: list[tuple[str, str]] = []

    def get_fact(self, cls: type[FactBase], *args: Any, **kwargs: Any) -> Any:
        assert not args, f"{cls.name}: positional fact arguments are not supported by this harness"
        cls().command(**kwargs)
        name, key = fact_name(cls), fact_key(kwargs)
        self.fact_calls.append((name, key))
        try:
            return self.facts[name][key]
        except KeyError:
            raise MissingFact(f"fact {name} [{key}] is not in the fixture (it has {self.facts!r})") from None

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"FakeHost has no {name!r}: the operation used more of the host than the harness fakes")


def run_operation(op: Callable, args: list, kwargs: dict, facts: dict) -> tuple[list[str], FakeHost]:
    """Run the undecorated generator of ``op`` on a ``FakeHost``; the commands as pyinfra would record them."""
    fake = FakeHost(copy.deepcopy(facts))
    commands = []
    previous = ctx_host.get()
    ctx_host.set(fake)  # not ``ctx_host.use()``: it does not restore the previous host when the body raises
    try:
        for command in op._inner(*args, **kwargs):
            assert isinstance(command, str), f"operation yielded {command!r}, not a shell string"
            commands.append(command.strip())  # as pyinfra's StringCommand(command.strip())
    finally:
        ctx_host.set(previous)
    return commands, fake


def unused_facts(fake: FakeHost) -> list[tuple[str, str]]:
    """Fixture facts the operation never asked for (a fixture that says more than it tests)."""
    asked = set(fake.fact_calls)
    return [(name, key) for name, keyed in fake.facts.items() for key in keyed if (name, key) not in asked]


# Test-only facts -----------------------------------------------------------------


class Strict(FactBase[list]):
    """A keyed fact whose ``process`` raises on any line but ``ok``: a section ``Batch`` cannot parse."""

    def command(self, keys: tuple[str, ...]) -> str:
        return "echo " + " ".join(keys)

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        for line in output:
            if line != "ok":
                raise ValueError(f"unexpected line {line!r}")
        return list(output)
