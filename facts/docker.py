"""Docker containers as Clockwork compares them: one ``docker inspect`` for many names."""

from __future__ import annotations

import json
import shlex
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactValueError

#: Label holding the env var names Clockwork set (comma-separated), so that a removed one shows as drift.
ENV_KEYS_LABEL = "clockwork.env-keys"

_MISSING_MARKERS = ("No such container:", "No such object:")


class ContainerInfo(TypedDict):
    """The parts of ``docker inspect`` that a container resource declares."""

    name: str
    image: str
    image_id: str
    running: bool
    status: str
    ports: list[str]
    volumes: list[str]
    env: dict[str, str]
    managed_env_keys: list[str] | None
    networks: list[str]
    restart_policy: str
    command: list[str]


class ContainersResult(TypedDict):
    """``containers`` found by name; ``error`` when docker itself could not answer."""

    containers: dict[str, ContainerInfo]
    error: str | None


def _ports(bindings: dict | None) -> list[str]:
    ports = []
    for container_port, host_ports in sorted((bindings or {}).items()):
        port, _, proto = container_port.partition("/")
        suffix = "" if proto in ("", "tcp") else f"/{proto}"
        for binding in host_ports or []:
            host_ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
            prefix = f"{host_ip}:" if host_ip else ""
            ports.append(f"{prefix}{host_port}:{port}{suffix}" if host_ip or host_port else f"{port}{suffix}")
    return sorted(ports)


def container_info(inspect: dict) -> ContainerInfo:
    """Reduce one ``docker inspect`` document to a ``ContainerInfo``."""
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    state = inspect.get("State") or {}
    labels = config.get("Labels") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    managed = labels.get(ENV_KEYS_LABEL)
    return ContainerInfo(
        name=inspect.get("Name", "").lstrip("/"),
        image=config.get("Image", ""),
        image_id=inspect.get("Image", ""),
        running=bool(state.get("Running")),
        status=state.get("Status", "unknown"),
        ports=_ports(host_config.get("PortBindings")),
        volumes=sorted(host_config.get("Binds") or []),
        env=env,
        managed_env_keys=sorted(filter(None, managed.split(","))) if managed is not None else None,
        networks=sorted((inspect.get("NetworkSettings") or {}).get("Networks") or {})
        or [host_config.get("NetworkMode", "default")],
        restart_policy=(host_config.get("RestartPolicy") or {}).get("Name") or "no",
        command=list(config.get("Cmd") or []),
    )


class DockerContainers(FactBase[ContainersResult]):
    """
    Returns the named containers, in one ``docker inspect``; a name that is not
    there is absent from ``containers``:

    .. code:: python

        host.get_fact(DockerContainers, keys=("web", "cache"))
        {
            "containers": {"web": {"image": "nginx:1.25-alpine", "running": True,
                                   "ports": ["8080:80"], ...}},
            "error": None,
        }

    ``error`` holds docker's message when docker is missing or its daemon does
    not answer, so that "no container" is never confused with "could not tell".
    """

    def command(self, keys: tuple[str, ...]) -> str:
        for name in keys:
            if not name or any(char.isspace() for char in name):
                raise FactValueError(f"DockerContainers: invalid container name {name!r}")
        names = " ".join(shlex.quote(name) for name in keys)
        return f"docker inspect --type container --format '{{{{json .}}}}' -- {names} 2>&1 || true"

    @staticmethod
    def default() -> ContainersResult:
        return ContainersResult(containers={}, error=None)

    def process(self, output: list[str]) -> ContainersResult:
        containers: dict[str, ContainerInfo] = {}
        errors = []
        for line in output:
            if line.startswith("{"):
                info = container_info(json.loads(line))
                containers[info["name"]] = info
            elif line.strip() and not any(marker in line for marker in _MISSING_MARKERS):
                errors.append(line.strip())
        return ContainersResult(containers=containers, error="; ".join(dict.fromkeys(errors)) or None)
