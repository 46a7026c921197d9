"""The public library API: ``from clockwork import apply, ...``, one documented function per command, and
``import clockwork`` light enough for ``clockwork --help`` (pyinfra is loaded only when a command runs)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import clockwork

COMMANDS = ["apply", "destroy", "evaluate", "history", "rollback", "status", "update"]


def test_the_public_api_is_listed() -> None:
    assert sorted(clockwork.__all__) == COMMANDS
    from clockwork import apply, destroy, evaluate, history, rollback, update  # noqa: F401 (the import is the test)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_is_the_commands_documented_function(name: str) -> None:
    """Defined in the command's own module (``clockwork.commands.apply``; status is the reconciler's)."""
    function = getattr(clockwork, name)
    home = "clockwork.reconcile.status" if name == "status" else f"clockwork.commands.{name}"
    assert function.__module__ == home and function is getattr(importlib.import_module(home), name)
    assert inspect.isfunction(function) and function.__name__ == name
    assert function.__doc__ and function.__doc__.strip()
    assert inspect.signature(function).return_annotation not in (inspect.Signature.empty, "None")


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'deploy'"):
        clockwork.deploy  # noqa: B018 (the lookup is the test)


def test_importing_clockwork_does_not_import_pyinfra() -> None:
    code = "import sys, clockwork; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyinfra', 'gevent')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
