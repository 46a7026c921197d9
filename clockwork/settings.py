"""Settings: ``CW_``-prefixed variables from the environment or the project's ``.env`` (the environment wins),
typed and validated once, when a command starts."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clockwork.durations import parse_duration
from clockwork.exceptions import SettingsError


def _name(field: str) -> str:
    return f"CW_{field.upper()}"


class Settings(BaseModel):
    """Every setting Clockwork reads, each read from ``CW_<FIELD NAME>``; durations are seconds.

    >>> load_settings(Path("."), environ={"CW_MODEL": "qwen2.5:7b", "CW_LOCK_TIMEOUT": "2m"}).lock_timeout
    120
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(None, description="the model that completes left-out fields")
    base_url: str | None = Field(None, description="an OpenAI-compatible API (default https://api.openai.com/v1)")
    api_key: str | None = Field(None, description="its API key", repr=False)
    model_timeout: int = Field(60, description="how long to wait for the model (a duration)")
    lock_timeout: int = Field(30, description="how long a writer waits for another one (a duration)")
    state_url: str | None = Field(None, description="a postgresql:// database that holds the state (default .clockwork/state.db)",
                                  repr=False)
    project: str | None = Field(None, description="the project's name in a shared state database (default: its directory's name)")
    reconcile_lease: int = Field(60, description="how long a reconcile worker holds a host it claimed without a heartbeat (a duration)")
    reconcile_capacity: int = Field(100, description="how many hosts one reconcile worker takes on at once")
    alert_webhook_url: str | None = Field(None, description="an Alertmanager-format webhook receiver")
    alert_slack_webhook_url: str | None = Field(None, description="a Slack incoming webhook")
    alert_alertmanager_urls: list[str] = Field(default_factory=list, description="Alertmanager base URLs, comma-separated "
                                               "(every instance of a cluster): each gets the active alerts by its API")
    alert_apprise_urls: list[str] = Field(default_factory=list, description="apprise URLs, comma-separated "
                                          "(needs `pip install clockwork[apprise]`)", repr=False)
    alert_email_to: list[str] = Field(default_factory=list, description="e-mail recipients, comma-separated")
    smtp_host: str | None = Field(None, description="the SMTP server for e-mail alerts")
    smtp_port: int = Field(25, description="its port")
    smtp_user: str | None = Field(None, description="its user name")
    smtp_password: str | None = Field(None, description="its password", repr=False)
    smtp_from: str = Field(default_factory=lambda: f"clockwork@{socket.gethostname()}", description="the sender")
    flapping_limit: int = Field(5, description="corrections per hour after which a resource is left alone")
    parallel: int | None = Field(None, description="how many hosts a command connects to at once (default: what the "
                                 "open-file limit allows, at most 1000); `--parallel` overrides it")

    @field_validator("model_timeout", "lock_timeout", "reconcile_lease", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_duration(value)
        except ValueError:
            raise ValueError(f"must be a duration such as '30s' or '2m', not {value!r}") from None

    @field_validator("base_url", "alert_webhook_url", "alert_slack_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, not {value!r}")
        return value

    @field_validator("alert_alertmanager_urls", mode="before")
    @classmethod
    def _http_urls(cls, value: Any) -> Any:
        return _each(_split(value, "http:// or https:// URLs"), cls._http_url)

    @field_validator("alert_apprise_urls", mode="before")
    @classmethod
    def _apprise_urls(cls, value: Any) -> Any:
        return _each(_split(value, "apprise URLs"), _apprise_url)

    @field_validator("state_url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            scheme, found, _rest = value.partition("://")  # never more of it: the rest may hold a password
            what = f"{scheme}://…" if found and scheme.isalnum() else "something else"
            raise ValueError(f"must be a postgresql:// URL (or unset for .clockwork/state.db), not {what}")
        return value

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 200 or not value.isprintable()):
            raise ValueError("must be a printable name of at most 200 characters")
        return value

    @field_validator("alert_email_to", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        addresses = [address.strip() for address in value.split(",") if address.strip()]
        if not addresses or any("@" not in address for address in addresses):
            raise ValueError(f"must be e-mail addresses, comma-separated, not {value!r}")
        return addresses

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if isinstance(value, str) and (not value.isdigit() or not 1 <= int(value) <= 65535):
            raise ValueError(f"must be a port number (1-65535), not {value!r}")
        return value

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(f"must be an e-mail address, not {value!r}")
        return value

    @field_validator("flapping_limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        if isinstance(value, str) and (not value.isdigit() or int(value) < 1):
            raise ValueError(f"must be a whole number of corrections per hour (1 or more), not {value!r}")
        return value

    @field_validator("reconcile_capacity", "reconcile_lease", "parallel")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be 1 or more, not {value!r}")
        return value

    @model_validator(mode="after")
    def _email_needs_smtp(self) -> Settings:
        if self.alert_email_to and not self.smtp_host:
            raise ValueError("CW_ALERT_EMAIL_TO is set but CW_SMTP_HOST is not: set the SMTP server to send e-mail through")
        return self


def _split(value: Any, what: str) -> Any:
    """A comma-separated setting as a list (empty parts left out; none at all is an error); a list as it is."""
    if not isinstance(value, str):
        return value
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise ValueError(f"must be {what}, comma-separated, not {value!r}")
    return parts


def _each(values: Any, check: Callable[[str], object]) -> Any:
    """``values`` when it is a list, after ``check`` raised for none of them."""
    for value in values if isinstance(values, list) else []:
        check(value)
    return values


def _apprise_url(url: str) -> None:
    scheme, separator, rest = url.partition("://")
    if not (separator and scheme.isidentifier() and rest):
        raise ValueError(f"must be apprise URLs such as 'ntfy://host/topic', comma-separated, not {url!r}")


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (shell quoting, ``#`` comments, ``export`` allowed)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        if not equals or not key.strip().isidentifier():
            raise SettingsError(f".env:{number}: not a KEY=VALUE line")
        try:
            words = shlex.split(value, comments=True)
        except ValueError as error:
            raise SettingsError(f".env:{number}: {error}") from None
        values[key.strip()] = " ".join(words)
    return values


def load_settings(project_dir: Path, environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``project_dir/.env`` overridden by the environment (an empty value is unset);
    a bad value is a ``SettingsError`` naming the variable."""
    dotenv = project_dir / ".env"
    values = read_dotenv(dotenv) if dotenv.is_file() else {}
    values.update(os.environ if environ is None else environ)
    given = {field: values[_name(field)] for field in Settings.model_fields if values.get(_name(field))}
    try:
        return Settings.model_validate(given)
    except ValidationError as error:
        problem = error.errors()[0]
        message = str(problem["msg"]).removeprefix("Value error, ")
        if not problem["loc"]:
            raise SettingsError(message) from None
        field = str(problem["loc"][0])
        if problem["type"] in ("int_parsing", "int_type"):
            message = f"must be a whole number, not {given.get(field)!r}"
        raise SettingsError(f"{_name(field)} {message}") from None
