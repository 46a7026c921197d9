"""One pyinfra State over a command's hosts: connect once, read in batched facts, run any number of operation
batches on the same connections, close."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import gevent
from paramiko import ProxyCommand, SSHClient, SSHException
from pyinfra.api import Config, FactBase, Inventory, State
from pyinfra.api.command import StringCommand
from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta
from pyinfra.api.state import BaseStateCallback
from pyinfra.context import ctx_host, ctx_state

from clockwork.engine import batch
from clockwork.engine.hostkeys import index_host_keys
from clockwork.engine.inventory import host_target
from clockwork.engine.types import Observed, Probe, Target
from clockwork.facts.batch import Batch
from clockwork.limits import current_parallel
from clockwork.operations.files import LEFT_IN_PLACE

if TYPE_CHECKING:
    from typing import Self


class Call(NamedTuple):
    """One operation for ``Session.operate``: the caller's key, what adds it on a host, what was read on that
    host for it (its facts come from there; ``None``: read as it runs), and whether it runs only if every
    operation of its host before it succeeded (``guarded``; it then comes last)."""

    key: Any
    add: Callable[[Target], OperationMeta]
    facts: Observed | None = None
    guarded: bool = False


#: Progress callback: (phase, hosts done, hosts in all). Phases: connect, read, apply.
Progress = Callable[[str, int, int], None]

CONNECT_TIMEOUT = 10

#: The error of an operation that did not run because its host's connection was lost mid-apply.
NOT_RUN_LOST = "not run: host connection lost"

#: How an operation declines on purpose to change its host (``files.absent`` of a directory that holds what it
#: was not asked to remove): it fails, and its last line of error output starts so. pyinfra keeps no exit
#: status, so this line is the contract; the engine turns it into ``OperationOutcome.declined``.
DECLINED = LEFT_IN_PLACE


class _TcpNoDelay(BaseStateCallback):
    """paramiko leaves Nagle on: every command then waits ~40 ms for a delayed ACK."""

    @staticmethod
    def host_connect(state: State, host: Host) -> None:
        client = getattr(host.connector, "client", None)
        transport = client.get_transport() if client is not None else None
        if transport is not None and isinstance(transport.sock, socket.socket):  # not through a ProxyCommand
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class OperationOutcome:
    """What one operation did on one host: changed it or not, failed (``error``), or declined on purpose to
    change it (``declined``: why, e.g. ``left in place: not empty (cache)``; neither a change nor an error)."""

    changed: bool
    error: str | None = None
    #: Not run on purpose: a requirement failed (``error`` says which).
    skipped: bool = False
    declined: str | None = None


class Session:
    """One single-use pyinfra State over the selected hosts: connect, observe, operate, close."""

    def __init__(
        self,
        inventory: Inventory,
        project_dir: Path,
        hosts: list[str] | None = None,
        progress: Progress | None = None,
        parallel: int | None = None,
    ) -> None:
        self.inventory = inventory
        self.project_dir = project_dir
        self.selected = hosts if hosts is not None else [host.name for host in inventory]
        self.progress = progress or (lambda phase, done, total: None)
        #: At most this many hosts are worked on, and connected, at once (default: ``connection_limit``'s).
        self.parallel = parallel if parallel is not None else current_parallel()
        if self.parallel < 1:
            raise ValueError(f"parallel must be 1 or more, not {self.parallel}")
        config = Config(CONNECT_TIMEOUT=CONNECT_TIMEOUT, IGNORE_ERRORS=True,
                        PARALLEL=max(min(len(self.selected), self.parallel), 1))
        limit = [inventory.get_host(name) for name in self.selected]
        self.state = State(inventory, config, check_for_changes=False, initial_limit=limit)
        self.state.add_callback_handler(_TcpNoDelay())
        self.hosts: list[Host] = []
        self._unreachable: dict[str, str] | None = None
        self._targets: dict[Host, Target] = {}
        #: Hosts whose connection was lost during an operation batch: later batches and reads leave them out.
        self.lost: dict[str, str] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def target(self, host: Host) -> Target:
        if host not in self._targets:
            self._targets[host] = host_target(host, self.project_dir)
        return self._targets[host]

    def _parallel(self, phase: str, hosts: list[Host], work: Callable[[Host], Any]) -> dict[Host, Any]:
        """``work(host)`` for every host in parallel greenlets, at most ``self.parallel`` at once; an exception is
        raised here, once.

        Hosts beyond ``self.parallel`` are worked on in waves, with at most that many
        connections open at any time: before a wave, hosts outside it give up their
        connections as far as needed (those still connected go first, so a phase
        reconnects only the hosts beyond the limit); in a wave, a reachable host that
        gave up its connection is connected again before ``work``. (A greenlet that
        dies of an exception has gevent print its traceback; caught in the greenlet
        and raised in the caller, a bug is reported once, as a bug.)
        """

        reachable = set(self.hosts)

        def run(host: Host) -> tuple[bool, Any]:
            with ctx_state.use(self.state), ctx_host.use(host):
                try:
                    if phase != "connect" and not host.connected and host in reachable:
                        host.connect(show_errors=False)  # when it fails, ``work`` fails as on a lost connection
                    return True, work(host)
                except Exception as error:  # noqa: BLE001 (raised again below, in the caller)
                    return False, error

        ordered = sorted(hosts, key=lambda host: not host.connected)
        results: dict[Host, Any] = {}
        failure: Exception | None = None
        done = 0
        for start in range(0, len(ordered), self.parallel):
            wave = set(ordered[start:start + self.parallel])
            others = [host for host in self.inventory if host.connected and host not in wave]
            for host in others[:max(0, len(others) + len(wave) - self.parallel)]:
                _hang_up(host)
            greenlets = {self.state.pool.spawn(run, host): host for host in ordered[start:start + self.parallel]}
            for greenlet in gevent.iwait(list(greenlets)):
                ok, value = greenlet.get()
                if ok:
                    results[greenlets[greenlet]] = value
                else:
                    failure = failure or value
                done += 1
                self.progress(phase, done, len(hosts))
        if failure is not None:
            raise failure
        return results

    def connect(self) -> dict[str, str]:
        """Connect to every selected host in parallel, once per session (later calls return the first answer);
        returns unreachable host → error text."""
        if self._unreachable is not None:
            return dict(self._unreachable)

        def connect(host: Host) -> str | None:
            try:
                host.connect(show_errors=False, raise_exceptions=True)
            except Exception as error:  # noqa: BLE001 (any failure makes this one host unreachable)
                if isinstance(error.__context__, socket.gaierror):  # say which name did not resolve
                    tried = host.data.get("ssh_hostname") or host.name
                    return f"could not resolve host name {tried!r} ({error.__context__.strerror})"
                return str(error) or type(error).__name__
            return None

        index_host_keys()
        hosts = [self.inventory.get_host(name) for name in self.selected]
        errors = self._parallel("connect", hosts, connect)
        unreachable = {host.name: error for host, error in errors.items() if error is not None}
        self.hosts = [host for host in hosts if host.name not in unreachable]
        for host in self.hosts:
            self.state.activate_host(host)
        self._unreachable = unreachable
        return dict(unreachable)

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
            batched = Batch()
            try:  # the fact's command run as pyinfra's get_fact would, without its per-call argument checks
                status, output = host.run_shell_command(StringCommand(batched.command(requests=requests)),
                                                        print_output=False)
            except Exception as error:  # noqa: BLE001 (the host dropped or the command could not run)
                return f"could not read host state: {error or type(error).__name__}"
            values = batched.process(output.stdout_lines) if status and output.stdout_lines else []
            if len(values) != len(requests):
                return "could not read host state: incomplete output"
            return Observed(dict(zip(by_fact, values, strict=True)), dict(requests))

        return self._parallel("read", [host for host in self.hosts if host in probes], read)

    def operate(self, calls: dict[Host, list[Call]]) -> dict[tuple[Host, Any], OperationOutcome]:
        """Add each host's operations (``call(target)`` returns the pyinfra OperationMeta) and run them: what
        one host runs goes in one round trip where its commands allow (``batch``), each operation's facts
        taken from what the call says was read there (``None``: read again).

        Hosts run independently of each other; one failed operation does not stop
        the others on its host. A host whose connection drops keeps the outcomes of
        the operations it completed; the one it was running and the rest are
        ``NOT_RUN_LOST``. Keys are the caller's, returned with each outcome. A session
        runs any number of batches (corrections, then expiry, then manifests), each on
        the connections it already has.
        """
        metas: dict[tuple[Host, Any], OperationMeta] = {}
        facts: dict[Host, dict[str, Observed | None]] = {}
        guarded: dict[Host, frozenset[str]] = {}
        for host, host_calls in calls.items():
            with ctx_state.use(self.state), ctx_host.use(host):
                for call in host_calls:
                    meta = metas[(host, call.key)] = call.add(self.target(host))
                    facts.setdefault(host, {})[meta._hash] = call.facts
                    if call.guarded:
                        guarded[host] = guarded.get(host, frozenset()) | {meta._hash}
        if not metas:
            return {}
        # This batch's operations, per host (pyinfra's hashes are per host position: another host's earlier
        # operation may share a hash), in pyinfra's order.
        order = {op_hash: index for index, op_hash in enumerate(self.state.get_op_order())}
        self.state.is_executing = True
        self.progress("apply", 0, len(calls))
        try:
            runs = self._parallel("apply", list(calls), lambda host: self._run_host(
                host, [op_hash for op_hash in order if op_hash in facts[host]], facts[host],
                guarded.get(host, frozenset())))
        finally:
            self.state.is_executing = False  # else pyinfra runs the next batch's operations as they are added
        for host, (lost_at, _errors) in runs.items():
            if lost_at is not None:
                self.lost[host.name] = "connection lost during the run"
                self.hosts = [connected for connected in self.hosts if connected is not host]
        outcomes = {}
        for (host, key), meta in metas.items():
            lost_at, errors = runs[host]
            if lost_at is not None and order[meta._hash] >= order[lost_at]:
                outcomes[(host, key)] = OperationOutcome(False, NOT_RUN_LOST)
            elif meta._hash in errors:
                outcomes[(host, key)] = OperationOutcome(False, errors[meta._hash])
            else:
                outcomes[(host, key)] = _outcome(meta)
        return outcomes

    def _run_host(self, host: Host, order: list[str], facts: dict[str, Observed | None],
                  guarded: frozenset[str]) -> tuple[str | None, dict[str, str]]:
        """Run ``host``'s operations in order (``batch.run``), stopping when its connection is lost.

        Returns the operation it was lost at (or ``None``) and the errors of
        operations that did not run on a live connection.
        """
        errors: dict[str, str] = {}
        for op_hash, ran in batch.run(self.state, host, order, facts, guarded):
            if not isinstance(ran, Exception):
                continue  # completed: its own outcome, whatever happened after it
            if not errors and not _connected(host):  # asked once, at the first that did not run
                return op_hash, errors
            errors[op_hash] = f"not run: {ran or type(ran).__name__}"
        return None, errors

    def close(self) -> None:
        """Close every SSH connection (pyinfra's disconnect leaves the sockets open)."""
        for host in self.hosts:
            _close_client(host)
            host.connected = False


def _end_proxy(proxy: ProxyCommand) -> None:
    """Stop an SSH ProxyCommand's process if it still runs."""
    if proxy.process.poll() is None:
        proxy.process.terminate()


def _hang_up(host: Host) -> None:
    """Close ``host``'s SSH connection to make room for another one (``host.connect()`` opens it again)."""
    host.disconnect()  # pyinfra's: its SFTP cache and any sudo askpass file go, while the connection lasts
    _close_client(host)


def _close_client(host: Host) -> None:
    """Close ``host``'s SSH client and its socket."""
    client = getattr(host.connector, "client", None)
    if client is not None:
        transport = client.get_transport()
        if transport is not None and isinstance(transport.sock, ProxyCommand):
            # paramiko's close kills the command even when it has exited and been reaped already: a
            # ProcessLookupError printed by the transport's thread. End it only while it runs.
            transport.sock.close = functools.partial(_end_proxy, transport.sock)  # type: ignore[method-assign]
        client.close()


def _connected(host: Host) -> bool:
    """Whether ``host``'s SSH connection still works (hosts of other connectors always do).

    Asked after an operation failed: a dropped connection may not be noticed yet
    (its transport still looks active), so a channel is opened to find out.
    """
    client = getattr(host.connector, "client", None)
    if not isinstance(client, SSHClient):
        return True
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        return False
    try:
        transport.open_session(timeout=CONNECT_TIMEOUT).close()
    except (SSHException, OSError, EOFError):
        return False
    return True


def _outcome(meta: OperationMeta) -> OperationOutcome:
    if not meta.is_complete():
        return OperationOutcome(False, "not run: the host failed earlier")
    if meta.did_succeed():
        return OperationOutcome(meta.did_change())
    output = (meta.stderr or meta.stdout or "command failed").strip().splitlines()
    if output == [batch.SKIPPED]:
        return OperationOutcome(False, batch.SKIPPED, skipped=True)
    if output and output[-1].startswith(DECLINED):
        return OperationOutcome(False, declined=output[-1])
    return OperationOutcome(bool(meta.did_change()), output[-1] if output else "command failed")
