"""systemd units as Clockwork compares them: their load, active and enablement states, for many units at once."""

from __future__ import annotations

import re
import shlex
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactValueError

#: A unit name with its type suffix (``cwdemo.service``, ``backup.timer``).
UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|target|path|mount|slice)$")

_PROPERTIES = ("LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload", "FragmentPath",
               "ActiveEnterTimestampMonotonic")

#: ``UnitFileState`` values of a unit that starts at boot (``static`` units are neither: nothing enables them).
ENABLED_STATES = ("enabled", "enabled-runtime", "alias", "indirect", "generated", "linked", "linked-runtime")


class UnitInfo(TypedDict):
    """One unit as systemd has it: ``loaded`` (``loaded``, ``not-found``, ``masked``…), ``active`` (``active``,
    ``inactive``, ``failed``…), ``sub``, ``file_state`` (``enabled``, ``disabled``, ``static``…), whether its file
    changed since systemd read it, where that file is, and when it last became active (monotonic µs)."""

    loaded: str
    active: str
    sub: str
    file_state: str
    need_daemon_reload: bool
    fragment_path: str
    active_since: int


class UnitsResult(TypedDict):
    """``units`` by name; ``error`` when systemd could not answer (not running, no bus)."""

    units: dict[str, UnitInfo]
    error: str | None


class SystemdUnits(FactBase[UnitsResult]):
    """
    Returns the named units' states, one ``systemctl show`` per unit in one command:

    .. code:: python

        host.get_fact(SystemdUnits, keys=("cwdemo.service",))
        {
            "units": {"cwdemo.service": {"loaded": "loaded", "active": "active", "sub": "running",
                                         "file_state": "enabled", "need_daemon_reload": False,
                                         "fragment_path": "/lib/systemd/system/cwdemo.service",
                                         "active_since": 81234567}},
            "error": None,
        }

    A unit systemd does not know is there with ``loaded`` ``not-found``. ``error``
    holds systemd's message when it cannot be asked (a host not booted with systemd).
    Reading needs no root.
    """

    def command(self, keys: tuple[str, ...]) -> str:
        for name in keys:
            if not UNIT_NAME.match(name):
                raise FactValueError(f"SystemdUnits: invalid unit name {name!r}")
        names = " ".join(shlex.quote(name) for name in keys)
        return (f"for unit in {names}; do printf 'unit=%s\\n' \"$unit\"; "
                f"systemctl show --property={','.join(_PROPERTIES)} -- \"$unit\" 2>&1; done; true")

    @staticmethod
    def default() -> UnitsResult:
        return UnitsResult(units={}, error=None)

    def process(self, output: list[str]) -> UnitsResult:
        units: dict[str, dict[str, str]] = {}
        errors = []
        current: dict[str, str] | None = None
        for line in output:
            key, equals, value = line.partition("=")
            if key == "unit" and equals:
                current = units.setdefault(value, {})
            elif equals and key in _PROPERTIES and current is not None:
                current[key] = value
            elif line.strip():
                errors.append(line.strip())
        found = {name: _unit(values) for name, values in units.items() if "LoadState" in values}
        return UnitsResult(units=found, error="; ".join(dict.fromkeys(errors)) or None)


def _unit(values: dict[str, str]) -> UnitInfo:
    since = values.get("ActiveEnterTimestampMonotonic", "0")
    return UnitInfo(
        loaded=values["LoadState"], active=values.get("ActiveState", ""), sub=values.get("SubState", ""),
        file_state=values.get("UnitFileState", ""), need_daemon_reload=values.get("NeedDaemonReload") == "yes",
        fragment_path=values.get("FragmentPath", ""), active_since=int(since) if since.isdigit() else 0,
    )
