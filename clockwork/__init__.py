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

from typing import TYPE_CHECKING

from clockwork.lazy import lazy_attributes

if TYPE_CHECKING:
    from clockwork.commands.apply import apply
    from clockwork.commands.destroy import destroy
    from clockwork.commands.evaluate import evaluate
    from clockwork.commands.history import history
    from clockwork.commands.rollback import rollback
    from clockwork.commands.update import update
    from clockwork.reconcile.status import status

__all__ = ["apply", "destroy", "evaluate", "history", "rollback", "status", "update"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "apply": "clockwork.commands.apply",
    "destroy": "clockwork.commands.destroy",
    "evaluate": "clockwork.commands.evaluate",
    "history": "clockwork.commands.history",
    "rollback": "clockwork.commands.rollback",
    "status": "clockwork.reconcile.status",
    "update": "clockwork.commands.update",
})
