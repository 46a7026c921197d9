"""Every bad input exits 2 with one clear line naming the file (and line), and changes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockwork.cli import cli
from testsupport.fleet import closed_port

VALID = """\
from clockwork.resources import FileResource
first = FileResource(name="first.txt", directory="out", content="one\\n")
"""


def run(project: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args], input=input)


def write_main(tmp_path: Path, body: str) -> Path:
    (tmp_path / "main.py").write_text(VALID + textwrap.dedent(body))
    return tmp_path


def assert_refused(result, message: str, project: Path) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (project / "out").exists(), "nothing may be applied when the project is invalid"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = (\n", "main.py:3: syntax error: '(' was never closed"),
        ("import not_a_module_anywhere\n", "main.py:3: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        ("raise RuntimeError('boom')\n", "main.py:3: RuntimeError: boom"),
        (
            "bad = FileResource(name='b.txt', content='x', mode='999')\n",
            ("main.py:3: invalid value for FileResource 'b.txt'.mode: '999' is not a file mode: "
            "use octal digits such as '644' or '0750'"),
        ),
        (
            "bad = FileResource(name='b.txt', content='x', colour='red')\n",
            ("main.py:3: invalid FileResource 'b.txt': unknown field 'colour' (the fields are name, description, hosts, "
            "reconcile, check_interval, max_duration, on_drift, alert_on, checks, sudo, requires, ignore_fields, directory, owner, group, "
            "content, template, template_text, vars, mode)"),
        ),
        (
            "bad = FileResource(name='b.txt', contnet='x')\n",
            "main.py:3: invalid FileResource 'b.txt': unknown field 'contnet' (did you mean 'content'?)",
        ),
        (
            "bad = FileResource(name='b.txt', content='a\\udc80b')\n",
            ("main.py:3: invalid value for FileResource 'b.txt'.content: '\\udc80' at character 1 is a lone surrogate, "
            "not text (it cannot be written as UTF-8)"),
        ),
        (
            "bad = FileResource(name='b.txt', content='x', check_interval='5 parsecs')\n",
            ("main.py:3: invalid value for FileResource 'b.txt'.check_interval: '5 parsecs' is not a check interval: "
            "use seconds (60), a duration ('30s', '5m') or a cron expression ('*/5 * * * *')"),
        ),
        (
            "bad = FileResource(name='b.txt', content='x', on_drift='panic')\n",
            "main.py:3: invalid value for FileResource 'b.txt'.on_drift: Input should be 'auto_correct', 'alert' or 'ignore'",
        ),
        (
            "again = FileResource(name='first.txt', directory='elsewhere', content='two')\n",
            "main.py:3: duplicate FileResource 'first.txt' (first declared at main.py:2)",
        ),
        (
            "web = FileResource(name='w.txt', content='x', hosts=['web-9'])\n",
            "main.py:3: FileResource 'w.txt' names unknown host or group 'web-9' (the inventory has: @local)",
        ),
    ],
    ids=["syntax", "import", "exception", "invalid-field", "unknown-field", "misspelt-field", "lone-surrogate",
         "bad-interval", "bad-on-drift",
         "duplicate", "unknown-host"],
)
@pytest.mark.parametrize("command", ["apply", "plan", "evaluate"])
def test_bad_project_is_refused(tmp_path: Path, body: str, message: str, command: str) -> None:
    project = write_main(tmp_path, body)
    assert_refused(run(project, command, "-i", "@local"), message, project)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("apply", ("main.py:3: FileResource 't.txt'.content is not set and the offline rules cannot complete it: "
                  "set content, or configure a model (CW_MODEL, CW_BASE_URL, CW_API_KEY or --model)")),
        ("plan", ("main.py:3: FileResource 't.txt'.content is not set and the offline rules cannot complete it: "
                 "set content, or configure a model (CW_MODEL, CW_BASE_URL, CW_API_KEY or --model)")),
        ("evaluate", ("main.py:3: FileResource 't.txt'.content is not completed yet: run `clockwork plan` or "
                     "`clockwork apply` to complete it and pin it in clockwork.lock")),
    ],
)
def test_a_field_nothing_can_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, message: str) -> None:
    monkeypatch.delenv("CW_MODEL", raising=False)
    project = write_main(tmp_path, "todo = FileResource(name='t.txt', description='a greeting')\n")
    assert_refused(run(project, command, "-i", "@local"), message, project)
    assert not (project / "clockwork.lock").exists()


def test_no_resources(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("x = 1\n")
    result = run(tmp_path, "apply")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: main.py: declares no resources (assign Resource instances to module-level names)"


def test_no_main_py(tmp_path: Path) -> None:
    result = run(tmp_path, "apply")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: no main.py in {tmp_path.resolve()} (run from a project directory or pass --project-dir)"


def test_unknown_limit(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    result = run(project, "apply", "-i", "@local", "--limit", "db")
    assert_refused(result, "--limit db: no host or group of that name in the inventory (it has: @local)", project)


@pytest.mark.parametrize("limit", [[""], [",,"], [" , "], ["", ""]], ids=["empty", "commas", "blank", "twice-empty"])
@pytest.mark.parametrize("command", ["apply", "plan", "evaluate", "destroy"])
def test_a_limit_that_names_nothing_is_refused(tmp_path: Path, command: str, limit: list[str]) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text(UNREACHABLE_INVENTORY.format(port=closed_port()))
    args = [arg for value in limit for arg in ("--limit", value)]
    result = run(project, command, *args, *(["--yes"] if command == "destroy" else []))
    assert_refused(result, "--limit names no host or group (the inventory has: inventory, web, web-1, web-2)", project)


#: Two SSH hosts where nothing listens: an error that contacted them would be exit 3, not 2.
UNREACHABLE_INVENTORY = """\
web = [
    ("web-1", {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}}),
    ("web-2", {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}}}),
]
"""


@pytest.mark.parametrize(
    ("name", "where"),
    [("nowhere.py", "local"), ("name.yml", "local"), ("inventories/prod.py", "local"), ("/nonexistent/x.py", "absolute")],
)
def test_missing_inventory_file(tmp_path: Path, name: str, where: str) -> None:
    project = write_main(tmp_path, "")
    result = run(project, "apply", "-i", name)
    looked = f"{project.resolve()} or {Path.cwd()}" if where == "local" else str(project.resolve())
    assert_refused(result, f"inventory file {name} does not exist (looked in {looked})", project)


@pytest.mark.parametrize(("spec", "hosts"), [
    ("web-1", ["web-1"]), ("web-1,", ["web-1"]), (",web-1,,web-2, ", ["web-1", "web-2"]), ("web-1,web-1", ["web-1"]),
])
def test_a_host_list_or_one_host_name_is_an_ssh_inventory(tmp_path: Path, spec: str, hosts: list[str]) -> None:
    """As pyinfra reads them, without its crash on an empty name ('web-1,') or its DNS lookup of a bare name."""
    from pyinfra.connectors.ssh import SSHConnector

    from clockwork.engine import load_inventory

    inventory = load_inventory(spec, tmp_path)
    assert [host.name for host in inventory] == hosts
    assert all(issubclass(host.connector_cls, SSHConnector) for host in inventory)
    # Through the CLI: the inventory loads (the unknown --limit lists its hosts) and no host is contacted.
    result = run(write_main(tmp_path, ""), "plan", "-i", spec, "--limit", "db")
    assert_refused(result, f"--limit db: no host or group of that name in the inventory (it has: {', '.join(hosts)})",
                   tmp_path)


@pytest.mark.parametrize(("spec", "message"), [
    (",", "inventory ',' names no hosts"),
    (" , ,", "inventory ' , ,' names no hosts"),
    ("web 1,web-2", "inventory 'web 1,web-2' is neither an inventory file nor a list of host names"),
])
def test_a_host_list_naming_no_host_is_refused(tmp_path: Path, spec: str, message: str) -> None:
    project = write_main(tmp_path, "")
    assert_refused(run(project, "apply", "-i", spec), message, project)


@pytest.mark.parametrize(("inventory", "message"), [
    ('hosts = [("web-1", {"ssh_port": 2201}), ("web-1", {"ssh_port": 2202})]\n',
     "host 'web-1' is defined twice in hosts with different data (ssh_port): define it once, or with the same data"),
    ('hosts = [("web-1", {"ssh_port": 2201, "ssh_user": "a"})]\nweb = [("web-1", {"ssh_port": 2202})]\n',
     ("host 'web-1' is defined in hosts and in web with different data (ssh_port, ssh_user): "
     "define it once, or with the same data")),
])
def test_a_host_defined_twice_with_other_data_is_refused(tmp_path: Path, inventory: str, message: str) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text(inventory)
    assert_refused(run(project, "apply"), f"inventory {project.resolve() / 'inventory.py'}: {message}", project)


def test_a_host_named_again_without_data_or_with_the_same_data_is_fine(tmp_path: Path) -> None:
    from clockwork.engine import load_inventory

    (tmp_path / "inventory.py").write_text(
        '_web1 = ("web-1", {"ssh_port": 2201})\nhosts = [_web1, "web-2"]\nweb = [_web1, "web-2"]\nfront = ["web-1"]\n')
    inventory = load_inventory("inventory.py", tmp_path)
    assert [host.name for host in inventory] == ["web-1", "web-2"]
    assert inventory.get_host("web-1").data.ssh_port == 2201


def test_an_unknown_connector_data_key_is_refused_before_connecting(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text(f'hosts = [("web-1", {{"ssh_hostnme": "127.0.0.1", "ssh_port": {closed_port()}}})]\n')
    result = run(project, "apply")
    assert_refused(result, f"inventory {project.resolve() / 'inventory.py'}: host 'web-1' has unknown data key "
                           "'ssh_hostnme' (did you mean 'ssh_hostname'?): as written, it would connect to 'web-1'", project)


def test_a_host_name_that_does_not_resolve_names_the_name_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "web-1.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text('hosts = [("web-1", {"ssh_hostname": "web-1.invalid"})]\n')
    result = run(project, "evaluate")
    assert result.exit_code == 3, result.output
    assert "✗ [web-1] unreachable: could not resolve host name 'web-1.invalid' (Name or service not known)" in result.output


def test_broken_inventory_file(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text("hosts = [\n")
    result = run(project, "apply")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: inventory ")
    assert not (project / "out").exists()


def test_bad_retry_timeout(tmp_path: Path) -> None:
    result = run(write_main(tmp_path, ""), "evaluate", "--retry-timeout", "soon")
    assert result.exit_code == 2
    assert "Invalid value for '--retry-timeout': 'soon' is not a duration" in result.output


def test_destroy_refuses_without_terminal_or_yes(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    assert run(project, "apply", "-i", "@local").exit_code == 0
    result = run(project, "destroy", "-i", "@local")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: destroy needs confirmation and stdin is not a terminal: pass --yes to destroy without asking"
    )
    assert (project / "out" / "first.txt").read_text() == "one\n"


BUGGY = """\
class Buggy(FileResource):
    def evaluate_state(self, target, observed):
        return {{}}["{key}"]  # a bug in a resource type: not the host's fault


bug = Buggy(name="bug.txt", directory="out", content="x\\n")
"""


def assert_internal_error(result, log: Path, exception: str, log_lines: int = 0) -> None:
    """Exit 4, one line on stderr (after pyinfra's own log lines with -vv), never a traceback on the terminal."""
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[log_lines:] == [f"Error: internal error (a bug in Clockwork): {exception}; the traceback is in {log}"]
    assert "Traceback" not in result.stderr
    text = log.read_text()
    assert "Traceback (most recent call last):" in text and text.rstrip().endswith(exception)


@pytest.mark.parametrize("command", ["apply", "plan", "evaluate"])
@pytest.mark.parametrize("verbose", [[], ["-v"], ["-vv"]], ids=["quiet", "v", "vv"])
def test_a_bug_in_a_resource_is_an_internal_error_not_a_host_error(tmp_path: Path, command: str, verbose: list[str]) -> None:
    project = write_main(tmp_path, BUGGY.format(key="mode"))
    result = run(project, *verbose, command, "-i", "@local")
    log_lines = 1 if verbose == ["-vv"] else 0  # pyinfra's "[@local] Connected"
    assert_internal_error(result, project.resolve() / ".clockwork" / "debug.log", "KeyError: 'mode'", log_lines)
    assert not (project / "out").exists(), "nothing may be applied after an internal error"
    assert (project / ".clockwork" / "debug.log").stat().st_mode & 0o777 == 0o600


def test_the_debug_log_goes_to_a_temp_file_when_the_project_cannot_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    project = write_main(tmp_path / "project", BUGGY.format(key="x")) if (tmp_path / "project").mkdir() is None else None
    assert project is not None
    (project / ".clockwork").write_text("not a directory")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    result = run(project, "evaluate", "-i", "@local")
    [log] = temp.glob("clockwork-debug-*.log")
    assert_internal_error(result, log, "KeyError: 'x'")


def test_an_internal_error_of_the_installed_command_exits_4_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = write_main(tmp_path, BUGGY.format(key="content"))
    done = subprocess.run([sys.executable, "-c", "from clockwork.cli import main; main()", "evaluate", "-i", "@local"],
                          cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 4, done.stderr
    log = project.resolve() / ".clockwork" / "debug.log"
    assert done.stderr.splitlines() == [
        f"Error: internal error (a bug in Clockwork): KeyError: 'content'; the traceback is in {log}"]
    assert "Traceback" in log.read_text()


def test_host_read_errors_stay_host_errors() -> None:
    """A fact that failed on the host raises HostReadError when read: the resource is an error (exit 3), not a bug."""
    from clockwork.facts.paths import Paths
    from pyinfra.api.exceptions import FactProcessError

    from clockwork.exceptions import HostReadError
    from clockwork.resources import FileResource
    from clockwork.engine.types import Observed, Target

    resource = FileResource(name="a.txt", content="a\n")
    observed = Observed({Paths: FactProcessError("Paths: unexpected output")})
    with pytest.raises(HostReadError, match="^Paths: unexpected output$"):
        observed[Paths]
    evaluation = resource.evaluate(Target("web-1"), observed)
    assert (evaluation.status, evaluation.error) == ("error", "Paths: unexpected output")


@pytest.mark.parametrize("output_format", ["text", "json", "junit"])
@pytest.mark.parametrize("where", ["missing-directory", "a-file-as-directory", "a-directory"])
def test_an_output_that_cannot_be_written_is_refused_before_any_host_is_read(
    tmp_path: Path, output_format: str, where: str
) -> None:
    project = write_main(tmp_path, "")
    (project / "inventory.py").write_text(UNREACHABLE_INVENTORY.format(port=closed_port()))
    (project / "file").write_text("")
    (project / "dir").mkdir()
    output, message = {
        "missing-directory": (project / "nonexistent" / "x.json", f"{project / 'nonexistent'} is not a directory (create it first)"),
        "a-file-as-directory": (project / "file" / "x.json", f"{project / 'file'} is not a directory (create it first)"),
        "a-directory": (project / "dir", f"File '{project / 'dir'}' is a directory."),
    }[where]
    result = run(project, "evaluate", "--format", output_format, "--output", str(output))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--output': {message}"
    assert result.stdout == "" and not output.is_file()


def test_output_without_format_writes_the_text_report(tmp_path: Path) -> None:
    project = write_main(tmp_path, "")
    assert run(project, "apply", "-i", "@local").exit_code == 0
    result = run(project, "evaluate", "-i", "@local", "--output", str(project / "out.txt"))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"✓ All resources running as specified\n  ✓ first.txt: present at {project}/out/first.txt\n"
    assert (project / "out.txt").read_text(encoding="utf-8") == result.stdout


def test_version_option(tmp_path: Path) -> None:
    from importlib.metadata import version

    for args in (["--version"], ["version"]):
        result = CliRunner().invoke(cli, args)
        assert (result.exit_code, result.output) == (0, f"clockwork {version('clockwork')}\n")


def test_an_internal_error_outside_a_project_leaves_nothing_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from clockwork.cli import write_debug_log

    elsewhere, temp = tmp_path / "elsewhere", tmp_path / "temp"
    elsewhere.mkdir()
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    try:
        raise IndexError("string index out of range")
    except IndexError as error:
        log = write_debug_log(elsewhere, error)
    assert list(elsewhere.iterdir()) == []
    assert log.parent == temp and "IndexError: string index out of range" in log.read_text()
