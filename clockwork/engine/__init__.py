"""The only package that drives pyinfra's API: its types (``types``), the inventory (``inventory``, loaded once
per command), and the session (``session``: connections, batched facts, operations).

.. code:: python

    with Session(load_inventory("@local", Path(".")), project_dir=Path(".")) as session:
        unreachable = session.connect()
        observed = session.observe({host: probes for host in session.hosts})
"""

from clockwork.engine.inventory import host_groups, load_inventory, select_hosts
from clockwork.engine.session import CONNECT_TIMEOUT, NOT_RUN_LOST, OperationOutcome, Progress, Session
from clockwork.engine.types import Observed, Probe, Target

__all__ = ["CONNECT_TIMEOUT", "NOT_RUN_LOST", "Observed", "OperationOutcome", "Probe", "Progress", "Session", "Target",
           "host_groups", "load_inventory", "select_hosts"]
