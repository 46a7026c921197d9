"""How Clockwork scales with the fleet: 50, 200, 500 hosts from one controller, against the floor and pyinfra.

    python bench/scale.py [--sizes 50,200] [--runs 1] [--no-pyinfra] [--profile] [--memory] [--known-hosts]

For each size in ``--sizes`` it starts a fleet of real sshd hosts on 127.0.0.1
(testsupport/fleet.py, users cwb01…) with the project of bench/common.py (one
directory and ten small files per host, as ``main.py`` and as pyinfra's
``deploy.py``) and times, as whole processes (wall clock), interleaved within
each phase, ``--runs`` times each:

1. first apply on a clean fleet (``app`` removed on every host, untimed, before
   each run): ``clockwork apply -q`` against ``pyinfra -y inventory.py deploy.py``;
2. reading with one drifted file: ``clockwork evaluate -q`` against
   ``pyinfra inventory.py deploy.py --dry`` and the floor (``bench/floor.py``:
   connect every host, one command per host);
3. ``clockwork apply -q`` with nothing to change.

Every Clockwork run is wrapped in ``/usr/bin/time`` for the controller's peak
resident memory. The report gives, per size, the table, the ratios with their
targets (evaluate/floor ≤ 1.15, no-change apply/evaluate ≤ 1.05), then, over
the sizes, wall ms per host and controller RSS per host (flat from the smallest
to the largest size is the target).

``--profile`` runs ``clockwork evaluate`` once more at the largest size under
cProfile (untimed) and prints where its time went, grouped (connection set-up,
key exchange, packet handling, known_hosts, the batched read, Clockwork's
evaluation, output, gevent, imports), then the top entries by own time.
``--memory`` starts a 50-host fleet and compares ``clockwork evaluate``'s peak RSS
with 10 and with 50 files per host. ``--known-hosts`` measures loading a 500-entry
known_hosts and looking every host up once, paramiko's ``HostKeys`` against
Clockwork's index, plain and hashed names (no fleet). ``--no-pyinfra`` leaves
pyinfra out (at 500 hosts its runs take minutes each). Nothing is asserted about
the figures; a command that does not do what it should stops the benchmark.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import BenchError, Command  # noqa: E402
from bench.evaluate import pyinfra_dry_check  # noqa: E402

TIME = "/usr/bin/time"
#: Fleet user prefixes, the first free one taken (another benchmark may hold cwb).
PREFIXES = (common.PREFIX, "cwbs", "cwbt")
#: Profile groups: a function's own time goes to the first group one of whose path fragments its file holds.
GROUPS = [
    ("known_hosts lookup", ("paramiko/hostkeys.py", "clockwork/engine/hostkeys.py")),
    ("key exchange", ("paramiko/kex_", "paramiko/ed25519key.py", "paramiko/pkey.py", "cryptography/", "nacl/",
                      "bcrypt/")),
    ("packet handling", ("paramiko/packet.py", "paramiko/message.py", "paramiko/common.py", "paramiko/util.py",
                         "paramiko/channel.py", "paramiko/buffered_pipe.py")),
    ("connection set-up", ("paramiko/", "pyinfra/connectors/", "socket.py", "ssl.py")),
    ("the batched read (facts)", ("clockwork/facts/", "facts/", "pyinfra/api/facts.py", "pyinfra/api/command.py")),
    ("output", ("clockwork/cli/", "clockwork/output.py", "click/")),
    ("Clockwork's evaluation", ("clockwork/", "operations/", "pydantic")),
    ("pyinfra state, inventory", ("pyinfra/",)),
    ("gevent scheduling", ("gevent/", "greenlet")),
    ("imports", ("<frozen importlib", "importlib/")),
]


def timed_rss(label: str, argv: list[str], cwd: Path, rss_file: Path, **kwargs) -> Command:
    """A ``Command`` run under ``/usr/bin/time``, which appends its peak RSS (KiB) to ``rss_file`` per run."""
    return Command(label, [TIME, "-a", "-f", "%M", "-o", str(rss_file), *argv], cwd, **kwargs)


def rss_runs(rss_file: Path) -> list[float]:
    """Peak RSS of each run written to ``rss_file``, MiB (only the timed runs: the file is emptied first)."""
    return [int(line) / 1024 for line in rss_file.read_text().split() if line.isdigit()] if rss_file.exists() else []


def measure_size(n: int, runs: int, with_pyinfra: bool, profile: bool) -> tuple[list[str], dict[str, tuple[float, float | None]]]:
    """Start an ``n``-host fleet and time the phases; returns the report lines and, per command, (median s,
    median peak RSS MiB or ``None``)."""
    pairs = n * len(common.PATHS)
    load = common.load_average()
    fleet, start_time = common.start(n, PREFIXES)
    rss_dir = Path(tempfile.mkdtemp(prefix="cwb-rss-", dir="/tmp"))
    try:
        project = common.write_project(fleet)
        drifted = common.drift_host(fleet).name

        def wipe() -> None:
            common.on_every_host(fleet, f"rm -rf {common.DIRECTORY}")

        first = timed_rss("clockwork apply, first", [common.CLOCKWORK, "apply", "-q"], project, rss_dir / "first",
                          before=wipe, check=common.expect(f"Applied: {pairs} changed, 0 unchanged, 0 failed on {n} hosts"))
        pyinfra_first = Command("pyinfra -y, first", [common.PYINFRA, "-y", "inventory.py", "deploy.py"], project,
                                before=wipe, check=common.pyinfra_check(n, changed=len(common.PATHS)))
        evaluate = timed_rss(
            "clockwork evaluate -q", [common.CLOCKWORK, "evaluate", "-q"], project, rss_dir / "evaluate", status=1,
            check=common.expect(f"1 of {pairs} not as specified (1 drift)", f"[{drifted}] {common.DRIFT_FILE}: content differs"),
            before=lambda: common.set_drift(fleet, True),
        )
        pyinfra_dry = Command("pyinfra --dry", [common.PYINFRA, "inventory.py", "deploy.py", "--dry"], project,
                              check=pyinfra_dry_check(n, drifted))
        floor = Command("floor", [common.PYTHON, str(common.BENCH_DIR / "floor.py"), "inventory.py", *common.PATHS],
                        project, check=common.expect(f"floor: {n} of {n} hosts read, 2 distinct sets of sha1sums"))
        no_change = timed_rss(
            "clockwork apply, no change", [common.CLOCKWORK, "apply", "-q"], project, rss_dir / "no-change",
            check=common.expect(f"Nothing to do: every resource is already as declared on {n} hosts"),
            before=lambda: common.set_drift(fleet, False),
        )
        phases = [[first] + ([pyinfra_first] if with_pyinfra else []),
                  [evaluate, floor] + ([pyinfra_dry] if with_pyinfra else []),
                  [no_change]]
        for phase in phases:
            print(f"{n} hosts: {runs} interleaved runs of {', '.join(c.label for c in phase)}", file=sys.stderr, flush=True)
            common.interleave(phase, runs)
        profile_lines = run_profile(project, fleet) if profile else []
        rss = {command.label: rss_runs(rss_dir / name) for command, name in ((first, "first"), (evaluate, "evaluate"),
                                                                           (no_change, "no-change"))}
    finally:
        stop_time = common.stop_fleet(fleet)
        shutil.rmtree(rss_dir, ignore_errors=True)
    rows = [("clockwork apply -q, first (clean fleet)", first), ("clockwork evaluate -q (1 drift)", evaluate),
            ("floor: connect all + 1 command/host", floor), ("clockwork apply -q, no change", no_change)]
    ratios = [common.ratio_line("evaluate / floor", evaluate, floor, "<= 1.15"),
              common.ratio_line("no-change apply / evaluate", no_change, evaluate, "<= 1.05")]
    if with_pyinfra:
        rows[1:1] = [("pyinfra -y deploy.py, first (clean fleet)", pyinfra_first)]
        rows.insert(4, ("pyinfra deploy.py --dry", pyinfra_dry))
        ratios += [common.ratio_line("first apply: pyinfra / clockwork", pyinfra_first, first, ">= 4"),
                   common.ratio_line("pyinfra --dry / evaluate", pyinfra_dry, evaluate)]
    lines = [f"### {n} hosts", "", *common.environment(n, runs, load),
             f"fleet start {start_time:.1f} s, stop {stop_time:.1f} s; {pairs} host × resource pairs", "",
             *common.table(rows), "", *ratios, "", *profile_lines]
    medians = {command.label: (command.median, statistics.median(rss[command.label]) if rss.get(command.label) else None)
               for _label, command in rows}
    return lines, medians


#: Runs ``clockwork ARGS…`` under cProfile with CPU time (waiting on the hosts is not counted), imports included,
#: writes the stats to argv[1] and exits with clockwork's status.
PROFILE_RUNNER = """
import cProfile, sys, time
out, sys.argv = sys.argv[1], ["clockwork", *sys.argv[2:]]
profiler = cProfile.Profile(time.process_time)
status = 0
try:
    profiler.runcall(lambda: __import__("clockwork.cli", fromlist=["main"]).main())
except SystemExit as stop:
    status = stop.code
finally:
    profiler.dump_stats(out)
sys.exit(status)
"""


def _group(key: tuple[str, int, str], entries: dict, seen: frozenset = frozenset()) -> str:
    """The group of a profile entry: by its file; module code is an import; a built-in or standard-library
    function takes the group of the caller that spent the most time in it."""
    file, _line, function = key
    if function == "<module>":
        return "imports"
    group = next((name for name, fragments in GROUPS if any(fragment in file for fragment in fragments)), None)
    if group is not None:
        return group
    callers = {caller: timing[3] for caller, timing in entries[key][4].items() if caller not in seen and caller in entries}
    if not callers:
        return "other"
    return _group(max(callers, key=callers.__getitem__), entries, seen | {key})


def run_profile(project: Path, fleet: common.Fleet) -> list[str]:
    """``clockwork evaluate`` once under cProfile (drift in place, untimed): its CPU time grouped, and the top
    entries."""
    common.set_drift(fleet, True)
    output = Path(tempfile.mkdtemp(prefix="cwb-profile-", dir="/tmp")) / "evaluate.prof"  # kept: the fleet's root goes
    print("Profiling clockwork evaluate…", file=sys.stderr, flush=True)
    Command("profile", [common.PYTHON, "-c", PROFILE_RUNNER, str(output), "evaluate", "-q"], project, status=1,
            check=common.expect("not as specified (1 drift)")).run(timed=False)
    entries = pstats.Stats(str(output)).stats  # type: ignore[attr-defined]  # key → (calls, primitive, own, cumulative, callers)
    own: dict[str, float] = {name: 0.0 for name, _fragments in GROUPS} | {"other": 0.0}
    for key, (_calls, _primitive, own_time, _cumulative, _callers) in entries.items():
        own[_group(key, entries)] += own_time
    total = sum(own.values()) or 1.0
    lines = [f"Profile of one `clockwork evaluate -q` (cProfile, CPU time, {total:.2f} s in all), own time by group:", "",
             "| group | own CPU s | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:.2f} | {seconds / total:5.1%} |" for name, seconds in sorted(own.items(), key=lambda item: -item[1])]
    lines += ["", f"Top 20 by own CPU time (all of it: `python -m pstats {output}`):", "",
              "| own s | cumulative s | calls | group | function |", "|---:|---:|---:|---|---|"]
    for key, (calls, _primitive, own_time, cumulative, _callers) in sorted(entries.items(), key=lambda item: -item[1][2])[:20]:
        file, line, function = key
        where = file.split("site-packages/")[-1].replace(str(common.REPO_ROOT) + "/", "")
        lines.append(f"| {own_time:.2f} | {cumulative:.2f} | {calls} | {_group(key, entries)} | {where}:{line} {function} |")
    return lines + [""]


def memory(hosts: int = 50, counts: tuple[int, ...] = (10, 50)) -> list[str]:
    """Peak RSS of ``clockwork evaluate`` with ``counts`` files per host on one ``hosts``-host fleet."""
    load = common.load_average()
    fleet, _start_time = common.start(hosts, PREFIXES)
    peaks: dict[int, list[float]] = {}
    try:
        for files in counts:
            project = fleet.root / f"memory-{files}"
            project.mkdir()
            (project / "main.py").write_text("from clockwork.resources import FileResource\n\n" + "".join(
                f"f{i:03d} = FileResource(name='m{i:03d}.conf', directory='mem', content='value = {i}\\n', mode='640')\n"
                for i in range(files)))
            fleet.write_inventory(project / "inventory.py")
            rss_file = project / "rss"
            common.on_every_host(fleet, "rm -rf mem")
            Command(f"apply {files}", [common.CLOCKWORK, "apply", "-q"], project).run(timed=False)
            evaluate = timed_rss(f"evaluate {files}", [common.CLOCKWORK, "evaluate", "-q"], project, rss_file,
                                 check=common.expect("All resources running as specified"))
            print(f"memory: {files} files per host", file=sys.stderr, flush=True)
            for _ in range(3):
                evaluate.run()
            peaks[files] = rss_runs(rss_file)
    finally:
        common.stop_fleet(fleet)
    low, high = counts[0], counts[-1]
    low_rss, high_rss = statistics.median(peaks[low]), statistics.median(peaks[high])
    extra_pairs = (high - low) * hosts
    return [f"### Memory: {hosts} hosts, {low} vs {high} files per host", "",
            *common.environment(hosts, 3, load), "",
            "| files per host | evaluate peak RSS MiB (median of 3) | runs |", "|---:|---:|---|",
            *(f"| {files} | {statistics.median(values):.1f} | {' '.join(f'{v:.1f}' for v in values)} |"
              for files, values in peaks.items()),
            "", f"{high - low} more files per host: +{high_rss - low_rss:.1f} MiB, "
            f"{(high_rss - low_rss) * 1024 / extra_pairs:.1f} KiB per added host × resource pair "
            f"({(high_rss - low_rss) * 1024 / (high - low):.0f} KiB per added resource over {hosts} hosts)", ""]


def known_hosts_lookup(entries: int = 500) -> list[str]:
    """Loading a known_hosts of ``entries`` hosts and looking each one up once (what connecting a fleet that shares
    it costs), with paramiko's ``HostKeys`` (what pyinfra uses) and with Clockwork's ``IndexedHostKeys``; plain
    and hashed (``ssh-keygen -H``) names. In this process, no fleet."""
    import time

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from paramiko import HostKeys

    from clockwork.engine.hostkeys import IndexedHostKeys

    names = [f"[127.0.0.1]:{20000 + i}" for i in range(entries)]
    keys = [Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() for _ in names]
    lines = [f"### known_hosts: {entries} entries, each host looked up once", "",
             "| names | class | load ms | all lookups ms | per lookup µs |", "|---|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as directory:
        for kind, written in (("plain", names), ("hashed", [HostKeys.hash_host(name) for name in names])):
            path = Path(directory) / kind
            path.write_text("".join(f"{name} {key}\n" for name, key in zip(written, keys, strict=True)))
            for cls in (HostKeys, IndexedHostKeys):
                began = time.perf_counter()
                host_keys = cls(str(path))
                loaded = time.perf_counter()
                if any(host_keys.get(name) is None for name in names):
                    raise BenchError(f"{cls.__name__} lost a {kind} entry")
                done = time.perf_counter()
                lines.append(f"| {kind} | {cls.__name__} | {(loaded - began) * 1000:.1f} | {(done - loaded) * 1000:.1f} | "
                             f"{(done - loaded) / entries * 1e6:.1f} |")
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200", help="fleet sizes, comma-separated (default 50,200)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs of each command per size (default 1)")
    parser.add_argument("--no-pyinfra", dest="pyinfra", action="store_false", help="leave pyinfra's runs out")
    parser.add_argument("--profile", action="store_true", help="profile clockwork evaluate at the largest size")
    parser.add_argument("--memory", action="store_true", help="peak RSS with 10 vs 50 files per host on 50 hosts")
    parser.add_argument("--known-hosts", action="store_true", help="known_hosts lookup cost at 500 entries, paramiko vs "
                        "Clockwork's index (no fleet)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print(f"Machine: {common.environment(sizes[-1], args.runs, common.load_average())[1]}", file=sys.stderr, flush=True)
    sections: list[str] = []
    by_size: dict[int, dict[str, tuple[float, float | None]]] = {}
    try:
        if args.known_hosts:
            sections += known_hosts_lookup()
        for n in sizes:
            lines, by_size[n] = measure_size(n, args.runs, args.pyinfra, args.profile and n == sizes[-1])
            sections += lines
        if args.memory:
            sections += memory()
    except BenchError as error:
        print(f"benchmark stopped: {error}", file=sys.stderr)
        print("\n".join(sections))
        return 1
    labels = list(next(iter(by_size.values())))
    per_host = ["### Per host, over the sizes", "",
                "| command | " + " | ".join(f"{n} hosts: wall ms/host, RSS MiB/host" for n in sizes) + " |",
                "|---|" + "---:|" * len(sizes)]
    for label in labels:
        cells = []
        for n in sizes:
            seconds, rss = by_size[n][label]
            cells.append(f"{seconds * 1000 / n:.1f}" + (f", {rss / n:.2f}" if rss is not None else ""))
        per_host.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        per_host += ["", f"cost per host {large} / {small} hosts (flat: 1.00): " + ", ".join(
            f"{label} {by_size[large][label][0] / large / (by_size[small][label][0] / small):.2f}" for label in labels)]
    print("\n".join([f"## bench/scale.py — sizes {', '.join(map(str, sizes))}", "", *sections, *per_host]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
