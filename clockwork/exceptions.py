"""Clockwork's errors: each says in one line what is wrong and carries its exit status."""

from __future__ import annotations


class ClockworkError(Exception):
    """Base of every error Clockwork expects; ``exit_code`` is what the CLI exits with.

    >>> raise ProjectError("main.py:3: duplicate FileResource 'a'")
    """

    exit_code = 1


class ProjectError(ClockworkError, ValueError):
    """main.py (or update.py) cannot be used: syntax, import, invalid field, duplicate, no resources."""

    exit_code = 2


class InventoryError(ClockworkError, ValueError):
    """The inventory cannot be loaded, or a host/group named in it or in --limit does not exist."""

    exit_code = 2


class ConfirmationRequired(ClockworkError):
    """A destructive command was run without a terminal to ask on and without ``--yes``."""

    exit_code = 2


class CompletionError(ClockworkError):
    """A left-out field could not be completed: no provider can fill it, or the model failed."""

    exit_code = 2


class LockTimeout(ClockworkError):
    """Another apply/destroy/update/rollback held the project's lock for longer than we would wait."""

    exit_code = 3


class StateError(ClockworkError):
    """The state store cannot be used: a corrupt or empty ``state.db``, a schema from a newer Clockwork."""

    exit_code = 2


class SettingsError(ProjectError):
    """A ``CW_`` setting (environment or ``.env``) has a value Clockwork cannot use."""
