"""The floor on root hosts: the least any tool built on pyinfra can do to read packages, services and files.

    python bench/floor_roothosts.py INVENTORY --packages P,P… --units U,U… PATH...

Connects every host of INVENTORY as ``bench/floor.py`` does (pyinfra's API, ``connect_all``, TCP_NODELAY) and
runs ONE shell command per host, all hosts in parallel, that reads what ``bench/roothosts.py`` declares: one
``dpkg-query`` for the packages (version and status), one ``systemctl show`` for the units (load, active,
sub and unit-file states), a ``stat`` of every PATH and a ``sha1sum`` of them. It prints one line: how many
hosts answered in full, how many have every package installed and how many every unit active (a host with a
stopped unit makes one fewer). Exit status 1 when a host failed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.floor import read_fleet  # noqa: E402  (first: it patches sockets for gevent)

import argparse  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402

#: A ``sha1sum`` line.
_SHA1_LINE = re.compile(r"^[0-9a-f]{40}  ")


def command(packages: list[str], units: list[str], paths: list[str]) -> str:
    """One shell command: ``dpkg-query`` of the packages, ``systemctl show`` of the units, ``stat`` and ``sha1sum``
    of the paths."""
    names, quoted_units, quoted = (" ".join(shlex.quote(x) for x in xs) for xs in (packages, units, paths))
    return (
        f"dpkg-query -W -f='pkg\\t${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\n' -- {names} 2>&1; "
        f"systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState -- {quoted_units}; "
        f"LC_ALL=C stat -c '%n|%F|%a|%U|%G' -- {quoted}; sha1sum -- {quoted}; true"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inventory")
    parser.add_argument("--packages", required=True, type=lambda text: text.split(","))
    parser.add_argument("--units", required=True, type=lambda text: text.split(","))
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    total, answers = read_fleet(args.inventory, command(args.packages, args.units, args.paths))
    read = installed = active = 0
    for success, lines in answers:
        packages = [line.split("\t") for line in lines if line.startswith("pkg\t")]
        states = [line.partition("=")[2] for line in lines if line.startswith("ActiveState=")]
        stats = [line for line in lines if "|" in line]
        sums = [line for line in lines if _SHA1_LINE.match(line)]
        if not success or len(states) != len(args.units) or len(stats) != len(args.paths) or len(sums) != len(args.paths):
            continue
        read += 1
        installed += len(packages) == len(args.packages) and all(fields[3].startswith("ii") for fields in packages)
        active += all(state == "active" for state in states)
    print(f"floor: {read} of {total} hosts read; {installed} with every package installed, "
          f"{active} with every unit active")
    return 0 if read == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
