"""Clockwork's facts: exact commands and parsing from JSON fixtures, then the commands run for real.

The fixtures are ``tests/facts/<module>.<Fact>/<case>.json`` (format in ``tests/harness.py``).
The real runs use ``sh -c`` on this machine (Debian coreutils), as pyinfra would on a host.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import clockwork.facts
from clockwork.facts.batch import Batch
from clockwork.facts.commands import OUTPUT_LIMIT, Commands, command_id
from clockwork.facts.docker import DockerContainers
from clockwork.facts.paths import Paths, temp_sibling
from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError, FactTypeError

from tests import harness
from testsupport.fleet import require

CASES = harness.cases("facts")
#: Every fact class of ``clockwork.facts`` by fixture folder name (``paths.Paths``).
FACTS = harness.discover(clockwork.facts, lambda value: isinstance(value, type) and issubclass(value, FactBase))


def _command_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(data.get("command_kwargs", {}))
    if "requests" in data:
        kwargs["requests"] = tuple((harness.fact_class(name), tuple(keys)) for name, keys in data["requests"])
    else:
        kwargs["keys"] = tuple(data["keys"])
    return kwargs


def _as_fixture_value(value: Any) -> Any:
    """A processed fact value in fixture form: exceptions become ``{"$exception": {name, message}}``."""
    if isinstance(value, BaseException):
        return {"$exception": {"name": type(value).__name__, "message": str(value)}}
    if isinstance(value, (list, tuple)):
        return [_as_fixture_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_fixture_value(item) for key, item in value.items()}
    return value


def test_fixture_set_covers_every_fact() -> None:
    folders = {name.split("/")[0] for name, _data in (param.values for param in CASES)}
    assert folders == set(FACTS)


@pytest.mark.parametrize(("name", "data"), CASES)
def test_fact(name: str, data: dict[str, Any]) -> None:
    folder = name.split("/")[0]
    cls = harness.fact_class(folder)
    kwargs = _command_kwargs(data)
    if "exception" in data:
        assert not {"command", "output", "fact"} & set(data), "an exception fixture holds nothing else"
        with pytest.raises(Exception) as raised:
            cls().command(**kwargs)
        harness.check_exception(raised.value, data["exception"])
        return
    assert cls().command(**kwargs) == data["command"]
    # process() is pure: a fresh instance, the raw lines only (as pyinfra calls it)
    assert _as_fixture_value(cls().process(list(data["output"]))) == data["fact"]


@pytest.mark.parametrize("cls", FACTS.values(), ids=list(FACTS))
def test_default_is_empty_and_fresh(cls) -> None:
    first, second = cls.default(), cls.default()
    assert not first or (isinstance(first, dict) and not any(first.values())), f"{first!r} is not empty"
    assert first is not second


def test_batch_rejects_what_is_not_a_fact() -> None:
    with pytest.raises(FactTypeError, match=r"Batch: 'paths' is not a pyinfra fact"):
        Batch().command(requests=(("paths", ("x",)),))
    with pytest.raises(FactTypeError, match=r"Batch: <class 'dict'> is not a pyinfra fact"):
        Batch().command(requests=((dict, ("x",)),))


def test_batch_failed_section_is_a_fact_process_error_instance() -> None:
    """The JSON fixture shows name and message; here: it is an instance pyinfra knows, in its place."""
    requests = ((harness.Strict, ("bad",)), (Paths, ("x",)))
    Batch().command(requests=requests)
    marker = "@@clockwork-batch-section@@"
    result = Batch().process([f"{marker} tests.harness.Strict", "bad", f"{marker} clockwork.facts.paths.Paths", "A\tx"])
    assert isinstance(result[0], FactProcessError)
    assert result[1] == {"x": None}


# Real runs ---------------------------------------------------------------------


def sh(command: str, *, cwd: Path | None = None, env: dict[str, str] | None = None, user: str | None = None) -> list[str]:
    """Run ``command`` as pyinfra does (``sh -c``) and return its stdout lines."""
    argv = ["sh", "-c", command]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _owner(path: Path) -> tuple[str, str]:
    info = os.lstat(path)
    return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name


def _expected(path: Path, kind: str, sha1: str | None) -> dict[str, Any]:
    user, group = _owner(path)
    return {"type": kind, "mode": format(stat.S_IMODE(os.lstat(path).st_mode), "o").rjust(3, "0"),
            "user": user, "group": group, "sha1": sha1}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A directory holding one of each kind of path ``Paths`` tells apart."""
    (tmp_path / "config.json").write_text('{"debug": false}\n')
    (tmp_path / "empty").write_text("")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o1777)
    (tmp_path / "private").mkdir(mode=0o700)
    (tmp_path / "private").chmod(0o700)
    (tmp_path / "link").symlink_to("config.json")
    (tmp_path / "dangling").symlink_to("nowhere")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "my dir").mkdir()
    (tmp_path / "my dir" / "it's.conf").write_text("x = 1\n")
    (tmp_path / "my dir" / "it's.conf").chmod(0o600)
    return tmp_path


def test_paths_command_really_works(tree: Path) -> None:
    keys = ("config.json", "empty", "shared", "private", "link", "dangling", "pipe", "my dir/it's.conf", "missing",
            str(tree / "config.json"), "-n", "shared/../config.json")
    fact = Paths().process(sh(Paths().command(keys=keys), cwd=tree))
    sha_config = hashlib.sha1(b'{"debug": false}\n').hexdigest()
    assert fact == {
        "config.json": _expected(tree / "config.json", "file", sha_config),
        "empty": _expected(tree / "empty", "file", hashlib.sha1(b"").hexdigest()),
        "shared": _expected(tree / "shared", "directory", None),
        "private": _expected(tree / "private", "directory", None),
        "link": _expected(tree / "link", "link", None),
        "dangling": _expected(tree / "dangling", "link", None),
        "pipe": _expected(tree / "pipe", "other", None),
        "my dir/it's.conf": _expected(tree / "my dir" / "it's.conf", "file", hashlib.sha1(b"x = 1\n").hexdigest()),
        "missing": None,
        str(tree / "config.json"): _expected(tree / "config.json", "file", sha_config),
        "-n": None,
        "shared/../config.json": _expected(tree / "config.json", "file", sha_config),
    }
    # the modes as stat(1) prints them, which the fixtures assume
    assert fact["shared"]["mode"] == "1777" and fact["private"]["mode"] == "700"
    assert fact["my dir/it's.conf"]["mode"] == "600"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cw-facts-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_paths_command_reports_an_unreadable_file(shared_dir: Path) -> None:
    require("runuser", root="the fact runs as nobody")
    secret = shared_dir / "secret.key"
    secret.write_text("hunter2\n")
    secret.chmod(0o600)
    closed = shared_dir / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    (closed / "inner").write_text("x")
    keys = ("secret.key", "closed/inner", "closed")
    fact = Paths().process(sh(Paths().command(keys=keys), cwd=shared_dir, user="nobody"))
    assert fact == {
        # stat works without read permission; the hash cannot be read: '?' → None
        "secret.key": {"type": "file", "mode": "600", "user": "root", "group": "root", "sha1": None},
        # inside a directory nobody may not enter, `[ -e ]` cannot tell: reported as absent (a limitation)
        "closed/inner": None,
        "closed": {"type": "directory", "mode": "700", "user": "root", "group": "root", "sha1": None},
    }


def pyinfra_lines(command: str, cwd: Path) -> list[str]:
    """``command``'s stdout lines as pyinfra reads them (``sh -c``, split at ``\\n`` only, unlike ``splitlines``)."""
    from pyinfra.connectors.util import run_local_process

    code, output = run_local_process(f"cd {shlex.quote(str(cwd))} && {command}")
    assert code == 0, output.stderr
    return output.stdout_lines


#: Every control character but NUL, tab and newline (which no path Clockwork reads may hold).
CONTROLS = [chr(code) for code in [*range(1, 32), 127] if chr(code) not in "\t\n"]


def test_paths_command_reads_names_with_every_control_character(tmp_path: Path) -> None:
    """sha1sum escapes \\r and \\\\ in names (and marks the line); ``Paths`` must read every name as it is."""
    keys = []
    for char in CONTROLS:
        for name in (f"in{char}side", f"ends{char}", f"{char}starts", f"back\\slash{char}"):
            (tmp_path / name).write_text(name)
            keys.append(name)
        (tmp_path / f"dir{char}").mkdir()
        (tmp_path / f"dir{char}" / "f").write_text("f")
        keys.append(f"dir{char}/f")
    fact = Paths().process(pyinfra_lines(Paths().command(keys=tuple(keys)), tmp_path))
    assert set(fact) == set(keys)
    for key in keys:
        assert fact[key] == _expected(tmp_path / key, "file", hashlib.sha1((tmp_path / key).read_bytes()).hexdigest()), key


def test_paths_command_reports_temporary_siblings_without_hashing_them(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "config.json").write_text("x")
    (tmp_path / "app" / ".config.json.clockwork-tmp").write_text("half")
    (tmp_path / "app" / ".gone.clockwork-tmp").write_text("half")
    (tmp_path / ".top\r.clockwork-tmp").write_text("half")
    keys = ("app/config.json", "app/gone", "top\r", "app/none", "app")
    fact = Paths().process(pyinfra_lines(Paths().command(keys=keys), tmp_path))
    assert fact == {
        "app/config.json": _expected(tmp_path / "app" / "config.json", "file", hashlib.sha1(b"x").hexdigest()),
        "app/gone": None, "top\r": None, "app/none": None,
        "app": _expected(tmp_path / "app", "directory", None),
        "app/.config.json.clockwork-tmp": _expected(tmp_path / "app" / ".config.json.clockwork-tmp", "file", None),
        "app/.gone.clockwork-tmp": _expected(tmp_path / "app" / ".gone.clockwork-tmp", "file", None),
        ".top\r.clockwork-tmp": _expected(tmp_path / ".top\r.clockwork-tmp", "file", None),
    }
    assert temp_sibling("app/config.json") == "app/.config.json.clockwork-tmp"
    assert temp_sibling("/x") == "/.x.clockwork-tmp" and temp_sibling("top") == ".top.clockwork-tmp"


def _german_locale(tmp_path: Path) -> dict[str, str] | None:
    if shutil.which("localedef") is None or not Path("/usr/share/i18n/locales/de_DE").exists():
        return None
    locales = tmp_path / "locales"
    locales.mkdir()
    done = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(locales / "de_DE.UTF-8")],
                          capture_output=True, timeout=60, check=False)
    if done.returncode not in (0, 1) or not (locales / "de_DE.UTF-8").exists():
        return None
    env = dict(os.environ, LOCPATH=str(locales), LANG="de_DE.UTF-8", LC_ALL="de_DE.UTF-8")
    probe = subprocess.run(["stat", "-c", "%F", str(tmp_path)], env=env, capture_output=True, text=True, check=False)
    return env if probe.stdout.strip() == "Verzeichnis" else None


def test_paths_command_reads_types_under_any_locale(tree: Path) -> None:
    """A host whose default locale is German: stat's %F says 'reguläre Datei', unless run under LC_ALL=C."""
    env = _german_locale(tree)
    if env is None:
        pytest.skip("cannot build a de_DE locale here (localedef and /usr/share/i18n/locales needed)")
    fact = Paths().process(sh(Paths().command(keys=("config.json", "empty", "shared", "link")), cwd=tree, env=env))
    assert {path: info["type"] for path, info in fact.items()} == {
        "config.json": "file", "empty": "file", "shared": "directory", "link": "link"}


COMMANDS = {
    "true": (0, ""),
    "exit 3": (3, ""),
    "echo out; echo err >&2; exit 2": (2, "out\nerr"),
    "printf 'a\\n\\nb\\n\\n\\n'": (0, "a\n\nb"),  # $(…) drops trailing newlines
    "printf 'grüße'": (0, "grüße"),
    "printf '\\377'": (0, "\ufffd"),
    "cat": (0, ""),  # stdin is /dev/null: never waits for input
    "nope-not-installed": (127, "sh: 1: nope-not-installed: not found"),
    "echo \"it's $((6 * 7))\"": (0, "it's 42"),
}


def test_commands_command_really_works() -> None:
    keys = tuple(COMMANDS)
    fact = Commands().process(sh(Commands().command(keys=keys)))
    assert fact == {command_id(command): {"exit_code": code, "output": output}
                    for command, (code, output) in COMMANDS.items()}


def test_commands_command_times_out_with_124() -> None:
    keys = ("sleep 30", "echo after")
    lines = sh(Commands().command(keys=keys, timeout=1))
    assert Commands().process(lines) == {
        command_id("sleep 30"): {"exit_code": 124, "output": ""},
        command_id("echo after"): {"exit_code": 0, "output": "after"},
    }


def test_commands_output_is_cut_at_the_limit() -> None:
    command = f"head -c {OUTPUT_LIMIT + 5000} /dev/zero | tr '\\0' x"
    lines = sh(Commands().command(keys=(command,)))
    assert len(lines) == 2  # one marker line, one base64 line however long the output
    assert base64.b64decode(lines[1]) == b"x" * OUTPUT_LIMIT
    assert Commands().process(lines)[command_id(command)] == {"exit_code": 0, "output": "x" * OUTPUT_LIMIT}


def test_batch_command_really_works(tree: Path) -> None:
    requests = ((Paths, ("config.json", "missing")), (Commands, ("exit 4",)), (harness.Strict, ("ok",)),
                (harness.Strict, ("bad",)), (Paths, ("shared",)))
    fact = Batch().process(sh(Batch().command(requests=requests), cwd=tree))
    assert len(fact) == 5
    assert fact[0] == {"config.json": _expected(tree / "config.json", "file",
                                                hashlib.sha1(b'{"debug": false}\n').hexdigest()),
                       "missing": None}
    assert fact[1] == {command_id("exit 4"): {"exit_code": 4, "output": ""}}
    assert fact[2] == ["ok"]
    assert isinstance(fact[3], FactProcessError) and str(fact[3]) == "tests.harness.Strict: unexpected line 'bad'"
    assert fact[4] == {"shared": _expected(tree / "shared", "directory", None)}


class Failing(FactBase[list]):
    """A test-only fact whose command fails (exit status 3) after printing one line."""

    def command(self, keys: tuple[str, ...]) -> str:
        return "echo failing; (exit 3)"

    def process(self, output: list[str]) -> list:
        return list(output)


def test_batch_command_succeeds_whatever_the_last_section_returns(tree: Path) -> None:
    """pyinfra treats a non-zero fact status as a failed fact: the batch must not fail with its last section."""
    alone = subprocess.run(["sh", "-c", Failing().command(keys=())], capture_output=True, check=False)
    assert alone.returncode == 3
    command = Batch().command(requests=((Paths, ("config.json",)), (Failing, ())))
    done = subprocess.run(["sh", "-c", command], cwd=tree, capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert Batch().process(done.stdout.splitlines())[1] == ["failing"]


def test_docker_command_reports_an_unreachable_daemon(tmp_path: Path) -> None:
    require("docker")
    socket = tmp_path / "no-daemon.sock"
    env = dict(os.environ, DOCKER_HOST=f"unix://{socket}")
    env.pop("DOCKER_CONTEXT", None)
    fact = DockerContainers().process(sh(DockerContainers().command(keys=("web", "cache")), env=env))
    assert fact["containers"] == {}
    assert fact["error"] == f"Cannot connect to the Docker daemon at unix://{socket}. Is the docker daemon running?"


def test_docker_command_reports_docker_not_installed(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # a PATH without docker; sh itself is called by its full path
    done = subprocess.run(["/bin/sh", "-c", DockerContainers().command(keys=("web",))], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert DockerContainers().process(done.stdout.splitlines()) == {
        "containers": {}, "error": "/bin/sh: 1: docker: not found"}
