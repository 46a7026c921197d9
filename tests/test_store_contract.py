"""What every state store backend must do, run against each backend (SQLite now; PostgreSQL joins with its own
fixture). Backend-specific behaviour (files on disk) is tested in tests/test_store.py."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clockwork.exceptions import LockTimeout
from clockwork.state.base import Claim, HostHealth, PassWrites, StateStore, Watch
from clockwork.state.sqlite import SqliteStore

@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., StateStore]]:
    """``make_store(lock_timeout)``: another handle on one project's store, as a second process would open it
    (PostgreSQL: a fresh database from the test server, shared with another project)."""
    opened: list[StateStore] = []
    if request.param == "postgresql":
        from clockwork.state.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")
        PostgresStore(url, "a neighbour").close()  # another project in the same database sees nothing of this one
        open_one: Callable[[float], StateStore] = lambda lock_timeout: PostgresStore(url, "contract", lock_timeout)
    else:
        open_one = lambda lock_timeout: SqliteStore(tmp_path / ".clockwork", lock_timeout)

    def make(lock_timeout: float = 5.0) -> StateStore:
        opened.append(open_one(lock_timeout))
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


def test_a_version_recorded_before_its_apply_is_settled_where_it_really_is(make_store) -> None:
    store = make_store()
    with store.writer("apply") as deployment:
        first = store.record_version(deployment, "FileResource", "app.conf", SPEC, "apply", ["web-1"])
        planned = store.record_version(deployment, "FileResource", "app.conf", {"name": "v2"}, "apply", ["web-1", "web-2"])
        settled = store.settle_version(planned, ["web-2"])
        assert settled is not None and settled.hosts == ["web-2"]
        assert make_store().latest("FileResource", "app.conf") == settled
        failed = store.record_version(deployment, "FileResource", "app.conf", {"name": "v3"}, "apply", ["web-1"])
        assert store.settle_version(failed, []) is None, "in place nowhere: removed"
    assert store.latest("FileResource", "app.conf") == settled
    assert [v.version for v in store.versions("FileResource", "app.conf")] == [first.version, 2]
    with store.writer("apply") as deployment:
        again = store.record_version(deployment, "FileResource", "app.conf", {"name": "v3"}, "apply", ["web-1"])
    assert again.version == 3, "the removed number is given again: no manifest names it"


def test_a_second_project_writer_waits_then_names_the_holder(make_store) -> None:
    first, second = make_store(), make_store(lock_timeout=0.3)
    with first.writer("apply"):
        with pytest.raises(LockTimeout) as error, second.writer("destroy"):
            pass
    assert str(error.value).startswith(f"the project is locked by pid {os.getpid()} on {socket.gethostname()} (apply, since ")
    assert str(error.value).endswith("; gave up after waiting 0.3s")
    with second.writer("destroy"):  # released with its holder
        pass


def test_shared_writers_run_together_and_an_exclusive_one_waits_for_all(make_store) -> None:
    one, two, project = make_store(lock_timeout=0.3), make_store(lock_timeout=0.3), make_store(lock_timeout=0.3)
    with one.writer("reconcile", record=False, shared=True):
        with two.writer("reconcile", record=False, shared=True):
            pass  # two reconcile workers at the same time
        named = rf"1 reconcile pass: pid {os.getpid()} on .+ \(reconcile, since .+\)"  # PostgreSQL stores each holder
        with pytest.raises(LockTimeout, match=f"^the project is locked by (a reconcile pass|{named}); gave up after"), \
                project.writer("apply"):
            pass
    with project.writer("apply"):
        with pytest.raises(LockTimeout, match=f"^the project is locked by pid {os.getpid()} on "), \
                one.writer("reconcile", record=False, shared=True):
            pass


def test_an_unfinished_deployment_is_interrupted_for_the_next_project_writer(make_store) -> None:
    store = make_store()
    with store.writer("apply") as killed:
        pass  # never finished: its process died
    with store.writer("reconcile", record=False, shared=True):
        assert store.interrupted() == [], "a shared writer cannot know that no apply runs"
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
                  detail="content differs", state="ok", since=1.0, corrections=[4.0, 5.0], total_corrections=2,
                  failed_corrections=3, retry_at=18.5, version=4, fingerprint="hmac:5d41402abc4b2a76b9719d911017c592")
    store.save_watches([watch])
    assert store.watches() == {watch.key: watch}, "with its correction backoff, fingerprint and the version they count for"
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


def test_the_last_event_of_each_resource_on_each_host_says_whether_it_was_intentional_or_corrective(make_store) -> None:
    store = make_store()
    store.record_event("changed", "FileResource", "app.conf", "web-1", "created", "intentional")
    store.record_event("changed", "FileResource", "app.conf", "web-2", "created", "intentional")
    store.record_event("corrected", "FileResource", "app.conf", "web-1", "content differs", "corrective")
    store.record_event("rolled-back", "FileResource", "app.conf", None, "to v1", "intentional")  # about no host
    last = store.last_events()
    assert {key: (event.kind, event.intent) for key, event in last.items()} == {
        ("FileResource", "app.conf", "web-1"): ("corrected", "corrective"),
        ("FileResource", "app.conf", "web-2"): ("changed", "intentional")}
    assert last[("FileResource", "app.conf", "web-1")].at >= last[("FileResource", "app.conf", "web-2")].at


def test_workers_claim_due_hosts_disjointly_up_to_their_capacity(make_store) -> None:
    one, two = make_store(), make_store()
    one.add_hosts(["web-1", "web-2", "web-3"])
    one.add_hosts(["web-1"])  # known hosts are not made due again
    first = one.claim("w1", now=100.0, capacity=2, lease=60)
    second = two.claim("w2", now=100.0, capacity=5, lease=60)
    assert [claim.host for claim in first] == ["web-1", "web-2"]
    assert [claim.host for claim in second] == ["web-3"], "never a host another worker holds"
    assert one.claim("w1", now=100.0, capacity=5, lease=60) == []
    assert set(one.lease_left("w1", first)) == {"web-1", "web-2"}
    assert all(50 < left <= 60 for left in one.lease_left("w1", first).values())
    assert one.lease_left("w1", second) == {}, "a worker holds only its own claims"


def test_a_finished_pass_writes_its_hosts_sets_their_next_due_and_gives_them_up(make_store) -> None:
    store = make_store()
    store.add_hosts(["web-1", "web-2"])
    claims = store.claim("w1", now=100.0, capacity=5, lease=60)
    writes = PassWrites(now=100.0)
    writes.save_watches([Watch("FileResource", "a", "web-1", next_due=160.0, state="ok")])
    writes.record_event("corrected", "FileResource", "a", "web-1", "content", "corrective")
    writes.save_host_health([HostHealth("web-2", 1, 102.0, 100.0, "timed out")], [])
    assert store.finish_pass("w1", claims, writes, next_due={"web-1": 160.0, "web-2": 900.0}) == []
    assert set(store.watches()) == {("FileResource", "a", "web-1")}
    assert set(store.host_health()) == {"web-2"}
    assert store.next_due(now=100.0) == 160.0
    assert store.claim("w1", now=159.0, capacity=5, lease=60) == [], "nothing due yet"
    assert [c.host for c in store.claim("w2", now=160.0, capacity=5, lease=60)] == ["web-1"]


def test_a_worker_that_lost_its_lease_writes_nothing_and_the_new_holder_does(make_store) -> None:
    slow, fast = make_store(), make_store()
    slow.add_hosts(["web-1", "web-2"])
    stale = slow.claim("slow", now=100.0, capacity=5, lease=-1)  # a lease already run out: the worker stalled
    taken = fast.claim("fast", now=100.0, capacity=1, lease=60)
    assert [(c.host, c.fence) for c in taken] == [("web-1", stale[0].fence + 1)]
    late = PassWrites(now=100.0)
    late.save_watches([Watch("FileResource", "a", host, next_due=1.0, state="drift") for host in ("web-1", "web-2")])
    assert slow.finish_pass("slow", stale, late, next_due={"web-1": 1.0, "web-2": 500.0}) == ["web-1"]
    assert set(fast.watches()) == {("FileResource", "a", "web-2")}, "web-2 was still its own: nobody took it"
    assert fast.lease_left("fast", taken).keys() == {"web-1"}, "the late finish did not release another's claim"
    fresh = PassWrites(now=100.0)
    fresh.save_watches([Watch("FileResource", "a", "web-1", next_due=200.0, state="ok")])
    assert fast.finish_pass("fast", taken, fresh, next_due={"web-1": 200.0}) == []
    assert fast.watches()[("FileResource", "a", "web-1")].state == "ok"
    assert slow.finish_pass("slow", [Claim("web-1", stale[0].fence)], PassWrites(0.0), {"web-1": 0.0}) == ["web-1"]
    assert slow.next_due(now=100.0) == 200.0, "a stale fence never moves the next due time"


def test_heartbeats_keep_leases_and_workers_are_listed_with_their_hosts(make_store) -> None:
    store = make_store()
    store.register_worker("w1", lease=60)
    store.register_worker("gone", lease=-1)  # silent for longer than three lease periods
    store.add_hosts(["web-1", "web-2"])
    claims = store.claim("w1", now=100.0, capacity=5, lease=-1)
    store.heartbeat("w1", lease=60, claims=claims)
    assert all(left < 0 for left in store.lease_left("w1", claims).values()), "an expired lease is never revived"
    claims = store.claim("w1", now=100.0, capacity=5, lease=1)
    store.heartbeat("w1", lease=60, claims=claims[:1])
    assert store.lease_left("w1", claims)["web-1"] > 50, "renewed by the heartbeat"
    assert store.lease_left("w1", claims)["web-2"] <= 1, "only the claims it names"
    store.heartbeat("w1", lease=60, claims=claims)
    assert store.claim("w2", now=100.0, capacity=5, lease=60) == []
    assert 150.0 < store.next_due(now=100.0) <= 160.0, "when the leases end, on the caller's clock"
    workers = {worker.id: worker for worker in store.workers()}
    assert (workers["w1"].alive, workers["w1"].hosts, workers["w1"].lease) == (True, ["web-1", "web-2"], 60)
    assert (workers["gone"].alive, workers["gone"].hosts) == (False, [])
    store.retire_worker("w1")
    assert [worker.id for worker in store.workers()] == ["gone"]
    assert [c.host for c in store.claim("w2", now=100.0, capacity=5, lease=60)] == ["web-1", "web-2"], "given up"


def test_an_apply_or_extend_makes_its_hosts_due_at_once(make_store) -> None:
    store = make_store()
    store.add_hosts(["web-1", "web-2"])
    claims = store.claim("w1", now=100.0, capacity=5, lease=60)
    store.finish_pass("w1", claims, PassWrites(now=100.0), next_due={"web-1": 900.0, "web-2": 900.0})
    store.mark_deployed("FileResource", "temp", ["web-2", "web-3"], 100.0, lifetime=3600)
    working = store.claim("w1", now=101.0, capacity=5, lease=60)
    assert [c.host for c in working] == ["web-2", "web-3"]
    store.extend("FileResource", "temp", 600)  # while that pass works from what was deployed before
    writes = PassWrites(now=101.0)
    writes.save_watches([Watch("FileResource", "temp", "web-2", next_due=1.0, state="ok")])
    assert store.finish_pass("w1", working, writes, {"web-2": 5000.0, "web-3": 5000.0}) == ["web-2", "web-3"]
    assert store.watches() == {}, "its results are not recorded: it worked from what was deployed before"
    assert [c.host for c in store.claim("w1", now=101.0, capacity=5, lease=60)] == ["web-2", "web-3"], "due again"


def test_an_expiry_is_recorded_only_while_it_is_still_past(make_store) -> None:
    store = make_store()
    store.mark_deployed("FileResource", "temp", ["web-1", "web-2"], 1000.0, lifetime=100)
    store.add_hosts(["web-1", "web-2"])
    claims = store.claim("w1", now=2000.0, capacity=5, lease=60)
    writes = PassWrites(now=2000.0)
    writes.forget_deployed("FileResource", "temp", ["web-1", "web-2"], "expired")
    store.extend("FileResource", "temp", 5000)  # someone extended it while the pass removed it
    store.forget_deployed("FileResource", "temp", ["web-1"], "destroyed")
    store.finish_pass("w1", claims, writes, next_due={})
    assert [lt.host for lt in store.lifetimes()] == ["web-2"], "still in the store's care: the next pass looks again"


def test_a_failed_pass_gives_its_hosts_back_as_due_as_they_were(make_store) -> None:
    store = make_store()
    store.add_hosts(["web-1", "web-2"])
    claims = store.claim("w1", now=100.0, capacity=5, lease=60)
    store.release("w1", claims[:1])
    assert [c.host for c in store.claim("w2", now=100.0, capacity=5, lease=60)] == ["web-1"], "taken at once"
    store.release("w1", claims[:1])
    assert store.lease_left("w2", store.claim("w3", 100.0, 5, 60)) == {}, "a stale release frees nobody's claim"


def test_a_host_where_nothing_is_placed_any_more_is_forgotten_and_due_when_it_comes_back(make_store) -> None:
    store = make_store()
    store.add_hosts(["web-1", "web-3"])
    claims = store.claim("w1", now=100.0, capacity=5, lease=60)
    assert store.finish_pass("w1", claims, PassWrites(100.0), {"web-1": 900.0}, gone=["web-3"]) == []
    assert store.claim("w1", now=200.0, capacity=5, lease=60) == []
    store.add_hosts(["web-1", "web-3"])  # the inventory places something there again
    assert [c.host for c in store.claim("w1", now=200.0, capacity=5, lease=60)] == ["web-3"]
