"""Docker containers, and the offline catalog that completes their images."""

from __future__ import annotations

import re
import shlex
from typing import Literal

from pydantic import Field, field_validator
from pyinfra.api.operation import OperationMeta

from clockwork.exceptions import HostReadError
from clockwork.facts.docker import ContainerInfo, DockerContainers
from clockwork.operations import docker
from clockwork.resources.base import Resource, describe, name_field
from clockwork.engine.types import Observed, Probe, Target
from clockwork.resources.catalog import Catalog
from clockwork.results import Diff, Evaluation

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PORT = re.compile(r"^(?:(?:(?:\d{1,3}\.){3}\d{1,3}:)?\d{1,5}:)?\d{1,5}(?:/(?:tcp|udp|sctp))?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: The offline catalog of pinned images: product names first, then kinds of service.
IMAGES = Catalog([
    (("nginx",), "nginx:1.27-alpine"),
    (("traefik",), "traefik:v3.1"),
    (("caddy",), "caddy:2.8-alpine"),
    (("apache", "httpd"), "httpd:2.4-alpine"),
    (("haproxy",), "haproxy:3.0-alpine"),
    (("redis",), "redis:7.4-alpine"),
    (("valkey",), "valkey/valkey:8.0-alpine"),
    (("postgres", "postgresql"), "postgres:16-alpine"),
    (("mariadb",), "mariadb:11.4"),
    (("mysql",), "mysql:8.4"),
    (("mongo", "mongodb"), "mongo:7.0"),
    (("memcached",), "memcached:1.6-alpine"),
    (("rabbitmq", "amqp"), "rabbitmq:3.13-management-alpine"),
    (("kafka",), "apache/kafka:3.8.0"),
    (("node exporter", "node-exporter"), "prom/node-exporter:v1.8.2"),
    (("alertmanager",), "prom/alertmanager:v0.27.0"),
    (("prometheus",), "prom/prometheus:v2.54.1"),
    (("grafana",), "grafana/grafana:11.2.0"),
    (("elasticsearch",), "elasticsearch:8.15.1"),
    (("minio",), "minio/minio:RELEASE.2024-09-13T20-26-02Z"),
    (("vault",), "hashicorp/vault:1.17"),
    (("consul",), "hashicorp/consul:1.19"),
    (("jaeger",), "jaegertracing/all-in-one:1.60"),
    (("busybox",), "busybox:1.36"),
    # Kinds of service, when no product is named.
    (("reverse proxy", "load balancer"), "nginx:1.27-alpine"),
    (("web server", "static site", "static files", "website"), "nginx:1.27-alpine"),
    (("cache", "key-value", "key value"), "redis:7.4-alpine"),
    (("database", "sql"), "postgres:16-alpine"),
    (("message queue", "message broker", "queue"), "rabbitmq:3.13-management-alpine"),
    (("metrics", "monitoring"), "prom/prometheus:v2.54.1"),
    (("dashboard", "dashboards"), "grafana/grafana:11.2.0"),
    (("object storage", "s3"), "minio/minio:RELEASE.2024-09-13T20-26-02Z"),
    (("tracing",), "jaegertracing/all-in-one:1.60"),
])


class DockerServiceResource(Resource):
    """A Docker container kept as declared on each host: created when missing, recreated when its configuration
    differs, only started or stopped when that is all that differs. The login user must be able to run ``docker``.

    >>> web = DockerServiceResource(name="web", image="nginx:1.25-alpine", ports=["8080:80"],
    ...                             env_vars={"MODE": "prod"}, restart_policy="unless-stopped")
    >>> web.label, web.ports
    ("DockerServiceResource 'web'", ['8080:80'])
    """

    name: str = name_field("container name: letters, digits, `_`, `.`, `-`, starting with a letter or digit")
    image: str | None = Field(None, description="image reference (`\"nginx:1.25-alpine\"`); when left out, chosen from "
                                                "the `description` by a model or the offline catalog")
    ports: list[str] = Field(default_factory=list, description="`\"HOST:CONTAINER\"` bindings: `\"8080:80\"`, "
                                                               "`\"127.0.0.1:8080:80\"`, `\"53:53/udp\"`; a container "
                                                               "port alone (`\"80\"`) is published on a host port "
                                                               "Docker picks")
    volumes: list[str] = Field(default_factory=list, description="`\"SOURCE:TARGET\"` or `\"SOURCE:TARGET:ro\"` bind "
                                                                 "mounts or named volumes")
    env_vars: dict[str, str] = Field(default_factory=dict, description="environment variables; a variable removed from "
                                                                       "`main.py` is removed from the container")
    networks: list[str] = Field(default_factory=list, description="networks; the first is used at creation "
                                                                  "(`[\"host\"]`), the others connected after")
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = Field(
        "no", description="docker restart policy: `\"no\"`, `\"always\"`, `\"unless-stopped\"` or `\"on-failure\"`")
    command: list[str] | str | None = Field(None, description="command and arguments, as a list or a string (split "
                                                              "like a shell); the image's default when not set")
    present: bool = Field(True, description="`False` removes the container")
    running: bool = Field(True, description="`False` keeps it created but stopped")

    completable_fields = ("image",)
    catalogs = {"image": IMAGES}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CONTAINER_NAME.match(value):
            raise ValueError(f"{value!r} is not a container name: "
                             "letters, digits, '_', '.', '-', starting with a letter or digit")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(char.isspace() for char in value)):
            raise ValueError(f"{value!r} is not an image reference: use e.g. 'nginx:1.27-alpine' (no spaces)")
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[str]) -> list[str]:
        for port in value:
            if not _PORT.match(port):
                raise ValueError(f"{port!r} is not a port binding: use 'HOST:CONTAINER' or 'CONTAINER', e.g. '8080:80', "
                                 "'127.0.0.1:53:53/udp' or '80'")
        return value

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        for volume in value:
            if volume.count(":") not in (1, 2) or not all(volume.split(":")[:2]):
                raise ValueError(f"{volume!r} is not a volume: use 'SOURCE:TARGET' or 'SOURCE:TARGET:ro'")
        return value

    @field_validator("env_vars")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return value

    @property
    def command_args(self) -> list[str] | None:
        return shlex.split(self.command) if isinstance(self.command, str) else self.command

    def state_probes(self, target: Target) -> list[Probe]:
        return [(DockerContainers, self.name)]

    def _actual(self, observed: Observed) -> ContainerInfo | None:
        result = observed[DockerContainers]
        if result["error"]:
            raise HostReadError(f"docker: {result['error']}")
        return result["containers"].get(self.name)

    def observed_state(self, target: Target, observed: Observed) -> ContainerInfo | None:
        """The container of this name as ``docker inspect`` describes it (``None``: there is none)."""
        return self._actual(observed)

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        actual = self._actual(observed)
        if not self.present:
            diffs = [self.diff("present", False, True)] if actual else []
            return Evaluation(diffs, "present, wanted absent" if diffs else "absent")
        diffs = self.diffs(docker.container_differences(actual, docker.ContainerSpec(
            self.image or "", self.ports, self.volumes, self.env_vars, self.networks, self.restart_policy,
            self.command_args, self.running,
        )))
        if diffs:
            return Evaluation(diffs, describe(diffs))
        ports = f", ports {','.join(self.ports)}" if self.ports else ""
        return Evaluation([], f"{'running' if self.running else 'stopped'} (image {self.image}{ports})")

    def describe_diff(self, diff: Diff) -> str | None:
        if diff.field == "running":
            return "stopped, wanted running" if diff.expected else "running, wanted stopped"
        return super().describe_diff(diff)

    def is_present(self, target: Target, observed: Observed) -> bool:
        return self._actual(observed) is not None

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The container of this name as the host has it; its environment is what Clockwork set (the names
        its label lists), or the whole environment of a container Clockwork did not create."""
        actual = self._actual(observed)
        if actual is None:
            return None
        managed = actual["managed_env_keys"]
        env = actual["env"] if managed is None else {key: actual["env"][key] for key in managed if key in actual["env"]}
        return self._found(image=actual["image"], ports=actual["ports"], volumes=actual["volumes"], env_vars=env,
                           networks=actual["networks"], restart_policy=actual["restart_policy"],
                           command=actual["command"], present=True, running=actual["running"])

    def apply(self, target: Target) -> OperationMeta:
        if not self.present:
            return docker.container_absent(container=self.name)
        return docker.container(
            container=self.name, image=self.image or "", ports=self.ports, volumes=self.volumes, env=self.env_vars,
            networks=self.networks, restart_policy=self.restart_policy, command=self.command_args,
            running=self.running,
        )

    def destroy(self, target: Target) -> OperationMeta:
        return docker.container_absent(container=self.name)
