"""The reconcile rules as data (``tests/reconcile/<rule>/<case>.json``): before, observation, now → after,
events, alerts. Each case runs the pure function of ``clockwork.reconcile.policy`` it names."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from clockwork.alerts import Alert
from clockwork.reconcile import policy
from clockwork.state.base import HostHealth, Lifetime, Watch

CASES_DIR = Path(__file__).parent / "reconcile"
CASES = sorted(CASES_DIR.glob("*/*.json"))
RULE_FUNCTIONS = {"record", "may_correct", "lease_holds", "outcome", "host_failed", "host_answered", "expiry", "expiry_warning",
                  "expired", "held", "next_check", "due", "unchanged"}


def _alert(alert: Alert) -> dict[str, Any]:
    assert alert.intent == "corrective", "every alert of the reconciler is about its own changes"
    return {key: value for key, value in dataclasses.asdict(alert).items() if value not in (None, "") and key != "intent"}


def _rules(data: dict[str, Any]) -> policy.Rules:
    return policy.Rules(**{**data, "alert_on": tuple(data.get("alert_on", ("drift", "failure")))})


def _watch(data: dict[str, Any]) -> Watch:
    return Watch(**{"type": "FileResource", "name": "app.conf", "host": "web-1", **data})


def _run(rule: str, case: dict[str, Any]) -> dict[str, Any]:
    """Call the rule with the case's inputs; returns what it decided, in the case's terms."""
    now, seen = case["now"], case.get("observation", {})
    if rule == "record":
        step = policy.record(_watch(case["before"]), seen["result"], seen["detail"], now, _rules(case["rules"]),
                             seen.get("version"), seen.get("fingerprint", ""))
        return {"after": dataclasses.asdict(step.watch), "events": [[e.kind, e.detail] for e in step.events],
                "alerts": [_alert(a) for a in step.alerts]}
    if rule == "expired":
        step = policy.expired(_watch(case["before"]), seen["detail"], now, _rules(case["rules"]))
        return {"after": dataclasses.asdict(step.watch), "alerts": [_alert(a) for a in step.alerts]}
    if rule == "may_correct":
        return {"decision": policy.may_correct(_watch(case["before"]), seen["on_drift"], now, seen["flapping_limit"],
                                               seen.get("version"), seen.get("fingerprint"))}
    if rule == "held":
        return {"decision": policy.held(_watch(case["before"]), now, seen.get("version"), seen.get("fingerprint"))}
    if rule == "unchanged":
        return {"decision": policy.unchanged(_watch(case["before"]), seen["fingerprint"], seen.get("version"))}
    if rule == "due":
        return {"decision": policy.due(_watch(case["before"]), now, seen.get("version"))}
    if rule == "next_check":
        return {"decision": policy.next_check(_watch(case["before"]), seen["due"])}
    if rule == "lease_holds":
        return {"decision": policy.lease_holds(seen["left"], seen["lease"])}
    if rule == "outcome":
        return {"decision": policy.outcome(seen["status"], seen["corrected"], seen.get("failure"), seen["on_drift"],
                                           seen.get("held"), seen.get("unstable", False))}
    if rule == "host_failed":
        before = HostHealth(**case["before"]) if case.get("before") else None
        health, alerts = policy.host_failed(before, seen["host"], seen["error"], now, set(seen["gate"]))
        return {"after": dataclasses.asdict(health), "alerts": [_alert(a) for a in alerts]}
    if rule == "host_answered":
        return {"alerts": [_alert(a) for a in policy.host_answered(HostHealth(**case["before"]), now, set(seen["gate"]))],
                "backed_off": policy.backed_off(HostHealth(**case["before"]), now)}
    lifetime = Lifetime(**{"type": "FileResource", "name": "temp.conf", "host": "web-1", **case["before"]})
    if rule == "expiry":
        return {"decision": policy.expiry(lifetime, now)}
    return {"alerts": [_alert(a) for a in policy.expiry_warning(lifetime, now, _rules(case["rules"]))]}


def test_every_rule_has_cases() -> None:
    assert {path.parent.name for path in CASES} == RULE_FUNCTIONS


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_rule(path: Path) -> None:
    case = json.loads(path.read_text())
    decided = _run(path.parent.name, case)
    expected = {key: case[key] for key in ("after", "events", "alerts", "decision", "backed_off") if key in case}
    if "after" in expected:
        decided["after"] = {key: decided["after"][key] for key in expected["after"]}
    assert {key: decided[key] for key in expected} == expected
