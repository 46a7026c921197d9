"""Loading a pyinfra inventory once per command, checked: the hosts, their groups, ``--limit``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyinfra.api import Inventory, State
from pyinfra.api.host import Host, extract_callable_datas
from pyinfra.connectors.local import LocalConnector
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.context import ctx_state

from clockwork.engine.types import Target
from clockwork.exceptions import InventoryError

#: What an inventory file may be called (anything else that is not a file is a host name or a module).
_INVENTORY_SUFFIXES = (".py", ".yml", ".yaml", ".json", ".toml", ".ini", ".cfg", ".txt")


def load_inventory(spec: str, cwd: Path) -> Inventory:
    """Build an inventory from anything pyinfra's CLI accepts: a file, ``@local``, ``a,b,c``, one host name.

    Relative files are looked up in ``cwd`` (the project), then in the current
    directory. A host defined twice with different data, or host data with a
    key no connector knows (``ssh_hostnme``), is an ``InventoryError``.
    """
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra_cli.exceptions import CliError
    from pyinfra_cli.inventory import make_inventory, make_inventory_from_files
    from pyinfra_cli.util import try_import_module_attribute

    file = next((candidate for candidate in (cwd / spec, Path(spec)) if candidate.is_file()), None)
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if file is None and not spec.startswith("@") and (spec.endswith(_INVENTORY_SUFFIXES) or "/" in spec):
        where = f"{cwd}" if Path(spec).is_absolute() or cwd.resolve() == Path.cwd() else f"{cwd} or {Path.cwd()}"
        raise InventoryError(f"inventory file {spec} does not exist (looked in {where})")
    if file is None and not names:
        raise InventoryError(f"inventory {spec!r} names no hosts")
    if file is None and any(char.isspace() for name in names for char in name):
        raise InventoryError(f"inventory {spec!r} is neither an inventory file nor a list of host names")
    try:
        # Inventory files are executed by pyinfra's loader, which records the file on a State.
        with ctx_state.use(State()):
            if file is not None:
                inventory = _make_from_file(spec, file, cwd)
            elif spec.startswith("@") or try_import_module_attribute(spec, raise_for_none=False) is not None:
                inventory = make_inventory(spec, cwd=str(cwd))
            else:
                # A host list or one host name: pyinfra would take "web-1," as two names (one empty),
                # and a single name only if it resolves; both are SSH hosts here, resolved at connect.
                inventory = make_inventory_from_files(",".join(dict.fromkeys(names)), cwd=str(cwd))
    except InventoryError:
        raise
    except (CliError, PyinfraError, SyntaxError, ImportError, ValueError, TypeError, KeyError, OSError) as error:
        raise InventoryError(f"inventory {spec}: {error}") from None
    if not len(inventory):
        raise InventoryError(f"inventory {spec} has no hosts")
    _check_data_keys(spec, inventory)
    return inventory


def _make_from_file(spec: str, file: Path, cwd: Path) -> Inventory:
    """pyinfra's inventory of a file, the file executed once: its groups are read, checked, and handed to
    pyinfra's builder (which would otherwise execute the file again)."""
    import pyinfra_cli.inventory as pyinfra_inventory

    read = pyinfra_inventory._get_groups_from_filename
    groups = read(str(file))
    _check_definitions(spec, groups)
    pyinfra_inventory._get_groups_from_filename = lambda name: dict(groups) if name == str(file) else read(name)
    try:
        return pyinfra_inventory.make_inventory(str(file), cwd=str(cwd))
    finally:
        pyinfra_inventory._get_groups_from_filename = read


def _check_definitions(spec: str, groups: dict[str, Any]) -> None:
    """Refuse a host defined in two places with different data: pyinfra would silently merge them."""
    defined: dict[str, tuple[str, dict[str, Any]]] = {}
    for group, members in groups.items():
        for member in members[0] if isinstance(members, tuple) else members:
            name, data = member if isinstance(member, tuple) else (member, {})
            if not isinstance(data, dict):
                raise InventoryError(f"inventory {spec}: host {name!r} in {group}: its data must be a dict")
            if not data:
                continue  # a reference to a host defined elsewhere
            if name in defined and defined[name][1] != data:
                first, before = defined[name]
                differing = sorted(key for key in before.keys() | data.keys() if before.get(key) != data.get(key))
                where = f"twice in {group}" if first == group else f"in {first} and in {group}"
                raise InventoryError(
                    f"inventory {spec}: host {name!r} is defined {where} with different data "
                    f"({', '.join(differing)}): define it once, or with the same data"
                )
            defined.setdefault(name, (group, data))


def _check_data_keys(spec: str, inventory: Inventory) -> None:
    """Refuse host data keys in a connector's namespace (``ssh_…``, ``docker_…``) that no connector reads."""
    import difflib

    from pyinfra.api.connectors import get_all_connectors

    known: set[str] = set()
    for connector in get_all_connectors().values():
        known |= set(getattr(connector, "data_meta", {}))
    prefixes = {key.split("_", 1)[0] + "_" for key in known} - {"fake_"}
    for host in inventory:
        for key in host.data.dict():
            if key.startswith(tuple(prefixes)) and key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                tried = host.data.get("ssh_hostname") or host.name
                over_ssh = f": as written, it would connect to {tried!r}" if issubclass(host.connector_cls, SSHConnector) else ""
                raise InventoryError(f"inventory {spec}: host {host.name!r} has unknown data key {key!r}{hint}{over_ssh}")


def host_target(host: Host, project_dir: Path) -> Target:
    """``host`` as a resource sees it: relative paths from the project on ``@local``, its inventory data (without
    the connection settings: ``ssh_*``, ``_sudo``…) and groups."""
    local = issubclass(host.connector_cls, LocalConnector)
    data: dict[str, Any] = {}
    for layer in reversed(list(extract_callable_datas(host.data.datas))):  # the most specific layer last
        data.update({key: value for key, value in dict(layer or {}).items() if not key.startswith(("ssh_", "_"))})
    return Target(host.name, base_dir=str(project_dir) if local else None, local=local, data=data,
                  groups=tuple(sorted(set(host.groups or ()))))


def host_groups(inventory: Inventory) -> dict[str, set[str]]:
    """Host name → the names of the groups it belongs to."""
    groups: dict[str, set[str]] = {host.name: set() for host in inventory}
    for group, hosts in inventory.groups.items():
        for host in hosts:
            groups[host.name].add(group)
    return groups


def select_hosts(inventory: Inventory, patterns: Iterable[str] | None) -> list[str]:
    """Host names matching any pattern (host name, group name, or glob), in inventory order.

    ``None`` selects every host; an empty list (``--limit ""``) is an error, not "every host".
    """
    names = [host.name for host in inventory]
    if patterns is None:
        return names
    patterns = list(patterns)
    groups = host_groups(inventory)
    known = ", ".join(sorted(set(groups) | set().union(*groups.values())))
    if not patterns:
        raise InventoryError(f"--limit names no host or group (the inventory has: {known})")
    selected = []
    for pattern in patterns:
        matched = [
            name for name in names
            if fnmatch.fnmatchcase(name, pattern) or any(fnmatch.fnmatchcase(g, pattern) for g in groups[name])
        ]
        if not matched:
            raise InventoryError(f"--limit {pattern}: no host or group of that name in the inventory (it has: {known})")
        selected += [name for name in matched if name not in selected]
    return [name for name in names if name in selected]
