"""Many facts in one command: one SSH round trip reads everything a host needs."""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError, FactTypeError

_MARKER = "@@clockwork-batch-section@@"

#: One request: a fact class whose ``command`` takes ``keys``, and those keys.
Request = tuple[type[FactBase], tuple[str, ...]]

# Fact classes seen by ``Batch.command``, by pyinfra fact name, so that ``process``
# (which pyinfra calls with the output only) knows how to parse each section.
_FACTS: dict[str, type[FactBase]] = {}


class Batch(FactBase[list[Any]]):
    """
    Runs several keyed facts in one shell command and returns their processed
    values in request order. A section whose output does not parse comes back
    as a ``FactProcessError`` in its place, so one bad section never hides the
    others:

    .. code:: python

        host.get_fact(Batch, requests=((Paths, ("app", "app/config.json")),
                                       (DockerContainers, ("web",))))
        [{"app": {...}, "app/config.json": None}, {"containers": {...}, "error": None}]

    Every batched fact reports its own errors in its output (the exit status of
    one section is not seen), as ``Paths`` and ``DockerContainers`` do.
    """

    def command(self, requests: tuple[Request, ...]) -> str:
        parts = []
        for fact_class, keys in requests:
            if not (isinstance(fact_class, type) and issubclass(fact_class, FactBase)):
                raise FactTypeError(f"Batch: {fact_class!r} is not a pyinfra fact")
            _FACTS[fact_class.name] = fact_class
            parts.append(f"echo '{_MARKER} {fact_class.name}'; {fact_class().command(keys=keys)}")
        return "; ".join(parts) + "; true"

    @staticmethod
    def default() -> list[Any]:
        return []

    def process(self, output: list[str]) -> list[Any]:
        sections: list[tuple[str, list[str]]] = []
        for line in output:
            if line.startswith(_MARKER):
                sections.append((line[len(_MARKER) :].strip(), []))
            elif sections:
                sections[-1][1].append(line)
        return [_process_section(name, lines) for name, lines in sections]


def _process_section(name: str, lines: list[str]) -> Any:
    fact_class = _FACTS.get(name)
    if fact_class is None:
        return FactProcessError(f"Batch: unknown fact {name}")
    try:
        return fact_class().process(lines)
    except Exception as error:  # one section's parse failure stays in its place
        return FactProcessError(f"{name}: {error}")
