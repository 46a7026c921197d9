"""Debian packages, installed and pinned with apt."""

from __future__ import annotations

from pydantic import Field, field_validator
from pyinfra.api.operation import OperationMeta

from clockwork.engine.types import Observed, Probe, Target
from clockwork.exceptions import HostReadError
from clockwork.facts.apt import PACKAGE_NAME, DebPackages, PackageInfo
from clockwork.operations import apt
from clockwork.resources.base import Resource, describe, name_field
from clockwork.results import Diff, Evaluation


class PackageResource(Resource):
    """A Debian package kept as declared with apt: installed (at a pinned ``version``), held, or absent. apt's
    lists are updated only when the wanted version has no candidate; apt never asks, and configuration files
    the host changed are kept. Needs root: run with sudo when the login user is not root.

    destroy removes only a package Clockwork installed (one that was there before is left in place).

    >>> nginx = PackageResource(name="nginx", version="1.22.1-9", hold=True)
    >>> nginx.label, nginx.privileged
    ("PackageResource 'nginx'", True)
    """

    name: str = name_field("the package name (`\"nginx\"`, `\"libc6:amd64\"`)")
    version: str | None = Field(None, description="the exact version to install, upgrading or downgrading to it "
                                                  "(`\"1.22.1-9\"`); `None`: any version, and a newer one is never "
                                                  "installed by itself")
    hold: bool | None = Field(None, description="`True` holds the package (`apt-mark hold`; a lost hold is drift), "
                                                "`False` releases it, `None` leaves it alone")
    present: bool = Field(True, description="`False` removes it (with `purge`, its configuration files too)")
    purge: bool = Field(False, description="removing it (`present=False` or `destroy`) removes its configuration "
                                           "files too")
    lock_timeout: int = Field(60, ge=0, description="seconds to wait for dpkg's lock when another apt or dpkg holds "
                                                    "it, then fail saying so")

    privileged = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PACKAGE_NAME.match(value):
            raise ValueError(f"{value!r} is not a Debian package name: lower-case letters, digits, '+', '-', '.', "
                             "starting with a letter or digit")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(char.isspace() for char in value) or not value[0].isdigit()):
            raise ValueError(f"{value!r} is not a Debian version: it starts with a digit and has no spaces")
        # Epoch 0 is the absent epoch: dpkg and apt report "1.1" for "0:1.1", and apt finds no "0:1.1".
        return value.removeprefix("0:") if value is not None else None

    def state_probes(self, target: Target) -> list[Probe]:
        return [(DebPackages, self.name)]

    def _actual(self, observed: Observed) -> PackageInfo | None:
        result = observed[DebPackages]
        if result["error"]:
            raise HostReadError(f"dpkg: {result['error']}")
        return result["packages"].get(self.name)

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        actual = self._actual(observed)
        diffs = self.diffs(apt.package_differences(actual, self.version, self.hold, self.present, self.purge))
        if diffs:
            return Evaluation(diffs, describe(diffs))
        if actual is None or not self.present:
            return Evaluation([], "absent")
        return Evaluation([], f"installed {actual['version']}" + (" (held)" if actual["held"] else ""))

    def describe_diff(self, diff: Diff) -> str | None:
        if diff.field == "present" and diff.actual == apt.CONFIG_FILES:
            return "removed, but its configuration files are left (purge wanted)"
        if diff.field == "present":
            return "not installed" if diff.expected else "installed, wanted absent"
        if diff.field == "hold":
            return "not held, wanted held" if diff.expected else "held, wanted not held"
        return super().describe_diff(diff)

    def change_summary(self, diffs: list[Diff]) -> str:
        fields = {diff.field: diff for diff in diffs}
        if "present" in fields:
            return "installed" if fields["present"].expected else "purged" if self.purge else "removed"
        if "version" in fields:
            return f"version {fields['version'].actual} → {fields['version'].expected}"
        return super().change_summary(diffs)

    def observed_state(self, target: Target, observed: Observed) -> PackageInfo | None:
        """The package as dpkg knows it (``None``: never seen)."""
        return self._actual(observed)

    def is_present(self, target: Target, observed: Observed) -> bool:
        return bool(apt.package_differences(self._actual(observed), present=False, purge=self.purge))

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The package as the host has it (version and hold as found); ``None`` when it is not installed."""
        actual = self._actual(observed)
        if actual is None or actual["status"] == "config-files":
            return None
        return self._found(version=actual["version"], hold=actual["held"], present=True)

    def apply(self, target: Target) -> OperationMeta:
        return apt.package(package=self.name, version=self.version, hold=self.hold, present=self.present,
                           purge=self.purge, lock_timeout=self.lock_timeout)

    def destroy(self, target: Target) -> OperationMeta:
        return apt.package_absent(package=self.name, purge=self.purge, lock_timeout=self.lock_timeout)
