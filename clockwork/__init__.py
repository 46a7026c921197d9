"""Clockwork's public library API: one function per command, named as the command, each returning a typed result.

The commands' modules live in ``clockwork.commands``; they are imported when a function is first used, so that
``import clockwork`` (and ``clockwork --help``) does not load pyinfra.

.. code:: python

    from clockwork import apply, evaluate
    from clockwork.project import load_project

    project = load_project(Path("."))
    apply(project, inventory="inventory.py").changed      # 2
    evaluate(project, inventory="inventory.py").status    # 'ok'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clockwork.commands.apply import apply
    from clockwork.commands.destroy import destroy
    from clockwork.commands.evaluate import evaluate
    from clockwork.commands.history import history
    from clockwork.commands.rollback import rollback
    from clockwork.commands.update import update
    from clockwork.reconcile.status import status

#: Where each public function is defined.
_HOMES = {
    "apply": "clockwork.commands.apply",
    "destroy": "clockwork.commands.destroy",
    "evaluate": "clockwork.commands.evaluate",
    "history": "clockwork.commands.history",
    "rollback": "clockwork.commands.rollback",
    "status": "clockwork.reconcile.status",
    "update": "clockwork.commands.update",
}

__all__ = ["apply", "destroy", "evaluate", "history", "rollback", "status", "update"]


def __getattr__(name: str) -> Any:
    """Import a public function's module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'clockwork' has no attribute {name!r}")
    function = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = function
    return function


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
