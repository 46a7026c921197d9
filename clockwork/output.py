"""Renderings of a report: control characters escaped for terminals, the JSON document of DESIGN.md, JUnit XML."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

from clockwork.results import Report
from clockwork.secrets import mask_text

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: What ``escape`` replaces, as one character class: Unicode's categories Cc (C0 and C1 controls, DEL), Cs
#: (surrogates), Zl and Zp (line and paragraph separators), and the bidirectional embeddings, overrides and
#: isolates (U+202A-U+202E, U+2066-U+2069).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape(text: str, keep_newlines: bool = False) -> str:
    """Control characters as backslash escapes (``esc\\x1b[31mred``), never raw and never dropped.

    Names and details come from main.py, the inventory and the hosts; printed raw,
    an escape sequence would restyle the terminal (and click drops it in a pipe).
    """
    return _CONTROL.sub(lambda match: _escaped(match.group(), keep_newlines), text)


def _escaped(char: str, keep_newlines: bool) -> str:
    if char == "\n" and keep_newlines:
        return char
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


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
    def text(value: str) -> str:  # XML 1.0 cannot hold most control characters: escape them, mask secrets
        return escape(mask_text(value), keep_newlines=True)

    for result in report.results:
        case = ElementTree.SubElement(testsuite, "testcase", classname=text(result.host),
                                      name=text(f"{result.type} {result.resource}"))
        if result.status in ("drift", "pending"):
            failure = ElementTree.SubElement(case, "failure", message=text(result.detail), type=result.status)
            failure.text = text("\n".join(diff.describe() for diff in result.diffs))
        elif result.status == "error":
            ElementTree.SubElement(case, "error", message=text(result.error or result.detail), type="error")
        else:
            ElementTree.SubElement(case, "system-out").text = text(result.detail)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
