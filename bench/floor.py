"""The floor: the least any tool built on pyinfra can do to read a fleet's state.

    python bench/floor.py INVENTORY PATH...

Builds a pyinfra ``Inventory``/``State`` straight from the inventory file's
``hosts`` list (no CLI), connects every host with pyinfra's own SSH connector in
parallel (``connect_all``, TCP_NODELAY set on each connection as Clockwork does),
runs ONE shell command per host, all hosts in parallel, that stats every PATH
and sha1sums the regular files among them, closes the connections and exits.
It prints one line: how many hosts answered and how many distinct sets of
sha1sums came back (a host with a drifted file makes one more). Exit status 1 when a host failed.
"""

from gevent import monkey

monkey.patch_all()  # before anything opens a socket: connections run in parallel greenlets

import runpy  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from pyinfra.api import Config, Inventory, State  # noqa: E402
from pyinfra.api.connect import connect_all  # noqa: E402
from pyinfra.api.state import BaseStateCallback  # noqa: E402


class _TcpNoDelay(BaseStateCallback):
    """Same as clockwork.engine.session's: paramiko leaves Nagle on (a ProxyCommand's pipe has no Nagle)."""

    @staticmethod
    def host_connect(state, host):
        client = getattr(host.connector, "client", None)
        transport = client.get_transport() if client is not None else None
        if transport is not None and isinstance(transport.sock, socket.socket):  # not through a ProxyCommand
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def command(paths: list[str]) -> str:
    """``stat`` of every path, then ``sha1sum`` of the regular files, in one shell command."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    return (
        f"LC_ALL=C stat -c '%n|%F|%a|%U|%G' -- {quoted}; "
        f"set --; for p in {quoted}; do [ -f \"$p\" ] && set -- \"$@\" \"$p\"; done; sha1sum -- \"$@\"; true"
    )


def read_fleet(inventory_file: str, shell: str) -> tuple[int, list[tuple[bool, list[str]]]]:
    """Connect every host of ``inventory_file`` and run ``shell`` once on each, all in parallel; returns how
    many hosts the inventory has and, for each host that connected, (success, stdout lines)."""
    hosts = runpy.run_path(inventory_file)["hosts"]
    inventory = Inventory((hosts, {}))
    state = State(inventory, Config(PARALLEL=len(inventory), CONNECT_TIMEOUT=10), check_for_changes=False)
    state.add_callback_handler(_TcpNoDelay())
    connect_all(state)
    connected = list(state.activated_hosts)
    greenlets = [state.pool.spawn(host.run_shell_command, shell) for host in connected]
    gevent.joinall(greenlets, raise_error=True)
    answers = []
    for greenlet in greenlets:
        success, output = greenlet.get()
        answers.append((success, output.stdout_lines))
    for host in connected:
        try:
            host.connector.client.close()
        except ProcessLookupError:  # a ProxyCommand whose process paramiko's transport thread already ended
            pass
    return len(inventory), answers


def main(inventory_file: str, paths: list[str]) -> int:
    total, answers = read_fleet(inventory_file, command(paths))
    sums = set()
    failed = total - len(answers)
    for success, lines in answers:
        stats = [line for line in lines if "|" in line]
        regular = sum("|regular" in line for line in stats)
        if not success or len(stats) != len(paths) or len(lines) - len(stats) != regular:
            failed += 1
        sums.add(tuple(line for line in lines if "|" not in line))  # the sha1sums
    print(f"floor: {total - failed} of {total} hosts read, {len(sums)} distinct sets of sha1sums")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
