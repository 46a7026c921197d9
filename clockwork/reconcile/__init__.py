"""Keeping deployed resources true over time: scheduled checks, drift correction, expiry, alerts.

.. code:: python

    reconciler = Reconciler(Path("."), load_settings(Path(".")), log=EventLog(Path(".clockwork/reconcile.log")))
    reconciler.run_pass().report.status  # 'ok'
"""

from clockwork.reconcile.log import EventLog
from clockwork.reconcile.passes import PassOutcome, Reconciler, make_reconciler
from clockwork.reconcile.service import Service, systemd_unit
from clockwork.reconcile.status import StatusRow, extend, status, workers

__all__ = ["EventLog", "PassOutcome", "Reconciler", "make_reconciler", "Service", "StatusRow", "extend", "status", "systemd_unit",
           "workers"]
