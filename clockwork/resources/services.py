"""systemd services: a unit kept running (or stopped) and enabled (or not), restarted when what it uses changes."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pyinfra.api.operation import OperationMeta

from clockwork.engine.types import Observed, Probe, Target
from clockwork.exceptions import HostReadError
from clockwork.facts.paths import Paths
from clockwork.facts.systemd import ENABLED_STATES, UNIT_NAME, SystemdUnits, UnitInfo
from clockwork.operations import systemd
from clockwork.operations.files import content_sha1
from clockwork.resources.base import Handler, Resource, describe, name_field, resource_refs
from clockwork.results import Diff, Evaluation
from clockwork.secrets import held, held_digest


class ServiceResource(Resource):
    """A systemd service kept running (or stopped) and enabled (or not), optionally from a unit file Clockwork
    installs; restarted (or reloaded) once after the resources it names in ``restart_on`` (``reload_on``)
    changed on a host. Needs root: run with sudo when the login user is not root.

    destroy stops and disables it, and removes the unit file it installed.

    >>> from clockwork.resources import FileResource
    >>> conf = FileResource(name="cwdemo.conf", directory="/etc", content="PORT=8080\\n")
    >>> web = ServiceResource(name="cwdemo", restart_on=[conf])
    >>> web.unit, web.restart_on
    ('cwdemo.service', ['FileResource/cwdemo.conf'])
    """

    name: str = name_field("the unit (`\"cwdemo\"` is `cwdemo.service`; other types with their suffix: "
                           "`\"backup.timer\"`)")
    running: bool | None = Field(True, description="`True` starts it, `False` stops it, `None` leaves it alone")
    enabled: bool | None = Field(True, description="`True` enables it at boot, `False` disables it, `None` leaves "
                                                   "it alone")
    unit_file: str | None = Field(None, description="the unit file's content, installed as "
                                                    "`/etc/systemd/system/UNIT` (then `systemctl daemon-reload`) and "
                                                    "removed on destroy; `None`: the unit comes from a package")
    restart_on: list[str] = Field(default_factory=list, description="resources (objects or `\"Type/name\"`) whose "
                                                                    "change on a host restarts the service there, "
                                                                    "once, after the last of them; they are applied "
                                                                    "before it")
    reload_on: list[str] = Field(default_factory=list, description="as `restart_on`, with `systemctl reload`")

    privileged = True
    hashed_fields = ("unit_file",)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        unit = value if "." in value else f"{value}.service"
        if not UNIT_NAME.match(unit):
            raise ValueError(f"{value!r} is not a systemd unit name: letters, digits, ':', '_', '.', '-', '@', "
                             "with a type suffix (.service, .timer, .socket…) or none for a service")
        return value

    @field_validator("restart_on", "reload_on", mode="before")
    @classmethod
    def _refs(cls, value: object) -> list[str]:
        return resource_refs(value)

    @property
    def unit(self) -> str:
        return self.name if "." in self.name else f"{self.name}.service"

    def dependencies(self) -> list[str]:
        return list(dict.fromkeys([*super().dependencies(), *self.restart_on, *self.reload_on]))

    def _unit_file_sha1(self) -> str | None:
        """The declared unit file's sha1; known only as its sha1 (``⟦sha1:…⟧``, from a host manifest) too."""
        if self.unit_file is None:
            return None
        held = held_digest(self.unit_file)
        return held[1] if held is not None and held[0] == "sha1" else content_sha1(self.unit_file)

    def _unit_file_path(self) -> str | None:
        return systemd.unit_path(self.unit) if self.unit_file is not None else None

    def state_probes(self, target: Target) -> list[Probe]:
        path = self._unit_file_path()
        return [(SystemdUnits, self.unit)] + ([(Paths, path)] if path else [])

    def _actual(self, observed: Observed) -> UnitInfo | None:
        result = observed[SystemdUnits]
        if result["error"]:
            raise HostReadError(f"systemd: {result['error']}")
        return result["units"].get(self.unit)

    def observed_state(self, target: Target, observed: Observed) -> dict[str, Any]:
        """The unit as systemd has it, and the declared unit file's path as ``Paths`` found it."""
        path = self._unit_file_path()
        return {"unit": self._actual(observed), "unit_file": observed[Paths].get(path) if path else None}

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        actual = self._actual(observed)
        path = self._unit_file_path()
        diffs = self.diffs(systemd.service_differences(
            actual, observed[Paths].get(path) if path else None, self.running, self.enabled,
            self._unit_file_sha1()))
        if diffs:
            return Evaluation(diffs, describe(diffs))
        assert actual is not None
        return Evaluation([], f"{actual['active']} ({actual['sub']}), {actual['file_state'] or 'no unit file state'}")

    def describe_diff(self, diff: Diff) -> str | None:
        if diff.field == "present":
            return "no such unit"
        if diff.field == "running":
            return "stopped, wanted running" if diff.expected else "running, wanted stopped"
        if diff.field == "enabled":
            return "disabled, wanted enabled" if diff.expected else "enabled, wanted disabled"
        if diff.field == "unit_file":
            return "unit file missing" if diff.actual is None else "unit file differs"
        if diff.field == "daemon_reload":
            return "unit file changed on disk since systemd read it"
        return super().describe_diff(diff)

    def change_summary(self, diffs: list[Diff]) -> str:
        fields = {diff.field: diff for diff in diffs}
        done = [("unit file written" if "unit_file" in fields else "")]
        if "enabled" in fields:
            done.append("enabled" if fields["enabled"].expected else "disabled")
        if "running" in fields:
            done.append("started" if fields["running"].expected else "stopped")
        if "daemon_reload" in fields and "unit_file" not in fields:
            done.append("systemd reloaded")
        if fields.keys() & {"unit_file", "daemon_reload"} and "running" not in fields and self.running:
            done.append("restarted")
        return ", ".join(part for part in done if part) or super().change_summary(diffs)

    def is_present(self, target: Target, observed: Observed) -> bool:
        actual = self._actual(observed)
        path = self._unit_file_path()
        return (actual is not None and actual["loaded"] != "not-found") or bool(path and observed[Paths].get(path))

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The unit as the host has it: running and enabled as found, a declared unit file known by its sha1
        (``⟦sha1:…⟧``); ``None`` when systemd does not know it."""
        actual = self._actual(observed)
        if actual is None or actual["loaded"] == "not-found":
            return None
        enabled = None if actual["file_state"] in ("static", "") else actual["file_state"] in ENABLED_STATES
        path = self._unit_file_path()
        info = observed[Paths].get(path) if path else None
        unit_file = held("sha1", info["sha1"]) if info is not None and info["sha1"] else None
        return self._found(running=actual["active"] in systemd.RUNNING_STATES, enabled=enabled, unit_file=unit_file)

    def apply(self, target: Target) -> OperationMeta:
        known_by_hash = self.unit_file is not None and held_digest(self.unit_file) is not None
        return systemd.service(unit=self.unit, running=self.running, enabled=self.enabled,
                               unit_file=None if known_by_hash else self.unit_file)

    def handler(self, changed: set[str], applied: list[Diff]) -> Handler | None:
        """Restart (else reload) once when something in ``restart_on`` (``reload_on``) changed on the host, unless
        it is declared stopped or this run just started or restarted it (its unit file changed)."""
        own = {diff.field for diff in applied}
        if self.running is False or own & {"present", "running", "unit_file", "daemon_reload"}:
            return None
        if changed & set(self.restart_on):
            return Handler("restarted", sorted(changed & set(self.restart_on)), lambda target: systemd.restart(unit=self.unit))
        if changed & set(self.reload_on):
            return Handler("reloaded", sorted(changed & set(self.reload_on)),
                           lambda target: systemd.restart(unit=self.unit, reload=True))
        return None

    def destroy(self, target: Target) -> OperationMeta:
        return systemd.service_absent(unit=self.unit, unit_file=self.unit_file is not None)
