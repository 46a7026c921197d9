"""Secret references, masking and the keyed hashes kept instead of secret values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clockwork.exceptions import ProjectError
from clockwork.resources import DockerServiceResource, FileResource, Secret
from clockwork.results import Diff
from clockwork.secrets import (
    KNOWN, MaskingFilter, Resolver, SecretError, held, keyed_hash, mask_text, mask_value, matches_held, protect,
    references,
)


@pytest.mark.parametrize("reference", ["", "env:", "vault:x", "env:1BAD", "env:A B", "file:"])
def test_a_bad_reference_is_refused_where_it_is_written(reference: str) -> None:
    with pytest.raises(SecretError, match=r"Secret\("):
        Secret(reference)
    assert issubclass(SecretError, ProjectError), "exit status 2"


def test_references_resolve_from_the_environment_then_dotenv_then_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FROM_DOTENV='dotenv value'\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db.txt").write_text("from a file\n")
    resolver = Resolver(tmp_path, environ={"FROM_ENV": "env value"})
    spec = {"content": f"a={Secret('env:FROM_ENV')} b={Secret('env:FROM_DOTENV')}",
            "env_vars": {"DB": Secret("file:secrets/db.txt")}}
    assert references(spec) == ["env:FROM_DOTENV", "env:FROM_ENV", "file:secrets/db.txt"]
    assert resolver.resolve(spec, "X 'y'") == {"content": "a=env value b=dotenv value", "env_vars": {"DB": "from a file"}}


def test_an_unresolvable_reference_names_the_resource_and_field(tmp_path: Path) -> None:
    resolver = Resolver(tmp_path, environ={})
    resource = DockerServiceResource(name="api", image="api:1", env_vars={"DB": Secret("file:secrets/none.txt")})
    with pytest.raises(SecretError) as error:
        resource.resolved(resolver)
    assert str(error.value) == (
        f"DockerServiceResource 'api'.env_vars.DB: Secret('file:secrets/none.txt') cannot be resolved: "
        f"{tmp_path}/secrets/none.txt cannot be read (No such file or directory)")


def test_a_resource_keeps_its_references_and_its_resolved_copy_holds_the_values(tmp_path: Path) -> None:
    resource = FileResource(name="db.conf", content=f"password = {Secret('env:PW_A')}\n")
    resolved = resource.resolved(Resolver(tmp_path, environ={"PW_A": "hunter22"}))
    assert resource.content == "password = \u27e6secret:env:PW_A\u27e7\n"
    assert resolved.content == "password = hunter22\n"
    assert resource.shown()["content"] == "password = <secret env:PW_A>\n"
    plain = FileResource(name="plain.conf", content="x\n")
    assert plain.resolved(Resolver(tmp_path, environ={})) is plain


@pytest.mark.parametrize(("text", "masked"), [
    ("db_password = hunter2", "db_password = ***"),
    ('db_pass = "correct horse staple"', 'db_pass = "***"'),
    ("api_key: 'two words'", "api_key: '***'"),
    ('{"token": "a b c", "mode": "prod"}', '{"token": "***", "mode": "prod"}'),
    ("url = postgres://app:pw@db/app", "url = postgres://app:***@db/app"),
    ("DATABASE_URL=mysql://root:s3cr3t@127.0.0.1:3306/x", "DATABASE_URL=mysql://root:***@127.0.0.1:3306/x"),
    ("nothing = here", "nothing = here"),
])
def test_masking_catches_quoted_values_and_url_passwords(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_values_resolved_in_this_process_are_masked_anywhere(tmp_path: Path) -> None:
    Resolver(tmp_path, environ={"PLAIN_NAME": "v3ry-uniq-value"}).value("env:PLAIN_NAME", "X 'y'", "content")
    assert mask_text("the value is v3ry-uniq-value.") == "the value is ***."
    assert Diff("env_vars.URL", "v3ry-uniq-value", None).describe() == "env_vars.URL unset, wanted ***"
    assert Diff("env_vars.API_TOKEN", "x", "y").as_dict() == {
        "field": "env_vars.API_TOKEN", "expected": "<redacted>", "actual": "<redacted>"}
    assert mask_value({"env_vars": {"DATABASE_URL": "postgres://app:pw@db/app"}}) == {
        "env_vars": {"DATABASE_URL": "postgres://app:***@db/app"}}
    record = logging.LogRecord("pyinfra", logging.INFO, __file__, 1, "content=%s", ("v3ry-uniq-value " * 300,), None)
    assert MaskingFilter(limit=100).filter(record)
    assert "v3ry" not in record.getMessage() and record.getMessage().endswith("more characters)")
    assert KNOWN.mask("v3ry-uniq-value") == "***"


def test_plain_values_under_secret_names_are_kept_only_as_keyed_hashes() -> None:
    key, other = b"k" * 32, b"o" * 32
    spec = {"env_vars": {"API_TOKEN": "s3cr3t", "MODE": "prod", "DB_PASSWORD": str(Secret("env:DB"))},
            "content": "password = hunter2\n"}
    stored = protect(spec, key)
    assert stored["env_vars"]["MODE"] == "prod"
    assert stored["env_vars"]["DB_PASSWORD"] == spec["env_vars"]["DB_PASSWORD"], "a reference is kept as it is"
    assert stored["content"] == "password = hunter2\n", "content is kept exactly"
    placeholder = stored["env_vars"]["API_TOKEN"]
    assert "s3cr3t" not in placeholder and placeholder.startswith("\u27e6hmac:")
    assert matches_held(placeholder, "s3cr3t", key) and not matches_held(placeholder, "other", key)
    assert protect(spec, other)["env_vars"]["API_TOKEN"] != placeholder, "keyed, not a plain hash"
    assert keyed_hash(key, "x") != keyed_hash(other, "x")
    assert mask_value({"x": held("hmac", "ab" * 16)}) == {"x": "<redacted>"}
