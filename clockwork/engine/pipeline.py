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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta

from clockwork.engine.session import Call, OperationOutcome, Progress, Session
from clockwork.engine.types import Observed, Probe, RootObserved, Target, as_root
from clockwork.exceptions import HostReadError
from clockwork.facts.privilege import LoginPrivilege
from clockwork.results import Evaluation, Result

if TYPE_CHECKING:
    from typing import Self

    from clockwork.placement import Placement
    from clockwork.resources.base import Handler, Resource

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

#: The hosts' own record of a run (their manifest), made once its actions are chosen as if every chosen
#: operation will succeed: host name → the operation that writes it.
Record = Callable[["Run"], dict[str, HostOperation]]


@dataclass
class Step:
    """One host × resource through the pipeline: as read, the action chosen for it (``None``: left as it is)
    and what its operation did (``None``: it was not operated)."""

    reading: Reading
    action: Action | None = None
    outcome: OperationOutcome | None = None
    #: What it ran once on its host because what it names changed there (a restart), and how that went.
    handler: Handler | None = None
    handler_outcome: OperationOutcome | None = None

    def operation(self) -> HostOperation:
        resource = self.reading.resource
        if self.action != "apply":
            return resource.destroy
        return lambda target: resource.as_applied(target, self.reading.observed).apply(target)

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome.error is not None

    @property
    def changed(self) -> bool:
        return self.outcome is not None and self.outcome.error is None and self.outcome.changed


@dataclass
class Run:
    """What one pass of the pipeline read and did: a step per host × resource, in inventory then declaration
    order; what each reached host answered (its error text when the read failed); the unreachable hosts."""

    steps: list[Step]
    observed: dict[Host, Observed | str]
    unreachable: dict[str, str]
    #: Hosts whose own record (``run``'s ``record``) was written in the same command as their changes.
    recorded: set[str] = field(default_factory=set)

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
        #: Hosts whose login user is not root but may use sudo: what needs root there runs with it.
        self.sudo: set[Host] = set()
        #: What the last read found on each host, until the host's record (its manifest) is written from it.
        self._unrecorded: dict[Host, Observed] = {}

    def _probes(self, host: Host, resource: Resource, health: bool) -> list[Probe]:
        """What to read of ``resource`` on ``host``: as root when it needs root."""
        probes = resource.probes(self.target(host), health)
        return [(as_root(fact), key) for fact, key in probes] if resource.needs_root else probes

    def _reading(self, host: Host, resource: Resource, seen: Observed, health: bool) -> Reading:
        """``resource`` evaluated from what ``host`` answered (as read as root, when it needs root)."""
        observed = RootObserved(seen) if resource.needs_root else seen
        return Reading(host, resource, resource.evaluate(self.target(host), observed, health), observed)

    def _needs_root(self, host: Host, seen: Observed | str) -> str | None:
        """Why what needs root cannot run on ``host`` (``needs root: sudo asked for a password``), when it was
        asked (it holds a resource that needs root); notes a host that reaches root with sudo."""
        if isinstance(seen, str) or not seen.has(LoginPrivilege):
            return None
        try:
            privilege = seen[LoginPrivilege]
        except HostReadError as error:
            return f"needs root: {error}"
        if privilege["sudo"]:
            self.sudo.add(host)
        return f"needs root: {privilege['error']}" if privilege["error"] else None

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
            host: [probe for resource in placement.resources[host.name] for probe in self._probes(host, resource, health)]
            + (extra(self.target(host)) if extra else [])
            + ([(LoginPrivilege, "")] if any(resource.needs_root for resource in placement.resources[host.name]) else [])
            for host in session.hosts if host.name in placement.resources
        }
        observed = session.observe(probes)
        self._unrecorded.update({host: seen for host, seen in observed.items() if isinstance(seen, Observed)})
        steps = []
        for name in (name for name in session.selected if name in placement.resources):
            host = session.inventory.get_host(name)
            seen = f"host unreachable: {unreachable[name]}" if name in unreachable else observed[host]
            refused = self._needs_root(host, seen)
            for resource in placement.resources[name]:
                if isinstance(seen, str):
                    reading = Reading(host, resource, Evaluation(error=seen, detail=seen))
                elif resource.needs_root and refused:
                    reading = Reading(host, resource, Evaluation(error=refused, detail=refused), seen)
                else:
                    reading = self._reading(host, resource, seen, health)
                steps.append(Step(reading))
        return Run(steps, observed, unreachable)

    def run(self, placement: Placement, choose: Choose, health: bool = True,
            extra: Callable[[Target], list[Probe]] | None = None, record: Record | None = None) -> Run:
        """Read (as ``read``), choose an action for each reading, and operate the chosen steps (see ``_operate``).

        ``record`` gives each host's record of the run as if every chosen operation succeeds. Where nothing can
        run on a host after its changes (no ``requires`` among its resources, nothing for a handler to do), it
        is written in the same command, last, and only if every change before it succeeded; ``Run.recorded``
        names those hosts. The caller writes the record elsewhere (``record``), and where what really happened
        differs from what it assumed.
        """
        run = self.read(placement, health, extra)
        for step in run.steps:
            step.action = choose(step.reading)
        self._operate(run, choose, health, record(run) if record else {})
        return run

    def _operate(self, run: Run, choose: Choose, health: bool, records: dict[str, HostOperation]) -> None:
        """Run the chosen steps' operations, all hosts in parallel, in waves that follow ``requires=[...]``.

        A host's steps run after the steps they depend on (``Resource.dependencies``) on
        that host, otherwise in declaration order (what is destroyed: newest first, and
        after what depends on it). A step whose requirement failed (or was skipped) there
        is skipped there. A step whose requirement changed its host is read again and
        chosen again before it runs, from fresh facts (pyinfra plans from facts read
        before anything ran: pyinfra#387). Without ``requires``, every step is in the
        first wave: one remote command per host (``batch``), with the host's record
        (``records``) last in it. Last, once per host, the handlers of
        what changed there (a service's ``restart_on``). A failed operation does not stop
        its host's later ones; a lost connection makes them ``NOT_RUN_LOST``.
        """
        by_host: dict[Host, list[Step]] = {}
        for step in run.steps:
            if step.reading.observed is not None:
                by_host.setdefault(step.reading.host, []).append(step)
        levels = {key: level for host_steps in by_host.values() for key, level in _levels(host_steps).items()}
        early = {host: records[host.name] for host, host_steps in by_host.items()
                 if host.name in records and _last_wave(host_steps, levels)}
        for level in range(max(levels.values(), default=-1) + 1):
            wave = [step for host_steps in by_host.values() for step in host_steps if levels[id(step)] == level]
            self._settle(wave, by_host, choose, health)
            chosen: dict[Host, list[Step]] = {}
            for step in wave:
                if step.action is not None and step.outcome is None:
                    chosen.setdefault(step.reading.host, []).append(step)
            for host, host_steps in chosen.items():  # what is destroyed goes newest first: files before their directory
                chosen[host] = ([step for step in host_steps if step.action == "apply"]
                                + [step for step in reversed(host_steps) if step.action == "destroy"])
            last = {host: Call("record", early[host], self._unrecorded.get(host), guarded=True)
                    for host in early} if level == 0 else {}
            written = self._run_batch(chosen, lambda step: step.operation(), "outcome",
                                      lambda step: step.reading.observed, last)
            for host, outcome in written.items():
                if not outcome.skipped:
                    self._unrecorded.pop(host, None)  # the manifest is not as read any more
                if outcome.error is None:
                    run.recorded.add(host.name)
        self._handle(by_host)

    def _settle(self, wave: list[Step], by_host: dict[Host, list[Step]], choose: Choose, health: bool) -> None:
        """Before a wave runs: skip what waits on a failed requirement, read again (one batched read per host)
        and choose again what waits on a changed one."""
        again: dict[Host, list[Step]] = {}
        for step in wave:
            needs = _requirements(step, by_host[step.reading.host])
            blocked = next((need for need in needs if need.failed), None)
            if blocked is not None and step.action is not None:
                assert blocked.outcome is not None
                how = "requires" if step.action == "apply" else "is required by"
                why = "was skipped" if blocked.outcome.skipped else "failed"
                step.outcome = OperationOutcome(False, f"skipped: {how} {blocked.reading.resource.label}, which {why} "
                                                       "on this host", skipped=True)
            elif step.action != "destroy" and any(need.changed for need in needs):
                again.setdefault(step.reading.host, []).append(step)
        if not again:
            return
        observed = self.session.observe({
            host: [probe for step in host_steps for probe in self._probes(host, step.reading.resource, health)]
            for host, host_steps in again.items()})
        for host, host_steps in again.items():
            seen = observed.get(host)
            for step in host_steps:
                reading = step.reading
                if isinstance(seen, Observed):
                    reading = self._reading(host, reading.resource, seen, health)
                else:
                    reading = Reading(host, reading.resource, Evaluation(error=seen or "not read", detail=seen or "not read"))
                step.reading, step.action = reading, choose(reading)

    def _handle(self, by_host: dict[Host, list[Step]]) -> None:
        """Once per host, after its last wave: what each resource runs because others changed there."""
        due: dict[Host, list[Step]] = {}
        for host, host_steps in by_host.items():
            changed = {step.reading.resource.ref for step in host_steps if step.changed}
            for step in host_steps:
                if not changed or step.failed:
                    continue
                applied = step.reading.evaluation.diffs if step.changed and step.action == "apply" else []
                step.handler = step.reading.resource.handler(changed, applied)
                if step.handler is not None:
                    due.setdefault(host, []).append(step)
        self._run_batch(due, _handler_operation, "handler_outcome")

    def _run_batch(self, steps: dict[Host, list[Step]], operation: Callable[[Step], HostOperation], outcome: str,
                   facts: Callable[[Step], Observed | None] = lambda step: None,
                   last: dict[Host, Call] | None = None) -> dict[Host, OperationOutcome]:
        """One batch of operations on the session (what needs root with sudo where the login user is not root);
        each step gets its outcome in ``outcome``; its operation's facts are what ``facts`` gives (``None``:
        read again as it runs). ``last`` adds one more operation at the end of a host's; returns their outcomes."""
        last = last or {}
        calls = {host: [Call(index, self._privileged(host, step, operation(step)), facts(step))
                        for index, step in enumerate(host_steps)]
                 for host, host_steps in steps.items()}
        for host, call in last.items():
            calls.setdefault(host, []).append(call)
        if not calls:
            return {}
        outcomes = self.session.operate(calls)
        for host, host_steps in steps.items():
            for index, step in enumerate(host_steps):
                setattr(step, outcome, outcomes[(host, index)])
        return {host: outcomes[(host, call.key)] for host, call in last.items()}

    def _privileged(self, host: Host, step: Step, operation: HostOperation) -> HostOperation:
        """``operation``, run with sudo when its resource needs root and the login user is not root."""
        if not (step.reading.resource.needs_root and host in self.sudo):
            return operation

        def with_sudo(target: Target) -> OperationMeta:
            host.data.override_datas["_sudo"] = True  # pyinfra takes global arguments from host data
            try:
                return operation(target)
            finally:
                host.data.override_datas.pop("_sudo", None)

        return with_sudo

    def record(self, operations: dict[str, HostOperation]) -> dict[str, str]:
        """The hosts' own record of the run (their manifest): one last operation per connected host named in
        ``operations``, on the same connections, from what the last read found there (once: a second record
        reads the host again). Returns host → error for those that failed."""
        outcomes = self.session.operate({
            host: [Call("record", operations[host.name], self._unrecorded.pop(host, None))]
            for host in self.session.hosts if host.name in operations
        })
        return {host.name: outcome.error for (host, _key), outcome in outcomes.items() if outcome.error}


def _last_wave(steps: list[Step], levels: dict[int, int]) -> bool:
    """Whether nothing can run on a host after its first wave: no step there waits on another, and no handler
    would run even if every chosen step changed the host."""
    if any(levels[id(step)] for step in steps):
        return False
    changing = {step.reading.resource.ref for step in steps if step.action is not None}
    return not changing or not any(
        step.reading.resource.handler(changing, step.reading.evaluation.diffs if step.action == "apply" else [])
        for step in steps)


def _handler_operation(step: Step) -> HostOperation:
    assert step.handler is not None  # _handle batches only the steps it gave a handler
    return step.handler.operation


def _levels(steps: list[Step]) -> dict[int, int]:
    """Each of a host's steps' wave (by the step's ``id``): 0 for a step with no requirement among them, else one more than its
    requirements' (what is destroyed: one more than what depends on it, after every applied wave)."""
    by_ref = {step.reading.resource.ref: step for step in steps}
    applied: dict[str, int] = {}
    removed: dict[str, int] = {}

    def apply_level(ref: str) -> int:
        if ref not in applied:
            applied[ref] = 0  # a cycle is refused as the project loads; this only stops a recursion
            needs = [need for need in by_ref[ref].reading.resource.dependencies() if need in by_ref]
            applied[ref] = 1 + max((apply_level(need) for need in needs), default=-1)
        return applied[ref]

    def destroy_level(ref: str) -> int:
        if ref not in removed:
            removed[ref] = 0
            dependents = [other for other, step in by_ref.items() if ref in step.reading.resource.dependencies()]
            removed[ref] = 1 + max((destroy_level(other) for other in dependents), default=-1)
        return removed[ref]

    top = 1 + max((apply_level(ref) for ref in by_ref), default=-1)
    return {id(step): top + destroy_level(ref) if step.action == "destroy" else apply_level(ref)
            for ref, step in by_ref.items()}


def _requirements(step: Step, host_steps: list[Step]) -> list[Step]:
    """The steps of the same host that ``step`` waits for: what it requires (what requires it, when destroyed)."""
    ref = step.reading.resource.ref
    if step.action == "destroy":
        return [other for other in host_steps if ref in other.reading.resource.dependencies()]
    needs = set(step.reading.resource.dependencies())
    return [other for other in host_steps if other.reading.resource.ref in needs]
