"""A resource kind is one self-contained unit: it registers itself, declares how it reads, and no generic module
knows its fields; the README's resource reference is generated from the kinds."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import clockwork.resources
from clockwork.resources import RESOURCE_TYPES, DirectoryResource, DockerServiceResource, FileResource, Resource
from clockwork.resources import base
from clockwork.engine.types import Observed, Target
from clockwork.results import Diff
from clockwork.secrets import REDACTED, held

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "clockwork"

#: Every module of the library but the kinds themselves.
GENERIC = [path for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).parts[0] != "resources"]
#: The fields that belong to one kind or another (not the ones every resource has).
KIND_FIELDS = {field for kind in RESOURCE_TYPES.values() for field in kind.model_fields} - set(Resource.model_fields)


def _own_attributes(path: Path) -> set[str]:
    """The attributes a module's classes define: class fields, methods and properties, ``self.x = …``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and ast.unparse(node.value) == "self":
            names.add(node.attr)
    return names


#: Kind fields that generic classes also have (``Project.directory``, ``CommandCheck.command``): an attribute of
#: that name cannot be told from a kind's field by reading the code, so only string literals are checked for them.
SHARED = KIND_FIELDS & {name for path in GENERIC for name in _own_attributes(path)}
#: String literals that name something else in one generic module.
OWN_STRINGS = {
    ("complete/model.py", "content"): "a chat message's content in the OpenAI API",
    ("checks.py", "command"): "CommandCheck's kind and field",
    ("cli/render.py", "command"): "the command of an interrupted deployment, as the store records it",
}


#: Kind fields whose names are also words of the generic modules everywhere: never read as naming the field.
GENERIC_WORDS = {
    "version": "a resource's recorded version in the store (PackageResource.version is a package's version)",
    "lock_timeout": "the store's lock setting (PackageResource.lock_timeout is dpkg's lock)",
}


def _names_a_field(text: str) -> str | None:
    """The kind field that a string names: ``"content"``, ``"env_vars."``, ``"ports[0]"``."""
    head = text.split(".")[0].split("[")[0]
    if head in GENERIC_WORDS:
        return None
    return head if head in KIND_FIELDS and text[len(head):len(head) + 1] in ("", ".", "[") else None


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [node for node in ast.walk(tree) if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                                       ast.AsyncFunctionDef))]
    return {id(node.body[0].value) for node in nodes
            if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def kind_fields_named(source: str, module: str) -> list[str]:
    """Each place where ``source`` names a kind's field: a string literal (not a docstring), or an attribute."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found, attributes, called = [], [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            field = _names_a_field(node.value)
            if field and (module, field) not in OWN_STRINGS:
                found.append(f"{module}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            called.add(id(node.func))  # a method (``session.target(host)``), never a field
        elif isinstance(node, ast.Attribute) and node.attr in KIND_FIELDS - SHARED:
            attributes.append(node)
    return found + [f"{module}:{node.lineno}: .{node.attr}" for node in attributes if id(node) not in called]


@pytest.mark.parametrize("path", GENERIC, ids=lambda path: str(path.relative_to(REPO)))
def test_no_generic_module_names_a_field_of_a_kind(path: Path) -> None:
    found = kind_fields_named(path.read_text(), str(path.relative_to(PACKAGE)))
    assert found == [], "a kind says this itself (Resource's class attributes and methods in clockwork/resources/base.py)"


def test_the_field_check_finds_what_it_looks_for() -> None:
    source = ('"""Docstring naming content."""\nIDENTITY = ("name", "directory")\n'
              'def f(resource, diff, project):\n'
              '    return resource.content, diff.field.startswith("env_vars."), project.directory\n')
    assert sorted(kind_fields_named(source, "x.py")) == ["x.py:2: 'directory'", "x.py:4: 'env_vars.'", "x.py:4: .content"]
    assert {"content", "image", "env_vars", "ports", "volumes", "mode", "directory", "running", "present", "purge"} <= KIND_FIELDS


# The registry ------------------------------------------------------------------------------


def _subclasses(cls: type[Resource]) -> list[type[Resource]]:
    return [found for sub in cls.__subclasses__() for found in [sub, *_subclasses(sub)]]


def test_every_kind_is_registered_and_importable_by_name() -> None:
    kinds = {cls for cls in _subclasses(Resource) if cls.__module__.startswith("clockwork.resources.")}
    assert set(RESOURCE_TYPES.values()) == {cls for cls in kinds if not cls.__name__.startswith("_")}
    assert {"FileResource", "DirectoryResource", "DockerServiceResource"} <= set(RESOURCE_TYPES)
    for name, kind in RESOURCE_TYPES.items():
        assert getattr(clockwork.resources, name) is kind and name in clockwork.resources.__all__
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchResource'"):
        clockwork.resources.NoSuchResource  # noqa: B018 (the attribute access is the test)


def test_a_kind_registers_itself_when_defined_and_bases_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "RESOURCE_TYPES", {})

    class _Base(Resource):
        pass

    class Volume(_Base):
        pass

    assert base.RESOURCE_TYPES == {"Volume": Volume}


def test_a_class_that_a_project_file_defines_is_not_registered(tmp_path: Path) -> None:
    from clockwork.project import load_resources

    main = tmp_path / "main.py"
    main.write_text("from clockwork.resources import FileResource\n\n"
                    "class FileResource(FileResource):\n    pass\n\n"
                    "class Motd(FileResource):\n    pass\n\nmotd = Motd(name='motd')\n")
    assert [resource.type_name for resource in load_resources(main)] == ["Motd"]
    assert "Motd" not in RESOURCE_TYPES and RESOURCE_TYPES["FileResource"].__module__ == "clockwork.resources.files"


def test_two_kinds_of_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "RESOURCE_TYPES", {"FileResource": RESOURCE_TYPES["FileResource"]})
    with pytest.raises(TypeError, match="two resource kinds are named FileResource: in clockwork.resources.files and in "
                                        "tests.test_kinds"):
        class FileResource(Resource):  # noqa: F811 (the clash is the test)
            pass


# What kinds declare --------------------------------------------------------------------------


def test_identity_fields() -> None:
    assert Resource.identity_fields == ("name", "hosts")
    assert FileResource.identity_fields == DirectoryResource.identity_fields == ("name", "directory", "hosts")
    assert DockerServiceResource.identity_fields == ("name", "hosts")
    for kind in RESOURCE_TYPES.values():
        assert set(kind.identity_fields) <= set(kind.model_fields)
        assert not set(kind.identity_fields) & set(kind.completable_fields)


def test_privileged_is_declared_by_each_kind() -> None:
    assert Resource.privileged is False
    assert all(isinstance(kind.privileged, bool) for kind in RESOURCE_TYPES.values())
    assert not (FileResource.privileged or DirectoryResource.privileged or DockerServiceResource.privileged)


def test_hashed_fields_are_shown_as_their_sha1() -> None:
    config = FileResource(name="app.conf", content="hello\n", mode="640")
    assert config.shown_value("content") == "sha1:f572d396fae9206628714fb2ce00f72e94f2258f"
    assert config.shown_value("mode") == "640"


class _Account(Resource):
    """A kind for this test only (its name keeps it out of the registry)."""

    hash: str = ""
    masked_fields = ("hash",)


def test_masked_fields_never_show_their_value() -> None:
    account = _Account(name="deploy", hash="$6$salt$abc")
    assert account.shown()["hash"] == REDACTED and account.shown_value("hash") == REDACTED
    diff = account.diff("hash", "$6$salt$abc", "$6$salt$old")
    assert diff.as_dict() == {"field": "hash", "expected": REDACTED, "actual": REDACTED}
    assert diff.describe() == f"hash {REDACTED}, wanted {REDACTED}"
    assert "_Account" not in RESOURCE_TYPES


@pytest.mark.parametrize(("resource", "diff", "wording"), [
    (FileResource(name="a"), ("content", "sha1:9f3c0000", "sha1:ab120000"), "content differs (sha1 ab12… wanted 9f3c…)"),
    (FileResource(name="a"), ("content", "sha1:9f3c0000", "sha1:unreadable"), "content differs (sha1 unreadable wanted 9f3c…)"),
    (FileResource(name="a"), ("present", True, False), "missing"),
    (FileResource(name="a"), ("mode", "640", "644"), "mode 644, wanted 640"),
    (DockerServiceResource(name="web"), ("running", True, False), "stopped, wanted running"),
    (DockerServiceResource(name="web"), ("running", False, True), "running, wanted stopped"),
    (DockerServiceResource(name="web"), ("present", False, True), "present, wanted absent"),
    (DockerServiceResource(name="web"), ("env_vars.MODE", None, "dev"), "env_vars.MODE set, wanted unset"),
    (DockerServiceResource(name="web"), ("ports", ["8080:80"], []), "ports none, wanted 8080:80"),
])
def test_each_kind_words_its_own_diffs(resource: Resource, diff: tuple, wording: str) -> None:
    assert resource.diff(*diff).describe() == wording


def test_a_plain_diff_reads_generically() -> None:
    assert Diff("content", "sha1:9f3c", "sha1:ab12").describe() == "content sha1:ab12, wanted sha1:9f3c"


@pytest.mark.parametrize(("diffs", "summary"), [
    ([("present", True, False)], "created"),
    ([("present", False, True)], "removed"),
    ([("mode", "640", "644"), ("owner", "app", "root"), ("mode", "1", "2")], "updated mode, owner"),
    ([("env_vars.A", "1", None), ("env_vars.B", None, "2"), ("image", "b", "a")], "updated env_vars, image"),
])
def test_change_summary(diffs: list[tuple], summary: str) -> None:
    resource = DockerServiceResource(name="web")
    assert resource.change_summary(resource.diffs(diffs)) == summary


def test_offline_completion_comes_from_the_kinds_catalogs() -> None:
    assert DockerServiceResource(name="sessions", description="Redis cache").complete_offline(["image"]) == {
        "image": "redis:7.4-alpine"}
    assert DockerServiceResource(name="x", description="something nobody knows").complete_offline(["image"]) == {}
    assert FileResource(name="motd", description="nginx welcome").complete_offline(["content"]) == {}


def test_a_found_file_holds_its_content_by_sha1() -> None:
    from clockwork.facts.paths import Paths

    info = {"type": "file", "mode": "640", "user": "app", "group": "staff", "sha1": "f572d396fae9206628714fb2ce00f72e94f2258f"}
    declared = FileResource(name="app.conf", directory="/etc", content="other\n", description="the app's settings")
    found = declared.from_observed(Target("web-1"), Observed({Paths: {"/etc/app.conf": info}}))
    assert found is not None
    assert found.spec(include={"name", "directory", "content", "mode", "owner", "group", "description"}) == {
        "name": "app.conf", "directory": "/etc", "content": held("sha1", info["sha1"]), "mode": "640", "owner": "app",
        "group": "staff", "description": "the app's settings"}


# The README's resource reference -----------------------------------------------------------------


def _docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs", REPO / "scripts" / "docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_reference_is_generated_from_the_kinds() -> None:
    readme = (REPO / "README.md").read_text()
    assert _docs().with_reference(readme) == readme, "README.md is stale: run `make docs`"


def test_reference_shows_every_field_of_every_kind_with_its_description() -> None:
    reference = _docs().reference()
    for kind in RESOURCE_TYPES.values():
        section = reference.split(f"### `{kind.__name__}`\n")[1].split("\n### ")[0]
        assert kind.__doc__ is not None and " ".join(kind.__doc__.split("\n\n")[0].split()).replace("``", "`") in section
        for name, field in kind.model_fields.items():
            if name not in Resource.model_fields or field.description != Resource.model_fields[name].description:
                assert f"| `{name}` |" in section and str(field.description).replace("|", "\\|") in section
