"""read → choose → operate → record: the one flow of every command, on the connections of one session.

A command reads its placed resources (one batched read per host), chooses an action for each host × resource
(``apply``, ``destroy``, or none), lets the pipeline run the chosen operations (per host in resource order,
all hosts in parallel), records what happened in its store, and ends with the hosts' own record (the
manifest) as the last operation of the same run.

.. code:: python

    with Pipeline.open(placement) as pipeline:
        run = pipeline.run(placement, lambda reading: "apply" if reading.evaluation.status == "drift" else None)
        [step.outcome.changed for step in run.steps if step.outcome]  # [True]
        failed = pipeline.record({"web-1": lambda target: manifest(path="...", entries={})})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta

from clockwork.engine.session import OperationOutcome, Progress, Session
from clockwork.engine.types import Observed, Probe, Target
from clockwork.results import Evaluation, Result

if TYPE_CHECKING:
    from typing import Self

    from clockwork.placement import Placement
    from clockwork.resources.base import Resource

#: What a command may do to one host × resource: make the host match it, or remove it.
Action = Literal["apply", "destroy"]

#: A host's operation, called in its host context with the host as a resource sees it.
HostOperation = Callable[[Target], OperationMeta]


@dataclass
class Reading:
    """One host × resource as read from the host."""

    host: Host
    resource: Resource
    evaluation: Evaluation
    observed: Observed | None = None

    explanation: str | None = None

    def result(self, detail: str | None = None, changed: bool | None = None) -> Result:
        return Result(
            host=self.host.name, resource=self.resource.name, type=self.resource.type_name,
            status=self.evaluation.status, detail=self.evaluation.detail if detail is None else detail,
            diffs=self.evaluation.diffs, error=self.evaluation.error, changed=changed, explanation=self.explanation,
        )


#: The choose step: the action a command takes for one reading, or ``None`` to leave the host as it is.
Choose = Callable[[Reading], Action | None]


@dataclass
class Step:
    """One host × resource through the pipeline: as read, the action chosen for it (``None``: left as it is)
    and what its operation did (``None``: it was not operated)."""

    reading: Reading
    action: Action | None = None
    outcome: OperationOutcome | None = None

    def operation(self) -> HostOperation:
        resource = self.reading.resource
        return resource.apply if self.action == "apply" else resource.destroy


@dataclass
class Run:
    """What one pass of the pipeline read and did: a step per host × resource, in inventory then declaration
    order; what each reached host answered (its error text when the read failed); the unreachable hosts."""

    steps: list[Step]
    observed: dict[Host, Observed | str]
    unreachable: dict[str, str]

    @property
    def readings(self) -> list[Reading]:
        return [step.reading for step in self.steps]


class Pipeline:
    """The read → choose → operate → record flow over one session: one connection per host for every phase.

    .. code:: python

        with Pipeline.open(placement, progress=None) as pipeline:
            checked = pipeline.read(placement).readings            # read only (evaluate, verify)
            run = pipeline.run(placement, choose, health=False)    # read, choose, operate (apply, destroy)
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @classmethod
    def open(cls, placement: Placement, progress: Progress | None = None) -> Pipeline:
        """A pipeline on a new session over the placement's hosts (it connects at the first read)."""
        return cls(Session(placement.inventory, placement.directory, placement.hosts, progress))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    @property
    def lost(self) -> dict[str, str]:
        """Hosts whose connection dropped during an operation of this command (later phases leave them out)."""
        return self.session.lost

    def target(self, host: Host) -> Target:
        return self.session.target(host)

    def read(self, placement: Placement, health: bool = True,
             extra: Callable[[Target], list[Probe]] | None = None) -> Run:
        """Read the placement's hosts in parallel (connecting first, if not yet) and evaluate each host × resource.

        The session may hold more hosts than the placement: only the placement's are read.
        ``health`` runs the resources' health checks too; ``extra`` adds probes per host to
        the same read (e.g. the host's manifest). Unreachable hosts' resources are error readings.
        """
        session = self.session
        connected = {**session.connect(), **session.lost}  # lost: its connection dropped earlier in this command
        unreachable = {name: error for name, error in connected.items() if name in placement.resources}
        probes = {
            host: [probe for resource in placement.resources[host.name] for probe in resource.probes(self.target(host), health)]
            + (extra(self.target(host)) if extra else [])
            for host in session.hosts if host.name in placement.resources
        }
        observed = session.observe(probes)
        steps = []
        for name in (name for name in session.selected if name in placement.resources):
            host = session.inventory.get_host(name)
            seen = f"host unreachable: {unreachable[name]}" if name in unreachable else observed[host]
            for resource in placement.resources[name]:
                if isinstance(seen, str):
                    reading = Reading(host, resource, Evaluation(error=seen, detail=seen))
                else:
                    reading = Reading(host, resource, resource.evaluate(self.target(host), seen, health), seen)
                steps.append(Step(reading))
        return Run(steps, observed, unreachable)

    def run(self, placement: Placement, choose: Choose, health: bool = True,
            extra: Callable[[Target], list[Probe]] | None = None) -> Run:
        """Read (as ``read``), choose an action for each reading, and operate the chosen steps."""
        run = self.read(placement, health, extra)
        for step in run.steps:
            step.action = choose(step.reading)
        self._operate([step for step in run.steps if step.action is not None])
        return run

    def _operate(self, steps: list[Step]) -> None:
        """Run the chosen steps' operations, all hosts in parallel, and give each step its outcome.

        Each host runs its steps in ``_order``, in one wave: one batch on the session. A host's
        failed operation does not stop its later ones; a lost connection makes them ``NOT_RUN_LOST``.
        (Ordering by ``requires=[...]`` belongs here, per host: waves of steps whose requirements ran
        in earlier waves, a dependent skipped when a requirement failed, re-read and chosen again when
        a requirement changed its host; then handlers, once per host after the last wave.)
        """
        by_host: dict[Host, list[Step]] = {}
        for step in steps:
            by_host.setdefault(step.reading.host, []).append(step)
        waves = {host: _order(host_steps) for host, host_steps in by_host.items()}
        outcomes = self.session.operate({
            host: [(index, step.operation()) for index, step in enumerate(host_steps)]
            for host, host_steps in waves.items()
        })
        for host, host_steps in waves.items():
            for index, step in enumerate(host_steps):
                step.outcome = outcomes[(host, index)]

    def record(self, operations: dict[str, HostOperation]) -> dict[str, str]:
        """The hosts' own record of the run (their manifest): one last operation per connected host named in
        ``operations``, on the same connections. Returns host → error for those that failed."""
        outcomes = self.session.operate({
            host: [("record", operations[host.name])] for host in self.session.hosts if host.name in operations
        })
        return {host.name: outcome.error for (host, _key), outcome in outcomes.items() if outcome.error}


def _order(steps: list[Step]) -> list[Step]:
    """A host's steps as they run: what is applied in declaration order, then what is destroyed newest first
    (files before their directory)."""
    return ([step for step in steps if step.action == "apply"]
            + [step for step in reversed(steps) if step.action == "destroy"])
