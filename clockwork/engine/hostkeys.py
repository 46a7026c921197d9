"""known_hosts read and indexed once per session, not scanned once per connection.

pyinfra's SSH client looks every connection's host up in one shared ``HostKeys``
(``pyinfra.connectors.sshuserclient.client.get_host_keys``), and paramiko's lookup
scans every entry, hashing the name once per hashed (``|1|``) entry: over a fleet
whose hosts share one known_hosts, N connections cost N² comparisons or HMACs.
``IndexedHostKeys`` answers the same lookups from an index; strict checking is
unchanged (the same entries, in the same order, decide; a host not found or with
another key is refused by pyinfra's policy and paramiko exactly as before).
"""

from __future__ import annotations

import binascii
import hmac
from base64 import decodebytes, encodebytes
from collections.abc import Callable
from typing import Any

from paramiko import HostKeys
from paramiko.hostkeys import HostKeyEntry
from pyinfra import logger
from pyinfra.connectors.sshuserclient import client as sshuserclient

#: A hashed host name: ``|1|<base64 salt>|<base64 HMAC-SHA1 of the name>``.
HASHED = "|1|"


def _lookup_result_class() -> type:
    """The mapping paramiko's ``HostKeys.lookup`` returns (a class it defines inside that method)."""
    probe: Any = HostKeys()
    probe._entries.append(HostKeyEntry(["probe"], None))
    return type(HostKeys.lookup(probe, "probe"))


_KeysOfHost = _lookup_result_class()


def _encoded(data: bytes) -> str:
    return encodebytes(data).decode().replace("\n", "")


def _parse_hashed(name: str) -> tuple[bytes, bytes] | None:
    """(salt, digest) of a hashed name in the form paramiko writes, or ``None`` when paramiko's own comparison
    must judge it (a salt it cannot decode makes paramiko raise; an odd spelling never matches)."""
    parts = name.split("|")
    if len(parts) != 4:
        return None
    try:
        salt, digest = decodebytes(parts[2].encode()), decodebytes(parts[3].encode())
    except binascii.Error:
        return None
    if len(salt) != 20 or len(digest) != 20 or name != f"{HASHED}{_encoded(salt)}|{_encoded(digest)}":
        return None
    return salt, digest


class IndexedHostKeys(HostKeys):
    """paramiko's ``HostKeys`` whose ``lookup`` (and so ``check``, ``get``, ``[name]``) uses an index.

    Plain names are a dict lookup. A hashed entry can only be matched by hashing the
    name with its salt, so the first lookup of a name hashes it once per hashed entry
    (one C HMAC each, not paramiko's re-encoding) and the answer is kept: each
    connection then costs a dict lookup. The index follows entries as they are
    appended (``load``, ``add``) and is rebuilt when one is removed.
    """

    # paramiko's, left out of its type stubs:
    _entries: list[HostKeyEntry]
    _hostname_matches: Callable[[str, HostKeyEntry], bool]

    def __init__(self, filename: str | None = None) -> None:
        self._forget()
        super().__init__(filename)

    def _forget(self) -> None:
        #: How many of ``_entries`` are indexed.
        self._indexed = 0
        #: Every name as written (plain or hashed) → the positions of the entries naming it.
        self._names: dict[str, list[int]] = {}
        #: (salt, digest, position) of each hashed name.
        self._hashed: list[tuple[bytes, bytes, int]] = []
        #: Positions of entries holding a hashed name paramiko's comparison must judge (see ``_parse_hashed``).
        self._odd: list[int] = []
        #: Lookup name → the entries it matches, in file order.
        self._found: dict[str, list[HostKeyEntry]] = {}

    def _index(self) -> None:
        if self._indexed > len(self._entries):
            self._forget()
        for position in range(self._indexed, len(self._entries)):
            for name in self._entries[position].hostnames:
                self._names.setdefault(name, []).append(position)
                if name.startswith(HASHED):
                    parsed = _parse_hashed(name)
                    if parsed is not None:
                        self._hashed.append((*parsed, position))
                    elif position not in self._odd:
                        self._odd.append(position)
            self._found.clear()
        self._indexed = len(self._entries)

    def lookup(self, hostname: str) -> Any:
        """The keys of ``hostname`` (paramiko's mapping of key type → key), or ``None``: what paramiko answers."""
        self._index()
        found = self._found.get(hostname)
        if found is None:
            positions = set(self._names.get(hostname, ()))
            if not hostname.startswith(HASHED):
                name = hostname.encode()
                positions.update(position for salt, digest, position in self._hashed
                                 if hmac.compare_digest(hmac.digest(salt, name, "sha1"), digest))
                positions.update(position for position in self._odd
                                 if self._hostname_matches(hostname, self._entries[position]))
            found = self._found[hostname] = [self._entries[position] for position in sorted(positions)]
        return _KeysOfHost(hostname, list(found), self) if found else None

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._forget()

    def clear(self) -> None:
        super().clear()
        self._forget()


_loaded: dict[tuple[str, ...], HostKeys] = {}


def _get_host_keys(filenames: tuple[str, ...]) -> HostKeys:
    """pyinfra's ``get_host_keys``: the host keys of ``filenames``, loaded as pyinfra loads them, indexed."""
    host_keys = _loaded.get(filenames)
    if host_keys is None:
        with sshuserclient.HOST_KEYS_LOCK:
            host_keys = _loaded.get(filenames)
            if host_keys is None:
                host_keys = IndexedHostKeys()
                for filename in filenames:
                    try:
                        host_keys.load(filename)
                    except Exception as error:  # noqa: BLE001 (as pyinfra: a bad line may end paramiko's load)
                        logger.warning("Failed to load host keys from %s: %s", filename, error)
                _loaded[filenames] = host_keys
    return host_keys


def index_host_keys() -> None:
    """Make pyinfra's SSH connections look host keys up in ``IndexedHostKeys``, each known_hosts file read
    again at its first use after this call (a session calls it once before connecting: a long-running
    reconcile sees keys added or removed since its last pass)."""
    sshuserclient.get_host_keys = _get_host_keys
    _loaded.clear()
