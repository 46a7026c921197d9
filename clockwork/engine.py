"""The only module that drives pyinfra's API: inventory, connections, batched facts, operations.

>>> with Session(load_inventory("@local", Path(".")), project_dir=Path(".")) as session:
...     unreachable = session.connect()
...     observed = session.observe({host: probes for host in session.hosts})
"""

from __future__ import annotations

import fnmatch
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from pyinfra.api import Config, FactBase, Inventory, State
from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta
from pyinfra.api.operations import run_ops
from pyinfra.api.state import BaseStateCallback
from pyinfra.connectors.local import LocalConnector
from pyinfra.context import ctx_host, ctx_state

from clockwork.exceptions import InventoryError
from clockwork.facts.batch import Batch
from clockwork.resources.base import Observed, Probe, Target

#: Progress callback: (phase, hosts done, hosts in all). Phases: connect, read, apply.
Progress = Callable[[str, int, int], None]

CONNECT_TIMEOUT = 10


def load_inventory(spec: str, cwd: Path) -> Inventory:
    """Build an inventory from anything pyinfra's CLI accepts: a file, ``@local``, ``a,b,c``."""
    from pyinfra_cli.exceptions import CliError
    from pyinfra_cli.inventory import make_inventory

    if spec.endswith(".py") and not (cwd / spec).is_file() and not Path(spec).is_file():
        raise InventoryError(f"inventory file not found: {spec}")
    path = cwd / spec
    try:
        # Inventory files are executed by pyinfra's loader, which records the file on a State.
        with ctx_state.use(State()):
            inventory = make_inventory(str(path) if path.is_file() else spec, cwd=str(cwd))
    except (CliError, SyntaxError, ImportError, ValueError, TypeError, KeyError, OSError) as error:
        raise InventoryError(f"inventory {spec}: {error}") from None
    if not len(inventory):
        raise InventoryError(f"inventory {spec} has no hosts")
    return inventory


def host_groups(inventory: Inventory) -> dict[str, set[str]]:
    """Host name → the names of the groups it belongs to."""
    groups: dict[str, set[str]] = {host.name: set() for host in inventory}
    for group, hosts in inventory.groups.items():
        for host in hosts:
            groups[host.name].add(group)
    return groups


def select_hosts(inventory: Inventory, patterns: Iterable[str] | None) -> list[str]:
    """Host names matching any pattern (host name, group name, or glob), in inventory order."""
    names = [host.name for host in inventory]
    if not patterns:
        return names
    groups = host_groups(inventory)
    selected = []
    for pattern in patterns:
        matched = [
            name for name in names
            if fnmatch.fnmatchcase(name, pattern) or any(fnmatch.fnmatchcase(g, pattern) for g in groups[name])
        ]
        if not matched:
            raise InventoryError(f"--limit {pattern}: no host or group of that name in the inventory")
        selected += [name for name in matched if name not in selected]
    return [name for name in names if name in selected]


class _TcpNoDelay(BaseStateCallback):
    """paramiko leaves Nagle on: every command then waits ~40 ms for a delayed ACK."""

    @staticmethod
    def host_connect(state: State, host: Host) -> None:
        client = getattr(host.connector, "client", None)
        transport = client.get_transport() if client is not None else None
        if transport is not None:
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class OperationOutcome:
    """What one operation did on one host."""

    changed: bool
    error: str | None = None


class Session:
    """One single-use pyinfra State over the selected hosts: connect, observe, operate, close."""

    def __init__(
        self,
        inventory: Inventory,
        project_dir: Path,
        hosts: list[str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.inventory = inventory
        self.project_dir = project_dir
        self.selected = hosts if hosts is not None else [host.name for host in inventory]
        self.progress = progress or (lambda phase, done, total: None)
        config = Config(CONNECT_TIMEOUT=CONNECT_TIMEOUT, IGNORE_ERRORS=True, PARALLEL=max(len(self.selected), 1))
        limit = [inventory.get_host(name) for name in self.selected]
        self.state = State(inventory, config, check_for_changes=False, initial_limit=limit)
        self.state.add_callback_handler(_TcpNoDelay())
        self.hosts: list[Host] = []

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def target(self, host: Host) -> Target:
        local = issubclass(host.connector_cls, LocalConnector)
        return Target(host.name, base_dir=str(self.project_dir) if local else None, local=local)

    def _parallel(self, phase: str, hosts: list[Host], work: Callable[[Host], Any]) -> dict[Host, Any]:
        def run(host: Host) -> Any:
            with ctx_state.use(self.state), ctx_host.use(host):
                return work(host)

        greenlets = {self.state.pool.spawn(run, host): host for host in hosts}
        results: dict[Host, Any] = {}
        for done, greenlet in enumerate(gevent.iwait(list(greenlets)), start=1):
            results[greenlets[greenlet]] = greenlet.get()
            self.progress(phase, done, len(greenlets))
        return results

    def connect(self) -> dict[str, str]:
        """Connect to every selected host in parallel; returns unreachable host → error text."""

        def connect(host: Host) -> str | None:
            try:
                host.connect(show_errors=False, raise_exceptions=True)
            except Exception as error:  # any failure makes this one host unreachable
                return str(error) or type(error).__name__
            return None

        hosts = [self.inventory.get_host(name) for name in self.selected]
        errors = self._parallel("connect", hosts, connect)
        unreachable = {host.name: error for host, error in errors.items() if error is not None}
        self.hosts = [host for host in hosts if host.name not in unreachable]
        for host in self.hosts:
            self.state.activate_host(host)
        return unreachable

    def observe(self, probes: dict[Host, list[Probe]]) -> dict[Host, Observed | str]:
        """Read every host's probes in one batched command per host, all hosts in parallel.

        A host whose command failed maps to the error text instead.
        """

        def read(host: Host) -> Observed | str:
            by_fact: dict[type[FactBase], list[str]] = {}
            for fact_class, key in probes.get(host, []):
                keys = by_fact.setdefault(fact_class, [])
                if key not in keys:
                    keys.append(key)
            if not by_fact:
                return Observed({})
            requests = tuple((fact_class, tuple(keys)) for fact_class, keys in by_fact.items())
            try:
                values = host.get_fact(Batch, requests=requests)
            except Exception as error:  # the host dropped or the command could not run
                return f"could not read host state: {error or type(error).__name__}"
            if len(values) != len(requests):
                return "could not read host state: incomplete output"
            return Observed(dict(zip(by_fact, values)))

        return self._parallel("read", [host for host in self.hosts if host in probes], read)

    def operate(self, calls: dict[Host, list[tuple[Any, Callable[[Target], OperationMeta]]]]) -> dict[tuple[Host, Any], OperationOutcome]:
        """Add each host's operations (``call(target)`` returns the pyinfra OperationMeta) and run them.

        Hosts run independently of each other; one failed operation does not stop
        the others on its host. Keys are the caller's, returned with each outcome.
        """
        metas: dict[tuple[Host, Any], OperationMeta] = {}
        for host, host_calls in calls.items():
            with ctx_state.use(self.state), ctx_host.use(host):
                for key, call in host_calls:
                    metas[(host, key)] = call(self.target(host))
        if not metas:
            return {}
        total = len(calls)
        self.progress("apply", 0, total)
        failure = None
        try:
            run_ops(self.state, no_wait=True)
        except Exception as error:  # a host failed mid-run: its unfinished operations are errors
            failure = str(error) or type(error).__name__
        self.progress("apply", total, total)
        return {key: _outcome(meta, failure) for key, meta in metas.items()}

    def close(self) -> None:
        """Close every SSH connection (pyinfra's disconnect leaves the sockets open)."""
        for host in self.hosts:
            client = getattr(host.connector, "client", None)
            if client is not None:
                client.close()
            host.connected = False


def _outcome(meta: OperationMeta, failure: str | None) -> OperationOutcome:
    if not meta.is_complete():
        return OperationOutcome(False, f"not run: {failure or 'the host failed earlier'}")
    if meta.did_succeed():
        return OperationOutcome(meta.did_change())
    output = (meta.stderr or meta.stdout or "command failed").strip().splitlines()
    return OperationOutcome(bool(meta.did_change()), output[-1] if output else "command failed")
