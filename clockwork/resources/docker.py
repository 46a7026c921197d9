"""Docker containers."""

from __future__ import annotations

import re
import shlex
from typing import Literal

from pydantic import Field, field_validator
from pyinfra.api.operation import OperationMeta

from clockwork.exceptions import HostReadError
from clockwork.facts.docker import DockerContainers
from clockwork.operations import docker
from clockwork.resources.base import Observed, Probe, Resource, Target, describe
from clockwork.results import Diff, Evaluation

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PORT = re.compile(r"^(?:(?:\d{1,3}\.){3}\d{1,3}:)?\d{1,5}:\d{1,5}(?:/(?:tcp|udp|sctp))?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DockerServiceResource(Resource):
    """A Docker container kept as declared on each host.

    >>> DockerServiceResource(name="web", image="nginx:1.25-alpine", ports=["8080:80"],
    ...                       env_vars={"MODE": "prod"}, restart_policy="unless-stopped")
    """

    image: str | None = Field(None, description="image reference; completed from the description when left out")
    ports: list[str] = Field(default_factory=list, description="'HOST:CONTAINER[/udp]' port bindings, e.g. '8080:80'")
    volumes: list[str] = Field(default_factory=list, description="'SOURCE:TARGET[:ro]' bind mounts or named volumes")
    env_vars: dict[str, str] = Field(default_factory=dict, description="environment variables")
    networks: list[str] = Field(default_factory=list, description="networks; the first is used at creation, e.g. ['host']")
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = Field("no", description="docker restart policy")
    command: list[str] | str | None = Field(None, description="command and arguments; the image's default when not set")
    present: bool = Field(True, description="False removes the container")
    running: bool = Field(True, description="False keeps it created but stopped")

    completable_fields = ("image",)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CONTAINER_NAME.match(value):
            raise ValueError(f"{value!r} is not a container name: letters, digits, '_', '.', '-', starting with a letter or digit")
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
                raise ValueError(f"{port!r} is not a port binding: use 'HOST:CONTAINER', e.g. '8080:80' or '127.0.0.1:53:53/udp'")
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

    def _actual(self, observed: Observed):
        result = observed[DockerContainers]
        if result["error"]:
            raise HostReadError(f"docker: {result['error']}")
        return result["containers"].get(self.name)

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        actual = self._actual(observed)
        if not self.present:
            diffs = [Diff("present", False, True)] if actual else []
            return Evaluation(diffs, "present, wanted absent" if diffs else "absent")
        raw = docker.container_differences(actual, docker.ContainerSpec(
            self.image or "", self.ports, self.volumes, self.env_vars, self.networks, self.restart_policy,
            self.command_args, self.running,
        ))
        diffs = [Diff(*difference) for difference in raw]
        if diffs:
            return Evaluation(diffs, describe(diffs))
        ports = f", ports {','.join(self.ports)}" if self.ports else ""
        return Evaluation([], f"{'running' if self.running else 'stopped'} (image {self.image}{ports})")

    def is_present(self, target: Target, observed: Observed) -> bool:
        return self._actual(observed) is not None

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
