"""Settings: ``CW_``-prefixed variables from the environment or the project's ``.env`` (the environment wins)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

from clockwork.exceptions import ProjectError


@dataclass(frozen=True)
class Settings:
    """Every setting Clockwork reads; ``None`` when not set.

    >>> load_settings(Path("."), environ={"CW_MODEL": "qwen2.5:7b"}).model
    'qwen2.5:7b'
    """

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    model_timeout: str | None = None
    lock_timeout: str | None = None
    state_url: str | None = None
    alert_webhook_url: str | None = None
    alert_slack_webhook_url: str | None = None
    alert_email_to: str | None = None
    smtp_host: str | None = None
    smtp_port: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    flapping_limit: str | None = None


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (shell quoting, ``#`` comments, ``export`` allowed)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        if not equals or not key.strip().isidentifier():
            raise ProjectError(f".env:{number}: not a KEY=VALUE line")
        try:
            words = shlex.split(value, comments=True)
        except ValueError as error:
            raise ProjectError(f".env:{number}: {error}") from None
        values[key.strip()] = " ".join(words)
    return values


def load_settings(project_dir: Path, environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``project_dir/.env`` overridden by the environment."""
    dotenv = project_dir / ".env"
    values = read_dotenv(dotenv) if dotenv.is_file() else {}
    values.update(os.environ if environ is None else environ)
    return Settings(**{
        field.name: values.get(f"CW_{field.name.upper()}") or None for field in fields(Settings)
    })
