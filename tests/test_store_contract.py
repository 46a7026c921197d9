"""What every state store backend must do, run against each backend (SQLite now; PostgreSQL joins with its own
fixture). Backend-specific behaviour (files on disk) is tested in tests/test_store.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clockwork.exceptions import LockTimeout
from clockwork.state.base import HostHealth, StateStore, Watch
from clockwork.state.sqlite import SqliteStore

BACKENDS: dict[str, Callable[[Path, float], StateStore]] = {
    "sqlite": lambda directory, lock_timeout: SqliteStore(directory / ".clockwork", lock_timeout),
}


@pytest.fixture(params=sorted(BACKENDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[float], StateStore]]:
    """``make_store(lock_timeout)``: another handle on one project's store, as a second process would open it."""
    opened: list[StateStore] = []

    def make(lock_timeout: float = 5.0) -> StateStore:
        opened.append(BACKENDS[request.param](tmp_path, lock_timeout))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


SPEC = {"name": "app.conf", "content": "ünïcode ⟦secret:env:X⟧ " * 200, "env_vars": {"A": "1"}, "checks": [{"port": 80}]}


def test_versions_are_numbered_per_resource_and_come_back_exactly(make_store) -> None:
    store = make_store()
    with store.writer("apply") as deployment:
        first = store.record_version(deployment, "FileResource", "app.conf", SPEC, "apply", ["web-1"], {"env:X": "hmac:1"})
        store.record_version(deployment, "FileResource", "other", {"name": "other"}, "apply", ["web-2"])
        second = store.record_version(deployment, "FileResource", "app.conf", {**SPEC, "mode": "600"}, "update",
                                      ["web-1", "web-2"])
    assert (first.version, second.version) == (1, 2)
    assert isinstance(first.created_at, float) and abs(first.created_at - time.time()) < 60
    latest = store.latest("FileResource", "app.conf")
    assert latest is not None and (latest.version, latest.source, latest.hosts) == (2, "update", ["web-1", "web-2"])
    assert latest.spec == {**SPEC, "mode": "600"}
    assert store.versions("FileResource", "app.conf")[0].spec == SPEC
    assert store.versions("FileResource", "app.conf")[0].fingerprints == {"env:X": "hmac:1"}
    assert [(v.resource, v.version) for v in store.latest_versions()] == [("other", 1), ("app.conf", 2)]
    assert store.latest("FileResource", "missing") is None
    assert make_store().latest("FileResource", "app.conf") == latest, "another handle reads what was written"


def test_a_second_project_writer_waits_then_names_the_holder(make_store) -> None:
    first, second = make_store(), make_store(lock_timeout=0.3)
    with first.writer("apply"):
        with pytest.raises(LockTimeout) as error, second.writer("destroy"):
            pass
    assert str(error.value).startswith(f"the project is locked by pid {__import__('os').getpid()} (apply, since ")
    assert str(error.value).endswith("; gave up after waiting 0.3s")
    with second.writer("destroy"):  # released with its holder
        pass


def test_host_writers_share_the_project_but_not_their_hosts(make_store) -> None:
    one, two, project = make_store(lock_timeout=0.3), make_store(lock_timeout=0.3), make_store(lock_timeout=0.3)
    with one.writer("reconcile", record=False, hosts=["web-1", "web-2"]):
        with two.writer("reconcile", record=False, hosts=["web-3"]):
            pass  # disjoint hosts: at the same time
        with pytest.raises(LockTimeout, match="^host web-2 is locked by"), two.writer("reconcile", False, ["web-2"]):
            pass
        with pytest.raises(LockTimeout, match="^the project is locked by"), project.writer("apply"):
            pass
    with project.writer("apply"):
        with pytest.raises(LockTimeout), one.writer("reconcile", record=False, hosts=["web-9"]):
            pass


def test_an_unfinished_deployment_is_interrupted_for_the_next_project_writer(make_store) -> None:
    store = make_store()
    with store.writer("apply") as killed:
        pass  # never finished: its process died
    with store.writer("reconcile", record=False, hosts=["web-1"]):
        assert store.interrupted() == [], "a host writer cannot know that no apply runs"
    with store.writer("apply") as deployment:
        store.finish(deployment, "ok")
    assert [(row["id"], row["command"]) for row in store.interrupted()] == [(killed, "apply")]
    assert isinstance(store.interrupted()[0]["started_at"], float)


def test_lifetimes_count_from_the_first_deployment_and_extend(make_store) -> None:
    store = make_store()
    store.mark_deployed("FileResource", "temp", ["web-1", "web-2"], 1000.0, lifetime=3600)
    store.mark_deployed("FileResource", "temp", ["web-1"], 5000.0, lifetime=3600)  # a later apply: same clock
    store.mark_deployed("FileResource", "forever", ["web-1"], 1000.0)
    assert [(lt.host, lt.deployed_at, lt.expires_at, lt.warned) for lt in store.lifetimes()] == [
        ("web-1", 1000.0, 4600.0, False), ("web-2", 1000.0, 4600.0, False)]
    store.set_warned("FileResource", "temp", "web-1")
    assert [lt.warned for lt in store.lifetimes()] == [True, False]
    assert [lt.expires_at for lt in store.extend("FileResource", "temp", 600)] == [5200.0, 5200.0]
    assert not any(lt.warned for lt in store.lifetimes()), "an extension warns again"
    assert store.extend("FileResource", "forever", 600) == []
    store.forget_deployed("FileResource", "temp", ["web-2"], "expired")
    assert [lt.host for lt in store.lifetimes()] == ["web-1"]
    assert store.watches()[("FileResource", "temp", "web-2")].state == "expired"


def test_watches_and_host_health_are_kept_and_a_new_deployment_resets_the_watch(make_store) -> None:
    store = make_store()
    watch = Watch("FileResource", "app.conf", "web-1", next_due=10.0, last_checked=5.0, last_result="corrected",
                  detail="content differs", state="ok", since=1.0, corrections=[4.0, 5.0], total_corrections=2)
    store.save_watches([watch])
    assert store.watches() == {watch.key: watch}
    store.mark_deployed("FileResource", "app.conf", ["web-1"], 20.0)
    assert store.watches() == {}, "deployed anew: a clean record"
    health = HostHealth("web-3", 2, 30.0, 10.0, "timed out", alerted=True)
    store.save_host_health([health], recovered=[])
    assert store.host_health() == {"web-3": health}
    store.save_host_health([], recovered=["web-3"])
    assert store.host_health() == {}


def test_events_are_labelled_and_the_secret_key_is_stable(make_store) -> None:
    store = make_store()
    store.record_event("changed", "FileResource", "app.conf", "web-1", "created", "intentional")
    with pytest.raises(Exception):  # noqa: B017 (each backend raises its own integrity error)
        store.record_event("changed", "FileResource", "app.conf", "web-1", "created", "accidental")
    key = store.secret_key()
    assert len(key) == 32 and make_store().secret_key() == key
