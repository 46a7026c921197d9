"""Clockwork's own pyinfra facts, installed as ``clockwork.facts``.

Each fact is a ``FactBase`` with ``command()`` and a pure ``process()``; the
``keyed`` facts answer for many keys in one command so that one SSH round trip
can read everything a host needs (see ``clockwork.facts.batch``).
"""
