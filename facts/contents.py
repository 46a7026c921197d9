"""The text of many files (the first bytes of each), in one command."""

from __future__ import annotations

import base64

from pyinfra.api import FactBase

from clockwork.facts.paths import quoted_paths

#: Bytes read per file; longer files are cut there.
CONTENT_LIMIT = 65536


class FileContents(FactBase[dict[str, str | None]]):
    """
    Returns the text of each file (its first ``CONTENT_LIMIT`` bytes); ``None``
    for a file that is missing, unreadable or not UTF-8 text:

    .. code:: python

        host.get_fact(FileContents, keys=("app/config.json",))
        {"app/config.json": '{"debug": true}\\n'}
    """

    def command(self, keys: tuple[str, ...]) -> str:
        return (
            f"set -- {quoted_paths('FileContents', keys)}; for p in \"$@\"; do printf '%s\\t' \"$p\"; "
            f"if [ -f \"$p\" ] && [ -r \"$p\" ]; then head -c {CONTENT_LIMIT} -- \"$p\" | base64 | tr -d '\\n'; "
            "else printf -; fi; echo; done"
        )

    @staticmethod
    def default() -> dict[str, str | None]:
        return {}

    def process(self, output: list[str]) -> dict[str, str | None]:
        contents: dict[str, str | None] = {}
        for line in output:
            path, tab, encoded = line.partition("\t")
            if not tab:
                continue
            try:
                contents[path] = None if encoded == "-" else base64.b64decode(encoded).decode()
            except ValueError:  # not base64 or not UTF-8: no text to show
                contents[path] = None
        return contents
