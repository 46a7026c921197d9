"""Secret references (``Secret("env:NAME")``), resolving them at run time, and masking what people read.

A ``Secret`` is a ``str`` whose text is a reference token, so it can stand for a
whole field or sit inside text (``f"password = {Secret('env:DB_PASSWORD')}\\n"``).
Specs keep the token; only the copies sent to hosts hold the value.

>>> token = Secret("env:DB_PASSWORD")
>>> references(f"password = {token}")
['env:DB_PASSWORD']
>>> mask_text('db_pass = "correct horse staple"')
'db_pass = "***"'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clockwork.exceptions import ProjectError

#: How a value kept only by a keyed hash reads in a stored spec or a manifest: ``⟦hmac:…⟧``.
_HELD = re.compile(r"\u27e6(hmac|sha1):([0-9a-f]{8,64})\u27e7")
_TOKEN = re.compile(r"\u27e6secret:((?:env|file):[^\u27e7\u27e6]+)\u27e7")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Field, key and variable names whose values are never shown (``API_TOKEN``, ``db_password``).
_SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
# ``name = value`` / ``"name": "value"`` assignments to secret-looking names inside text: a quoted
# value is masked up to its closing quote (several words), a bare one up to the next blank or separator.
_ASSIGNMENT = re.compile(
    r"""((?:pass|secret|token|key|credential|auth)[\w.-]*["']?\s*[:=]\s*)"""
    r"""(?:"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)'|([^\s"',;]+))""",
    re.IGNORECASE,
)
# ``scheme://user:password@host``: the password part of a URL's credentials.
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")

MASK = "***"
REDACTED = "<redacted>"


class SecretError(ProjectError):
    """A secret reference that is malformed or cannot be resolved (exit 2, before any host is touched)."""


class Secret(str):
    """A reference to a value kept outside the project: ``env:NAME`` (the environment, then ``.env``)
    or ``file:path`` (relative to the project directory; one trailing newline dropped).

    >>> from clockwork.resources import DockerServiceResource, FileResource
    >>> FileResource(name="db.conf", content=f"password = {Secret('env:DB_PASSWORD')}\\n").content
    'password = ⟦secret:env:DB_PASSWORD⟧\\n'
    >>> api = DockerServiceResource(name="api", image="api:1", env_vars={"DB_PASSWORD": Secret("file:secrets/db.txt")})
    >>> references(api.env_vars["DB_PASSWORD"])
    ['file:secrets/db.txt']
    """

    __slots__ = ()

    def __new__(cls, reference: str) -> Secret:
        scheme, colon, name = str(reference).partition(":")
        if not colon or scheme not in ("env", "file") or not name:
            raise SecretError(f"Secret({reference!r}): use Secret('env:NAME') or Secret('file:path')")
        if scheme == "env" and not _ENV_NAME.match(name):
            raise SecretError(f"Secret({reference!r}): {name!r} is not an environment variable name")
        if "\u27e6" in name or "\u27e7" in name or "\n" in name:
            raise SecretError(f"Secret({reference!r}): the reference holds characters a reference cannot hold")
        return super().__new__(cls, f"\u27e6secret:{scheme}:{name}\u27e7")

    @property
    def reference(self) -> str:
        return str(self)[len("\u27e6secret:"):-1]


def is_secret_name(name: str) -> bool:
    """Whether a field, key or variable name looks like it holds a secret (its values are never shown)."""
    return bool(_SECRET_NAME.search(name))


def strings(value: Any) -> list[str]:
    """Every string in a value or spec (mapping values and list items, nested)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in strings(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in strings(item)]
    return []


def references(value: Any) -> list[str]:
    """Every secret reference (``env:NAME``, ``file:path``) in a value or spec, sorted, each once."""
    return sorted({match for text in strings(value) for match in _TOKEN.findall(text)})


def transform(value: Any, change: Callable[[str, str], str], where: str = "") -> Any:
    """``value`` with each string replaced by ``change(text, where)``; ``where`` is the dotted field path."""
    if isinstance(value, str):
        return change(value, where)
    if isinstance(value, Mapping):
        return {key: transform(item, change, f"{where}.{key}".lstrip(".")) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [transform(item, change, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


class Resolver:
    """Turns references into values for one command; every value it hands out is masked in what people read.

    >>> resolver = Resolver(Path("."), environ={"DB_PASSWORD": "hunter2"})
    >>> resolver.resolve({"content": f"password = {Secret('env:DB_PASSWORD')}"}, "FileResource 'db.conf'")
    {'content': 'password = hunter2'}
    """

    def __init__(self, project_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.project_dir = project_dir
        self._environ = environ
        self._dotenv: dict[str, str] | None = None
        self._values: dict[str, str] = {}

    def _env(self, name: str) -> str | None:
        environ = os.environ if self._environ is None else self._environ
        if name in environ:
            return environ[name]
        if self._dotenv is None:
            from clockwork.settings import read_dotenv

            dotenv = self.project_dir / ".env"
            self._dotenv = read_dotenv(dotenv) if dotenv.is_file() else {}
        return self._dotenv.get(name)

    def value(self, reference: str, label: str, where: str) -> str:
        """The value a reference stands for; a ``SecretError`` naming resource and field when there is none.

        Each reference is read once per resolver (one command): what is applied and what its keyed hash
        records are the same value.
        """
        if reference in self._values:
            return self._values[reference]
        scheme, _, name = reference.partition(":")
        if scheme == "env":
            found = self._env(name)
            if found is None:
                raise SecretError(f"{label}.{where}: Secret('env:{name}') cannot be resolved: "
                                  f"{name} is not set in the environment or in .env")
        else:
            path = Path(name) if Path(name).is_absolute() else self.project_dir / name
            try:
                found = path.read_text()
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
                raise SecretError(f"{label}.{where}: Secret('file:{name}') cannot be resolved: "
                                  f"{path} cannot be read ({reason})") from None
            found = found[:-1] if found.endswith("\n") else found
        KNOWN.remember(found)
        self._values[reference] = found
        return found

    def resolve(self, spec: Any, label: str) -> Any:
        """``spec`` with every reference replaced by its value."""
        return transform(spec, lambda text, where: _TOKEN.sub(
            lambda match: self.value(match.group(1), label, where or "value"), text))

    def fingerprints(self, spec: Any, key: bytes, label: str) -> dict[str, str]:
        """Reference → keyed hash of its current value: how a store sees that a secret changed."""
        return {reference: keyed_hash(key, self.value(reference, label, "value")) for reference in references(spec)}


def keyed_hash(key: bytes, value: str) -> str:
    """``hmac:…``: an HMAC-SHA256 of ``value``, never a plain hash that a guess could be checked against."""
    return "hmac:" + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def held(kind: str, digest: str) -> str:
    """The placeholder for a value kept only by its hash: ``⟦hmac:…⟧`` or ``⟦sha1:…⟧``."""
    return f"\u27e6{kind}:{digest}\u27e7"


def held_digest(value: Any) -> tuple[str, str] | None:
    """``(kind, digest)`` when ``value`` is a placeholder made by ``held``, else ``None``."""
    match = _HELD.fullmatch(value) if isinstance(value, str) else None
    return (match.group(1), match.group(2)) if match else None


class _KnownValues:
    """Secret values resolved in this process: masked wherever text leaves for people or other systems."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def remember(self, value: str) -> None:
        if len(value) >= 3:
            self._values.add(value)

    def mask(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


#: The values resolved so far (a process-wide safety net for output, logs and alerts).
KNOWN = _KnownValues()


def mask_text(text: str) -> str:
    """Text as people may read it: resolved secrets, references, assignments to secret-looking names and
    URL passwords masked.

    >>> mask_text("url = postgres://app:pw@db/app")
    'url = postgres://app:***@db/app'
    """
    def assignment(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return f'{match.group(1)}"{MASK}"'
        if match.group(3) is not None:
            return f"{match.group(1)}'{MASK}'"
        return match.group(1) + MASK

    def plain(piece: str) -> str:
        piece = _HELD.sub(REDACTED, KNOWN.mask(piece))
        piece = _URL_CREDENTIALS.sub(lambda match: match.group(1) + MASK + match.group(3), piece)
        return _ASSIGNMENT.sub(assignment, piece)

    # References are not secret: they are shown as such, and the text around them masked on its own.
    pieces = _TOKEN.split(text)
    return "".join(plain(piece) if index % 2 == 0 else f"<secret {piece}>" for index, piece in enumerate(pieces))


def shows_secrets(text: str) -> bool:
    """Whether masking would hide part of ``text`` (besides the references, which are not secret)."""
    bare = _TOKEN.sub("", text)
    return mask_text(bare) != bare


def mask_value(value: Any, name: str = "") -> Any:
    """A value (or spec) as people may read it: see ``mask_text``; values under secret-looking keys become
    ``<redacted>`` unless they are references (shown as ``<secret env:NAME>``)."""
    if isinstance(value, Mapping):
        return {key: mask_value(item, str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item, name) for item in value]
    if isinstance(value, str):
        if name and is_secret_name(name) and not _TOKEN.fullmatch(value):
            return REDACTED
        return mask_text(value)
    return value


def protect(spec: Any, key: bytes) -> Any:
    """A spec as it may be stored: plain values under secret-looking names kept only as a keyed hash
    (``⟦hmac:…⟧``); references and everything else exactly as given."""

    def keep(text: str, where: str) -> str:
        name = where.rpartition(".")[2]
        if not name or not is_secret_name(name) or _TOKEN.fullmatch(text) or held_digest(text):
            return text
        return held("hmac", keyed_hash(key, text).removeprefix("hmac:"))

    return transform(spec, keep)


def matches_held(placeholder: str, value: str, key: bytes | None) -> bool:
    """Whether ``value`` is the one a ``⟦hmac:…⟧`` placeholder was made from (``key=None``: cannot tell, yes)."""
    found = held_digest(placeholder)
    if found is None or found[0] != "hmac" or key is None:
        return True
    return keyed_hash(key, value).removeprefix("hmac:") == found[1]


class MaskingFilter(logging.Filter):
    """Masks every log record (pyinfra prints operation arguments, file content included, at ``-vv``)
    and cuts it to ``limit`` characters.

    .. code:: python

        logging.getLogger("pyinfra").handlers[0].addFilter(MaskingFilter())
    """

    def __init__(self, limit: int = 2000) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        text = mask_text(record.getMessage())
        if len(text) > self.limit:
            text = f"{text[:self.limit]}… ({len(text) - self.limit} more characters)"
        record.msg, record.args = text, None
        return True
