"""A host's operations as one command: what one batch changes on one host goes in one SSH round trip.

pyinfra runs every command of every operation as its own remote command (one round trip each) and reads an
operation's facts again as it runs (another). The engine has read those facts already, in its batched read.
Here each operation's commands are made from those facts (``known_facts``), rendered as pyinfra would run them
(``make_unix_command_for_host``: sudo, environment; a command that needs no shell of its own runs in its
operation's subshell), and joined into one script: every operation's commands chained as pyinfra runs them,
its output and exit status after it, behind a marker line, so that each operation still succeeds, fails or
declines on its own and a failing one does not stop the ones after it. The script goes to the host on the
command's standard input (no limit on its size) and is read whole before any of it runs. When the connection
goes (the controller was killed), the operation in progress ends and the script stops at its marker: nothing
after it runs.

An operation whose commands a script cannot carry (a Python callback, a file upload, retries, a time limit, no
shell of their own) runs on its own through pyinfra, in its place in the order. A guarded operation (the
host's manifest, written in the same command as the changes it records) runs only if every operation before
it succeeded, and only in that command (else it is skipped: the caller writes it after). Each operation's
output is base64-encoded on the host, so that no byte of it can break the reading of the rest (paramiko
decodes strictly) or pass for one of pyinfra's prompts (a "password is required" line would have pyinfra ask
for a sudo password and run the whole script again).

>>> text = script([(0, ["mkdir -p app"], False), (1, ["echo hi >&2", "false"], False)], "n0nce")
>>> print(*(line for line in text.splitlines() if line.startswith("cw_output")), sep="\\n")
cw_output=$({ mkdir -p app; } </dev/null 2>&1); cw_status=$?
cw_output=$({ echo hi >&2 && false; } </dev/null 2>&1); cw_status=$?
>>> parse(["clockwork-op:n0nce:0:0", "aGkK", "clockwork-op:n0nce:1:1", "clockwork-op:n0nce:2:skip"], "n0nce")
{0: (0, []), 1: (1, ['hi']), 2: (None, [])}
"""

from __future__ import annotations

import binascii
import contextlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from paramiko import SSHException
from pyinfra.api import FactBase, State
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.command import PyinfraCommand, StringCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta
from pyinfra.api.operations import run_host_op
from pyinfra.connectors.util import CommandOutput, OutputLine, make_unix_command_for_host

from clockwork.engine.types import Observed
from clockwork.exceptions import HostReadError

#: Each operation's output ends with a line ``clockwork-op:NONCE:INDEX:STATUS``; the nonce is new per batch, so
#: no operation's own output can pass for one.
MARKER = "clockwork-op"

#: Connector arguments whose commands need a shell of their own (``sudo … sh -c '…'``, a ``cd`` or ``export``
#: that must not reach the operation's next command); without them a command runs in its operation's subshell.
_OWN_SHELL = ("_sudo", "_su_user", "_doas", "_dzdo", "_chdir", "_env")

#: The output of a guarded operation that did not run because one before it failed.
SKIPPED = "skipped: an operation before it failed on this host"

#: Connector arguments that only pyinfra's own run of one command honours, with their defaults: an operation
#: that sets one of them otherwise runs alone.
_ALONE: dict[str, Any] = {"_timeout": None, "_success_exit_codes": [0], "_get_pty": False, "_stdin": None,
                          "_retries": 0, "_retry_until": None}


def _alone(arguments: Mapping[str, Any]) -> bool:
    """Whether these arguments ask for what only pyinfra's own run of a command honours."""
    return any(arguments.get(name, default) not in (default, None) for name, default in _ALONE.items())


@dataclass
class Prepared:
    """One operation of a batch: its commands as shell text (``None``: it runs on its own through pyinfra), the
    pyinfra commands they came from, or why it failed before any of them ran (``error``)."""

    op_hash: str
    #: ``None``: it runs on its own through pyinfra (not guarded), or is skipped (guarded).
    shell: list[str] | None = None
    commands: list[PyinfraCommand] = field(default_factory=list)
    error: str | None = None
    #: It runs only if every operation of its host before it succeeded.
    guarded: bool = False


@contextlib.contextmanager
def known_facts(host: Host, observed: Observed | None) -> Iterator[None]:
    """While operations are prepared on ``host``: what they ask of facts the engine already read (the same
    fact class, its keys among those read) comes from ``observed`` instead of another round trip."""
    if observed is None:
        yield
        return
    read = host.get_fact

    def get_fact(fact_class: type[FactBase], *args: Any, **kwargs: Any) -> Any:
        keys = kwargs.get("keys")
        if not args and set(kwargs) == {"keys"} and isinstance(keys, tuple) and observed.covers(fact_class, keys):
            return observed[fact_class]
        return read(fact_class, *args, **kwargs)

    host.get_fact = get_fact  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del host.get_fact


def prepare(state: State, host: Host, op_hash: str, observed: Observed | None, guarded: bool = False) -> Prepared:
    """Run an operation's generator (from ``observed`` where it can) and render its commands as pyinfra would."""
    op_data = state.get_op_data_for_host(host, op_hash)
    arguments = op_data.global_arguments
    if _alone(arguments) or not arguments.get("_shell_executable", "sh"):  # its commands' own shell contains them
        return Prepared(op_hash, guarded=guarded)
    base = {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}  # type: ignore[literal-required]
    prepared = Prepared(op_hash, shell=[], guarded=guarded)
    try:
        with known_facts(host, observed):
            prepared.commands = list(op_data.command_generator())
    except (OperationError, HostReadError) as error:
        prepared.error = str(error) or type(error).__name__
        return prepared
    for command in prepared.commands:
        if not isinstance(command, StringCommand) or _alone(command.connector_arguments):
            return Prepared(op_hash, guarded=guarded)
        given = {key: value for key, value in {**base, **command.connector_arguments}.items() if key not in _ALONE}
        if not any(given.get(name) for name in _OWN_SHELL):
            given["_shell_executable"] = None  # it runs in its operation's subshell: no shell started for it
        rendered = make_unix_command_for_host(state, host, command, **given).get_raw_value()
        assert prepared.shell is not None
        prepared.shell.append(rendered if given.get("_shell_executable") else f"{{ {rendered}\n}}")
    return prepared


def script(operations: list[tuple[int, list[str], bool]], nonce: str, failed_before: bool = False) -> str:
    """One shell script for a host's operations (index, commands, guarded): each in a subshell with no input
    (an ``exit`` there ends only that operation), its commands chained with ``&&`` as pyinfra stops an
    operation at its first failing command, its output and exit status after it. A guarded operation runs only
    if every one before it succeeded (and none failed before the script: ``failed_before``), else its status is
    ``skip``. An operation with no commands (nothing to change) is left out."""
    lines = [f"cw_failed={int(failed_before)}"]
    for index, commands, guarded in operations:
        if not commands:
            continue
        run = f"cw_output=$({{ {' && '.join(commands)}; }} </dev/null 2>&1); cw_status=$?"
        lines.append(f"if [ $cw_failed = 0 ]; then {run}; else cw_output=; cw_status=skip; fi" if guarded else run)
        lines.append('[ "$cw_status" = 0 ] || cw_failed=1')
        lines.append('[ -z "$cw_output" ] || printf \'%s\\n\' "$cw_output" | base64 || exit 1')
        lines.append(f"printf '%s\\n' {MARKER}:{nonce}:{index}:$cw_status || exit 1")
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def parse(lines: list[str], nonce: str) -> dict[int, tuple[int | None, list[str]]]:
    """Each operation's (exit status, ``None`` when it was skipped; output lines) from a script's output (each
    operation's output base64-encoded before its marker); operations whose marker never came (the host
    stopped answering) are missing."""
    prefix = f"{MARKER}:{nonce}:"
    done: dict[int, tuple[int | None, list[str]]] = {}
    encoded: list[str] = []
    for line in lines:
        if not line.startswith(prefix):
            encoded.append(line)
            continue
        index, status = line[len(prefix):].split(":")
        output = binascii.a2b_base64("".join(encoded)).decode(errors="replace").splitlines() if encoded else []
        done[int(index)] = None if status == "skip" else int(status), output
        encoded = []
    return done


#: What became of one operation of a host's batch: completed (succeeded or not), or not run (``NotRun``: the
#: connection failed under it or the batch's output ended before it; the caller tells which).
Ran = bool | Exception

#: Errors of a connection that failed under a command.
CONNECTION_ERRORS = (OSError, EOFError, SSHException)


def run(state: State, host: Host, order: list[str], observed: dict[str, Observed | None],
        guarded: frozenset[str] = frozenset()) -> list[tuple[str, Ran]]:
    """Run ``host``'s operations (their hashes, in order) in as few round trips as their commands allow; each
    completed one has its ``OperationMeta`` set complete, as pyinfra would (a ``guarded`` one that was skipped:
    failed, its output ``SKIPPED``). Returns each operation with what became of it, in order; after the first
    that did not run, none ran."""
    results: list[tuple[str, Ran]] = []
    pending: list[Prepared] = []

    def flush() -> bool:
        batch = list(pending)
        pending.clear()
        results.extend(_run_script(state, host, batch, failed_before=any(ran is False for _op_hash, ran in results)))
        return not any(isinstance(ran, Exception) for _op_hash, ran in results)

    current = ""
    try:
        for current in order:
            prepared = prepare(state, host, current, observed.get(current), current in guarded)
            if prepared.shell is not None:
                pending.append(prepared)
                continue
            if not flush():
                break
            meta = state.get_op_data_for_host(host, current).operation_meta
            if prepared.guarded:  # it goes in its host's command or not at all: the caller runs it after
                results.append((current, _skip(meta)))
                continue
            # pyinfra's run_host_op says True for a failed operation when errors are ignored (as they are here)
            results.append((current, run_host_op(state, host, current) and meta.did_succeed()))
        else:
            flush()
    except CONNECTION_ERRORS as error:  # reading a fact, or a command run on its own
        results += [(prepared.op_hash, NotRun()) for prepared in pending] + [(current, error)]
    ran = {op_hash for op_hash, _ran in results}
    return results + [(op_hash, NotRun()) for op_hash in order if op_hash not in ran]


class NotRun(EOFError):
    """An operation of a batch that did not run: the host stopped answering before it."""

    def __init__(self) -> None:
        super().__init__("the host stopped answering before it ran")


def _run_script(state: State, host: Host, batch: list[Prepared], failed_before: bool) -> list[tuple[str, Ran]]:
    """One round trip for a batch's operations (none when none has commands to run); completes each whose
    outcome came back, in order, and stops at the first whose marker is missing."""
    nonce = secrets.token_hex(8)
    failed = failed_before or any(prepared.error is not None for prepared in batch)  # guarded ones come last
    runnable = [(index, prepared.shell or [], prepared.guarded) for index, prepared in enumerate(batch)
                if prepared.error is None]
    done: dict[int, tuple[int | None, list[str]]] = {}
    if any(commands for _index, commands, _guarded in runnable):
        try:
            _status, output = host.run_shell_command(StringCommand('eval "$(cat)"'), print_output=False,
                                                     _stdin=script(runnable, nonce, failed))
        except CONNECTION_ERRORS as error:
            return [(prepared.op_hash, error) for prepared in batch]
        done = parse([line.line for line in output.combined_lines if line.buffer_name == "stdout"], nonce)
    finished: list[tuple[str, Ran]] = []
    for index, prepared in enumerate(batch):
        meta = state.get_op_data_for_host(host, prepared.op_hash).operation_meta
        if prepared.error is not None:
            meta.set_complete(False, prepared.commands, CommandOutput([OutputLine("stderr", prepared.error)]))
        elif not prepared.shell:
            meta.set_complete(True, [], CommandOutput([]))
        elif index in done:
            status, lines = done[index]
            if status is None:
                _skip(meta)
            else:
                meta.set_complete(status == 0, prepared.commands,
                                  CommandOutput([OutputLine("stderr" if status else "stdout", line) for line in lines]))
        else:
            return finished + [(later.op_hash, NotRun()) for later in batch[index:]]
        finished.append((prepared.op_hash, meta.did_succeed()))
    return finished


def _skip(meta: OperationMeta) -> bool:
    """Complete a guarded operation that did not run as failed, its output ``SKIPPED``; ``False``."""
    meta.set_complete(False, [], CommandOutput([OutputLine("stderr", SKIPPED)]))
    return False
