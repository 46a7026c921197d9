"""Offline completion: maintained catalogs from description keywords to pinned values. No network."""

from __future__ import annotations

import re
from collections.abc import Iterator


class Catalog:
    """``(keywords, value)`` entries, first match wins: a kind's offline completion of one field
    (``Resource.catalogs``). Put product names before generic words, so that "nginx reverse proxy"
    picks nginx. A keyword matches as a whole word, case-insensitively.

    >>> images = Catalog([(("redis",), "redis:7.4-alpine"), (("cache",), "memcached:1.6-alpine")])
    >>> images.match("Redis cache for sessions")
    'redis:7.4-alpine'
    >>> images.match("something nobody knows") is None
    True
    """

    def __init__(self, entries: list[tuple[tuple[str, ...], str]]) -> None:
        self.entries = entries

    def match(self, text: str) -> str | None:
        """The value of the first entry with a keyword in ``text``, or ``None``."""
        words = text.lower()
        for keywords, value in self.entries:
            if any(re.search(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])", words) for keyword in keywords):
                return value
        return None

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], str]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
