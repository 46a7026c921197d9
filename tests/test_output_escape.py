"""``escape`` replaces exactly the characters of Unicode's control categories and the bidi controls, as before
it was one regular expression (it was a category lookup per character: seconds for a 500-host report)."""

from __future__ import annotations

import sys
import unicodedata

from clockwork.output import escape

BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def test_every_code_point_is_escaped_exactly_when_it_is_a_control() -> None:
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        control = unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or code in BIDI
        assert (escape(char) != char) == control, hex(code)


def test_escapes_read_as_before() -> None:
    assert escape("a\tb\rc\nd\x1b[31m\x7f\u202e\ud800é") == "a\\tb\\rc\\nd\\x1b[31m\\x7f\\u202e\\ud800é"
    assert escape("one\ntwo\x00", keep_newlines=True) == "one\ntwo\\x00"
