"""``clockwork reconcile`` as a service: a pass whenever something is due, asleep in between, stopped by a signal."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import gevent
from gevent.event import Event

from clockwork.exceptions import ClockworkError, LockTimeout, StateError
from clockwork.reconcile.passes import PASS_LOCK_WAIT, Log, Reconciler
from clockwork.reconcile.schedule import backoff

#: The longest the service sleeps, so that newly applied resources are picked up without a signal.
MAX_SLEEP = 30.0
#: The shortest pause between two passes: something that stays due (an expiry whose removal keeps failing)
#: must not make the service spin.
MIN_PAUSE = 0.5


class Service:
    """Runs passes until SIGTERM or SIGINT (then exits 0 after the current pass); SIGHUP reloads the settings.

    ``reconciler`` runs the passes; on SIGHUP ``reload`` builds a new one from the
    settings as they are then. Between passes the process sleeps until the next due
    host, or until another worker's lease of one ends (no polling), at most 30 s;
    on PostgreSQL an apply, update, rollback or extend wakes it at once (NOTIFY).
    A state store that stops answering is logged and tried again after 2, 4, 8…
    seconds (at most 30).

    .. code:: python

        reload = lambda: Reconciler(Path("."), load_settings(Path(".")))
        Service(reload(), reload, log=EventLog(Path(".clockwork/reconcile.log"))).run()  # 0
    """

    def __init__(self, reconciler: Reconciler, reload: Callable[[], Reconciler], log: Log) -> None:
        self.reconciler = reconciler
        self.reload = reload
        self.log = log
        self._wake = Event()
        self._stopping = False
        self._reload = False
        self._store_failures = 0

    def _signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stopping = True
        self.log("signal", {"signal": signal.Signals(signum).name})
        self._wake.set()

    def _changed(self) -> None:
        self.log("woken", {"by": "change"})
        self._wake.set()

    def run(self) -> int:
        handlers = [gevent.signal_handler(signum, self._signal, signum)
                    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)]
        reconciler = self.reconciler
        listener = gevent.spawn(reconciler.watch_changes, self._changed)
        try:
            self.log("started", {"pid": os.getpid(), "project": str(reconciler.project_dir), "worker": reconciler.worker})
            while not self._stopping:
                if self._reload:
                    self._reload = False
                    reconciler.close()
                    listener.kill()
                    reconciler = self.reload()
                    listener = gevent.spawn(reconciler.watch_changes, self._changed)
                    self.log("reloaded", {"worker": reconciler.worker})
                self._wake.clear()
                wake = self._pass(reconciler)
                delay = max(min(wake - time.time(), MAX_SLEEP), MIN_PAUSE)
                if not self._stopping and not self._reload:
                    self._wake.wait(delay)
        finally:
            listener.kill()
            reconciler.close()
            for handler in handlers:
                handler.cancel()
        self.log("stopped", {"pid": os.getpid()})
        return 0

    def _pass(self, reconciler: Reconciler) -> float:
        """Run one pass; returns when the next one is due. A failed pass is logged and tried again later."""
        try:
            wake = reconciler.run_pass().next_wake
            self._store_failures = 0
            return wake
        except LockTimeout as error:
            self.log("locked", {"detail": str(error)})
            return time.time() + PASS_LOCK_WAIT
        except StateError as error:  # the database is away (or refused us): back off, then try again
            self._store_failures += 1
            retry = min(backoff(self._store_failures), MAX_SLEEP)
            self.log("store-unavailable", {"detail": str(error), "failures": self._store_failures, "retry_in": retry})
            return time.time() + retry
        except ClockworkError as error:
            self.log("error", {"detail": str(error)})
        except Exception as error:  # never let one bad pass end the service
            self.log("pass-failed", {"detail": f"{type(error).__name__}: {error}"})
        return time.time() + MAX_SLEEP
