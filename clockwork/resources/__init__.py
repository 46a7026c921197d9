"""Resource types users declare in main.py.

>>> from clockwork.resources import FileResource, DirectoryResource, DockerServiceResource, Secret
"""

from clockwork.resources.base import Resource
from clockwork.resources.docker import DockerServiceResource
from clockwork.resources.files import DirectoryResource, FileResource
from clockwork.secrets import Secret

#: Every resource type by name, to rebuild resources from recorded specs.
RESOURCE_TYPES: dict[str, type[Resource]] = {
    cls.__name__: cls for cls in (FileResource, DirectoryResource, DockerServiceResource)
}

__all__ = ["RESOURCE_TYPES", "DirectoryResource", "DockerServiceResource", "FileResource", "Resource", "Secret"]
