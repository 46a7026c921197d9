"""Clockwork on root hosts: packages, services and templated files, against pyinfra and the floor.

    python bench/roothosts.py [--hosts 20] [--runs 3]

Starts ``--hosts`` root hosts (testsupport/roothosts.py: Debian 12 containers with systemd as PID 1,
reached as root over SSH through a ProxyCommand, hosts cwb-1…), whose local apt repository also holds
the benchmark's packages ``cwbench-1`` … ``cwbench-5`` (1.0 and 1.1; cwbench-1..3 ship a unit,
``cwbench-N.service``, a busybox httpd on 127.0.0.1:910N of the host's own network namespace; cwbench-4
and 5 are data only). The project, written twice:

- ``main.py``: five ``PackageResource(name="cwbench-N", version="1.0")``, three
  ``ServiceResource(name="cwbench-N", running=True, enabled=True, requires=[package])`` and five
  ``FileResource(name="cwbench-N.conf", directory="/etc/cwbench", template="templates/cwbench.conf.j2",
  vars={...})``, the template naming ``{{ host.name }}``: 13 resources per host;
- ``deploy.py``, the pyinfra equivalent: one ``apt.packages`` with the five pinned versions, three
  ``systemd.service(running=True, enabled=True)`` and five ``files.template`` of the same template.

Then it times, as whole processes (wall clock, start-up and imports included), interleaved, ``--runs``
times each after one untimed run of each:

1. first apply on a clean fleet (before each run, untimed: services stopped and disabled, packages purged,
   /etc/cwbench removed): ``clockwork apply -q`` (every pair changed) vs ``pyinfra -y inventory.py
   deploy.py`` (every operation a success on every host);
2. with the project applied and one service stopped on one host (the middle one):
   A. ``clockwork evaluate -q`` — must exit 1 and name the stopped service on that host;
   B. ``pyinfra inventory.py deploy.py --dry`` (no ``-y``), stdin closed — every host connected, the plan
      shows one change: that service on that host;
   C. the floor, ``bench/floor_roothosts.py``: pyinfra's API, connect every host, ONE command per host that
      runs ``dpkg-query``, ``systemctl show`` and ``stat``/``sha1sum`` on the same packages, units and files;
   D. ``clockwork apply -q`` with nothing to do (the service is started again, untimed, before it);
   E. ``pyinfra -y inventory.py deploy.py`` with nothing to do.

Prints medians (and minimums) and the ratios evaluate/floor, pyinfra-dry/evaluate, and pyinfra/Clockwork for
the first and the no-change apply. Nothing is asserted about the times; a command that does not do what it
should stops the benchmark. Needs root (as the tests' root hosts do).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402
from testsupport.roothosts import Package, RootFleet, RootHost, start_root_fleet  # noqa: E402

#: Host names are cwb-1, cwb-2…
PREFIX = "cwb-"
VERSION = "1.0"
#: The benchmark's packages; the first ``len(SERVICES)`` ship a unit of their name.
PACKAGES = [f"cwbench-{i}" for i in range(1, 6)]
SERVICES = PACKAGES[:3]
UNITS = [f"{name}.service" for name in SERVICES]
CONF_DIRECTORY = "/etc/cwbench"
CONF_FILES = {f"cwbench-{i}.conf": {"index": i, "port": 9100 + i, "workers": i * 2} for i in range(1, 6)}
CONF_PATHS = [f"{CONF_DIRECTORY}/{name}" for name in CONF_FILES]
TEMPLATE = "templates/cwbench.conf.j2"
TEMPLATE_TEXT = """\
# cwbench {{ index }} on {{ host.name }}: written by bench/roothosts.py
name = {{ host.name }}-{{ index }}
listen = 127.0.0.1:{{ port }}
workers = {{ workers }}
"""
#: The service stopped on the middle host to make the one drift.
DRIFT_SERVICE = SERVICES[1]
#: Resources per host, and pyinfra operations per host.
RESOURCES = len(PACKAGES) + len(SERVICES) + len(CONF_FILES)
OPERATIONS = 1 + len(SERVICES) + len(CONF_FILES)
#: A Clockwork failure seen on these hosts (through a ProxyCommand): when it closes its SSH connections,
#: paramiko's ProxyCommand.close kills an ``nc`` that paramiko's own transport thread already ended and gevent
#: reaped, and the command exits 4 ("internal error") after its work is done. Such a run is run again.
CLOSE_RACE = "ProcessLookupError: [Errno 3] No such process"

_UNIT = """[Unit]
Description=@NAME@, a small HTTP daemon of Clockwork's root-host benchmark

[Service]
ExecStart=/bin/busybox httpd -f -p 127.0.0.1:@PORT@ -h /usr/share/@NAME@/www

[Install]
WantedBy=multi-user.target
"""

#: Untimed, before each first apply: back to a clean fleet (nothing of the project on the host).
_RESET = f"""set -e
systemctl disable --now --quiet {' '.join(UNITS)} 2>/dev/null || true
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q {' '.join(PACKAGES)} >/dev/null 2>&1
rm -rf {CONF_DIRECTORY} {' '.join(f'/var/lib/clockwork/packages/{name}' for name in PACKAGES)}
systemctl daemon-reload
systemctl reset-failed
for unit in {' '.join(UNITS)}; do test "$(systemctl show -p LoadState --value "$unit")" = not-found; done
! dpkg-query -W -f='${{db:Status-Abbrev}}\\n' {' '.join(PACKAGES)} 2>/dev/null | grep -q '^.[^n]'
"""


def packages() -> list[Package]:
    """cwbench-1 … cwbench-5, versions 1.0 and 1.1, added to the fleet's repository."""
    built = []
    for index, name in enumerate(PACKAGES, start=1):
        for version in ("1.0", "1.1"):
            files = {f"/usr/share/{name}/www/index.html": (f"{name} {version}\n", 0o644)}
            if name in SERVICES:
                unit = _UNIT.replace("@NAME@", name).replace("@PORT@", str(9100 + index))
                files[f"/lib/systemd/system/{name}.service"] = (unit, 0o644)
                description, depends = f"a small HTTP daemon ({name}.service), not started by the package", "busybox"
            else:
                description, depends = "data only", ""
            built.append(Package(name, version, description, files, depends=depends))
    return built


#: inotify instances per root host, about (systemd, journald, logind, dbus, .path units…), and the kernel setting.
INOTIFY_PER_HOST = 16
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def raise_inotify_limit(hosts: int) -> None:
    """All hosts' systemds share root's inotify instances (default 128): too few, and hosts boot degraded
    (``systemd-ask-password-*.path`` failed). Raise the limit when it is lower than ``hosts`` need."""
    wanted = 256 + hosts * INOTIFY_PER_HOST
    current = int(INOTIFY_INSTANCES.read_text())
    if current < wanted:
        print(f"fs.inotify.max_user_instances {current} → {wanted}", file=sys.stderr, flush=True)
        INOTIFY_INSTANCES.write_text(f"{wanted}\n")


# The project ---------------------------------------------------------------------------------


def main_py() -> str:
    lines = [
        '"""Benchmark project: five pinned packages, three services from them, five templated files."""',
        "",
        "from clockwork.resources import FileResource, PackageResource, ServiceResource",
        "",
    ]
    for i, name in enumerate(PACKAGES, start=1):
        lines.append(f"package{i} = PackageResource(name={name!r}, version={VERSION!r})")
    for i, name in enumerate(SERVICES, start=1):
        lines.append(f"service{i} = ServiceResource(name={name!r}, running=True, enabled=True, requires=[package{i}])")
    for i, (name, variables) in enumerate(CONF_FILES.items(), start=1):
        lines.append(f"conf{i} = FileResource(name={name!r}, directory={CONF_DIRECTORY!r}, template={TEMPLATE!r}, "
                     f"vars={variables!r}, mode='644')")
    return "\n".join(lines) + "\n"


def deploy_py() -> str:
    pinned = [f"{name}={VERSION}" for name in PACKAGES]
    lines = [
        '"""Benchmark deploy, the pyinfra equivalent of main.py."""',
        "",
        "from pyinfra.operations import apt, files, systemd",
        "",
        f"apt.packages(name='packages', packages={pinned!r})",
    ]
    for unit in UNITS:
        lines.append(f"systemd.service(name={unit!r}, service={unit!r}, running=True, enabled=True)")
    for path, variables in zip(CONF_PATHS, CONF_FILES.values(), strict=True):
        arguments = ", ".join(f"{key}={value!r}" for key, value in variables.items())
        lines.append(f"files.template(name={path!r}, src={TEMPLATE!r}, dest={path!r}, mode='644', {arguments})")
    return "\n".join(lines) + "\n"


def write_project(fleet: RootFleet) -> Path:
    """main.py, deploy.py, the template and inventory.py (as root) in ``<fleet root>/project``."""
    project = fleet.root / "project"
    (project / TEMPLATE).parent.mkdir(parents=True)
    (project / TEMPLATE).write_text(TEMPLATE_TEXT)
    (project / "main.py").write_text(main_py())
    (project / "deploy.py").write_text(deploy_py())
    fleet.write_inventory(project / "inventory.py", user="root")
    return project


def on_every_host(fleet: RootFleet, command: str) -> None:
    """Run ``command`` as root on every host over SSH, in parallel; raise if one fails."""
    with ThreadPoolExecutor(max_workers=len(fleet.hosts)) as pool:
        results = list(pool.map(lambda host: (host, fleet.ssh(host, command, timeout=300)), fleet.hosts))
    failed = [f"{host.name}: {(result.stdout + result.stderr).strip()[-300:]}"
              for host, result in results if result.returncode != 0]
    if failed:
        raise BenchError(f"{command.splitlines()[0]!r}… failed on {len(failed)} hosts: {failed[:3]}")


def set_drift(fleet: RootFleet, host: RootHost, drifted: bool) -> None:
    """Stop the drift service on ``host`` (or start it again)."""
    command = f"systemctl {'stop' if drifted else 'start'} {DRIFT_SERVICE}.service"
    result = fleet.ssh(host, command)
    if result.returncode != 0:
        raise BenchError(f"{command} on {host.name} failed: {result.stderr}")


# Checks --------------------------------------------------------------------------------------


def _hosts_seen(output: str) -> set[str]:
    """The hosts pyinfra said it connected or prepared (``[cwb-3] Connected``, ``[cwb-3] Ready: deploy.py``)."""
    return set(re.findall(rf"^\s*\[({re.escape(PREFIX)}\d+)\]\s+(?:Connected|Ready: )", output, re.M))


def pyinfra_totals(hosts: int, changed: bool) -> Callable[[str], str | None]:
    """Every operation succeeded (``changed``) or changed nothing on every host: the Grand total counts
    ``hosts`` × the operations (it counts only hosts that connected)."""
    total = hosts * OPERATIONS
    columns = (total, "-", "-") if changed else ("-", "-", total)

    def check(output: str) -> str | None:
        match = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", output, re.M)
        if match is None:
            return "no 'Grand total' line in pyinfra's results"
        wanted = (str(total), *map(str, columns))
        if match.groups() != wanted:
            return f"Grand total (hosts, success, error, no change) = {match.groups()}, expected {wanted}"
        return None

    return check


def pyinfra_dry_check(hosts: int, drifted: str) -> Callable[[str], str | None]:
    """pyinfra connected every host and its plan shows exactly the stopped service changing, on its host."""
    drift_op = f"{DRIFT_SERVICE}.service"
    others = ["packages", *(unit for unit in UNITS if unit != drift_op), *CONF_PATHS]

    def check(output: str) -> str | None:
        seen = _hosts_seen(output)
        if len(seen) != hosts:
            return f"{len(seen)} hosts connected or prepared, expected {hosts}"
        if "--> Detected changes:" not in output:
            return "no change detection in the output"
        if not re.search(rf"^\s*{re.escape(drift_op)}\s+1 \({re.escape(drifted)}\)\s", output, re.M):
            return f"the plan does not show {drift_op} changing on {drifted} only"
        unchanged = [op for op in others if re.search(rf"^\s*{re.escape(op)}\s+-\s+-\s*$", output, re.M)]
        if len(unchanged) != len(others):
            return f"operations shown without change: {unchanged}, expected {others}"
        return None

    return check


# The run -------------------------------------------------------------------------------------


def main() -> int:
    args = common.arguments(__doc__, hosts=20, runs=3)
    n, pairs = args.hosts, args.hosts * RESOURCES
    load = common.load_average()
    raise_inotify_limit(n)
    print(f"Starting {n} root hosts…", file=sys.stderr, flush=True)
    root = Path(tempfile.mkdtemp(prefix="cwb-roothosts-", dir="/tmp"))
    began = time.perf_counter()
    fleet = start_root_fleet(n, root, prefix=PREFIX, extra_packages=packages())
    start_time = time.perf_counter() - began
    try:
        project = write_project(fleet)
        drift_host = fleet.hosts[n // 2]
        drifted = drift_host.name
        print("apt-get update on every host (untimed)…", file=sys.stderr, flush=True)
        on_every_host(fleet, "apt-get update -q >/dev/null")

        def reset() -> None:
            on_every_host(fleet, _RESET)

        clockwork_first = Command(
            "clockwork apply, first", [common.CLOCKWORK, "apply", "-q"], project, before=reset, retry_on=CLOSE_RACE,
            check=common.expect(f"Applied: {pairs} changed, 0 unchanged, 0 failed on {n} hosts"),
        )
        pyinfra_first = Command(
            "pyinfra -y, first", [common.PYINFRA, "-y", "inventory.py", "deploy.py"], project, before=reset,
            check=pyinfra_totals(n, changed=True),
        )
        evaluate = Command(
            "clockwork evaluate -q", [common.CLOCKWORK, "evaluate", "-q"], project, status=1, retry_on=CLOSE_RACE,
            check=common.expect(f"1 of {pairs} not as specified (1 drift)",
                                f"[{drifted}] {DRIFT_SERVICE}: stopped, wanted running"),
            before=lambda: set_drift(fleet, drift_host, True),
        )
        pyinfra_dry = Command(
            "pyinfra --dry", [common.PYINFRA, "inventory.py", "deploy.py", "--dry"], project,
            check=pyinfra_dry_check(n, drifted),
        )
        floor = Command(
            "floor (bench/floor_roothosts.py)",
            [common.PYTHON, str(common.BENCH_DIR / "floor_roothosts.py"), "inventory.py",
             "--packages", ",".join(PACKAGES), "--units", ",".join(UNITS), *CONF_PATHS],
            project, check=common.expect(f"floor: {n} of {n} hosts read; {n} with every package installed, "
                                         f"{n - 1} with every unit active"),
        )
        clockwork_again = Command(
            "clockwork apply, no change", [common.CLOCKWORK, "apply", "-q"], project, retry_on=CLOSE_RACE,
            check=common.expect(f"Nothing to do: every resource is already as declared on {n} hosts"),
            before=lambda: set_drift(fleet, drift_host, False),
        )
        pyinfra_again = Command(
            "pyinfra -y, no change", [common.PYINFRA, "-y", "inventory.py", "deploy.py"], project,
            check=pyinfra_totals(n, changed=False),
        )

        first = [clockwork_first, pyinfra_first]
        print(f"First apply: one untimed run of each, then {args.runs} interleaved timed runs…", file=sys.stderr, flush=True)
        for command in first:
            command.run(timed=False)
        common.interleave(first, args.runs)
        reads = [evaluate, pyinfra_dry, floor, clockwork_again, pyinfra_again]
        print(f"Reading and no-change apply: one untimed run of each, then {args.runs} interleaved timed runs…",
              file=sys.stderr, flush=True)
        for command in reads:
            command.run(timed=False)
        common.interleave(reads, args.runs)
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        return 1
    finally:
        stop_time = common.stop_fleet(fleet)

    environment = common.environment(n, args.runs, load, kind="root hosts: Debian 12 + systemd containers, "
                                                              "SSH as root through a ProxyCommand")
    common.print_report("roothosts.py", environment, [
        f"project: {len(PACKAGES)} PackageResources (pinned {VERSION}), {len(SERVICES)} ServiceResources "
        f"(units from the packages), {len(CONF_FILES)} templated FileResources per host = {pairs} host × resource "
        f"pairs (pyinfra: 1 apt.packages, {len(SERVICES)} systemd.service, {len(CONF_FILES)} files.template); "
        f"drift: {DRIFT_SERVICE}.service stopped on {drifted}",
        f"fleet start {start_time:.2f} s, stop {stop_time:.2f} s",
        f"runs of Clockwork run again after {CLOSE_RACE!r} on closing its connections (exit 4): "
        f"first apply {clockwork_first.retried}, evaluate {evaluate.retried}, no-change apply {clockwork_again.retried}",
    ], [
        ("clockwork apply -q, first (clean fleet)", clockwork_first),
        ("pyinfra -y deploy.py, first (clean fleet)", pyinfra_first),
        ("clockwork evaluate -q (drift, exit 1)", evaluate),
        ("pyinfra inventory.py deploy.py --dry", pyinfra_dry),
        ("floor: connect_all + 1 command/host", floor),
        ("clockwork apply -q, no change", clockwork_again),
        ("pyinfra -y deploy.py, no change", pyinfra_again),
    ], [
        common.ratio_line("evaluate / floor", evaluate, floor),
        common.ratio_line("pyinfra --dry / evaluate", pyinfra_dry, evaluate),
        common.ratio_line("first apply: pyinfra / clockwork", pyinfra_first, clockwork_first),
        common.ratio_line("no change: pyinfra / clockwork", pyinfra_again, clockwork_again),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
