"""A web server container, checked over HTTP from the host it runs on.

CW_EXAMPLE_IMAGE overrides the image (the tests use a locally imported busybox).
"""

import os

from clockwork.checks import HttpCheck
from clockwork.resources import DockerServiceResource

web = DockerServiceResource(
    name="web",
    description="Static web server on port 8080",
    image=os.environ.get("CW_EXAMPLE_IMAGE", "busybox:1.36"),
    command=["httpd", "-f", "-p", "8080", "-h", "/etc"],
    networks=["host"],
    env_vars={"SITE_MODE": "demo"},
    restart_policy="unless-stopped",
    checks=[HttpCheck("http://127.0.0.1:8080/hostname")],
)
