"""What the tests and the benchmarks share, and the package does not ship: fleets of real SSH hosts
(``fleet``), alert receivers (``receivers``), a chat-completions server (``model_server``) and a PostgreSQL
server (``postgres``) on 127.0.0.1.

Importable from the repository root, as ``tests`` and ``bench`` run it; not installed by setup.cfg.
"""
