"""Docker containers kept as declared: created, recreated on change, started or stopped, removed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from clockwork.facts.docker import ENV_KEYS_LABEL, ContainerInfo, DockerContainers

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]


def normalize_port(port: str) -> str:
    """``"8080:80/tcp"`` → ``"8080:80"``: the form ``DockerContainers`` reports."""
    return port[: -len("/tcp")] if port.endswith("/tcp") else port


def container_differences(
    actual: ContainerInfo | None,
    *,
    image: str,
    ports: Sequence[str] = (),
    volumes: Sequence[str] = (),
    env: dict[str, str] | None = None,
    networks: Sequence[str] = (),
    restart_policy: str = "no",
    command: Sequence[str] | None = None,
    running: bool = True,
) -> list[Difference]:
    """What differs between a declared container and what ``DockerContainers`` found.

    Env vars are compared one by one (``env_vars.NAME``); a name Clockwork set
    earlier that is no longer declared counts too. ``networks`` and ``command``
    are compared only when declared.
    """
    if actual is None:
        return [("present", True, False)]
    differences: list[Difference] = []
    if actual["image"] != image:
        differences.append(("image", image, actual["image"]))
    wanted_ports = sorted(normalize_port(port) for port in ports)
    if actual["ports"] != wanted_ports:
        differences.append(("ports", wanted_ports, actual["ports"]))
    if actual["volumes"] != sorted(volumes):
        differences.append(("volumes", sorted(volumes), actual["volumes"]))
    env = env or {}
    for key, value in sorted(env.items()):
        if actual["env"].get(key) != value:
            differences.append((f"env_vars.{key}", value, actual["env"].get(key)))
    for key in sorted(set(actual["managed_env_keys"] or ()) - set(env)):
        if key in actual["env"]:
            differences.append((f"env_vars.{key}", None, actual["env"][key]))
    if networks and actual["networks"] != sorted(networks):
        differences.append(("networks", sorted(networks), actual["networks"]))
    if actual["restart_policy"] != restart_policy:
        differences.append(("restart_policy", restart_policy, actual["restart_policy"]))
    if command is not None and actual["command"] != list(command):
        differences.append(("command", list(command), actual["command"]))
    if actual["running"] != running:
        differences.append(("running", running, actual["running"]))
    return differences


def _create_command(
    name: str,
    image: str,
    ports: Sequence[str],
    volumes: Sequence[str],
    env: dict[str, str],
    networks: Sequence[str],
    restart_policy: str,
    command: Sequence[str] | None,
    running: bool,
) -> str:
    args = ["docker", "run", "-d"] if running else ["docker", "create"]
    args += ["--name", name, "--restart", restart_policy, "--label", f"{ENV_KEYS_LABEL}={','.join(sorted(env))}"]
    for port in ports:
        args += ["-p", port]
    for volume in volumes:
        args += ["-v", volume]
    for key, value in sorted(env.items()):
        args += ["-e", f"{key}={value}"]
    if networks:
        args += ["--network", networks[0]]
    args.append(image)
    args += list(command or ())
    return " ".join(shlex.quote(arg) for arg in args)


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
    + ports: ``"HOST:CONTAINER"`` bindings (``"127.0.0.1:8080:80"``, ``"53:53/udp"``)
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
    name, env = container, env or {}
    actual = host.get_fact(DockerContainers, keys=(name,))["containers"].get(name)
    differences = container_differences(
        actual, image=image, ports=ports, volumes=volumes, env=env, networks=networks,
        restart_policy=restart_policy, command=command, running=running,
    )
    if not differences:
        host.noop(f"container {name} is already as declared")
        return
    if any(field != "running" for field, _expected, _actual in differences):
        if actual is not None:
            yield f"docker rm -f {shlex.quote(name)}"
        yield _create_command(name, image, ports, volumes, env, networks, restart_policy, command, running)
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
    if container in host.get_fact(DockerContainers, keys=(container,))["containers"]:
        yield f"docker rm -f {shlex.quote(container)}"
    else:
        host.noop(f"container {container} is already absent")
