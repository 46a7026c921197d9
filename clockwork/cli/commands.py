"""The ``clockwork`` command: parse options, call one library function, render its report.

Only click is imported up front: each command imports what it uses when it runs, so that ``--help``, a usage
error, ``version``, ``history`` or ``status`` load neither pyinfra nor gevent. A command that contacts hosts calls
``_ready_for_hosts`` before anything else (gevent patched in, then pyinfra's logging).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clockwork.exceptions import ClockworkError, ConfirmationRequired, ExitStatus
from clockwork.exitcodes import exit_status

if TYPE_CHECKING:
    from clockwork.commands.update import UpdatePlan
    from clockwork.results import Report
    from clockwork.settings import Settings


class CommandError(click.ClickException):
    """An expected failure: one line on stderr, the error's own exit status."""

    def __init__(self, error: ClockworkError) -> None:
        from clockwork.output import escape

        super().__init__(escape(str(error)))
        self.exit_code = exit_status(error)  # type: ignore[misc]  # click's is a class default


#: Where an internal error's traceback goes, under the project directory.
DEBUG_LOG = Path(".clockwork") / "debug.log"


def write_debug_log(project_dir: Path | None, error: BaseException) -> Path:
    """Append ``error``'s traceback to ``<project>/.clockwork/debug.log`` (mode 0600), else to a new temp file.

    Only a project directory (holding main.py or .clockwork/) gets the log: an
    internal error in some other directory leaves nothing behind there.
    """
    import shlex
    import tempfile
    import time
    import traceback

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = (f"--- {stamp} clockwork {_version()}: {shlex.join(sys.argv)}\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    if project_dir is not None and ((project_dir / "main.py").is_file() or (project_dir / DEBUG_LOG.parent).is_dir()):
        path = project_dir.resolve() / DEBUG_LOG
        try:
            path.parent.mkdir(exist_ok=True)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a",
                           encoding="utf-8", errors="backslashreplace") as log:
                log.write(text)
            return path
        except OSError:
            pass  # not writable: a temp file instead
    descriptor, name = tempfile.mkstemp(prefix="clockwork-debug-", suffix=".log")
    with os.fdopen(descriptor, "w", encoding="utf-8", errors="backslashreplace") as log:
        log.write(text)
    return Path(name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("clockwork")
    except PackageNotFoundError:  # not installed (run from a checkout)
        return "unknown"


class ClockworkGroup(click.Group):
    """Turns an unexpected exception (a bug) into one line on stderr and exit status 4, traceback in the debug log."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OSError as error:
            if error.errno == errno.EPIPE:  # stdout closed (``| head``): click handles it
                raise
            internal_error(ctx, error)
        except Exception as error:  # noqa: BLE001 (a bug: reported as one, exit status 4)
            internal_error(ctx, error)


def internal_error(ctx: click.Context, error: BaseException) -> None:
    from clockwork.output import escape

    options = ctx.find_object(Context)
    path = write_debug_log(options.project_dir if options is not None else None, error)
    message = escape(f"{type(error).__name__}: {error}")
    click.echo(f"Error: internal error (a bug in Clockwork): {message}; the traceback is in {escape(str(path))}", err=True)
    ctx.exit(exit_status(error))


class Context:
    """Options shared by every command."""

    def __init__(self, project_dir: Path, verbose: int, quiet: bool) -> None:
        self.project_dir = project_dir
        self.verbose = verbose
        self.quiet = quiet

    @functools.cached_property
    def settings(self) -> Settings:
        """The project's settings (``.env``, then ``CW_*``), validated once per command: a bad one is exit 2.
        Every library call of the command gets them (store, completion, alerts, reconciler)."""
        from clockwork.settings import load_settings

        return self.call(load_settings, self.project_dir.resolve())

    def project(self, complete: bool = False, model: str | None = None, refresh: bool = False):
        """Load main.py and fill left-out fields: from providers when ``complete``, else from the lock only."""
        from clockwork.complete import complete_project
        from clockwork.project import load_project

        project = self.call(load_project, self.project_dir)
        self.completions = self.call(
            complete_project, project, self.settings, model=model, refresh=refresh, providers=complete
        )
        return project

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ClockworkError as error:
            raise CommandError(error) from None

    def progress(self, phase: str, done: int, total: int) -> None:
        if self.quiet or not sys.stderr.isatty():
            return
        from clockwork.cli.render import host_word

        sys.stderr.write(f"\r\033[K  {phase}: {done}/{total} {host_word(total)}" + ("\r\033[K" if done == total else ""))
        sys.stderr.flush()


def _ready_for_hosts(ctx: Context) -> None:
    """What a command that contacts hosts does first, before it opens any socket: gevent's cooperative sockets,
    threads and waits (pyinfra connects hosts in parallel greenlets; psycopg waits in the reconcile service's
    greenlets), then pyinfra's and paramiko's logging for the command's -v."""
    from importlib import metadata

    from gevent import monkey

    # patch_all asks for its plugins' entry points once per module it patches (25 times), and every
    # ask reads every installed package's metadata: read it once, for all of them.
    every, scan = metadata.entry_points(), metadata.entry_points
    metadata.entry_points = lambda **select: every.select(**select) if select else every  # type: ignore[assignment]
    try:
        monkey.patch_all()
    finally:
        metadata.entry_points = scan
    _configure_logging(ctx.verbose)


def _configure_logging(verbose: int) -> None:
    """pyinfra's warnings with -v, its log with -vv; paramiko's (a dropped connection's "Socket exception",
    tracebacks of its transport thread) only with -vv, never through logging's last-resort handler."""
    import logging

    from clockwork.secrets import MaskingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(MaskingFilter())
    for name, level in (("pyinfra", logging.INFO if verbose > 1 else logging.WARNING if verbose else logging.CRITICAL + 1),
                        ("paramiko", logging.WARNING if verbose > 1 else logging.CRITICAL + 1)):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.handlers[:] = [handler]
        logger.setLevel(level)


def _limit(values: tuple[str, ...]) -> list[str] | None:
    """``None`` without --limit (every host); a given --limit that names nothing (``""``, ``,,``) is ``[]``: an error."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    from clockwork.durations import parse_duration

    if value is None:
        return 0
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _output_option(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse an --output file that cannot be written before any host is read."""
    if value is None:
        return None
    directory = value.parent if str(value.parent) else Path(".")
    if not directory.is_dir():
        raise click.BadParameter(f"{directory} is not a directory (create it first)")
    if not os.access(directory, os.W_OK) or (value.exists() and not os.access(value, os.W_OK)):
        raise click.BadParameter(f"{value} is not writable")
    return value


inventory_option = click.option(
    "-i", "--inventory", metavar="INVENTORY",
    help="A pyinfra inventory: a file, @local, or a comma-separated host list. "
    "Default: inventory.py in the project, else @local.",
)
model_option = click.option(
    "--model", metavar="MODEL", help="Complete left-out fields with this model (overrides CW_MODEL).",
)
refresh_option = click.option(
    "--refresh", is_flag=True, help="Complete left-out fields again instead of using clockwork.lock.",
)
limit_option = click.option(
    "--limit", "limit", multiple=True, metavar="HOSTS",
    help="Only these hosts or groups (comma-separated, glob patterns allowed; repeatable).",
)


def parallel_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--parallel N (else CW_PARALLEL): every session of the command connects to at most N hosts at once."""

    @functools.wraps(command)
    def run(*args: Any, parallel: int | None, **kwargs: Any) -> Any:
        from clockwork.limits import connection_limit

        options = click.get_current_context().find_object(Context)
        assert options is not None
        # The settings are read only when a session opens (``--print-systemd-unit`` opens none).
        with connection_limit(parallel if parallel is not None else lambda: options.settings.parallel):
            return command(*args, **kwargs)

    return click.option(
        "--parallel", type=click.IntRange(min=1), metavar="N",
        help="Connect to at most N hosts at once; a larger fleet is worked through N hosts at a time. "
        "Default: CW_PARALLEL, else what the open-file limit allows (at most 1000).",
    )(run)


def _override(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Let a command's own --project-dir/-v/-q override the same option given before the command."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        options = ctx.find_object(Context)
        if options is not None and value:
            setattr(options, name, value)

    return store


_PROJECT_DIR_HELP = "The project directory (holding main.py). Default: the current directory."
_VERBOSE_HELP = "Show pyinfra's warnings (-v) and its progress log (-vv)."
_QUIET_HELP = "Only print problems, changes and the summary line."


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--project-dir, -v and -q, accepted after the command name too."""
    command = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_override("quiet"), help=_QUIET_HELP)(command)
    command = click.option("-v", "--verbose", count=True, expose_value=False, callback=_override("verbose"), help=_VERBOSE_HELP)(command)
    return click.option(
        "--project-dir", type=click.Path(file_okay=False, path_type=Path), expose_value=False,
        callback=_override("project_dir"), help=_PROJECT_DIR_HELP,
    )(command)


@click.group(cls=ClockworkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clockwork", prog_name="clockwork", message="%(prog)s %(version)s",
                      help="Print Clockwork's version and exit.")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), help=_PROJECT_DIR_HELP)
@click.option("-v", "--verbose", count=True, help=_VERBOSE_HELP)
@click.option("-q", "--quiet", is_flag=True, help=_QUIET_HELP)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path, verbose: int, quiet: bool) -> None:
    """Clockwork: declare resources in main.py, apply them over SSH with pyinfra, verify them.

    Run from a project directory (the one holding main.py) or pass --project-dir.

    \b
    Exit status:
      0  success
      1  drift or pending changes found by evaluate (or reconcile --once)
      2  usage or project error, or a declined confirmation (nothing was changed)
      3  a host was unreachable or an operation or check failed (the rest still ran)
      4  internal error (a bug in Clockwork): the traceback is in .clockwork/debug.log
    """
    ctx.obj = Context(project_dir, verbose, quiet)


def _exit(report: Report, drift_fails: bool = False) -> None:
    status = exit_status(report, drift_fails)
    if status:
        sys.exit(status)


def _apply_or_plan(
    ctx: Context, inventory: str | None, limit: tuple[str, ...], dry_run: bool, model: str | None, refresh: bool,
    yes: bool = False,
) -> None:
    _ready_for_hosts(ctx)
    from clockwork import apply
    from clockwork.cli.render import count, print_applied, print_completions, print_plan, print_reverts
    from clockwork.commands.apply import reverted_updates

    project = ctx.project(complete=True, model=model, refresh=refresh)
    print_completions(ctx.completions, include_lock=dry_run)
    reverts = ctx.call(reverted_updates, project, ctx.settings)
    print_reverts(reverts)
    if reverts and not dry_run:
        _confirm(yes, "apply", f"Revert {count(len(reverts), 'update')} to what main.py declares?")
    report: Report = ctx.call(apply, project, inventory, _limit(limit), dry_run, ctx.progress, ctx.settings)
    (print_plan if dry_run else print_applied)(report, ctx.quiet)
    _exit(report)


@cli.command(short_help='Make every host match main.py (only what differs changes).')
@common_options
@inventory_option
@limit_option
@parallel_option
@click.option("--dry-run", is_flag=True, help="Only show what would change (same as `clockwork plan`).")
@model_option
@refresh_option
@click.option("--yes", "-y", is_flag=True, help="Revert what `clockwork update` deployed without asking.")
@click.pass_obj
def apply(
    ctx: Context, inventory: str | None, limit: tuple[str, ...], dry_run: bool, model: str | None, refresh: bool,
    yes: bool,
) -> None:
    """Make every host match main.py; only what differs is changed.

    Left-out fields (a container's image, a file's content) are completed first
    and pinned in clockwork.lock.

    When `clockwork update` deployed a resource last and main.py declares it
    otherwise, apply would revert that update: it says so per resource and asks
    (--yes skips the question; without a terminal it refuses). Declining changes
    nothing and exits 2. To keep the update, bring main.py in line: `clockwork
    history RESOURCE --format json` shows the deployed spec.
    """
    _apply_or_plan(ctx, inventory, limit, dry_run, model, refresh, yes)


@cli.command(short_help='Show what apply would change, changing nothing.')
@common_options
@inventory_option
@limit_option
@parallel_option
@model_option
@refresh_option
@click.pass_obj
def plan(ctx: Context, inventory: str | None, limit: tuple[str, ...], model: str | None, refresh: bool) -> None:
    """Show what apply would change per host and resource, changing nothing on the hosts.

    Also shows each completed field and where its value came from (lock, rules, model).
    """
    _apply_or_plan(ctx, inventory, limit, True, model, refresh)


@cli.command(short_help="Remove main.py's resources from the hosts (asks first).")
@common_options
@inventory_option
@limit_option
@parallel_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def destroy(ctx: Context, inventory: str | None, limit: tuple[str, ...], yes: bool) -> None:
    """Remove every resource of main.py from the hosts, newest declaration first.

    Asks first, naming the resources and hosts; --yes skips the question. Without
    a terminal and without --yes it refuses. Declining (or refusing) changes
    nothing and exits 2.
    """
    _ready_for_hosts(ctx)
    from clockwork import destroy as destroy_resources
    from clockwork.cli.render import host_list, print_destroyed
    from clockwork.placement import place

    project = ctx.project()
    if not yes:
        placement = ctx.call(place, project, inventory, _limit(limit))
        names = ", ".join(resource.label for resource in project.resources)
        hosts = [host for host in placement.hosts if placement.resources[host]]
        _confirm(yes, "destroy", f"Destroy {names} on {host_list(hosts)}?")
    report: Report = ctx.call(destroy_resources, project, inventory, _limit(limit), ctx.progress, ctx.settings)
    print_destroyed(report, ctx.quiet)
    _exit(report)


@cli.command(short_help='Check, read-only, that every host matches main.py.')
@common_options
@inventory_option
@limit_option
@parallel_option
@click.option("--format", "output_format", type=click.Choice(["text", "json", "junit"]), default="text",
              show_default=True, help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), callback=_output_option,
              help="Write the report in --format (text by default) to this file; the text report still goes to stdout.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Show a unified diff for each drifted text file (secret values masked).")
@click.option("--retry-timeout", metavar="DURATION", callback=_duration_option,
              help="Re-check what is not as declared until it is or DURATION ('30s', '2m') has passed.")
@click.pass_obj
def evaluate(
    ctx: Context, inventory: str | None, limit: tuple[str, ...], output_format: str, output: Path | None,
    show_diff: bool, retry_timeout: int,
) -> None:
    """Verify, read-only, that every host matches main.py (state and health checks).

    Exit status: 0 all as specified, 1 drift, 3 a host or check could not be evaluated.
    """
    _ready_for_hosts(ctx)
    from clockwork import evaluate as evaluate_fleet
    from clockwork.cli.render import evaluation_text
    from clockwork.output import to_json, to_junit

    project = ctx.project()
    report: Report = ctx.call(
        evaluate_fleet, project, inventory, _limit(limit), ctx.progress, explain=show_diff, retry_timeout=retry_timeout,
        settings=ctx.settings,
    )
    text = evaluation_text(report, ctx.quiet)
    document = {"json": to_json, "junit": to_junit}.get(output_format, lambda _report: text)(report)
    if output is None:
        click.echo(document, nl=False)  # text is escaped already; JSON and XML escape in their own way
    else:
        try:
            output.write_text(document, encoding="utf-8")
        except OSError as error:
            raise click.BadParameter(f"cannot write {output}: {error.strerror}", param_hint="'--output'") from None
        click.echo(text, nl=False)
    _exit(report, drift_fails=True)


@cli.command(short_help='List the recorded versions of the resources.')
@common_options
@click.argument("resource", required=False)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.pass_obj
def history(ctx: Context, resource: str | None, output_format: str) -> None:
    """List the recorded versions of RESOURCE (a name or Type/name), or of every resource."""
    import json

    from clockwork import history as list_versions
    from clockwork.cli.render import print_history

    versions = ctx.call(list_versions, ctx.project_dir.resolve(), resource, ctx.settings)
    if output_format == "json":
        click.echo(json.dumps([version.as_dict() for version in versions], indent=2, ensure_ascii=False))
        return
    _print_interrupted(ctx)
    print_history(versions)


@cli.command(short_help='Re-apply an earlier version of a resource.')
@common_options
@click.argument("resource")
@click.option("--to", "to", type=click.IntRange(min=1), metavar="VERSION",
              help="The version to go back to. Default: the one before the current.")
@inventory_option
@parallel_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def rollback(ctx: Context, resource: str, to: int | None, inventory: str | None, yes: bool) -> None:
    """Re-apply an earlier version of RESOURCE and record it as a new version.

    Works from a project directory with or without main.py (secret values that
    are not stored come from main.py). Asks first (--yes skips it); declining
    changes nothing and exits 2.
    """
    _ready_for_hosts(ctx)
    from clockwork import rollback as roll_back
    from clockwork.cli.render import print_rolled_back
    from clockwork.commands.rollback import choose_version
    from clockwork.project import Project

    directory = ctx.project_dir.resolve()
    project = ctx.project() if (directory / "main.py").is_file() else Project(directory, directory / "main.py", [])
    current, target = ctx.call(choose_version, directory, resource, to, ctx.settings)
    _confirm(yes, "rollback", f"Roll {target.type} {target.resource!r} back from version {current.version} "
                              f"to version {target.version}?")
    report: Report = ctx.call(roll_back, project, resource, to, inventory, ctx.progress, ctx.settings)
    print_rolled_back(report, current, target)
    _exit(report)


@cli.command(short_help='Change what is deployed from a partial update.py.')
@common_options
@inventory_option
@parallel_option
@click.option("--file", "file_name", default="update.py", show_default=True, metavar="FILE",
              help="The file holding the partial or vague resources.")
@click.option("--dry-run", is_flag=True, help="Show the merged changes and stop.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-rollback", is_flag=True, help="Keep a failed update in place for debugging (no automatic rollback).")
@model_option
@click.pass_obj
def update(
    ctx: Context, inventory: str | None, file_name: str, dry_run: bool, yes: bool, no_rollback: bool, model: str | None
) -> None:
    """Evolve what is deployed from update.py: fields given there replace the deployed ones, the rest stays.

    The deployed spec comes from this directory's state, or else from the hosts'
    manifests (so update works from a directory holding only update.py and an
    inventory). A changed description is turned into field changes by the model
    when one is configured. After confirmation (--yes skips it; declining changes
    nothing and exits 2) the result is applied, recorded and evaluated; if that
    evaluation fails, the change is rolled back.
    """
    _ready_for_hosts(ctx)
    from clockwork.commands.update import plan_update

    plan = ctx.call(plan_update, ctx.project_dir.resolve(), file_name, inventory, ctx.settings, model, ctx.progress)
    try:
        _show_and_run_update(ctx, plan, dry_run, yes, no_rollback)
    finally:
        plan.close()


def _show_and_run_update(ctx: Context, plan: UpdatePlan, dry_run: bool, yes: bool, no_rollback: bool) -> None:
    from clockwork.cli.render import echo, print_update_outcome, print_update_plan
    from clockwork.commands.update import run_update

    print_update_plan(plan.changes)
    if dry_run:
        echo("Dry run: nothing was changed.")
        return
    if not any(change.fields or change.previous is None for change in plan.changes):
        echo("Nothing to update: every resource is already as update.py asks.")
        return
    _confirm(yes, "update", "Apply these changes?")
    outcome = ctx.call(run_update, plan, ctx.progress, no_rollback)
    print_update_outcome(outcome, kept=no_rollback)
    if outcome.verified is not None and outcome.verified.status == "ok":
        _exit(outcome.applied)
        return
    sys.exit(ExitStatus.DRIFT)  # the update did not hold: rolled back (or kept with --no-rollback)


@cli.command(short_help='Keep the fleet as last applied: drift, expiry, alerts.')
@common_options
@inventory_option
@parallel_option
@click.option("--once", is_flag=True, help="Run one pass over the resources that are due, then exit (for cron).")
@click.option("--print-systemd-unit", is_flag=True, help="Print a systemd unit that runs the service for this project.")
@click.pass_obj
def reconcile(ctx: Context, inventory: str | None, once: bool, print_systemd_unit: bool) -> None:
    """Keep the fleet as last applied: drift correction, time limits, alerts.

    Looks after the resources applied with reconcile=True: each is evaluated
    every check_interval; on drift it is corrected (on_drift="auto_correct"),
    only alerted ("alert") or only recorded ("ignore"). Resources past their
    max_duration are destroyed. Alerts go to the channels in the settings
    (CW_ALERT_WEBHOOK_URL, CW_ALERT_SLACK_WEBHOOK_URL, CW_ALERT_EMAIL_TO).

    Without --once it runs until SIGTERM or SIGINT (exit 0 after the current
    pass); SIGHUP reloads the settings. Events are logged as JSON lines to
    stderr and .clockwork/reconcile.log. With --once the exit status is
    evaluate's: 0 all as specified (or corrected), 1 drift left, 3 a host or
    check could not be evaluated.

    Several workers (on one machine or several, with CW_STATE_URL naming one
    PostgreSQL database) share a fleet: each pass claims the due hosts no other
    worker holds, at most CW_RECONCILE_CAPACITY, each for CW_RECONCILE_LEASE
    (renewed while the worker lives). A worker that dies loses nothing: its
    hosts are claimed again when its lease ends.
    """
    directory = ctx.project_dir.resolve()
    if print_systemd_unit:
        from clockwork.reconcile import systemd_unit

        click.echo(systemd_unit(directory, inventory), nl=False)
        return
    _ready_for_hosts(ctx)
    from clockwork.cli.render import print_reconciled
    from clockwork.reconcile import EventLog, Service, make_reconciler
    from clockwork.settings import load_settings
    from clockwork.state.sqlite import STATE_DIR

    log = EventLog(directory / STATE_DIR / "reconcile.log", None if ctx.quiet else sys.stderr)
    try:
        reconciler = ctx.call(make_reconciler, directory, inventory, log, ctx.settings)  # bad inventory: exit 2 now
        if not once:  # SIGHUP: the settings as they are then
            sys.exit(Service(reconciler, lambda: make_reconciler(directory, inventory, log, load_settings(directory)),
                             log).run())
        try:
            outcome = ctx.call(reconciler.run_once)
        finally:
            reconciler.close()
    finally:
        log.close()
    print_reconciled(outcome, ctx.quiet)
    if outcome.looked_after:
        _exit(outcome.report, drift_fails=True)


@cli.command(short_help='Show each reconciled resource: last result, next due.')
@common_options
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.pass_obj
def status(ctx: Context, output_format: str) -> None:
    """Show each reconciled resource per host (last result, next due, expiry time, corrections, the worker
    holding the host now) and the reconcile workers (last heartbeat, hosts held; dead when silent for three
    lease periods)."""
    import json

    from clockwork.cli.render import print_status, print_workers, worker_dict
    from clockwork.reconcile import status as reconcile_status
    from clockwork.reconcile import workers as reconcile_workers

    rows = ctx.call(reconcile_status, ctx.project_dir.resolve(), ctx.settings)
    workers = ctx.call(reconcile_workers, ctx.project_dir.resolve(), ctx.settings)
    if output_format == "json":
        click.echo(json.dumps({"resources": [row.as_dict() for row in rows], "workers": [worker_dict(w) for w in workers]},
                              indent=2, ensure_ascii=False))
        return
    _print_interrupted(ctx)
    print_status(rows)
    print_workers(workers)


@cli.command(short_help="Push back a resource's max_duration expiry.")
@common_options
@click.argument("resource")
@click.option("--by", "by", required=True, metavar="DURATION", help="How much longer it may live ('2h', '30m').")
@click.pass_obj
def extend(ctx: Context, resource: str, by: str) -> None:
    """Push back the max_duration expiry of RESOURCE (a name or Type/name) on every host."""
    from clockwork.cli.render import print_extended
    from clockwork.durations import parse_duration
    from clockwork.reconcile import extend as extend_expiry

    try:
        seconds = parse_duration(by)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--by") from None
    print_extended(ctx.call(extend_expiry, ctx.project_dir.resolve(), resource, seconds, by, ctx.settings))


def _print_interrupted(ctx: Context) -> None:
    from clockwork.cli.render import print_interrupted
    from clockwork.commands.history import interrupted

    print_interrupted(ctx.call(interrupted, ctx.project_dir.resolve(), ctx.settings))


def _confirm(yes: bool, command: str, question: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes (never hang). No (or ^C, ^D) is exit 2, nothing changed."""
    from clockwork.cli.render import echo
    from clockwork.output import escape

    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(ConfirmationRequired(
            f"{command} needs confirmation and stdin is not a terminal: pass --yes to {command} without asking"))
    try:
        confirmed = click.confirm(escape(question))
    except click.exceptions.Abort:
        confirmed = False
        echo()
    if not confirmed:
        raise CommandError(ConfirmationRequired(f"{command} declined: nothing was changed"))


@cli.command(short_help="Print Clockwork's version (same as --version).")
def version() -> None:
    """Print Clockwork's version (same as --version)."""
    click.echo(f"clockwork {_version()}")


def main() -> None:
    """The ``clockwork`` executable (gevent is patched in by the commands that contact hosts, see ``_ready_for_hosts``)."""
    try:
        cli(prog_name="clockwork")
    except Exception as error:  # noqa: BLE001 (a bug outside any command; ClockworkGroup handles those inside)
        from clockwork.cli.render import echo
        from clockwork.output import escape

        path = write_debug_log(Path.cwd(), error)
        echo(f"Error: internal error (a bug in Clockwork): {escape(f'{type(error).__name__}: {error}')}; "
                   f"the traceback is in {path}", err=True)
        sys.exit(exit_status(error))
