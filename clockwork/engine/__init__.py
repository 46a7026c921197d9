"""The only package that drives pyinfra's API: its types (``types``), the inventory (``inventory``, loaded once
per command), the session (``session``: connections, batched facts, operations), and the pipeline
(``pipeline``: read → choose → operate → record, the flow every command runs on its session).

.. code:: python

    placement = place(project, "@local")
    with Pipeline.open(placement) as pipeline:
        run = pipeline.run(placement, lambda reading: "apply" if reading.evaluation.status == "drift" else None)
"""

from clockwork.engine.inventory import host_groups, load_inventory, select_hosts
from clockwork.engine.pipeline import Action, Choose, HostOperation, Pipeline, Reading, Run, Step
from clockwork.engine.session import CONNECT_TIMEOUT, NOT_RUN_LOST, OperationOutcome, Progress, Session
from clockwork.engine.types import Observed, Probe, Target

__all__ = ["CONNECT_TIMEOUT", "NOT_RUN_LOST", "Action", "Choose", "HostOperation", "Observed", "OperationOutcome",
           "Pipeline", "Probe", "Progress", "Reading", "Run", "Session", "Step", "Target", "host_groups",
           "load_inventory", "select_hosts"]
