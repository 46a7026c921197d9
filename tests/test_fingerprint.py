"""A pair's fingerprint (clockwork/reconcile/fingerprint.py): what changes it and what does not. Unstable by two
passes rests on it: an outside change must always change it, and nothing else may."""

from __future__ import annotations

from typing import Any

import pytest

from clockwork.engine.types import Observed, Target
from clockwork.facts.apt import DebPackages
from clockwork.facts.paths import Paths, temp_sibling
from clockwork.facts.systemd import SystemdUnits
from clockwork.reconcile.fingerprint import fingerprint
from clockwork.resources import FileResource, PackageResource, Resource, ServiceResource

KEY = b"project key"
TARGET = Target("web-1")
CONF = FileResource(name="app.conf", directory="/etc/app", content="x = 1\n", mode="640")
FILE = {"type": "file", "mode": "640", "user": "app", "group": "app", "sha1": "3f2a"}
UNIT = {"loaded": "loaded", "active": "active", "sub": "running", "file_state": "enabled",
        "need_daemon_reload": False, "fragment_path": "/lib/systemd/system/cron.service", "active_since": 5}
PACKAGE = {"version": "1.2-1", "status": "installed", "held": False, "installed_by_clockwork": True}


def paths(**entries: Any) -> Observed:
    return Observed({Paths: {"/etc/app/app.conf": FILE, **entries}})


def print_of(resource: Resource, observed: Observed, target: Target = TARGET) -> str | None:
    return fingerprint(resource, target, observed, KEY)


def test_the_same_answer_gives_the_same_fingerprint_a_keyed_hash() -> None:
    assert print_of(CONF, paths()) == print_of(CONF, paths())
    assert (print_of(CONF, paths()) or "").startswith("hmac:")
    assert fingerprint(CONF, TARGET, paths(), b"another project") != print_of(CONF, paths())


def test_other_resources_read_in_the_same_batch_do_not_change_it() -> None:
    assert print_of(CONF, paths()) == print_of(CONF, paths(**{"/etc/app/other.conf": {**FILE, "sha1": "77"}}))


@pytest.mark.parametrize("changed", [
    paths(**{"/etc/app/app.conf": {**FILE, "sha1": "9c1e"}}),
    paths(**{"/etc/app/app.conf": {**FILE, "mode": "600"}}),
    paths(**{"/etc/app/app.conf": None}),
    paths(**{temp_sibling("/etc/app/app.conf"): {**FILE, "sha1": None}}),
], ids=["content", "mode", "removed", "a killed write's leftover"])
def test_an_edit_on_the_host_changes_a_files_fingerprint(changed: Observed) -> None:
    assert print_of(CONF, changed) != print_of(CONF, paths())


def test_what_is_declared_for_the_host_is_part_of_it() -> None:
    assert print_of(CONF.model_copy(update={"content": "x = 2\n"}), paths()) != print_of(CONF, paths())
    other_data = Target("web-1", data={"workers": 8})  # what a template renders
    assert print_of(CONF, paths(), other_data) != print_of(CONF, paths())


def test_a_unit_file_changed_on_disk_changes_a_services_fingerprint() -> None:
    service = ServiceResource(name="cron")
    before = Observed({SystemdUnits: {"units": {"cron.service": UNIT}, "error": None}})
    after = Observed({SystemdUnits: {"units": {"cron.service": {**UNIT, "need_daemon_reload": True}}, "error": None}})
    assert print_of(service, before) != print_of(service, after)


def test_an_interrupted_dpkg_run_changes_a_packages_fingerprint() -> None:
    package = PackageResource(name="curl")
    before = Observed({DebPackages: {"packages": {"curl": PACKAGE}, "error": None}})
    after = Observed({DebPackages: {"packages": {"curl": {**PACKAGE, "status": "half-configured"}}, "error": None}})
    assert print_of(package, before) != print_of(package, after)


def test_none_when_the_host_could_not_say() -> None:
    failed = Observed({DebPackages: {"packages": {}, "error": "dpkg: lock held"}})
    assert print_of(PackageResource(name="curl"), failed) is None
