"""Machine-readable renderings of a report: the JSON document of DESIGN.md and JUnit XML."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from clockwork.results import Report


def summary(report: Report) -> dict[str, int]:
    return {
        "hosts": len(report.hosts),
        "resources": report.resources,
        "ok": report.count("ok"),
        "drift": report.count("drift"),
        "error": report.count("error"),
    }


def to_json(report: Report) -> str:
    """``{"status": …, "summary": {…}, "results": […]}`` as DESIGN.md defines it."""
    document = {
        "status": report.status,
        "summary": summary(report),
        "results": [result.as_dict() for result in report.results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def to_junit(report: Report, suite: str = "clockwork evaluate") -> str:
    """JUnit XML: one testcase per host × resource; drift is a failure, an error is an error."""
    failures = report.count("drift") + report.count("pending")
    root = ElementTree.Element("testsuites")
    testsuite = ElementTree.SubElement(
        root, "testsuite", name=suite, tests=str(len(report.results)),
        failures=str(failures), errors=str(report.count("error")), skipped="0",
    )
    for result in report.results:
        case = ElementTree.SubElement(testsuite, "testcase", classname=result.host, name=f"{result.type} {result.resource}")
        if result.status in ("drift", "pending"):
            failure = ElementTree.SubElement(case, "failure", message=result.detail, type=result.status)
            failure.text = "\n".join(diff.describe() for diff in result.diffs)
        elif result.status == "error":
            ElementTree.SubElement(case, "error", message=result.error or result.detail, type="error")
        else:
            ElementTree.SubElement(case, "system-out").text = result.detail
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
