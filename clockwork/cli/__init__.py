"""The ``clockwork`` command: ``commands`` parses options, calls one library function and renders its result
with ``render``."""

from clockwork.cli.commands import cli, main, write_debug_log

__all__ = ["cli", "main", "write_debug_log"]
