"""Resource kinds users declare in main.py: every kind defined in this package, found by itself.

Each module of the package is imported here; each kind it defines (a ``Resource``
subclass whose name does not start with ``_``) registers itself in ``RESOURCE_TYPES``
and can be imported from this package by name.

>>> from clockwork.resources import FileResource, DirectoryResource, DockerServiceResource, Secret
>>> sorted(RESOURCE_TYPES)
['DirectoryResource', 'DockerServiceResource', 'FileResource', 'PackageResource', 'ServiceResource']
"""

import importlib
import pkgutil

from clockwork.resources.base import RESOURCE_TYPES, Resource
from clockwork.secrets import Secret

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name: str) -> type[Resource]:
    """A kind by name: ``from clockwork.resources import FileResource``."""
    try:
        return RESOURCE_TYPES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = ["RESOURCE_TYPES", "Resource", "Secret", *RESOURCE_TYPES]
