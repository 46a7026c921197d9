"""Resource types users declare in main.py.

>>> from clockwork.resources import FileResource, DirectoryResource, DockerServiceResource
"""

from clockwork.resources.base import Resource
from clockwork.resources.docker import DockerServiceResource
from clockwork.resources.files import DirectoryResource, FileResource

__all__ = ["DirectoryResource", "DockerServiceResource", "FileResource", "Resource"]
