"""What the tests and the benchmarks share, and the package does not ship: fleets of real SSH hosts
(``fleet``), alert receivers (``receivers``), a chat-completions server (``model_server``), a PostgreSQL
server (``postgres``) and an Alertmanager (``alertmanager``) on 127.0.0.1, with what those servers share
(``servers``).

Importable from the repository root, as ``tests`` and ``bench`` run it; not installed by setup.cfg.
"""
