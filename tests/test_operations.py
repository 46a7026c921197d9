"""Clockwork's operations: the exact commands for given facts, from JSON fixtures; then some run for real.

The fixtures are ``tests/operations/<module>.<op>/<case>.json`` (format and fact
keying in ``tests/harness.py``). Each case runs the undecorated generator
(``op._inner``) on a ``FakeHost`` that fails on any fact the fixture lacks.
The real runs execute the commands one by one with ``sh -c`` in a temporary
directory, as pyinfra would on a host, and read the result back with the real
``Paths`` command: applying twice must change nothing the second time.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import clockwork.operations
from clockwork.facts.paths import Paths
from clockwork.operations import docker, files
from tests import harness
from testsupport.fleet import require

CASES = harness.cases("operations")
#: Every pyinfra operation of ``clockwork.operations`` by fixture folder name (``files.file``).
OPERATIONS = harness.discover(clockwork.operations, lambda value: callable(value) and hasattr(value, "_inner"))


@pytest.mark.parametrize(("name", "data"), CASES)
def test_operation(name: str, data: dict[str, Any]) -> None:
    op = OPERATIONS[name.split("/")[0]]
    assert ("exception" in data) != ("commands" in data), "a fixture expects either commands or an exception"
    if "exception" in data:
        with pytest.raises(Exception) as raised:
            harness.run_operation(op, data.get("args", []), data.get("kwargs", {}), data["facts"])
        harness.check_exception(raised.value, data["exception"])
        return
    commands, fake = harness.run_operation(op, data.get("args", []), data.get("kwargs", {}), data["facts"])
    assert commands == data["commands"]
    if not data["commands"]:
        assert "noop_description" in data, "a fixture without commands must say which noop it expects"
    if "noop_description" in data:
        assert fake.noops == [data["noop_description"]]
    else:
        assert fake.noops == [], "commands and a noop at once"
    assert harness.unused_facts(fake) == [], "the fixture holds facts the operation never asked for"


def test_every_operation_has_fixtures() -> None:
    folders = {name.split("/")[0] for name, _data in (param.values for param in CASES)}
    assert folders == set(OPERATIONS)


# The harness itself must fail where it should ---------------------------------------


def test_fake_host_fails_on_a_fact_the_fixture_lacks() -> None:
    with pytest.raises(harness.MissingFact, match=r"fact paths.Paths \[keys=\('/etc/x',\)\] is not in the fixture"):
        harness.run_operation(files.file, [], {"path": "/etc/x", "content": ""}, {"paths.Paths": {"keys=('/etc/y',)": {}}})


def test_fake_host_fails_on_any_other_host_attribute() -> None:
    fake = harness.FakeHost({})
    with pytest.raises(AttributeError, match="FakeHost has no 'data'"):
        fake.data  # noqa: B018


def test_unused_facts_are_reported() -> None:
    facts = {"paths.Paths": {"keys=('a',)": {"a": None}, "keys=('b',)": {"b": None}}}
    _commands, fake = harness.run_operation(files.absent, ["a"], {}, facts)
    assert harness.unused_facts(fake) == [("paths.Paths", "keys=('b',)")]


def test_host_context_is_restored() -> None:
    from pyinfra.context import ctx_host

    before = ctx_host.get()
    harness.run_operation(files.absent, ["a"], {}, {"paths.Paths": {"keys=('a',)": {"a": None}}})
    assert ctx_host.get() is before
    with pytest.raises(harness.MissingFact):
        harness.run_operation(files.absent, ["b"], {}, {})
    assert ctx_host.get() is before


# Pure helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(("port", "normal"), [
    ("8080:80/tcp", "8080:80"), ("8080:80", "8080:80"), ("53:53/udp", "53:53/udp"),
    ("127.0.0.1:8080:80/tcp", "127.0.0.1:8080:80"), ("5000:5000/sctp", "5000:5000/sctp"), ("80/tcp", "80"),
    ("80", "80"), ("53/udp", "53/udp"),
])
def test_normalize_port(port: str, normal: str) -> None:
    assert docker.normalize_port(port) == normal


@pytest.mark.parametrize(("image", "normal"), [
    ("nginx", "docker.io/library/nginx:latest"), ("library/nginx:1.27", "docker.io/library/nginx:1.27"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"), ("index.docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("localhost/api", "localhost/api:latest"), ("registry.local:5000/team/api:4.2", "registry.local:5000/team/api:4.2"),
    ("ghcr.io/org/app@sha256:ab12", "ghcr.io/org/app@sha256:ab12"), ("nginx:1.27@sha256:ab12", "docker.io/library/nginx:1.27@sha256:ab12"),
])
def test_normalize_image_writes_out_what_docker_implies(image: str, normal: str) -> None:
    assert docker.normalize_image(image) == normal


def test_content_sha1_is_the_sha1_of_the_utf8_bytes() -> None:
    assert files.content_sha1("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert files.content_sha1("hello\n") == "f572d396fae9206628714fb2ce00f72e94f2258f"
    assert files.content_sha1("ü") == "94a759fd37735430753c7b6b80684306d80ea16e"


def test_file_and_directory_differences_in_order() -> None:
    info = {"type": "file", "mode": "644", "user": "root", "group": "root", "sha1": None}
    assert files.file_differences(info, "ab", "640", "deploy", "www") == [
        ("content", "sha1:ab", "sha1:unreadable"), ("mode", "640", "644"),
        ("owner", "deploy", "root"), ("group", "www", "root")]
    assert files.directory_differences(info, "755", None, None) == [("type", "directory", "file")]
    assert files.directory_differences(None, "755", None, None) == [("present", True, False)]


def test_container_differences_in_order() -> None:
    actual = {"name": "web", "image": "a:1", "image_id": "", "running": False, "status": "exited",
              "ports": ["8080:80"], "volumes": ["v:/data"], "env": {"A": "1", "OLD": "x", "IMAGE_VAR": "y"},
              "managed_env_keys": ["A", "OLD"], "networks": ["bridge"], "restart_policy": "no", "command": ["sh"]}
    spec = docker.ContainerSpec(
        image="a:2", ports=["9090:80/tcp"], volumes=["w:/data"], env={"A": "2", "B": "3"},
        networks=["host"], restart_policy="always", command=["sleep", "1"], running=True,
    )
    assert docker.container_differences(actual, spec) == [
        ("image", "a:2", "a:1"), ("ports", ["9090:80"], ["8080:80"]), ("volumes", ["w:/data"], ["v:/data"]),
        ("env_vars.A", "2", "1"), ("env_vars.B", "3", None), ("env_vars.OLD", None, "x"),
        ("networks", ["host"], ["bridge"]), ("restart_policy", "always", "no"),
        ("command", ["sleep", "1"], ["sh"]), ("running", True, False),
    ]
    assert docker.container_differences(None, docker.ContainerSpec(image="a:2")) == [("present", True, False)]


# Real runs ---------------------------------------------------------------------------


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _paths(cwd: Path, *keys: str) -> dict[str, Any]:
    done = _sh(Paths().command(keys=keys), cwd)
    assert done.returncode == 0, done.stderr
    return Paths().process(done.stdout.splitlines())


def apply(op, cwd: Path, path: str, **kwargs: Any) -> tuple[list[str], list[str], subprocess.CompletedProcess | None]:
    """Read ``Paths`` for real, run the operation on those facts, run its commands in order (stop at a failure)."""
    facts = {"paths.Paths": {harness.fact_key({"keys": (path,)}): _paths(cwd, path)}}
    commands, fake = harness.run_operation(op, [], {"path": path, **kwargs}, facts)
    for command in commands:
        done = _sh(command, cwd)
        if done.returncode != 0:
            return commands, fake.noops, done
    return commands, fake.noops, None


def _plain_quotes(text: str) -> str:
    """coreutils quotes names with ‘…’ under a UTF-8 locale, '…' under C."""
    return text.replace("\u2018", "'").replace("\u2019", "'")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("content", [
    '{"debug": false}\n',
    "",
    "no newline at the end",
    "grüße, 日本語 and 'quotes' \"double\" $HOME `cmd` \\ \t tabs\n",
    "".join(random.Random(7).choice("abc \n'\"$\\é") for _ in range(200_000)),  # several chunks
])
def test_file_writes_exactly_the_content_then_is_a_noop(tmp_path: Path, content: str) -> None:
    commands, noops, failed = apply(files.file, tmp_path, "conf/app.conf", content=content, mode="640")
    assert failed is None and noops == []
    written = tmp_path / "conf" / "app.conf"
    assert written.read_bytes() == content.encode()
    assert _mode(written) == 0o640
    assert sorted(p.name for p in written.parent.iterdir()) == ["app.conf"], "no temporary file left behind"
    chunks = max(1, -(-4 * ((len(content.encode()) + 2) // 3) // (64 * 1024)))
    assert len(commands) == chunks  # one command per chunk; the last also sets the mode and moves the file in place
    commands, noops, _failed = apply(files.file, tmp_path, "conf/app.conf", content=content, mode="640")
    assert commands == [] and noops == ["file conf/app.conf is already as declared"]


def test_file_rewrite_keeps_no_world_readable_window(tmp_path: Path) -> None:
    """The temporary file is created under umask 077: never readable by others before its chmod."""
    commands, _noops, _failed = apply(files.file, tmp_path, "secret.env", content="TOKEN=1\n", mode="644")
    written = commands[0].split(" && chmod ")[0]  # up to the write, before its mode is set
    done = _sh(written + "; stat -c %a .secret.env.clockwork-tmp", tmp_path)
    assert done.stdout.strip() == "600"


def test_file_only_mode_changes_with_chmod(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "a.txt").chmod(0o600)
    inode = os.stat(tmp_path / "a.txt").st_ino
    commands, _noops, failed = apply(files.file, tmp_path, "a.txt", content="x\n", mode="644")
    assert commands == ["chmod 00644 -- a.txt"] and failed is None
    assert _mode(tmp_path / "a.txt") == 0o644 and os.stat(tmp_path / "a.txt").st_ino == inode


def test_file_refuses_to_replace_a_directory(tmp_path: Path) -> None:
    (tmp_path / "app.conf").mkdir()
    (tmp_path / "app.conf" / "keep").write_text("keep")
    _commands, _noops, failed = apply(files.file, tmp_path, "app.conf", content="x\n")
    assert failed is not None and failed.returncode == 1
    refusal = "clockwork: app.conf is a directory, not a file: Clockwork will not replace a directory"
    assert failed.stderr.strip() == refusal
    # A directory made after the host was read: the write itself refuses it too.
    for command in files.write_commands("app.conf", "x\n", "644", None, None, keep_from_existing=False):
        done = _sh(command, tmp_path)
        assert (done.returncode, done.stderr.strip()) == (1, refusal)
    assert (tmp_path / "app.conf" / "keep").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.conf"]


def test_file_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("old\n")
    (tmp_path / "link").symlink_to("target")
    _commands, _noops, failed = apply(files.file, tmp_path, "link", content="new\n")
    assert failed is None
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_text() == "new\n"
    assert (tmp_path / "target").read_text() == "old\n"


def test_file_mode_none_keeps_the_mode_of_a_rewritten_file(tmp_path: Path) -> None:
    (tmp_path / "secret.env").write_text("TOKEN=old\n")
    (tmp_path / "secret.env").chmod(0o600)
    _commands, _noops, failed = apply(files.file, tmp_path, "secret.env", content="TOKEN=new\n", mode=None)
    assert failed is None and (tmp_path / "secret.env").read_text() == "TOKEN=new\n"
    assert _mode(tmp_path / "secret.env") == 0o600


def test_directory_creates_parents_sets_mode_then_is_a_noop(tmp_path: Path) -> None:
    commands, _noops, failed = apply(files.directory, tmp_path, "srv/app/data", mode="1750")
    assert commands == ["mkdir -p -- srv/app/data && chmod 01750 -- srv/app/data"] and failed is None
    assert _mode(tmp_path / "srv" / "app" / "data") == 0o1750
    commands, noops, _failed = apply(files.directory, tmp_path, "srv/app/data", mode="1750")
    assert commands == [] and noops == ["directory srv/app/data is already as declared"]


def test_directory_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("x")
    _commands, _noops, failed = apply(files.directory, tmp_path, "data")
    assert failed is not None and failed.returncode == 1
    assert failed.stderr.strip() == "clockwork: data is a file, not a directory: Clockwork will not replace a file"
    assert (tmp_path / "data").read_text() == "x"


def test_absent_removes_only_what_it_is_told(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inner").write_text("x")
    _c, noops, _f = apply(files.absent, tmp_path, "d", kind="file")
    assert noops == ["d is a directory, not a file: left alone"] and (tmp_path / "d" / "inner").exists()
    assert apply(files.absent, tmp_path, "f")[0] == ["rm -f -- f"] and not (tmp_path / "f").exists()
    assert apply(files.absent, tmp_path, "f")[1] == ["f is already absent"]
    _c, _n, failed = apply(files.absent, tmp_path, "d", kind="directory")
    assert failed is not None and failed.stderr.strip() == "left in place: not empty (inner)"
    assert (tmp_path / "d" / "inner").exists()
    assert apply(files.absent, tmp_path, "d", kind="directory", purge=True)[0] == ["rm -rf -- d"]
    assert not (tmp_path / "d").exists()


def test_absent_removes_an_empty_directory_and_names_what_it_leaves(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _c, _n, failed = apply(files.absent, tmp_path, "empty", kind="directory")
    assert failed is None and not (tmp_path / "empty").exists()
    full = tmp_path / "full"
    full.mkdir()
    for name in ("b", "a", ".hidden", "sp ace", "cr\rname", "nl\nname", "esc\x1b[31m", "ü", "z"):
        (full / name).write_text("x")
    _c, _n, failed = apply(files.absent, tmp_path, "full", kind="directory")
    assert failed is not None and failed.returncode == 1
    assert failed.stderr.splitlines() == ["left in place: not empty (.hidden, a, b, cr\\rname, esc\\033[31m, … and 4 more)"]
    assert len(list(full.iterdir())) == 9


def test_absent_removes_a_directory_that_holds_only_empty_directories(tmp_path: Path) -> None:
    """The parents that ``file`` made for a file that is gone hold nothing: they go with the directory."""
    (tmp_path / "-app" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "-app" / "other").mkdir()
    (tmp_path / "-app" / "other" / "kept").write_text("x")
    _c, _n, failed = apply(files.absent, tmp_path, "-app", kind="directory")
    assert failed is not None and failed.stderr.strip() == "left in place: not empty (deep, other)"
    assert (tmp_path / "-app" / "deep" / "er").is_dir() and (tmp_path / "-app" / "other" / "kept").exists()
    (tmp_path / "-app" / "other" / "kept").unlink()
    _c, _n, failed = apply(files.absent, tmp_path, "-app", kind="directory")
    assert failed is None and list(tmp_path.iterdir()) == []


def test_absent_touches_nothing_in_a_directory_it_cannot_read_whole(tmp_path: Path) -> None:
    require("runuser", root="the operation runs as nobody")
    top = Path(tempfile.mkdtemp(prefix="cw-absent-"))
    try:
        top.chmod(0o777)
        app = top / "app"
        (app / "empty").mkdir(parents=True)
        (app / "closed").mkdir()
        (app / "closed" / "secret").write_text("x")
        (app / "closed").chmod(0o700)  # root's: nobody cannot look inside
        for path in (app, app / "empty"):
            os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
        command = files._remove_if_empty("app")
        done = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", command], cwd=top, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 1
        assert done.stderr.strip() == "left in place: not empty (closed, empty)"
        assert (app / "empty").is_dir() and (app / "closed" / "secret").exists()
    finally:
        shutil.rmtree(top)


def test_absent_removes_a_file_and_the_temporary_file_beside_it(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("x")
    (tmp_path / ".a.conf.clockwork-tmp").write_text("half")
    (tmp_path / ".gone.clockwork-tmp").write_text("half")
    assert apply(files.absent, tmp_path, "a.conf")[2] is None
    assert apply(files.absent, tmp_path, "gone")[2] is None
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_step_removes_the_temporary_file_and_says_why(tmp_path: Path) -> None:
    """chown to a user that does not exist fails after the content is written: nothing is left of the write."""
    _commands, _noops, failed = apply(files.file, tmp_path, "a.conf", content="x\n", user="no-such-user-here")
    assert failed is not None and failed.returncode == 1
    assert _plain_quotes(failed.stderr).strip().splitlines()[-1] == "chown: invalid user: 'no-such-user-here'"
    assert list(tmp_path.iterdir()) == []


def test_a_parent_that_cannot_be_made_stops_the_write_with_the_mkdir_error(tmp_path: Path) -> None:
    (tmp_path / "etc").write_text("a file, not a directory")
    _commands, _noops, failed = apply(files.file, tmp_path, "etc/app/a.conf", content="x\n")
    assert failed is not None and failed.returncode == 1
    assert _plain_quotes(failed.stderr).strip().splitlines() == ["mkdir: cannot create directory 'etc': Not a directory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]


def test_a_stale_temporary_file_goes_with_the_next_write(tmp_path: Path) -> None:
    (tmp_path / ".a.conf.clockwork-tmp").symlink_to(tmp_path / "elsewhere")  # never written through
    commands, _noops, failed = apply(files.file, tmp_path, "a.conf", content="x\n")
    assert failed is None and (tmp_path / "a.conf").read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf"]
    (tmp_path / ".a.conf.clockwork-tmp").write_text("half")
    commands, _noops, failed = apply(files.file, tmp_path, "a.conf", content="x\n")
    assert commands == ["rm -f -- .a.conf.clockwork-tmp"] and failed is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf"]
    assert apply(files.file, tmp_path, "a.conf", content="x\n")[1] == ["file a.conf is already as declared"]


def test_setuid_and_setgid_survive_the_owner_being_set(tmp_path: Path) -> None:
    commands, _noops, failed = apply(files.file, tmp_path, "tool", content="#!/bin/sh\n", mode="4755", user="root",
                                     group="root")
    assert failed is None and _mode(tmp_path / "tool") == 0o4755
    os.chmod(tmp_path / "tool", 0o2755)
    os.chown(tmp_path / "tool", 0, 1)  # group daemon
    os.chmod(tmp_path / "tool", 0o2755)
    commands, _noops, failed = apply(files.file, tmp_path, "tool", content="#!/bin/sh\n", mode=None, group="root")
    assert commands == ["chown :root -- tool && chmod 02755 -- tool"] and failed is None
    assert _mode(tmp_path / "tool") == 0o2755 and os.stat(tmp_path / "tool").st_gid == 0


def test_a_directory_in_a_setgid_directory_gets_exactly_its_mode(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o2775)
    _commands, _noops, failed = apply(files.directory, tmp_path, "shared/sub", mode="755")
    assert failed is None and _mode(tmp_path / "shared" / "sub") == 0o755
    assert apply(files.directory, tmp_path, "shared/sub", mode="755")[1] == ["directory shared/sub is already as declared"]
    (tmp_path / "shared" / "sub").chmod(0o2755)
    assert apply(files.directory, tmp_path, "shared/sub", mode="755")[2] is None
    assert _mode(tmp_path / "shared" / "sub") == 0o755

