"""Files and directories."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pyinfra.api.operation import OperationMeta

from clockwork.facts.contents import FileContents
from clockwork.facts.paths import PathInfo, Paths, temp_sibling
from clockwork.operations import files
from clockwork.resources.base import Resource, describe, name_field
from clockwork.engine.types import Observed, Probe, Target
from clockwork.results import Diff, Evaluation
from clockwork.secrets import held, held_digest, mask_text
from clockwork.templates import TemplateError, TemplateHost, compile_template, render

#: Lines of unified diff shown per drifted file at most.
DIFF_LINES = 200


_OCTAL_DIGITS = re.compile(r"[0-7]{1,5}")
_NOT_A_NUMBER = "use octal digits as a string ('644') or an octal number (0o644)"


def _octal_mode(value: object) -> str | None:
    """A mode as ``Paths`` reports it: ``'644'``, ``'0750'``, ``0o644`` → ``'644'``, ``'750'``, ``'644'``.

    A string holds octal digits; an int is the number it is (``0o644`` is 420), never read
    as digits. An int between 512 and 777 whose decimal digits are all octal (``644``,
    ``755``) is refused: it is almost surely octal digits without the ``0o`` (644 is 0o1204).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{value!r} is not a file mode: {_NOT_A_NUMBER}")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, str):
        if not _OCTAL_DIGITS.fullmatch(value):
            raise ValueError(f"{value!r} is not a file mode: use octal digits such as '644' or '0750'")
        number, bounds = int(value, 8), f"{value!r} is not a file mode: it must be between 000 and 7777"
    else:
        number, bounds = value, f"{oct(value)} is not a file mode: it must be between 0o0 and 0o7777"
        if 512 <= value <= 777 and set(str(value)) <= set("01234567"):
            raise ValueError(f"{value} is not a file mode: as a number it is {oct(value)}, not 0o{value}; "
                             f"write mode='{value}' or mode=0o{value}")
    if not 0 <= number <= 0o7777:
        raise ValueError(bounds)
    return format(number, "o").rjust(3, "0")


def _digest(hashed: str) -> str:
    """``sha1:ab12cd…`` → ``ab12…``; a word instead of a digest (``sha1:unreadable``) is shown whole."""
    digest = str(hashed).partition(":")[2]
    if digest and not all(char in "0123456789abcdef" for char in digest):
        return digest
    return f"{digest[:4]}…" if digest else str(hashed)


#: What no file name or directory may hold: a NUL cannot be passed to a command, and a
#: newline or tab breaks the line-per-path output that Clockwork reads hosts with.
_UNSAFE = ("\0", "\n", "\t")


def _path_text(value: str, what: str) -> str:
    if any(char in value for char in _UNSAFE):
        raise ValueError(f"{value!r} is not a {what}: it holds a newline, a tab or a NUL character")
    return value  # a lone surrogate is refused for every string field by the base Resource


def _file_name(value: str) -> str:
    if "/" in value or value in (".", ".."):
        raise ValueError(f"{value!r} is not a file name: put the path in 'directory' and the name here")
    return _path_text(value, "file name")


class _PathResource(Resource):
    """What files and directories share: a name in a parent directory, an owner and a group.

    >>> conf = FileResource(name="app.conf", directory="/etc/app", owner="app", group="app")
    >>> conf.directory, conf.owner, conf.group
    ('/etc/app', 'app', 'app')
    """

    directory: str = Field(".", description="parent directory; missing parents are created; relative to the login "
                                            "directory over SSH, to the project on `@local`")
    owner: str | None = Field(None, description="owner user name; left alone when not set")
    group: str | None = Field(None, description="group name; left alone when not set")

    identity_fields = ("name", "directory", "hosts")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _file_name(value)

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not value:
            raise ValueError("a directory must be a non-empty path")
        return _path_text(value, "directory")

    @field_validator("mode", mode="before", check_fields=False)
    @classmethod
    def _mode(cls, value: str | int | None) -> str | None:
        return _octal_mode(value)

    def path(self, target: Target) -> str:
        return target.path(self.directory, self.name)

    def state_probes(self, target: Target) -> list[Probe]:
        return [(Paths, self.path(target))]

    def _info(self, target: Target, observed: Observed) -> PathInfo | None:
        return observed[Paths].get(self.path(target))

    def observed_state(self, target: Target, observed: Observed) -> dict[str, PathInfo | None]:
        """The path and its temporary sibling (a killed write's leftover) as ``Paths`` found them."""
        path = self.path(target)
        return {path: observed[Paths].get(path), temp_sibling(path): observed[Paths].get(temp_sibling(path))}

    def _found_path(self, info: PathInfo | None, kind: str, **fields: object) -> Resource | None:
        """This resource as the host has it at its path, when a ``kind`` is there (``from_observed``)."""
        if info is None or info["type"] != kind:
            return None
        return self._found(mode=info["mode"], owner=info["user"], group=info["group"], **fields)

    def _evaluation(self, path: str, info: PathInfo | None, kind: str, diffs: list[Diff]) -> Evaluation:
        """Drift as diffs, or an error when the host holds what Clockwork will not replace (as apply would fail)."""
        refused = files.refusal(path, info, kind)
        if refused:
            return Evaluation(diffs, refused, error=refused)
        return Evaluation(diffs, describe(diffs) + f" at {path}" if diffs else f"present at {path}")


class FileResource(_PathResource):
    """A file with declared content, mode and (optionally) owner and group; missing parent directories are
    created, and the file is written whole, so a reader never sees half of it. The content is given, or
    rendered per host from a Jinja2 ``template`` with ``vars``.

    >>> config = FileResource(name="config.json", directory="/etc/app", content='{"debug": false}\\n', mode="640")
    >>> config.label, config.mode
    ("FileResource 'config.json'", '640')
    >>> conf = FileResource(name="app.conf", directory="/etc", template_text="port={{ port }}\\n", vars={"port": 80})
    >>> conf.rendered(Target("web-1"))
    'port=80\\n'
    """

    name: str = name_field("the file name (no `/`)")
    content: str | None = Field(None, description="the whole file content (UTF-8); when left out (and no `template`), "
                                                  "a model writes it from the `description`")
    template: str | None = Field(None, description="a Jinja2 template file, relative to the project "
                                                   "(`\"templates/app.conf.j2\"`), rendered per host instead of "
                                                   "`content`: an undefined variable is an error, the final newline is "
                                                   "kept; the template sees `vars` and `host` (`host.name`, "
                                                   "`host.data`: the inventory data, `host.groups`)")
    template_text: str | None = Field(None, description="the template itself; read from `template` when the project "
                                                        "is loaded and kept with each version, so that reconcile and "
                                                        "rollback render what was applied; may be given inline instead "
                                                        "of `template`")
    vars: dict[str, Any] = Field(default_factory=dict, description="variables of the template; `Secret` references "
                                                                   "are resolved on the controller, and the rendered "
                                                                   "text is never stored")
    mode: str | None = Field("644", description="permissions as octal digits in a string (`\"640\"`, `\"0750\"`, "
                                                "`\"4755\"`) or an octal number (`0o640`); a number is its value, never "
                                                "read as digits, so `640` (0o1200) is refused with a hint; `None` "
                                                "leaves the mode alone")

    completable_fields = ("content",)
    hashed_fields = ("content", "template_text")

    @model_validator(mode="after")
    def _one_source(self) -> FileResource:
        templated = self.template is not None or self.template_text is not None
        if templated and self.content is not None:
            raise ValueError("give content or a template (template, template_text), not both")
        if self.vars and not templated:
            raise ValueError("vars are for a template: give template or template_text")
        if self.template_text is not None:
            compile_template(self.template_text, self.template or f"{self.name} (template_text)")
        return self

    def missing_fields(self) -> list[str]:
        """``content`` is left out on purpose when a template renders it."""
        if self.template is not None or self.template_text is not None:
            return []
        return super().missing_fields()

    def read_files(self, directory: Path) -> None:
        """Read ``template`` (relative to the project ``directory``) into ``template_text``."""
        if self.template is None:
            return
        path = directory / self.template
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise TemplateError(f"template {self.template} cannot be read: {reason}") from None
        compile_template(text, self.template)
        self.template_text = text

    def rendered(self, target: Target) -> str | None:
        """The template rendered for ``target``'s host; ``None`` when the file has no template."""
        if self.template_text is None:
            return None
        host = TemplateHost(target.host, target.data, target.groups)
        return render(self.template_text, self.template or f"{self.label} template_text", self.vars, host)

    def check_target(self, target: Target) -> None:
        """A template that does not render for this host is an error before any host is touched."""
        self.rendered(target)

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        path = self.path(target)
        info = self._info(target, observed)
        stale = self._stale_temp(target, observed)
        diffs = self.diffs(files.file_differences(info, self._content(target)[1], self.mode, self.owner, self.group, stale))
        return self._evaluation(path, info, "file", diffs)

    def describe_diff(self, diff: Diff) -> str | None:
        if diff.field == "content":
            return f"content differs (sha1 {_digest(diff.actual)} wanted {_digest(diff.expected)})"
        return super().describe_diff(diff)

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The file at this path as the host has it, its content known by its sha1 (``⟦sha1:…⟧``, as a host
        manifest keeps it); ``None`` when no file is there, or it cannot be read."""
        info = self._info(target, observed)
        if info is None or info["sha1"] is None:
            return None
        return self._found_path(info, "file", content=held("sha1", info["sha1"]), template=None, template_text=None,
                                vars={})

    def _content(self, target: Target) -> tuple[str | None, str]:
        """(the text to write, its sha1); the text is ``None`` when only its sha1 is known (from a host
        manifest: ``update`` of a file whose content update.py leaves out)."""
        rendered = self.rendered(target)
        if rendered is not None:
            return rendered, files.content_sha1(rendered)
        held = held_digest(self.content)
        if held is not None and held[0] == "sha1":
            return None, held[1]
        return self.content or "", files.content_sha1(self.content or "")

    def _stale_temp(self, target: Target, observed: Observed) -> str | None:
        """The temporary file a killed write left beside the file, if there is one."""
        temp = temp_sibling(self.path(target))
        return temp if observed[Paths].get(temp) is not None else None

    def is_present(self, target: Target, observed: Observed) -> bool:
        info = self._info(target, observed)
        return (info is not None and info["type"] == "file") or self._stale_temp(target, observed) is not None

    def explain_probes(self, target: Target, evaluation: Evaluation) -> list[Probe]:
        if any(diff.field == "content" for diff in evaluation.diffs):
            return [(FileContents, self.path(target))]
        return []

    def explain(self, target: Target, observed: Observed) -> str | None:
        path = self.path(target)
        actual = observed[FileContents].get(path)
        declared = self._content(target)[0]
        if actual is None or declared is None:
            return None
        lines = list(difflib.unified_diff(
            actual.splitlines(keepends=True), declared.splitlines(keepends=True),
            fromfile=f"{path} (on host)", tofile=f"{path} (declared)",
        ))
        if len(lines) > DIFF_LINES:
            lines = lines[:DIFF_LINES] + [f"… {len(lines) - DIFF_LINES} more lines\n"]
        return mask_text("".join(line if line.endswith("\n") else line + "\n" for line in lines)) or None

    def apply(self, target: Target) -> OperationMeta:
        content, sha1 = self._content(target)
        return files.file(path=self.path(target), content=content, mode=self.mode, user=self.owner, group=self.group,
                          sha1=None if content is not None else sha1)

    def destroy(self, target: Target) -> OperationMeta:
        return files.absent(path=self.path(target), kind="file")


class DirectoryResource(_PathResource):
    """A directory with a mode and (optionally) owner and group; missing parent directories are created.

    destroy removes it only when nothing is left in it once the resources declared in it
    are removed (they are removed first: newest declaration first), unless ``purge``.

    >>> app = DirectoryResource(name="app", directory="/srv", mode="750")
    >>> app.label, app.purge
    ("DirectoryResource 'app'", False)
    """

    name: str = name_field("the directory name (no `/`)")
    mode: str | None = Field("755", description="permissions as octal digits (`\"750\"`, `\"2775\"`) or an octal "
                                                "number (`0o750`); set whole: `\"755\"` inside a setgid directory "
                                                "clears the setgid bit it inherited; `None` leaves the mode alone")
    purge: bool = Field(False, description="`destroy` removes the directory with everything in it; by default "
                                           "`destroy` removes it only when it is empty once the resources declared "
                                           "in it are gone, and otherwise leaves it and says what is left")

    def evaluate_state(self, target: Target, observed: Observed) -> Evaluation:
        path = self.path(target)
        info = self._info(target, observed)
        diffs = self.diffs(files.directory_differences(info, self.mode, self.owner, self.group))
        return self._evaluation(path, info, "directory", diffs)

    def from_observed(self, target: Target, observed: Observed) -> Resource | None:
        """The directory at this path as the host has it (``purge`` as declared); ``None`` when there is none."""
        return self._found_path(self._info(target, observed), "directory")

    def is_present(self, target: Target, observed: Observed) -> bool:
        info = self._info(target, observed)
        return info is not None and info["type"] == "directory"

    def apply(self, target: Target) -> OperationMeta:
        return files.directory(path=self.path(target), mode=self.mode, user=self.owner, group=self.group)

    def destroy(self, target: Target) -> OperationMeta:
        return files.absent(path=self.path(target), kind="directory", purge=self.purge)
