"""Clockwork's own pyinfra operations, installed as ``clockwork.operations``.

Each is a small ``@operation()`` generator that reads facts and yields commands
only when something must change, usable from a plain pyinfra deploy too.
"""
