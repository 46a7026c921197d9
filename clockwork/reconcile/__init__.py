"""Keeping deployed resources true over time: scheduled checks, drift correction, expiry, alerts.

.. code:: python

    reconciler = Reconciler(Path("."), load_settings(Path(".")), log=EventLog(Path(".clockwork/reconcile.log")))
    reconciler.run_pass().report.status  # 'ok'
"""

from typing import TYPE_CHECKING

from clockwork.lazy import lazy_attributes
from clockwork.reconcile.log import EventLog
# Imported now, not on first use: ``status`` is also its module's name, which would shadow a lazy ``status``.
from clockwork.reconcile.status import StatusRow, extend, status, workers

if TYPE_CHECKING:
    from clockwork.reconcile.passes import PassOutcome, Reconciler, make_reconciler
    from clockwork.reconcile.service import Service
    from clockwork.reconcile.unit import systemd_unit

__all__ = ["EventLog", "PassOutcome", "Reconciler", "make_reconciler", "Service", "StatusRow", "extend", "status", "systemd_unit",
           "workers"]

# pyinfra and gevent come with the passes and the service: imported when first used
__getattr__, __dir__ = lazy_attributes(__name__, {
    "PassOutcome": "clockwork.reconcile.passes",
    "Reconciler": "clockwork.reconcile.passes",
    "make_reconciler": "clockwork.reconcile.passes",
    "Service": "clockwork.reconcile.service",
    "systemd_unit": "clockwork.reconcile.unit",
})
