"""A real service: a package from an apt repository, its configuration from a template, its systemd service
restarted when the configuration changes, and an HTTP health check on each host.

Made for the root test hosts (`make hosts`), whose apt repository holds `cwdemo` 1.0 and 1.1.
"""

from clockwork.checks import HttpCheck
from clockwork.resources import FileResource, PackageResource, ServiceResource

package = PackageResource(
    name="cwdemo", version="1.1", hold=True, reconcile=True,
    description="a small HTTP daemon, pinned and held so that no upgrade moves it",
)

config = FileResource(
    name="cwdemo.conf", directory="/etc", template="templates/cwdemo.conf.j2",
    vars={"port": 8080, "message": "hello from Clockwork"},
    requires=[package], sudo=True, reconcile=True,
    description="cwdemo's settings, one rendering per host (written as root: it is in /etc)",
)

service = ServiceResource(
    name="cwdemo", running=True, enabled=True,
    requires=[package], restart_on=[config],
    checks=[HttpCheck("http://127.0.0.1:8080/", contains="hello from Clockwork")],
    reconcile=True,
    description="cwdemo runs under systemd, restarted once whenever its settings change",
)
