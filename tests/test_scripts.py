"""scripts/system-deps.sh and scripts/python-deps.sh: what they install, run against fake commands (no apt-get runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKE_APT = '#!/bin/sh\necho "$@" >> "$APT_LOG"\n'
#: ldd as glibc's answers: libraries for a dynamically linked file, "not a dynamic executable" otherwise.
FAKE_LDD = ('#!/bin/sh\ncase "$1" in *dynamic*) echo "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)";; '
            '*) echo "\tnot a dynamic executable" >&2; exit 1;; esac\n')


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


class Machine:
    """A fake machine: PATH is one directory of fake commands (plus grep), and the paths the scripts check."""

    def __init__(self, root: Path, uid: int = 0) -> None:
        self.root, self.bin, self.log = root, root / "bin", root / "apt.log"
        executable(self.bin / "apt-get", FAKE_APT)
        executable(self.bin / "id", f"#!/bin/sh\necho {uid}\n")
        executable(self.bin / "ldd", FAKE_LDD)
        os.symlink(shutil.which("grep"), self.bin / "grep")

    def tools(self, *names: str) -> Machine:
        for name in names:
            executable(self.bin / name)
        return self

    def run(self, script: str, *args: str, **paths: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        env = {"PATH": str(self.bin), "APT_LOG": str(self.log), **paths}
        done = subprocess.run(["/bin/sh", str(REPO / "scripts" / script), *args], env=env, capture_output=True,
                              text=True, check=False)
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        return done, calls


#: What the root test hosts need on PATH (testsupport/roothosts.py), besides nc at $NC.
ROOTHOST_TOOLS = ("mmdebstrap", "apt-ftparchive", "dpkg-deb", "ssh", "ssh-keygen")
ROOTHOST_PACKAGES = "mmdebstrap netcat-openbsd apt-utils dpkg-dev openssh-client"


def system_paths(root: Path, *, sshd: bool = True, dockerd: bool = True, busybox: str = "static",
                 locales: bool = True, roothosts: bool = True, postgres: bool = True,
                 alertmanager: bool = True) -> dict[str, str]:
    """The paths the script checks, made present unless told otherwise (root-host tools: in ``root/bin``, the PATH)."""
    paths = {"SSHD": str(root / "sbin" / "sshd"), "DOCKERD": str(root / "sbin" / "dockerd"),
             "BUSYBOX": str(root / "bin-busybox" / f"{busybox}-busybox"), "LOCALES": str(root / "locales"),
             "NC": str(root / "netcat" / "nc"), "POSTGRES_LIB": str(root / "postgresql")}
    if postgres:
        executable(root / "postgresql" / "15" / "bin" / "initdb")
    if alertmanager:
        executable(root / "bin" / "prometheus-alertmanager")
    if roothosts:
        for tool in ROOTHOST_TOOLS:
            executable(root / "bin" / tool)
        executable(Path(paths["NC"]))
    if sshd:
        executable(Path(paths["SSHD"]))
    if dockerd:
        executable(Path(paths["DOCKERD"]))
    if busybox != "missing":
        executable(Path(paths["BUSYBOX"]))
    if locales:
        (root / "locales").mkdir()
        (root / "locales" / "de_DE").write_text("")
    return paths


def test_system_deps_installs_nothing_when_everything_is_there(tmp_path: Path) -> None:
    machine = Machine(tmp_path).tools("docker", "localedef", "curl", "wget")
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path))
    assert (done.returncode, done.stdout, calls) == (0, "", [])


def test_system_deps_installs_every_missing_part(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path, sshd=False, dockerd=False, busybox="missing",
                                                                locales=False, roothosts=False, postgres=False,
                                                                alertmanager=False))
    packages = (f"openssh-server docker.io busybox-static locales curl wget {ROOTHOST_PACKAGES} postgresql "
                "prometheus-alertmanager")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"system-deps: installing {packages}\n"
    assert calls == ["update -qq", f"install -y -qq --no-install-recommends {packages}"]


@pytest.mark.parametrize(("tools", "busybox", "packages"), [
    (("docker", "localedef", "curl", "wget"), "dynamic", "busybox-static"),  # Debian's busybox, not busybox-static
    (("localedef", "curl", "wget"), "static", "docker.io"),  # dockerd without the docker client
    (("docker", "curl", "wget"), "static", "locales"),
    (("docker", "localedef", "wget"), "static", "curl"),
    (("docker", "localedef", "curl"), "static", "wget"),
])
def test_system_deps_installs_what_one_check_finds_missing(
    tmp_path: Path, tools: tuple[str, ...], busybox: str, packages: str
) -> None:
    machine = Machine(tmp_path).tools(*tools)
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path, busybox=busybox))
    assert done.returncode == 0, done.stderr
    assert calls[-1] == f"install -y -qq --no-install-recommends {packages}"


@pytest.mark.parametrize(("missing", "package"), [
    ("mmdebstrap", "mmdebstrap"), ("apt-ftparchive", "apt-utils"), ("dpkg-deb", "dpkg-dev"), ("ssh", "openssh-client"),
    ("nc", "netcat-openbsd"),
])
def test_system_deps_installs_what_the_root_hosts_need(tmp_path: Path, missing: str, package: str) -> None:
    machine = Machine(tmp_path).tools("docker", "localedef", "curl", "wget")
    paths = system_paths(tmp_path)
    (Path(paths["NC"]) if missing == "nc" else tmp_path / "bin" / missing).unlink()
    done, calls = machine.run("system-deps.sh", **paths)
    assert done.returncode == 0, done.stderr
    assert calls[-1] == f"install -y -qq --no-install-recommends {package}"


@pytest.mark.parametrize("layout", ["none", "empty", "client-only"])
def test_system_deps_installs_postgresql_without_a_server(tmp_path: Path, layout: str) -> None:
    """No /usr/lib/postgresql, an empty one, or only a version without initdb (postgresql-client's layout)."""
    machine = Machine(tmp_path).tools("docker", "localedef", "curl", "wget")
    paths = system_paths(tmp_path, postgres=False)
    if layout == "empty":
        (tmp_path / "postgresql").mkdir()
    if layout == "client-only":
        executable(tmp_path / "postgresql" / "16" / "bin" / "psql")
    done, calls = machine.run("system-deps.sh", **paths)
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "install -y -qq --no-install-recommends postgresql"


def test_system_deps_installs_alertmanager_under_the_name_the_tests_run(tmp_path: Path) -> None:
    from testsupport import alertmanager

    machine = Machine(tmp_path).tools("docker", "localedef", "curl", "wget")
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path, alertmanager=False))
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "install -y -qq --no-install-recommends prometheus-alertmanager"
    assert alertmanager.BINARY == "prometheus-alertmanager"


def test_system_deps_looks_for_postgresql_where_the_tests_do(tmp_path: Path) -> None:
    from testsupport import postgres

    machine = Machine(tmp_path).tools("docker", "localedef", "curl", "wget")
    paths = system_paths(tmp_path, postgres=False)
    executable(tmp_path / "postgresql" / "13" / "bin" / "initdb")
    executable(tmp_path / "postgresql" / "13" / "bin" / "postgres")
    executable(tmp_path / "postgresql" / "9.6" / "bin" / "initdb")
    executable(tmp_path / "postgresql" / "9.6" / "bin" / "postgres")
    done, calls = machine.run("system-deps.sh", **paths)
    assert (done.returncode, calls) == (0, [])
    assert postgres.bindir(tmp_path / "postgresql") == tmp_path / "postgresql" / "13" / "bin"
    assert postgres.LIB == Path("/usr/lib/postgresql")


def test_system_deps_accepts_a_dockerd_on_path_as_the_fleet_does(tmp_path: Path) -> None:
    from testsupport import fleet

    machine = Machine(tmp_path).tools("dockerd", "docker", "localedef", "curl", "wget")
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path, dockerd=False))
    assert (done.returncode, calls) == (0, [])
    assert fleet.DOCKERD == (shutil.which("dockerd") or "/usr/sbin/dockerd")


def test_system_deps_needs_root_to_install(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1000)
    done, calls = machine.run("system-deps.sh", **system_paths(tmp_path, busybox="dynamic"))
    assert done.returncode == 1
    assert done.stderr == "system-deps: need root to install: docker.io busybox-static locales curl wget\n"
    assert calls == []


def test_a_dynamically_linked_busybox_is_told_apart_by_the_real_ldd(tmp_path: Path) -> None:
    """The real ldd on this machine: /bin/sh is dynamically linked on Debian; the fleet's own ELF check agrees."""
    from testsupport.fleet import is_dynamic_elf

    log = tmp_path / "apt.log"
    executable(tmp_path / "bin" / "apt-get", FAKE_APT)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "APT_LOG": str(log), "BUSYBOX": "/bin/sh"}
    done = subprocess.run(["/bin/sh", str(REPO / "scripts" / "system-deps.sh")], env=env, capture_output=True,
                          text=True, check=False)
    assert is_dynamic_elf(Path("/bin/sh").resolve())
    if os.geteuid() == 0:
        assert done.returncode == 0, done.stderr
        assert "busybox-static" in log.read_text().split()
    else:
        assert "busybox-static" in done.stderr


FAKE_PYTHON = """#!/bin/sh
case "$*" in
    *--version*) echo "Python $VERSION" ;;
    *"sys.version_info < (3, 10)"*) [ "$VERSION" != 3.8.10 ] ;;
    *"import ensurepip"*) [ -n "$ENSUREPIP" ] ;;
    *"print("*) echo python3.11-venv ;;
    *) exit 2 ;;
esac
"""


@pytest.mark.parametrize(("version", "ensurepip", "uid", "code", "out", "err", "apt"), [
    ("3.11.2", "yes", 0, 0, "", "", []),
    ("3.11.2", "", 0, 0, "python-deps: installing python3.11-venv\n", "",
     ["update -qq", "install -y -qq --no-install-recommends python3.11-venv"]),
    ("3.11.2", "", 1000, 1, "", ("python-deps: {python} cannot make a virtual environment (no ensurepip): install "
                                "python3.11-venv (as root: apt-get install python3.11-venv), then run make again\n"), []),
    ("3.8.10", "yes", 0, 1, "", "python-deps: Python 3.8.10 is too old: Clockwork needs Python 3.10 or newer\n", []),
], ids=["ready", "installs-venv", "not-root", "too-old"])
def test_python_deps(tmp_path: Path, version: str, ensurepip: str, uid: int, code: int, out: str, err: str,
                     apt: list[str]) -> None:
    machine = Machine(tmp_path, uid=uid)
    python = executable(tmp_path / "bin" / "python3", FAKE_PYTHON)
    done, calls = machine.run("python-deps.sh", str(python), VERSION=version, ENSUREPIP=ensurepip)
    assert (done.returncode, done.stdout, done.stderr, calls) == (code, out, err.format(python=python), apt)


def test_python_deps_without_python(tmp_path: Path) -> None:
    done, _calls = Machine(tmp_path).run("python-deps.sh", "python3.99")
    assert done.returncode == 1
    assert done.stderr == ("python-deps: python3.99 not found: Clockwork needs Python 3.10 or newer "
                           "(Debian: apt-get install python3)\n")


def test_make_demo_checks_python_before_making_the_venv() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed:")[1].split("\n\n")[0]
    assert recipe.index("sh scripts/python-deps.sh $(PYTHON)") < recipe.index("$(PYTHON) -m venv")
