"""One host's operations as one remote command (clockwork/engine/batch.py), with plain pyinfra operations on a
real sshd host: what one operation prints or does never changes what the others report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyinfra.api import Inventory
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import server

from clockwork.engine.batch import SKIPPED
from clockwork.engine.session import Call, OperationOutcome, Session
from clockwork.engine.types import Target
from testsupport.fleet import Fleet


@pytest.fixture
def session(fleet: Fleet, tmp_path: Path) -> Iterator[Session]:
    host = fleet.hosts[0]
    with Session(Inventory(([(host.name, fleet.host_data(host))], {})), tmp_path) as opened:
        assert opened.connect() == {}
        yield opened


def shell(command: str, **arguments: object) -> Callable[[Target], OperationMeta]:
    return lambda target: server.shell(name=command, commands=[command], **arguments)


def operate(session: Session, *calls: Call) -> list[OperationOutcome]:
    host = session.hosts[0]
    outcomes = session.operate({host: list(calls)})
    return [outcomes[(host, call.key)] for call in calls]


def test_output_that_is_not_utf8_or_reads_like_a_sudo_prompt_is_only_its_operations(fleet: Fleet, session) -> None:
    host = fleet.hosts[0]
    before = host.commands()
    latin1, prompt, after, manifest = operate(
        session,
        Call(0, shell(r"printf 'caf\351\n'")),
        Call(1, shell("echo 'sudo: a password is required' >&2; false")),  # pyinfra would ask for a password
        Call(2, shell("touch after")),
        Call(3, shell("touch guarded"), guarded=True),
    )
    assert host.commands() - before == 1, "one remote command, read once"
    assert latin1 == OperationOutcome(True)
    assert prompt.error == "sudo: a password is required"
    assert after == OperationOutcome(True)
    assert manifest == OperationOutcome(False, SKIPPED, skipped=True), "an operation before it failed"
    assert fleet.run(host, "ls").stdout.split() == ["after"]


def test_a_failed_operation_that_pyinfra_runs_alone_holds_back_the_guarded_one(fleet: Fleet, session) -> None:
    host = fleet.hosts[0]
    timed, guarded = operate(session, Call(0, shell("echo no >&2; false", _timeout=30)),
                             Call(1, shell("touch guarded"), guarded=True))
    assert timed.error == "no"
    assert guarded.skipped
    assert fleet.run(host, "ls").stdout == ""


def test_a_guarded_operation_that_cannot_go_in_the_command_is_skipped_for_the_caller_to_run(
        fleet: Fleet, session) -> None:
    first, guarded = operate(session, Call(0, shell("touch first")),
                             Call(1, shell("touch guarded", _timeout=30), guarded=True))
    assert first == OperationOutcome(True)
    assert guarded.skipped
    assert fleet.run(fleet.hosts[0], "ls").stdout.split() == ["first"]
