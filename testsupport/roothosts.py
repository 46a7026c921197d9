"""Root test hosts: real Debian 12 systems with systemd as PID 1, reached over SSH as root or as a sudo user.

Each host is a container of a private ``dockerd`` the fleet starts (never the machine's own docker
daemon): systemd is its PID 1, it has its own dpkg/apt database, its own ``/etc`` and its own network
namespace holding only ``lo``. Its sshd listens on the host's own ``127.0.0.1:22``; SSH reaches it
through ``ProxyCommand nsenter -t <pid> -n nc 127.0.0.1 22``, written to an ssh_config that both
OpenSSH and pyinfra follow. Host keys are made before boot, so ``known_hosts`` is written first and
host-key checking stays strict. Users on every host:

- ``root``; ``deploy``: sudo without a password;
- ``askpass``: sudo asks for a password (none works); ``nosudo``: not in sudoers.

apt on a host sees only ``/repo``, a local repository the fleet builds (read-only bind mount):
``cwdemo`` 1.0 and 1.1 (a small HTTP daemon run by ``cwdemo.service``, configured by the conffile
``/etc/cwdemo.conf``; it depends on ``cwdemo-lib``) and the data-only ``cwdemo-data`` 1.0 and 1.1, plus
the ``extra_packages`` a fleet is started with (``bench/roothosts.py`` adds its own).

The image is built once per machine with ``mmdebstrap`` from the machine's own apt mirror (read from
its apt configuration) and cached under ``CACHE_DIR``, keyed by the recipe's hash, under a file lock.
Needs root, ``mmdebstrap``, ``dockerd``/``docker``, ``nsenter``, ``nc`` (netcat-openbsd), ``ssh``,
``dpkg-deb`` and ``apt-ftparchive`` (apt-utils): ``scripts/system-deps.sh`` installs them. Usage::

    with start_root_fleet(3, Path("/tmp/rf")) as fleet:
        fleet.write_inventory(Path("inventory.py"), user="deploy")
        print(fleet.ssh(fleet.hosts[0], "systemctl is-system-running").stdout)

A fleet stops what it recorded (its containers, its dockerd by PID and start time, its directories,
mounts and cgroup) when its ``with`` block ends, also on an exception or Ctrl-C; the fleet of a test run
killed outright is stopped by the next fleet that starts (``reap_orphans``).

Or, for a person: ``python -m testsupport.roothosts up -n 3 --inventory .hosts/inventory.py``, then
``python -m testsupport.roothosts down --inventory .hosts/inventory.py`` (``make hosts`` / ``make hosts-down``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from testsupport.fleet import (FleetError, _docker_ping, _flock, _process_table, _run_all, _tail, _tree, _try_flock,
                               _unmount_under, wait_until)

if TYPE_CHECKING:
    from typing import Self

#: Where built images are kept, one directory per recipe hash.
CACHE_DIR = Path(os.environ.get("CLOCKWORK_ROOTHOSTS_CACHE", "/var/cache/clockwork/roothosts"))
#: Set (to 1) on CI: root-host tests then fail instead of skipping when the hosts cannot start.
REQUIRE_ENV = "CLOCKWORK_REQUIRE_ROOTHOSTS"
SUITE = "bookworm"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates", "passwd", "adduser",
    "procps", "iproute2", "busybox", "curl", "cron", "git", "less", "apt-utils",
)
#: Users on every host, as ``write_inventory``/``ssh`` accept them.
User = Literal["root", "deploy", "askpass", "nosudo"]
USERS: tuple[User, ...] = ("root", "deploy", "askpass", "nosudo")
#: Bounds, in seconds, of the waits (dockerd start, boot, stop) and of the image build.
TIMEOUT = 90.0
BUILD_TIMEOUT = 900.0
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
NSENTER = "/usr/bin/nsenter"
NC = "/bin/nc"
TOOLS = ("mmdebstrap", "docker", DOCKERD, NSENTER, NC, "ssh", "ssh-keygen", "dpkg-deb", "apt-ftparchive", "umount")
#: Label on every container of a fleet; its value is the fleet's id.
LABEL = "clockwork.roothosts.fleet"

#: Units that have nothing to do in a container, or that would run on their own during a test.
MASKED_UNITS = (
    "getty@.service", "serial-getty@.service", "console-getty.service", "getty.target",
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-modules-load.service",
    "systemd-remount-fs.service", "systemd-firstboot.service", "sys-kernel-config.mount",
    "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount", "proc-sys-fs-binfmt_misc.automount", "systemd-binfmt.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
)

# mmdebstrap runs it with the new root as $1, outside of it. The sudoers rules: deploy without a
# password; askpass with one (its password is '*', which nothing matches); nosudo has no rule, and
# '!authenticate' makes sudo say so at once instead of first asking for a password.
_CUSTOMIZE = r"""set -eu
rm -f "$1"/etc/ssh/ssh_host_*
: > "$1"/etc/machine-id
rm -f "$1"/var/lib/dbus/machine-id
rm -f "$1"/etc/apt/sources.list.d/* "$1"/var/lib/apt/lists/* 2>/dev/null || true
echo 'deb [trusted=yes] file:/repo ./' > "$1"/etc/apt/sources.list
mkdir -p "$1"/var/lib/apt/periodic "$1"/repo
for unit in $MASKED; do ln -sf /dev/null "$1/etc/systemd/system/$unit"; done
echo localhost > "$1"/etc/hostname
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1"/etc/hosts
rm -f "$1"/etc/resolv.conf
echo 'nameserver 127.0.0.1' > "$1"/etc/resolv.conf
for user in deploy askpass nosudo; do
    chroot "$1" useradd --create-home --shell /bin/bash --password '*' "$user"
done
printf '%s\n' 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' 'askpass ALL=(ALL:ALL) ALL' 'Defaults:nosudo !authenticate' \
    > "$1"/etc/sudoers.d/clockwork
chmod 440 "$1"/etc/sudoers.d/clockwork
chroot "$1" visudo -c -q
"""


class RootHostsError(FleetError):
    """Root hosts could not be built, started or stopped."""


# ---------------------------------------------------------------------------------------------
# The image


def recipe() -> dict[str, object]:
    """What the image is made of; its hash names the cache entry, so any change here rebuilds it."""
    return {"format": 1, "suite": SUITE, "variant": "apt", "packages": list(PACKAGES),
            "masked": list(MASKED_UNITS), "customize": _CUSTOMIZE}


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()


def image_path() -> Path:
    """The cached rootfs tarball of the current recipe (it may not be built yet)."""
    return CACHE_DIR / recipe_hash() / "rootfs.tar"


def apt_mirror(apt_dir: Path = Path("/etc/apt"), suite: str = SUITE) -> str | None:
    """The URI of this machine's apt source for ``suite`` (component main), from its deb822 ``*.sources``
    or one-line ``sources.list``/``*.list`` files; ``None`` when none is configured."""
    files = sorted((apt_dir / "sources.list.d").glob("*.sources")) if (apt_dir / "sources.list.d").is_dir() else []
    for path in files:
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ", "\t")):
                    fields[key.strip().lower()] = value.strip()
            if (fields.get("enabled", "yes").lower() != "no" and "deb" in fields.get("types", "").split()
                    and suite in fields.get("suites", "").split() and "main" in fields.get("components", "").split()):
                return fields.get("uris", "").split()[0] if fields.get("uris") else None
    lists = [apt_dir / "sources.list"] + (sorted((apt_dir / "sources.list.d").glob("*.list")) if (apt_dir / "sources.list.d").is_dir() else [])
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                return words[1]
    return None


def ensure_image() -> Path:
    """The rootfs tarball of the current recipe, built first when missing (once per machine: other
    processes wait on the lock and then find it)."""
    target = image_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _flock(target.parent / "build.lock"):
        if target.exists():
            return target
        mirror = apt_mirror()
        if mirror is None:
            raise RootHostsError(f"no apt source for {SUITE} main in /etc/apt: cannot build the root host image")
        partial = target.with_name("rootfs.partial.tar")  # mmdebstrap writes a tarball for a name ending in .tar
        partial.unlink(missing_ok=True)
        log = target.with_name("build.log")
        command = ["mmdebstrap", "--variant=apt", "--mode=root", f"--include={','.join(PACKAGES)}",
                   f"--customize-hook={_CUSTOMIZE}", SUITE, str(partial), f"deb {mirror} {SUITE} main"]
        with log.open("wb") as log_file:
            try:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, "MASKED": " ".join(MASKED_UNITS)}, timeout=BUILD_TIMEOUT, check=False)
            except subprocess.TimeoutExpired as error:
                raise RootHostsError(f"mmdebstrap took more than {BUILD_TIMEOUT}s, see {log}") from error
        if result.returncode != 0:
            raise RootHostsError(f"mmdebstrap failed ({result.returncode}):\n{_tail(log, 30)}")
        partial.rename(target)
        for old in CACHE_DIR.iterdir():  # images of older recipes, when no fleet uses them
            if old.is_dir() and old != target.parent and (old / "rootfs.tar").exists():
                locks = [_try_flock(lock) for lock in old.glob("docker-*.lock")]
                if all(lock is not None for lock in locks):
                    shutil.rmtree(old, ignore_errors=True)
                for lock in locks:
                    if lock is not None:
                        lock.close()
    return target


# ---------------------------------------------------------------------------------------------
# The local apt repository

_CWDEMO = """#!/bin/sh
# cwdemo @VERSION@: serves one page on 127.0.0.1:$PORT naming its version and $MESSAGE (see /etc/cwdemo.conf).
# With the argument "render" it only rewrites the page (the unit's reload).
set -eu
PORT=8080
MESSAGE="hello from cwdemo"
. /etc/cwdemo.conf
www=/run/cwdemo/www
mkdir -p "$www"
printf 'cwdemo @VERSION@ on %s: %s\\n' "$(hostname)" "$MESSAGE" > "$www/index.html.new"
mv "$www/index.html.new" "$www/index.html"
[ "${1:-}" = render ] && exit 0
exec busybox httpd -f -p "127.0.0.1:$PORT" -h "$www"
"""
_CWDEMO_UNIT = """[Unit]
Description=cwdemo, a small HTTP daemon for Clockwork's tests

[Service]
ExecStart=/usr/lib/cwdemo/cwdemo
ExecReload=/usr/lib/cwdemo/cwdemo render
RuntimeDirectory=cwdemo

[Install]
WantedBy=multi-user.target
"""
_CWDEMO_CONF = {
    "1.0": '# cwdemo settings, read when cwdemo starts (and on reload)\nPORT=8080\nMESSAGE="hello from cwdemo"\n',
    "1.1": '# cwdemo settings, read when cwdemo starts (and on reload); 1.1\nPORT=8080\nMESSAGE="hello from cwdemo"\n',
}
# What debhelper's dh_installsystemd writes: enable on first install, (re)start on configure,
# stop on remove, forget on purge.
_CWDEMO_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
    deb-systemd-helper unmask cwdemo.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled cwdemo.service; then
        deb-systemd-helper enable cwdemo.service >/dev/null || true
    else
        deb-systemd-helper update-state cwdemo.service >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-invoke restart cwdemo.service >/dev/null || true
    fi
fi
"""
_CWDEMO_PRERM = """#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop cwdemo.service >/dev/null || true
fi
"""
_CWDEMO_POSTRM = """#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ]; then
    deb-systemd-helper mask cwdemo.service >/dev/null || true
fi
if [ "$1" = purge ]; then
    deb-systemd-helper purge cwdemo.service >/dev/null || true
    deb-systemd-helper unmask cwdemo.service >/dev/null || true
fi
"""


@dataclass(frozen=True)
class Package:
    """A tiny .deb: ``files`` maps absolute paths to (content, mode); ``scripts`` are maintainer scripts."""

    name: str
    version: str
    description: str
    files: dict[str, tuple[str, int]]
    depends: str = ""
    conffiles: tuple[str, ...] = ()
    scripts: tuple[tuple[str, str], ...] = ()


def repo_packages() -> list[Package]:
    """The packages of the hosts' ``/repo``."""
    packages = [
        Package("cwdemo-lib", "1.0", "data files cwdemo depends on",
                {"/usr/share/cwdemo-lib/README": ("cwdemo-lib 1.0\n", 0o644)}),
    ]
    for version in ("1.0", "1.1"):
        packages.append(Package(
            "cwdemo", version, "a small HTTP daemon run by systemd (cwdemo.service), configured in /etc/cwdemo.conf",
            {"/usr/lib/cwdemo/cwdemo": (_CWDEMO.replace("@VERSION@", version), 0o755),
             "/lib/systemd/system/cwdemo.service": (_CWDEMO_UNIT, 0o644),
             "/etc/cwdemo.conf": (_CWDEMO_CONF[version], 0o644)},
            depends="cwdemo-lib (>= 1.0), busybox", conffiles=("/etc/cwdemo.conf",),
            scripts=(("postinst", _CWDEMO_POSTINST), ("prerm", _CWDEMO_PRERM), ("postrm", _CWDEMO_POSTRM)),
        ))
        packages.append(Package("cwdemo-data", version, "data only, no dependencies",
                                {"/usr/share/cwdemo-data/data.txt": (f"cwdemo-data {version}\n", 0o644)}))
    return packages


def build_repo(directory: Path, packages: list[Package] | None = None) -> Path:
    """Build ``packages`` (default: ``repo_packages()``) into a flat apt repository in ``directory``
    (``deb [trusted=yes] file:<directory> ./``)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cwrepo-") as work:
        builds = []
        for package in packages or repo_packages():
            tree = Path(work) / f"{package.name}_{package.version}"
            for path, (content, mode) in package.files.items():
                target = tree / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
                target.chmod(mode)
            (tree / "DEBIAN").mkdir(parents=True)
            control = [f"Package: {package.name}", f"Version: {package.version}", "Architecture: all",
                       "Maintainer: Clockwork tests <tests@localhost>", "Priority: optional", "Section: misc"]
            if package.depends:
                control.append(f"Depends: {package.depends}")
            control.append(f"Description: {package.description}")
            (tree / "DEBIAN/control").write_text("\n".join(control) + "\n")
            if package.conffiles:
                (tree / "DEBIAN/conffiles").write_text("".join(f"{path}\n" for path in package.conffiles))
            for name, script in package.scripts:
                (tree / "DEBIAN" / name).write_text(script)
                (tree / "DEBIAN" / name).chmod(0o755)
            builds.append(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree),
                           str(directory / f"{package.name}_{package.version}_all.deb")])
        _run_all(builds)
    for index, command in (("Packages", ["apt-ftparchive", "packages", "."]), ("Release", ["apt-ftparchive", "release", "."])):
        result = subprocess.run(command, cwd=directory, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if result.returncode != 0:
            raise RootHostsError(f"{shlex.join(command)} failed: {result.stderr.decode(errors='replace')}")
        (directory / index).write_bytes(result.stdout)
    return directory


# ---------------------------------------------------------------------------------------------
# The fleet

#: Capability numbers to the names docker takes (linux/capability.h).
_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
_SSHD_DROP_IN = """# Written by testsupport/roothosts.py, bind-mounted read-only.
Port 22
ListenAddress 127.0.0.1
HostKey /etc/ssh/cw/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/cw/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
"""


def missing_capabilities(status: str | None = None) -> list[str]:
    """Names of the capabilities missing from this process's bounding set (``CapBnd`` of /proc/self/status):
    a container cannot get them, and ``--cap-add ALL`` alone makes runc fail."""
    if status is None:
        status = Path("/proc/self/status").read_text()
    match = re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.M)
    if match is None:
        raise RootHostsError("no CapBnd line in /proc/self/status")
    bounding = int(match.group(1), 16)
    return [name for bit, name in enumerate(_CAPABILITIES) if not bounding >> bit & 1]


@dataclass
class RootHost:
    """One host: its inventory ``name`` (also its hostname and its ssh alias), its container, and ``pid``,
    its systemd (PID 1 inside) as this machine sees it."""

    name: str
    dir: Path
    container: str = ""
    pid: int = 0

    @property
    def alias(self) -> str:
        """The ``Host`` of the fleet's ssh_config, and the name in its known_hosts."""
        return self.name


class RootFleet:
    """Running root hosts: ``hosts``, the client ``key`` they accept, ``known_hosts``, ``ssh_config``."""

    def __init__(self, root: Path, fleet_id: str) -> None:
        self.root = root
        self.id = fleet_id
        self.key = root / "id_ed25519"
        # pyinfra caches known_hosts files by path for the whole process: a fresh name per fleet.
        self.known_hosts = root / f"known_hosts-{fleet_id}"
        self.ssh_config = root / "ssh_config"
        self.repo = root / "repo"
        self.hosts: list[RootHost] = []
        #: The dockerd's exec-root, holding its and containerd's sockets: short, wherever ``root`` is.
        self.exec_root = Path(f"/run/clockwork-roothosts-{fleet_id}")
        self.docker_host = f"unix://{self.exec_root / 'docker.sock'}"
        #: The private dockerd: (pid, start time in clock ticks), so that a reused PID is never killed.
        self.dockerd: tuple[int, int] | None = None
        self.image = f"clockwork/roothost:{recipe_hash()[:12]}"
        #: The docker data-root, one of the image's cache slots (each keeps the image imported: no import per fleet).
        self.data_root: Path | None = None
        self._slot_lock: IO[bytes] | None = None
        self._dockerd_process: subprocess.Popen[bytes] | None = None
        #: The process that is to stop the fleet, as (pid, start time); ``None``: someone, later (``up``).
        self.owner: tuple[int, int] | None = (os.getpid(), _start_time(os.getpid()))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def host(self, name: str) -> RootHost:
        """The host named ``name``."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no root host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    # -- reaching the hosts

    def host_data(self, host: RootHost, user: str = "root") -> dict[str, object]:
        """pyinfra host data to reach ``host`` as ``user`` over SSH, through the fleet's ssh_config."""
        return {
            "ssh_hostname": host.alias,
            "ssh_user": user,
            "ssh_key": str(self.key),
            "ssh_config_file": str(self.ssh_config),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "ssh_paramiko_connect_kwargs": {"banner_timeout": 10, "auth_timeout": 10},
        }

    def write_inventory(self, path: Path, user: str = "root", groups: dict[str, list[str]] | None = None) -> Path:
        """Write a pyinfra inventory file of every host, reached as ``user``, plus ``groups`` by host name."""
        lines = [f'"""pyinfra inventory of the root hosts in {self.root}, as {user}."""', "", "hosts = ["]
        lines += [f"    ({host.name!r}, {self.host_data(host, user)!r})," for host in self.hosts]
        lines.append("]")
        for group, names in (groups or {}).items():
            if not group.isidentifier() or group.startswith("_") or group == "hosts":
                raise ValueError(f"pyinfra would not read {group!r} as a group name")
            lines.append(f"{group} = {list(names)!r}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def ssh_command(self, host: RootHost, user: str = "root") -> list[str]:
        """The ``ssh`` argv that logs in to ``host`` as ``user`` (append a remote command)."""
        return ["ssh", "-F", str(self.ssh_config), "-l", user, host.alias, "--"]

    def ssh(self, host: RootHost, command: str, user: str = "root", timeout: float = TIMEOUT,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell line) on ``host`` as ``user`` over real SSH; never raises on its exit status."""
        return subprocess.run(self.ssh_command(host, user) + [command], input=input, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=None if input is not None else subprocess.DEVNULL)

    def docker(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the docker client against the fleet's own dockerd (and no other)."""
        try:
            result = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": self.docker_host},
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess(["docker", *args], -1, "", f"no answer after {timeout}s")
        if check and result.returncode != 0:
            raise RootHostsError(f"docker {shlex.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def restart(self, host: RootHost) -> None:
        """Reboot ``host`` (its disk is kept); returns once it is up again."""
        self.docker("restart", "--time", "20", host.container)
        self._refresh([host])
        self._wait_ready([host])

    # -- what the fleet runs, and its end

    def pids(self) -> list[int]:
        """Live PIDs of everything the fleet runs: its dockerd, containerd, shims and every host's processes."""
        table = _process_table()
        roots = [self.dockerd[0]] if self.dockerd is not None and _same_process(*self.dockerd) else []
        exec_root = f"{self.exec_root}/"
        roots += [pid for pid, (_ppid, cmdline) in table.items() if exec_root in cmdline]
        roots += [host.pid for host in self.hosts if host.pid and _in_cgroup(host.pid, self.cgroup_parent)]
        return [pid for pid in _tree(roots, table) if _alive(pid)]

    @property
    def cgroup_parent(self) -> str:
        """The cgroup under which the fleet's dockerd puts its containers (in every hierarchy)."""
        return f"clockwork-roothosts-{self.id}"

    def stop(self) -> None:
        """Remove the fleet's containers, stop its dockerd, kill what they left, unmount and remove the root
        and the fleet's cgroups: only what the fleet recorded. Safe to call again."""
        if self.dockerd is not None and _same_process(*self.dockerd):
            containers = [h.container for h in self.hosts if h.container]
            listed = self.docker("ps", "-aq", "--no-trunc", "--filter", f"label={LABEL}={self.id}", check=False)
            containers += [c for c in listed.stdout.split() if c not in containers]
            if containers:
                self.docker("rm", "-f", "-v", *containers, check=False)
            pid = self.dockerd[0]
            os.kill(pid, signal.SIGTERM)
            try:
                wait_until(lambda: not _alive(pid), 20, "the fleet's dockerd to stop")
            except AssertionError:
                _kill(pid, self.dockerd[1])
        if self._dockerd_process is not None:  # started by this process: reap it
            self._dockerd_process.kill()
            self._dockerd_process.wait()
            self._dockerd_process = None
        leftovers = self.pids()
        for pid in leftovers:
            _kill(pid)
        wait_until(lambda: not any(_alive(pid) for pid in leftovers), TIMEOUT, f"the fleet's processes {leftovers} to end")
        self.dockerd = None
        _unmount_under(self.exec_root)  # the nsfs mounts of the hosts' network namespaces, among others
        _unmount_under(self.root)
        if self.exec_root.exists():
            shutil.rmtree(self.exec_root)
        _remove_cgroups(self.cgroup_parent)
        if self.data_root is not None:
            # What a killed dockerd left mounted in its data-root, unless another fleet took the slot since.
            slot_lock = self._slot_lock or _try_flock(self.data_root.with_suffix(".lock"))
            if slot_lock is not None:
                _unmount_under(self.data_root)
                slot_lock.close()
            self._slot_lock = None
        if self.root.exists():
            shutil.rmtree(self.root)

    # -- state file, for a fleet that outlives the process that started it (`up`, then `down`)

    def save(self) -> Path:
        """Record the fleet in ``root/fleet.json`` (``load`` reads it back) and in its exec-root, where
        ``reap_orphans`` finds the fleets whose owner died without stopping them."""
        state = {"id": self.id, "root": str(self.root), "owner": self.owner, "dockerd": self.dockerd,
                 "data_root": str(self.data_root) if self.data_root else None,
                 "hosts": [{"name": h.name, "dir": str(h.dir), "container": h.container, "pid": h.pid} for h in self.hosts]}
        text = json.dumps(state, indent=1) + "\n"
        if self.exec_root.is_dir():
            (self.exec_root / "fleet.json").write_text(text)
        path = self.root / "fleet.json"
        path.write_text(text)
        return path

    @classmethod
    def load(cls, record: Path) -> RootFleet:
        """The fleet recorded in ``record`` (a ``fleet.json``, or the fleet's root holding one)."""
        state = json.loads((record / "fleet.json" if record.is_dir() else record).read_text())
        fleet = cls(Path(state["root"]), state["id"])
        fleet.owner = (int(state["owner"][0]), int(state["owner"][1])) if state["owner"] else None
        fleet.dockerd = (int(state["dockerd"][0]), int(state["dockerd"][1])) if state["dockerd"] else None
        fleet.data_root = Path(state["data_root"]) if state["data_root"] else None
        fleet.hosts = [RootHost(h["name"], Path(h["dir"]), h["container"], h["pid"]) for h in state["hosts"]]
        return fleet

    # -- starting

    def _start(self, names: list[str], extra_packages: Sequence[Package] = ()) -> None:
        image = ensure_image()
        self.root.mkdir(parents=True, exist_ok=True)
        self.hosts = [RootHost(name, self.root / "hosts" / name) for name in names]
        for host in self.hosts:
            (host.dir / "ssh").mkdir(parents=True)
        self._start_dockerd(image)
        self.exec_root.mkdir(mode=0o700, exist_ok=True)
        self.save()
        _run_all([_keygen(self.key, "clockwork-roothosts")]
                 + [_keygen(host.dir / "ssh" / "ssh_host_ed25519_key", host.name) for host in self.hosts])
        build_repo(self.repo, repo_packages() + list(extra_packages))
        authorized = self.key.with_suffix(".pub").read_text()
        known = []
        for host in self.hosts:
            (host.dir / "ssh" / "authorized_keys").write_text(authorized)
            (host.dir / "sshd.conf").write_text(_SSHD_DROP_IN)
            (host.dir / "resolv.conf").write_text("nameserver 127.0.0.1\n")
            (host.dir / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
            public = (host.dir / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
            known.append(f"{host.alias} {public[0]} {public[1]}\n")
        self.known_hosts.write_text("".join(known))
        self._wait_dockerd()
        # Containers of a fleet that died with its slot in use (the slot's lock says none of them runs).
        stale = self.docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
        if stale:
            self.docker("rm", "-f", "-v", *stale)
        if self.docker("image", "inspect", self.image, check=False).returncode != 0:
            self.docker("import", "--change", 'CMD ["/lib/systemd/systemd"]', "--change", "ENV container=docker",
                        str(image), self.image, timeout=BUILD_TIMEOUT)
        drops = [f"--cap-drop={name}" for name in missing_capabilities()]
        runs = []
        for host in self.hosts:
            runs.append([
                "docker", "run", "--detach", f"--cidfile={host.dir / 'cid'}", f"--name=cw-{self.id}-{host.name}",
                f"--label={LABEL}={self.id}", f"--hostname={host.name}", "--network=none",
                "--cap-add=ALL", *drops, "--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined",
                "--cgroupns=host", "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs=/run", "--tmpfs=/run/lock",
                "--stop-signal=SIGRTMIN+3",
                f"--volume={host.dir / 'ssh'}:/etc/ssh/cw:ro",
                f"--volume={host.dir / 'sshd.conf'}:/etc/ssh/sshd_config.d/clockwork.conf:ro",
                f"--volume={host.dir / 'resolv.conf'}:/etc/resolv.conf",
                f"--volume={host.dir / 'hosts'}:/etc/hosts",
                f"--volume={self.repo}:/repo:ro",
                self.image,
            ])
        _run_all(runs, envs=[{**os.environ, "DOCKER_HOST": self.docker_host}] * len(runs))
        for host in self.hosts:
            host.container = (host.dir / "cid").read_text().strip()
        self._refresh(self.hosts)
        self.save()
        self._wait_ready(self.hosts)

    def _start_dockerd(self, image: Path) -> None:
        """Start the fleet's dockerd on the first free data-root slot beside ``image``. The dockerd inherits the
        slot's lock, so that the slot stays taken as long as it runs, also beyond this process (``up``)."""
        for index in range(100):
            slot = image.parent / f"docker-{index}"
            self._slot_lock = _try_flock(slot.with_suffix(".lock"))
            if self._slot_lock is not None:
                self.data_root = slot
                break
        else:
            raise RootHostsError(f"all 100 docker data-root slots in {image.parent} are in use")
        log = self.root / "dockerd.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [DOCKERD, "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                 "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                 "-H", self.docker_host, "--pidfile", str(self.root / "dockerd.pid"),
                 "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", f"/{self.cgroup_parent}"],
                env={**os.environ, "TMPDIR": str(self.root)},
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
                pass_fds=(self._slot_lock.fileno(),),
            )
        self.dockerd = (process.pid, _start_time(process.pid))
        self._dockerd_process = process

    def _wait_dockerd(self) -> None:
        process = self._dockerd_process
        assert process is not None
        try:
            wait_until(lambda: _docker_ping(self.exec_root / "docker.sock"), TIMEOUT, "the fleet's dockerd", pause=0.05, process=process)
        except AssertionError as error:
            raise RootHostsError(f"{error}:\n{_tail(self.root / 'dockerd.log', 30)}") from error

    def _refresh(self, hosts: list[RootHost]) -> None:
        """Read the hosts' PIDs into their ``pid`` files, which the ssh_config's ProxyCommand reads at each
        connection: the ssh_config never changes, so that a restart does not stale what pyinfra memoized."""
        for host in hosts:
            host.pid = int(self.docker("inspect", "--format", "{{.State.Pid}}", host.container).stdout)
            (host.dir / "pid.new").write_text(f"{host.pid}\n")
            (host.dir / "pid.new").rename(host.dir / "pid")
        if self.ssh_config.exists():
            return
        blocks = [f"# Root hosts of {self.root}: ssh -F {self.ssh_config} -l root|deploy <host>\n"]
        for host in self.hosts:
            # Enter the network namespace of the host's systemd and connect to its sshd on 127.0.0.1:22.
            enter = f'exec {NSENTER} --target "$(cat {shlex.quote(str(host.dir / "pid"))})" --net {NC} 127.0.0.1 22'
            blocks.append(
                f"Host {host.alias}\n"
                f"    HostKeyAlias {host.alias}\n"
                f"    ProxyCommand /bin/sh -c {shlex.quote(enter)}\n"
                f"    IdentityFile {self.key}\n"
                "    IdentitiesOnly yes\n"
                f"    UserKnownHostsFile {self.known_hosts}\n"
                "    GlobalKnownHostsFile /dev/null\n"
                "    StrictHostKeyChecking yes\n"
                "    BatchMode yes\n"
                "    ConnectTimeout 10\n"
                "    LogLevel ERROR\n"
            )
        self.ssh_config.write_text("\n".join(blocks))

    def _wait_ready(self, hosts: list[RootHost]) -> None:
        """Wait until every host lets root in over SSH and systemd reports the boot finished, ``running``."""
        pending = {host.name: host for host in hosts}
        attempts: dict[str, subprocess.Popen[str]] = {}
        last: dict[str, str] = {}

        def poll() -> bool:
            for name, host in list(pending.items()):
                attempt = attempts.get(name)
                if attempt is None:
                    attempts[name] = subprocess.Popen(
                        self.ssh_command(host) + ["systemctl is-system-running --wait; systemctl --failed --no-legend --plain"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    continue
                if attempt.poll() is None:
                    continue
                out, err = attempt.communicate()
                del attempts[name]
                last[name] = (out + err).strip()
                if "Host key verification failed" in err or "Permission denied" in err:
                    raise RootHostsError(f"ssh to {name} failed: {err.strip()}")
                state = out.split("\n", 1)[0].strip()
                if state == "running":
                    del pending[name]
                elif state in ("degraded", "maintenance", "stopping", "offline"):
                    raise RootHostsError(f"{name} booted {state}; failed units:\n{out.split(chr(10), 1)[-1].strip()}")
            return not pending

        try:
            wait_until(poll, TIMEOUT, "the root hosts to boot", pause=0.05)
        except AssertionError as error:
            detail = "\n".join(f"{name}: {last.get(name, '')}" for name in pending)
            raise RootHostsError(f"{error}:\n{detail}") from error
        finally:
            for attempt in attempts.values():
                attempt.kill()
                attempt.communicate()


def start_root_fleet(n: int, root: Path, *, prefix: str = "host-", names: list[str] | None = None,
                     extra_packages: Sequence[Package] = ()) -> RootFleet:
    """Start ``n`` root hosts named ``{prefix}1``… (or ``names``) in ``root`` (missing or empty) and return once
    every one is up; their ``/repo`` holds ``repo_packages()`` and ``extra_packages``. Builds the image first if
    needed."""
    root = Path(root).absolute()
    names = names or [f"{prefix}{i}" for i in range(1, n + 1)]
    reason = unavailable()
    if reason is not None:
        raise RootHostsError(reason)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"root fleet directory {root} is not empty")
    reap_orphans()
    fleet = RootFleet(root, secrets.token_hex(4))
    try:
        fleet._start(names, extra_packages)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def reap_orphans() -> list[str]:
    """Stop the fleets whose owner process died without stopping them (a test run killed with SIGKILL),
    from their records; returns their ids. Fleets started by ``up`` have no owner and are left alone."""
    reaped = []
    with _flock(Path("/run/clockwork-roothosts.lock")):
        for record in sorted(Path("/run").glob("clockwork-roothosts-*/fleet.json")):
            try:
                fleet = RootFleet.load(record)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if fleet.owner is not None and not _same_process(*fleet.owner):
                fleet.stop()
                reaped.append(fleet.id)
    return reaped


# ---------------------------------------------------------------------------------------------
# Can they run here?


def unavailable() -> str | None:
    """Why root hosts cannot start on this machine, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "root hosts need root (they run a private dockerd and enter namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}: run `make test` as root (scripts/system-deps.sh installs them)"
    if not image_path().exists() and apt_mirror() is None:
        return f"no root host image yet and no apt source for {SUITE} main in /etc/apt to build it from"
    return None


def required(environ: dict[str, str] | None = None) -> bool:
    """Whether root hosts must run here (``CLOCKWORK_REQUIRE_ROOTHOSTS=1``, as on CI)."""
    return (os.environ if environ is None else environ).get(REQUIRE_ENV, "").strip().lower() in ("1", "yes", "true")


def verdict(reason: str | None, must_run: bool) -> Literal["run", "skip", "fail"]:
    """What a root-host test does: run when the hosts can start, else skip, or fail where they must run."""
    if reason is None:
        return "run"
    return "fail" if must_run else "skip"


# ---------------------------------------------------------------------------------------------
# Small helpers


def _keygen(path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]


def _start_time(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot), to tell it from a later process with the same PID."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1


def _same_process(pid: int, start_time: int) -> bool:
    return _alive(pid) and _start_time(pid) == start_time


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _kill(pid: int, start_time: int | None = None) -> None:
    if start_time is not None and not _same_process(pid, start_time):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _in_cgroup(pid: int, parent: str) -> bool:
    try:
        return f"/{parent}/" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def _remove_cgroups(parent: str) -> None:
    """Remove the (by now empty) cgroup ``parent`` and what is below it, in every hierarchy."""
    base = Path("/sys/fs/cgroup")
    for top in [base / parent] + [h / parent for h in base.iterdir() if h.is_dir()]:
        if not top.is_dir():
            continue
        for directory in sorted((d for d, _dirs, _files in os.walk(top)), key=len, reverse=True):
            try:
                os.rmdir(directory)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# python -m testsupport.roothosts up|down


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testsupport.roothosts", description="Root test hosts for people (make hosts).")
    parser.add_argument("action", choices=("up", "down", "build"))
    parser.add_argument("-n", type=int, default=3, help="how many hosts (up)")
    parser.add_argument("--inventory", type=Path, default=Path(".hosts/inventory.py"), help="inventory to write (up)")
    parser.add_argument("--dir", type=Path, default=None, help="the fleet's own directory (default: .fleet beside the inventory)")
    parser.add_argument("--user", default="root", choices=USERS, help="login user of the inventory (up)")
    parser.add_argument("--prefix", default="web-", help="host names are PREFIX1… (up)")
    args = parser.parse_args(argv)
    inventory = args.inventory.absolute()
    root = (args.dir or inventory.parent / ".fleet").absolute()
    if args.action == "build":
        started = time.monotonic()
        print(f"{ensure_image()} ({time.monotonic() - started:.1f}s)")
        return 0
    if args.action == "down":
        if not (root / "fleet.json").exists():
            print(f"no root hosts recorded in {root}")
            return 0
        RootFleet.load(root).stop()
        inventory.unlink(missing_ok=True)
        print(f"stopped the root hosts of {root}")
        return 0
    if (root / "fleet.json").exists():
        print(f"root hosts already run from {root}: stop them first (make hosts-down)", file=sys.stderr)
        return 1
    started = time.monotonic()
    inventory.parent.mkdir(parents=True, exist_ok=True)
    fleet = start_root_fleet(args.n, root, prefix=args.prefix)
    fleet.owner = None  # it outlives this process: `down` stops it
    fleet.save()
    fleet.write_inventory(inventory, user=args.user)
    first = fleet.hosts[0].alias
    print(f"{len(fleet.hosts)} root hosts up in {time.monotonic() - started:.1f}s: {', '.join(h.name for h in fleet.hosts)}\n"
          f"  inventory ({args.user}):  {inventory}\n"
          f"  log in:  ssh -F {fleet.ssh_config} -l root {first}    (or -l deploy: sudo without a password)\n"
          f"  use:     clockwork apply -i {inventory}\n"
          f"  stop:    make hosts-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
