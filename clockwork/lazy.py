"""Package attributes imported on first use (PEP 562): importing a package costs only what is used of it.

.. code:: python

    __getattr__, __dir__ = lazy_attributes(__name__, {"apply": "clockwork.commands.apply"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``: its attribute ``name`` is ``name`` of the module
    ``homes[name]``, imported when first looked up (then kept in the package, so looked up once)."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
