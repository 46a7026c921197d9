"""The indexed known_hosts answers every lookup as paramiko's ``HostKeys`` does (no host needed); a Clockwork
command still refuses a host whose key is unknown or changed, with pyinfra's errors (real sshd hosts)."""

from __future__ import annotations

from base64 import b64decode
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko import HostKeys, PKey
from pyinfra.connectors.sshuserclient import client as sshuserclient

from clockwork.engine.hostkeys import IndexedHostKeys
from tests.conftest import CwProject
from testsupport.fleet import Fleet


def _public_key() -> str:
    """A fresh ``ssh-ed25519 AAAA…`` public key."""
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


A, B, C, D = (_public_key() for _ in range(4))
KNOWN_HOSTS = f"""\
# a comment, then a blank line

web-1 {A}
web-2,10.0.0.2 {B}
[10.0.0.3]:2222 {C}
{HostKeys.hash_host("hidden-1")} {D}
{HostKeys.hash_host("[hidden-2]:2200")} {A}
{HostKeys.hash_host("web-1")} {C}
web-2 {B}
dup {A}
dup {C}
not-a-key-line
weird ssh-unknown-type AAAA
{HostKeys.hash_host("hidden-1").replace("|1|", "|1|*", 1)} {B}
"""
KEYS = [PKey.from_type_string("ssh-ed25519", b64decode(key.split()[1])) for key in (A, B, C, D)]
NAMES = ["web-1", "web-2", "10.0.0.2", "[10.0.0.3]:2222", "10.0.0.3", "hidden-1", "[hidden-2]:2200", "hidden-2",
         "dup", "weird", "unknown", HostKeys.hash_host("hidden-1")]


def _answer(host_keys: HostKeys, name: str) -> list[tuple[str, bytes]] | None:
    """What a lookup says about ``name``: the keys (type, bytes) of the entries it found, in order, or ``None``."""
    found = host_keys.lookup(name)
    return None if found is None else [(entry.key.get_name(), entry.key.asbytes()) for entry in found._entries]


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(KNOWN_HOSTS)
    return path


def test_every_lookup_answers_as_paramiko(known_hosts: Path) -> None:
    plain, indexed = HostKeys(str(known_hosts)), IndexedHostKeys(str(known_hosts))
    assert [entry.hostnames for entry in indexed._entries] == [entry.hostnames for entry in plain._entries]
    for name in NAMES + NAMES:  # twice: the second answer comes from the index's memory
        assert _answer(indexed, name) == _answer(plain, name), name
        for key in KEYS:
            assert indexed.check(name, key) == plain.check(name, key), name
    assert _answer(indexed, "web-1") == [("ssh-ed25519", KEYS[0].asbytes()), ("ssh-ed25519", KEYS[2].asbytes())]
    assert indexed.get("unknown") is None and "hidden-1" in indexed


def test_changes_after_loading_are_seen(known_hosts: Path) -> None:
    plain, indexed = HostKeys(str(known_hosts)), IndexedHostKeys(str(known_hosts))
    key = plain.lookup("web-1")["ssh-ed25519"]
    for host_keys in (plain, indexed):
        assert host_keys.lookup("new") is None
        host_keys.add("new", "ssh-ed25519", key)
        host_keys.lookup("web-2")["ssh-ed25519"] = key  # paramiko's mapping writes through
        del host_keys["dup"]
        host_keys.load(str(known_hosts))
    for name in NAMES + ["new"]:
        assert _answer(indexed, name) == _answer(plain, name), name
    indexed.clear()
    assert indexed.lookup("web-1") is None


def test_a_hashed_name_paramiko_cannot_decode_fails_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"web-1 {A}\n|1|bm90IDIwIGJ5dGVz|AAAA {B}\n")
    plain, indexed = HostKeys(str(path)), IndexedHostKeys(str(path))
    with pytest.raises(AssertionError):
        plain.lookup("web-1")
    with pytest.raises(AssertionError):
        indexed.lookup("web-1")


# On real hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_an_unknown_or_changed_host_key_is_refused(fleet: Fleet, tmp_path: Path, hashed: bool) -> None:
    first, second, third = fleet.hosts
    lines = dict(line.split(" ", 1) for line in fleet.known_hosts.read_text().splitlines())
    lines[f"[127.0.0.1]:{first.port}"] = lines[f"[127.0.0.1]:{third.port}"]  # host-01 shows another key
    del lines[f"[127.0.0.1]:{second.port}"]  # host-02 is not known
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(f"{HostKeys.hash_host(name) if hashed else name} {key}\n" for name, key in lines.items()))
    project = CwProject(tmp_path / "project")
    project.directory.mkdir()
    fleet.write_inventory(project.directory / "inventory.py")
    inventory = project.directory / "inventory.py"
    inventory.write_text(inventory.read_text().replace(str(fleet.known_hosts), str(known_hosts)))
    project.write_main('from clockwork.resources import FileResource\nconf = FileResource(name="app.conf", content="x\\n")\n')

    result = project.cw("apply")
    assert result.exit_code == 3, result.output
    assert "✗ [host-01] unreachable: SSH host key error (Host key for 127.0.0.1 does not match.)\n" in result.output
    assert (f"✗ [host-02] unreachable: SSH error (StrictPolicy: No host key for [127.0.0.1]:{second.port} "
            "found in known_hosts)\n") in result.output
    assert "Applied: 1 changed, 0 unchanged, 0 failed on 3 hosts; unreachable: host-01, host-02" in result.output
    assert [fleet.run(host, "cat app.conf").stdout for host in fleet.hosts] == ["", "", "x\n"]
    assert [host.connections() for host in fleet.hosts] == [0, 0, 1]
    assert isinstance(sshuserclient.get_host_keys((str(known_hosts),)), IndexedHostKeys), "the command used the index"
