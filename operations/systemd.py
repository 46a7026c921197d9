"""systemd services kept as declared: their unit file, running or stopped, enabled or disabled, restarted."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from clockwork.facts.paths import PathInfo, Paths
from clockwork.facts.systemd import ENABLED_STATES, SystemdUnits, UnitInfo
from clockwork.operations.files import content_sha1, write_commands

#: A difference between what is declared and what a host has: (field, expected, actual).
Difference = tuple[str, Any, Any]

#: Where a unit file Clockwork installs goes.
UNIT_DIRECTORY = "/etc/systemd/system"

#: ``ActiveState`` values of a unit that runs (or is on its way to).
RUNNING_STATES = ("active", "reloading", "activating")


def unit_path(unit: str) -> str:
    return f"{UNIT_DIRECTORY}/{unit}"


def service_differences(actual: UnitInfo | None, unit_file: PathInfo | None, running: bool | None = True,
                        enabled: bool | None = True, unit_file_sha1: str | None = None) -> list[Difference]:
    """What differs between a declared service and what ``SystemdUnits`` (and ``Paths``, for a unit file
    Clockwork installs) found. ``running`` and ``enabled`` are compared only when declared; a ``static``
    unit (nothing can enable it) is never reported for ``enabled``."""
    differences: list[Difference] = []
    if unit_file_sha1 is not None:
        found = unit_file["sha1"] if unit_file is not None and unit_file["type"] == "file" else None
        if found != unit_file_sha1:
            differences.append(("unit_file", f"sha1:{unit_file_sha1}", f"sha1:{found}" if found else None))
    elif actual is None or actual["loaded"] == "not-found":
        return [("present", True, False)]
    if actual is not None and actual["need_daemon_reload"] and not differences:
        differences.append(("daemon_reload", False, True))
    if enabled is not None and actual is not None and actual["file_state"] not in ("static", ""):
        is_enabled = actual["file_state"] in ENABLED_STATES
        if is_enabled != enabled:
            differences.append(("enabled", enabled, is_enabled))
    if running is not None:
        is_running = actual is not None and actual["active"] in RUNNING_STATES
        if is_running != running:
            differences.append(("running", running, is_running))
    return differences


def _state(unit: str, path: str | None) -> tuple[UnitInfo | None, PathInfo | None]:
    result = host.get_fact(SystemdUnits, keys=(unit,))
    if result["error"]:
        raise OperationError(f"systemd: {result['error']}")
    return result["units"].get(unit), host.get_fact(Paths, keys=(path,)).get(path) if path else None


@operation()
def service(unit: str, running: bool | None = True, enabled: bool | None = True, unit_file: str | None = None):
    """
    Keep a systemd unit as declared: its unit file (when given), enabled or not, running or not.

    + unit: the unit name with its suffix (``cwdemo.service``)
    + running: start or stop it; ``None`` leaves it alone
    + enabled: enable or disable it at boot; ``None`` leaves it alone
    + unit_file: the unit file's content, installed as ``/etc/systemd/system/UNIT``; ``None``: the unit comes
      from elsewhere (a package)

    A unit file written (or changed on disk since systemd read it) is followed by
    ``systemctl daemon-reload`` before anything is started, and a service that runs
    is then restarted, to run as its new unit file says.

    **Example:**

    .. code:: python

        systemd.service(unit="cwdemo.service", running=True, enabled=True, _sudo=True)
    """
    path = unit_path(unit) if unit_file is not None else None
    actual, file_info = _state(unit, path)
    differences = service_differences(actual, file_info, running, enabled,
                                      content_sha1(unit_file) if unit_file is not None else None)
    if not differences:
        host.noop(f"service {unit} is already as declared")
        return
    changed = {field for field, _expected, _actual in differences}
    if "present" in changed:
        raise OperationError(f"systemd has no unit {unit}: install the package that ships it first (requires=[...]), "
                             "or give its unit_file")
    quoted = shlex.quote(unit)
    new_unit = actual is None or actual["loaded"] == "not-found"
    if "unit_file" in changed and unit_file is not None and path is not None:
        yield from write_commands(path, unit_file, "644", "root", "root",
                                  keep_from_existing=file_info is not None and file_info["type"] == "file")
    if changed & {"unit_file", "daemon_reload"}:
        yield "systemctl daemon-reload"
    if "enabled" in changed or (new_unit and enabled):
        yield f"systemctl {'enable' if enabled else 'disable'} --quiet {quoted}"
    if "running" in changed:
        yield f"systemctl {'start' if running else 'stop'} {quoted}"
    elif changed & {"unit_file", "daemon_reload"} and running and not new_unit:
        yield f"systemctl restart {quoted}"  # it runs as its old unit said: run it as the new one says


@operation()
def restart(unit: str, reload: bool = False):
    """
    Restart a unit (or reload it, ``reload=True``): what a service's ``restart_on`` and ``reload_on`` run once
    after the last of those resources changed on a host.

    **Example:**

    .. code:: python

        systemd.restart(unit="cwdemo.service", _sudo=True)
    """
    yield f"systemctl {'reload' if reload else 'restart'} {shlex.quote(unit)}"


@operation()
def service_absent(unit: str, unit_file: bool = False):
    """
    Stop and disable a unit; with ``unit_file``, also remove the unit file Clockwork installed for it
    (``/etc/systemd/system/UNIT``) and reload systemd.

    **Example:**

    .. code:: python

        systemd.service_absent(unit="cwdemo.service", unit_file=True, _sudo=True)
    """
    path = unit_path(unit) if unit_file else None
    actual, file_info = _state(unit, path)
    quoted = shlex.quote(unit)
    known = actual is not None and actual["loaded"] != "not-found"
    if not known and file_info is None:
        host.noop(f"service {unit} is already absent")
        return
    running = known and actual is not None and actual["active"] in RUNNING_STATES
    enabled = known and actual is not None and actual["file_state"] in ENABLED_STATES
    if not (running or enabled or file_info):
        host.noop(f"service {unit} is already stopped and disabled")
        return
    if running:
        yield f"systemctl stop {quoted}"
    if enabled:
        yield f"systemctl disable --quiet {quoted}"
    if file_info is not None and path is not None:
        yield f"rm -f -- {shlex.quote(path)} && systemctl daemon-reload"
