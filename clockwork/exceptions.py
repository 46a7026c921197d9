"""Clockwork's errors: each says in one line what is wrong and carries its exit status."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The exit status of every command (DESIGN.md's CLI contract)."""

    OK = 0
    #: evaluate (or reconcile --once) found drift or pending changes; update rolled back.
    DRIFT = 1
    #: usage or project error: bad arguments, main.py, inventory, settings, state store, a declined prompt.
    USAGE = 2
    #: a host could not be reached, or a check or an operation failed on it (the rest still ran).
    HOST = 3
    #: a bug in Clockwork: one line on stderr, the traceback in ``.clockwork/debug.log``.
    INTERNAL = 4


class ClockworkError(Exception):
    """Base of every error Clockwork expects; ``exit_code`` is what the CLI exits with.

    >>> error = ProjectError("main.py:3: duplicate FileResource 'a'")
    >>> isinstance(error, ValueError), error.exit_code
    (True, 2)
    >>> raise error
    Traceback (most recent call last):
    clockwork.exceptions.ProjectError: main.py:3: duplicate FileResource 'a'
    """

    exit_code = 1


class ProjectError(ClockworkError, ValueError):
    """main.py (or update.py) cannot be used: syntax, import, invalid field, duplicate, no resources."""

    exit_code = 2


class InventoryError(ClockworkError, ValueError):
    """The inventory cannot be loaded, or a host/group named in it or in --limit does not exist."""

    exit_code = 2


class ConfirmationRequired(ClockworkError):
    """A destructive command was run without a terminal to ask on and without ``--yes``, or was declined."""

    exit_code = 2


class CompletionError(ClockworkError):
    """A left-out field could not be completed: no provider can fill it, or the model failed."""

    exit_code = 2


class LockTimeout(ClockworkError):
    """Another apply/destroy/update/rollback held the project's lock for longer than we would wait."""

    exit_code = 3


class StateError(ClockworkError):
    """The state store cannot be used: a corrupt or empty ``state.db``, a schema from a newer Clockwork, a state
    database that cannot be reached or refuses the login."""

    exit_code = 2


class StoreLost(StateError):
    """The state database stopped answering while a command was using it (what ran on hosts is reported)."""

    exit_code = 3


class SettingsError(ProjectError):
    """A ``CW_`` setting (environment or ``.env``) has a value Clockwork cannot use."""


class HostReadError(ClockworkError, RuntimeError):
    """What a host was asked could not be read there: a fact failed, docker did not answer, a check could not run.

    Only this error makes a host × resource an error result (exit status 3);
    any other exception while evaluating is a bug in Clockwork (exit status 4).

    >>> raise HostReadError("docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
    Traceback (most recent call last):
    clockwork.exceptions.HostReadError: docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock
    """

    exit_code = 3
