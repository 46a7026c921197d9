"""Docker containers kept as declared: created, recreated on change, started or stopped, removed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from clockwork.facts.docker import ENV_KEYS_LABEL, ContainerInfo, DockerContainers

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]


def normalize_port(port: str) -> str:
    """``"8080:80/tcp"`` → ``"8080:80"``, ``"80/tcp"`` → ``"80"``: the form ``DockerContainers`` reports."""
    return port[: -len("/tcp")] if port.endswith("/tcp") else port


def normalize_image(image: str) -> str:
    """An image reference as Docker understands it: Docker Hub's registry, ``library/`` namespace and ``latest``
    tag written out where they are implied, so that every way of writing one reference compares equal.

    >>> {normalize_image(ref) for ref in ("nginx", "nginx:latest", "library/nginx", "docker.io/library/nginx:latest",
    ...                                   "index.docker.io/library/nginx")}
    {'docker.io/library/nginx:latest'}
    >>> normalize_image("registry.local:5000/api"), normalize_image("nginx@sha256:ab12")
    ('registry.local:5000/api:latest', 'docker.io/library/nginx@sha256:ab12')
    """
    name, at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = ("docker.io" if first == "index.docker.io" else first), rest
    else:
        registry, path = "docker.io", name
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not at and ":" not in path.rpartition("/")[2]:
        path += ":latest"
    return f"{registry}/{path}{at}{digest}"


@dataclass(frozen=True)
class ContainerSpec:
    """What a container is declared to be (every field but its name)."""

    image: str
    ports: Sequence[str] = ()
    volumes: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    networks: Sequence[str] = ()
    restart_policy: str = "no"
    command: Sequence[str] | None = None
    running: bool = True


def container_differences(actual: ContainerInfo | None, spec: ContainerSpec) -> list[Difference]:
    """What differs between a declared container and what ``DockerContainers`` found.

    Env vars are compared one by one (``env_vars.NAME``); a name Clockwork set
    earlier that is no longer declared counts too. ``networks`` and ``command``
    are compared only when declared.
    """
    if actual is None:
        return [("present", True, False)]
    differences: list[Difference] = []
    if normalize_image(actual["image"]) != normalize_image(spec.image):
        differences.append(("image", spec.image, actual["image"]))
    wanted_ports = sorted(normalize_port(port) for port in spec.ports)
    if actual["ports"] != wanted_ports:
        differences.append(("ports", wanted_ports, actual["ports"]))
    if actual["volumes"] != sorted(spec.volumes):
        differences.append(("volumes", sorted(spec.volumes), actual["volumes"]))
    for key, value in sorted(spec.env.items()):
        if actual["env"].get(key) != value:
            differences.append((f"env_vars.{key}", value, actual["env"].get(key)))
    for key in sorted(set(actual["managed_env_keys"] or ()) - set(spec.env)):
        if key in actual["env"]:
            differences.append((f"env_vars.{key}", None, actual["env"][key]))
    if spec.networks and actual["networks"] != sorted(spec.networks):
        differences.append(("networks", sorted(spec.networks), actual["networks"]))
    if actual["restart_policy"] != spec.restart_policy:
        differences.append(("restart_policy", spec.restart_policy, actual["restart_policy"]))
    if spec.command is not None and actual["command"] != list(spec.command):
        differences.append(("command", list(spec.command), actual["command"]))
    if actual["running"] != spec.running:
        differences.append(("running", spec.running, actual["running"]))
    return differences


def _create_command(name: str, spec: ContainerSpec) -> str:
    args = ["docker", "run", "-d"] if spec.running else ["docker", "create"]
    args += ["--name", name, "--restart", spec.restart_policy, "--label", f"{ENV_KEYS_LABEL}={','.join(sorted(spec.env))}"]
    for port in spec.ports:
        args += ["-p", port]
    for volume in spec.volumes:
        args += ["-v", volume]
    for key, value in sorted(spec.env.items()):
        args += ["-e", f"{key}={value}"]
    if spec.networks:
        args += ["--network", spec.networks[0]]
    args.append(spec.image)
    args += list(spec.command or ())
    return " ".join(shlex.quote(arg) for arg in args)


def _containers(name: str) -> dict[str, ContainerInfo]:
    """The container by that name, if any; docker failing to answer is an error, not "no container"."""
    result = host.get_fact(DockerContainers, keys=(name,))
    if result["error"]:
        raise OperationError(f"docker: {result['error']}")
    return result["containers"]


@operation()
def container(
    container: str,
    image: str,
    ports: Sequence[str] = (),
    volumes: Sequence[str] = (),
    env: dict[str, str] | None = None,
    networks: Sequence[str] = (),
    restart_policy: str = "no",
    command: Sequence[str] | None = None,
    running: bool = True,
):
    """
    Keep a container named ``name`` as declared: create it, recreate it when its
    configuration differs, or only start/stop it when that is all that differs.

    + container: container name (``name`` is pyinfra's operation-name argument)
    + image: image reference, e.g. ``"nginx:1.25-alpine"``
    + ports: ``"HOST:CONTAINER"`` bindings (``"127.0.0.1:8080:80"``, ``"53:53/udp"``), or a container port
      alone (``"80"``, ``"53/udp"``: published on a host port Docker picks)
    + volumes: ``"SOURCE:TARGET[:ro]"`` bind mounts or named volumes
    + env: environment variables
    + networks: networks to attach, the first at creation (e.g. ``["host"]``)
    + restart_policy: ``no``, ``always``, ``unless-stopped`` or ``on-failure``
    + command: command and arguments; ``None`` keeps the image's default
    + running: ``False`` keeps the container created but stopped

    **Example:**

    .. code:: python

        docker.container(container="web", image="nginx:1.25-alpine", ports=["8080:80"])
    """
    name = container
    spec = ContainerSpec(image, ports, volumes, env or {}, networks, restart_policy, command, running)
    actual = _containers(name).get(name)
    differences = container_differences(actual, spec)
    if not differences:
        host.noop(f"container {name} is already as declared")
        return
    if any(field != "running" for field, _expected, _actual in differences):
        if actual is not None:
            yield f"docker rm -f {shlex.quote(name)}"
        yield _create_command(name, spec)
        for network in networks[1:]:
            yield f"docker network connect {shlex.quote(network)} {shlex.quote(name)}"
    else:
        yield f"docker {'start' if running else 'stop'} {shlex.quote(name)}"


@operation()
def container_absent(container: str):
    """
    Remove the container named ``container`` (stopping it first) if it exists.

    **Example:**

    .. code:: python

        docker.container_absent(container="web")
    """
    if container in _containers(container):
        yield f"docker rm -f {shlex.quote(container)}"
    else:
        host.noop(f"container {container} is already absent")
