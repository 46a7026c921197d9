"""Throwaway fleets of real SSH hosts on 127.0.0.1, for tests and benchmarks.

Each fleet host is a real ``sshd`` on its own port that lets in one Unix user of
its own (``{prefix}01``, ``{prefix}02``…) whose home is a fresh directory under
the fleet's root; with ``docker=True`` each host also gets its own ``dockerd``.
Host-key checking stays on: the fleet writes a ``known_hosts`` for its hosts.

Each sshd runs as PID 1 of its own PID and mount namespace: killing it takes its
SSH sessions down with it (a host that is stopped is really gone), and its /tmp
is a private tmpfs, so that pyinfra's uploads (``/tmp/pyinfra-<sha1(dest)>``,
the same name on every host) do not collide between hosts.

Needs root, ``/usr/sbin/sshd``, ``unshare``/``nsenter`` (util-linux) and, for
docker, ``dockerd`` (the first on PATH, else ``/usr/sbin/dockerd``: what
``scripts/system-deps.sh`` accepts), the ``docker`` client and a statically
linked ``/bin/busybox`` (Debian's ``busybox-static``). Hosts of a fleet without
docker point ``DOCKER_HOST`` at a socket nobody listens on, so that a docker
daemon of this machine is never what they reach. Usage::

    with start_fleet(3, Path("/tmp/myfleet")) as fleet:
        fleet.write_inventory(Path("inventory.py"))
"""

from __future__ import annotations

import fcntl
import grp
import io
import os
import pwd
import random
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

SSHD = "/usr/sbin/sshd"
#: As scripts/system-deps.sh looks for it: the first dockerd on PATH, else /usr/sbin/dockerd.
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
BUSYBOX = "/bin/busybox"
#: DOCKER_HOST of the hosts of a fleet without docker: a socket in the host's directory where nothing listens.
NO_DOCKER_SOCKET = "no-dockerd.sock"
RUNUSER = "/usr/sbin/runuser"
NSENTER = "/usr/bin/nsenter"
#: Supplementary group of every fleet user; each fleet dockerd gives it its socket.
DOCKER_GROUP = "cwdocker"
#: Busybox applets linked in the test image's /bin.
IMAGE_APPLETS = ("sh", "sleep", "httpd", "echo", "cat", "env", "ls", "nc", "wget", "true", "false")
#: Ports for sshd: below Linux's ephemeral range (32768-60999), so that no outgoing
#: connection holds one of them at the moment an sshd wants to bind it.
PORT_RANGE = (20000, 32000)
#: Upper bound, in seconds, for every wait (sshd/dockerd start, image imports, stops).
TIMEOUT = 60.0
#: PATH of a fleet user, as sshd sets it for non-root users.
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
LOCK_DIR = Path("/tmp")

# Run by ``sh`` as PID 1 of a new PID + mount namespace, before exec'ing sshd: mount
# a private tmpfs on /tmp, then bind the fleet root ($1) back at its path in case it
# lived under /tmp. fd 3 keeps the original directory reachable; --no-canonicalize
# stops mount from resolving /proc/self/fd/3 to a path under the new tmpfs.
_PRIVATE_TMP_SH = (
    'exec 3<"$1" && mount -t tmpfs -o mode=1777 fleet-tmp /tmp'
    ' && mkdir -p "$1" && mount --no-canonicalize --bind /proc/self/fd/3 "$1"'
    ' && exec 3<&- && shift && exec "$@"'
)


class FleetError(RuntimeError):
    """A fleet could not be started or stopped."""


class PrefixInUse(FleetError):
    """Another fleet (maybe of another process) runs with this prefix, hence these users."""


@dataclass
class FleetHost:
    """One host of a fleet: an sshd on 127.0.0.1:``port`` letting ``user`` in, at home in ``home``."""

    name: str
    port: int
    user: str
    home: Path
    #: The host's own files: sshd config, host key, logs, docker state.
    dir: Path
    #: ``unix://…`` socket of the host's dockerd (docker fleets only).
    docker_host: str | None = None
    #: ``unshare`` wrapper whose child is the sshd (PID 1 of the host's namespaces).
    sshd: subprocess.Popen | None = field(default=None, repr=False)
    dockerd: subprocess.Popen | None = field(default=None, repr=False)

    def connections(self) -> int:
        """How many SSH connections this host's sshd accepted so far (one log line each)."""
        return self._logged("Accepted publickey for ")

    def commands(self) -> int:
        """How many remote commands (SSH exec requests) this host's sshd ran so far (one log line each)."""
        return self._logged("Starting session: command ")

    def _logged(self, line: str) -> int:
        """How many times the host's sshd logged ``line``."""
        log = self.dir / "sshd.log"
        return log.read_text(errors="replace").count(line) if log.exists() else 0

    def pids(self) -> list[int]:
        """Live PIDs of every process this host runs: sshd and its sessions, dockerd, containerd, shims, containers."""
        table = _process_table()
        roots = [p.pid for p in (self.sshd, self.dockerd) if p is not None and p.poll() is None]
        # containerd and its shims are not dockerd's descendants (shims daemonize):
        # they are found by their arguments, which name this host's exec-root.
        exec_root = f"{self.dir / 'dx'}/"
        roots += [pid for pid, (_ppid, cmdline) in table.items() if exec_root in cmdline]
        return [pid for pid in _tree(roots, table) if _alive(pid)]


class Fleet:
    """A running fleet: its ``hosts``, the client ``key`` they accept and the ``known_hosts`` naming them."""

    docker_image = "cwtest/busybox:1"
    #: Same busybox, another image ID (its /etc/cwtest-release says 2), to switch images.
    docker_image_2 = "cwtest/busybox:2"

    def __init__(self, root: Path, prefix_lock: IO[bytes]) -> None:
        self.root = root
        self.key = root / "id_ed25519"
        # pyinfra caches known_hosts files by path for the whole process: a fresh name
        # per fleet keeps a root reused in the same process from seeing stale keys.
        self.known_hosts = root / f"known_hosts-{secrets.token_hex(4)}"
        self.hosts: list[FleetHost] = []
        self._prefix_lock: IO[bytes] | None = prefix_lock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def host_data(self, host: FleetHost) -> dict[str, Any]:
        """pyinfra host data to reach ``host`` over SSH, with strict host-key checking."""
        return {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": host.port,
            "ssh_user": host.user,
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "ssh_paramiko_connect_kwargs": {"banner_timeout": 5, "auth_timeout": 5},
        }

    def write_inventory(
        self,
        path: Path,
        groups: dict[str, list[str]] | None = None,
        extra_hosts: list[tuple[str, dict]] | None = None,
    ) -> Path:
        """Write a pyinfra inventory file: every host (and ``extra_hosts``) in ``hosts``, plus ``groups`` by host name."""
        lines = [f'"""pyinfra inventory of the fleet in {self.root}."""', "", "hosts = ["]
        lines += [f"    ({host.name!r}, {self.host_data(host)!r})," for host in self.hosts]
        lines += [f"    ({name!r}, {data!r})," for name, data in extra_hosts or ()]
        lines.append("]")
        for group, names in (groups or {}).items():
            if not group.isidentifier() or group.startswith("_") or group == "hosts":
                raise ValueError(f"pyinfra would not read {group!r} as a group name")
            lines.append(f"{group} = {list(names)!r}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def run(self, host: FleetHost, command: str) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with ``sh`` locally as ``host``'s user, in its home, seeing its /tmp and DOCKER_HOST."""
        env = {"PATH": USER_PATH, "LANG": "C.UTF-8", "HOME": str(host.home), "USER": host.user,
               "LOGNAME": host.user, "SHELL": "/bin/sh", "DOCKER_HOST": host.docker_host or _no_docker(host)}
        argv = [RUNUSER, "-u", host.user, "--", "sh", "-c", f"cd {shlex.quote(str(host.home))} || exit\n{command}"]
        if host.sshd is not None and host.sshd.poll() is None:
            # Enter the sshd's mount namespace for its private /tmp (a stopped host has none left).
            argv = [NSENTER, f"--target={host.sshd.pid}", "--mount", "--", *argv]
        return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)

    def stop_host(self, host: FleetHost) -> None:
        """Kill ``host``'s sshd and its sessions: the host is unreachable from then on."""
        _stop_sshds([host])

    def pause_host(self, host: FleetHost) -> None:
        """Stop (SIGSTOP) ``host``'s sshd and sessions: connections to it are accepted by the kernel and then
        hang, as with a host that froze, until ``resume_host``."""
        for pid in host.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume_host(self, host: FleetHost) -> None:
        """Let a paused host's processes run again (SIGCONT)."""
        for pid in host.pids():
            os.kill(pid, signal.SIGCONT)

    def start_host(self, host: FleetHost) -> None:
        """Start a stopped host's sshd again (same port, user, home and host key): it is reachable again."""
        _start_sshd(host, self.root)
        _wait_sshds([host], self.root)

    def remove_containers(self) -> None:
        """Remove every container on every running docker host (best effort)."""
        script = 'ids=$(docker ps -aq) && { [ -z "$ids" ] || docker rm -f $ids >/dev/null; }'
        hosts = [host for host in self.hosts if host.dockerd is not None and host.dockerd.poll() is None]
        _run_all([["sh", "-c", script] for _ in hosts], envs=[_docker_env(host) for host in hosts], check=False)

    def stop(self) -> None:
        """Stop every process of the fleet (by PID) and remove its root; safe to call again."""
        try:
            _stop_sshds(self.hosts)
            self.remove_containers()
            dockerds = [h.dockerd for h in self.hosts if h.dockerd is not None and h.dockerd.poll() is None]
            for dockerd in dockerds:
                dockerd.terminate()
            for dockerd in dockerds:
                try:
                    dockerd.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    dockerd.kill()
                    dockerd.wait()
            # Whatever a killed dockerd left behind (containerd, shims, containers).
            leftovers = [pid for host in self.hosts for pid in host.pids()]
            for pid in leftovers:
                _kill(pid)
            _wait_gone(leftovers)
            _unmount_under(self.root)
            if self.root.exists():
                shutil.rmtree(self.root)
        finally:
            if self._prefix_lock is not None:
                self._prefix_lock.close()
                self._prefix_lock = None


def start_fleet(n: int, root: Path, *, prefix: str = "cwt", docker: bool = False) -> Fleet:
    """Start ``n`` hosts (users ``{prefix}01``…, names ``host-01``…) in ``root``, which must be empty or missing.

    Only one fleet per ``prefix`` can run at a time (its users are reused across runs).
    """
    root = Path(root).absolute()
    _check_requirements(root, docker)
    prefix_lock = _try_lock(f"prefix-{prefix}")
    if prefix_lock is None:
        raise PrefixInUse(f"another fleet with prefix {prefix!r} is running (its users are taken)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            raise FileExistsError(f"fleet root {root} is not empty")
        root.chmod(0o755)
    except BaseException:
        prefix_lock.close()
        raise
    fleet = Fleet(root, prefix_lock)
    try:
        _start(fleet, n, prefix, docker)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (at the time of the call)."""
    return _free_ports(1)[0]


def is_dynamic_elf(path: Path) -> bool:
    """Whether ``path`` is an ELF executable that needs a dynamic loader (it has a PT_INTERP program header)."""
    with path.open("rb") as binary:
        header = binary.read(64)
        if header[:4] != b"\x7fELF":
            return False
        order = "<" if header[5] == 1 else ">"
        if header[4] == 2:  # 64-bit
            phoff, = struct.unpack(order + "Q", header[0x20:0x28])
            phentsize, phnum = struct.unpack(order + "HH", header[0x36:0x3A])
        else:
            phoff, = struct.unpack(order + "I", header[0x1C:0x20])
            phentsize, phnum = struct.unpack(order + "HH", header[0x2A:0x2E])
        for index in range(phnum):
            binary.seek(phoff + index * phentsize)
            p_type, = struct.unpack(order + "I", binary.read(4))
            if p_type == 3:  # PT_INTERP
                return True
    return False


def require(*tools: str, root: str | None = None) -> None:
    """Fail (never skip) when a tool is missing, or when ``root`` (why root is needed) is given and this is not
    root: ``make test`` installs every tool and CI runs as root, so what is missing is an install step not run."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise FleetError(f"missing {', '.join(missing)}: run `make test` (it installs what the tests need)")
    if root is not None and os.geteuid() != 0:
        raise FleetError(f"needs root: {root}")


def _check_requirements(root: Path, docker: bool) -> None:
    tools = [SSHD, RUNUSER, NSENTER, "unshare", "ssh-keygen", "useradd"]
    if docker:
        tools += [DOCKERD, "docker", BUSYBOX]
    require(*tools)
    if docker and is_dynamic_elf(Path(BUSYBOX)):
        raise FleetError(f"{BUSYBOX} is dynamically linked (Debian's busybox): the test image has no libc; "
                         "install busybox-static (`make test` does)")
    require(root="a fleet adds users and runs sshd")
    for parent in root.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise FleetError(f"fleet users could not reach their homes: {parent} is not world-searchable")
    # The longest unix socket a dockerd makes is exec-root/containerd/containerd.sock.ttrpc.
    if docker and len(f"{root}/01/dx/containerd/containerd.sock.ttrpc") > 100:
        raise FleetError(f"fleet root {root} is too long for docker's unix sockets (keep it under 60 chars)")


def _start(fleet: Fleet, n: int, prefix: str, docker: bool) -> None:
    for i in range(1, n + 1):
        host_dir = fleet.root / f"{i:02d}"
        host_dir.mkdir()
        fleet.hosts.append(
            FleetHost(name=f"host-{i:02d}", port=0, user=f"{prefix}{i:02d}", home=host_dir / "home", dir=host_dir)
        )
    _setup_users(fleet.hosts)
    if docker:
        for host in fleet.hosts:
            _start_dockerd(host)
    _run_all(
        [_keygen(fleet.key, "clockwork-tests")]
        + [_keygen(host.dir / "ssh_host_ed25519_key", host.name) for host in fleet.hosts]
    )
    authorized_key = fleet.key.with_suffix(".pub").read_bytes()
    for host in fleet.hosts:
        _make_home(host, authorized_key)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    for host, port in zip(fleet.hosts, _free_ports(n), strict=True):
        host.port = port
        _start_sshd(host, fleet.root)
    _wait_sshds(fleet.hosts, fleet.root)
    fleet.known_hosts.write_text(
        "".join(
            f"[127.0.0.1]:{host.port} {' '.join((host.dir / 'ssh_host_ed25519_key.pub').read_text().split()[:2])}\n"
            for host in fleet.hosts
        )
    )
    if docker:
        _wait_dockerds(fleet.hosts)
        _import_images(fleet)


def _setup_users(hosts: list[FleetHost]) -> None:
    """Create the users (and the docker group) when missing, else point them at their new homes."""
    with _lock("users"):
        try:
            grp.getgrnam(DOCKER_GROUP)
        except KeyError:
            _check_call(["groupadd", DOCKER_GROUP])
        for host in hosts:
            # '*' rather than useradd's locked '!': sshd refuses locked users even for key auth.
            options = ["-d", str(host.home), "-s", "/bin/sh", "-p", "*", "-G", DOCKER_GROUP]
            try:
                pwd.getpwnam(host.user)
                _check_call(["usermod", "-a", *options, host.user])
            except KeyError:
                _check_call(["useradd", "-M", *options, host.user])


def _make_home(host: FleetHost, authorized_key: bytes) -> None:
    """An empty home holding ``.ssh/authorized_keys``, with the modes sshd's StrictModes wants."""
    user = pwd.getpwnam(host.user)
    ssh_dir = host.home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    host.home.chmod(0o700)
    (ssh_dir / "authorized_keys").write_bytes(authorized_key)
    (ssh_dir / "authorized_keys").chmod(0o600)
    for path in (host.home, ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, user.pw_uid, user.pw_gid)


def _keygen(path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]


def _start_sshd(host: FleetHost, root: Path) -> None:
    config = [
        f"Port {host.port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host.dir / 'ssh_host_ed25519_key'}",
        f"PidFile {host.dir / 'sshd.pid'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        f"AllowUsers {host.user}",
        # One "Accepted publickey" line per connection and one "Starting session: command" per remote command
        # (VERBOSE): tests count connections and round trips.
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
    ]
    config.append(f'SetEnv "DOCKER_HOST={host.docker_host or _no_docker(host)}"')
    (host.dir / "sshd_config").write_text("\n".join(config) + "\n")
    log = host.dir / "sshd.log"
    with log.open("wb") as log_file:
        host.sshd = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private",
             "sh", "-c", _PRIVATE_TMP_SH, "sh", str(root),
             SSHD, "-D", "-f", str(host.dir / "sshd_config"), "-E", str(log)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )


def _wait_sshds(hosts: list[FleetHost], root: Path) -> None:
    """Wait until every sshd accepts connections; move a host whose port got taken meanwhile."""
    deadline = time.monotonic() + TIMEOUT
    pending = list(hosts)
    moves = 0
    while pending:
        for host in list(pending):
            assert host.sshd is not None
            if host.sshd.poll() is None and _port_open(host.port):
                pending.remove(host)
            elif host.sshd.poll() is not None:
                log = _tail(host.dir / "sshd.log")
                if "Address already in use" not in log or moves >= 10:
                    raise FleetError(f"sshd of {host.name} exited with {host.sshd.returncode}:\n{log}")
                moves += 1
                host.port = _free_ports(1)[0]
                _start_sshd(host, root)
        if pending and time.monotonic() > deadline:
            raise FleetError(f"sshd of {pending[0].name} not listening after {TIMEOUT}s:\n{_tail(pending[0].dir / 'sshd.log')}")
        time.sleep(0.01)


def _stop_sshds(hosts: list[FleetHost]) -> None:
    running = [host.sshd for host in hosts if host.sshd is not None and host.sshd.poll() is None]
    namespaces = descendants([sshd.pid for sshd in running])  # in milliseconds: a host lost mid-command is lost then
    # unshare ignores SIGTERM; SIGKILL takes its child, PID 1 of the namespace, and so
    # every process in that namespace with it.
    for sshd in running:
        sshd.kill()
    for sshd in running:
        sshd.wait()
    _wait_gone(namespaces)


def _start_dockerd(host: FleetHost) -> None:
    host.docker_host = f"unix://{host.dir / 'docker.sock'}"
    with (host.dir / "docker.log").open("wb") as log_file:
        host.dockerd = subprocess.Popen(
            [DOCKERD, "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--data-root", str(host.dir / "docker"), "--exec-root", str(host.dir / "dx"),
             "-H", host.docker_host, "--pidfile", str(host.dir / "docker.pid"), "--group", DOCKER_GROUP],
            # TMPDIR: where containerd dumps its stacks when dockerd restarts it.
            env={**os.environ, "TMPDIR": str(host.dir)},
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )


def _wait_dockerds(hosts: list[FleetHost]) -> None:
    deadline = time.monotonic() + TIMEOUT
    for host in hosts:
        assert host.dockerd is not None
        while not _docker_ping(host.dir / "docker.sock"):
            if host.dockerd.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {host.dockerd.returncode}" if host.dockerd.poll() is not None else "not answering"
                raise FleetError(f"dockerd of {host.name} {state}:\n{_tail(host.dir / 'docker.log')}")
            time.sleep(0.05)


def _docker_ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(str(sock))
            client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return client.recv(64).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def _import_images(fleet: Fleet) -> None:
    """Import the busybox test images into every host's dockerd."""
    commands = []
    for release, tag in ((1, fleet.docker_image), (2, fleet.docker_image_2)):
        tar = fleet.root / f"image-{release}.tar"
        tar.write_bytes(_image_tar(release))
        commands += [["docker", "import", "--change", 'CMD ["sleep", "86400"]', str(tar), tag] for _ in fleet.hosts]
    _run_all(commands, envs=[_docker_env(host) for host in fleet.hosts] * 2)


def _image_tar(release: int) -> bytes:
    """A rootfs: static busybox with its applets in /bin, and /etc/cwtest-release saying ``release``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            directory = tarfile.TarInfo(name)
            directory.type, directory.mode = tarfile.DIRTYPE, mode
            tar.addfile(directory)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in IMAGE_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        content = f"{release}\n".encode()
        release_file = tarfile.TarInfo("etc/cwtest-release")
        release_file.size = len(content)
        tar.addfile(release_file, io.BytesIO(content))
    return buffer.getvalue()


def _no_docker(host: FleetHost) -> str:
    return f"unix://{host.dir / NO_DOCKER_SOCKET}"


def _docker_env(host: FleetHost) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": host.docker_host or ""}


def _run_all(commands: list[list[str]], envs: list[dict[str, str]] | None = None, check: bool = True) -> None:
    """Run ``commands`` in parallel; raise on the first failure when ``check``."""
    processes = [
        subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for command, env in zip(commands, envs or [None] * len(commands), strict=True)
    ]
    failures = []
    for command, process in zip(commands, processes, strict=True):
        try:
            _out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate()
        if process.returncode != 0:
            failures.append(f"{shlex.join(command)} failed ({process.returncode}): {err.decode(errors='replace')}")
    if check and failures:
        raise FleetError("\n".join(failures))


def _check_call(command: list[str]) -> None:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FleetError(f"{shlex.join(command)} failed ({result.returncode}): {result.stderr}")


def _flock(path: Path) -> IO[bytes]:
    """An exclusive lock on ``path``, shared by every process of this machine, held until the file is closed."""
    lock_file = path.open("ab")
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    return lock_file


def _try_flock(path: Path) -> IO[bytes] | None:
    """Like ``_flock``, but ``None`` at once when another open file holds the lock."""
    lock_file = path.open("ab")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        return None
    return lock_file


def _lock(name: str) -> IO[bytes]:
    """The fleet lock ``name`` (``_flock`` on a file of ``LOCK_DIR``)."""
    return _flock(LOCK_DIR / f".clockwork-fleet-{name}.lock")


def _try_lock(name: str) -> IO[bytes] | None:
    """Like ``_lock``, but ``None`` at once if another process holds it."""
    return _try_flock(LOCK_DIR / f".clockwork-fleet-{name}.lock")


def wait_until(condition: Callable[[], object], timeout: float, what: str, pause: float = 0.1,
               process: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` every ``pause`` seconds until it holds; fail after ``timeout`` seconds, or as soon as
    ``process`` (the command whose effect is awaited) has ended."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports of PORT_RANGE that nothing on 127.0.0.1 holds right now."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < n:
            candidate = socket.socket()
            try:
                candidate.bind(("127.0.0.1", random.randrange(*PORT_RANGE)))
            except OSError:
                candidate.close()
                continue
            sockets.append(candidate)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return str(error)


def _process_table() -> dict[int, tuple[int, str]]:
    """PID -> (parent PID, command line) of every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return table


def _tree(roots: list[int], table: dict[int, tuple[int, str]]) -> list[int]:
    """``roots`` and all their descendants in ``table``."""
    found: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo += [child for child, (ppid, _cmdline) in table.items() if ppid == pid]
    return found


def descendants(roots: list[int]) -> list[int]:
    """``roots`` and all their descendants, walked down through ``/proc/PID/task/TID/children``: milliseconds,
    where a scan of every process on a busy machine takes seconds."""
    found: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise FleetError(f"processes still running after {TIMEOUT}s: {[p for p in pids if _alive(p)]}")
        time.sleep(0.01)


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever is still mounted under ``root`` (overlays a killed dockerd left)."""
    prefix = f"{root}/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4].encode().decode("unicode_escape") for line in mountinfo]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdin=subprocess.DEVNULL, capture_output=True, check=False)
