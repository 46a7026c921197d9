"""Jinja2 templates of files, rendered on the controller for one host at a time.

Undefined variables are errors (never an empty string), and a template's final
newline is kept (Jinja drops it by default, which silently breaks files such as
``/etc/cron.d`` entries). A template sees its ``vars`` and ``host``: the host's
``name``, its inventory ``data`` and its ``groups``.

>>> render("port={{ port }}\\n", "app.conf.j2", {"port": 8080}, TemplateHost("web-1"))
'port=8080\\n'
>>> render("{{ host.name }} in {{ host.groups | join(',') }}\\n", "motd.j2", {}, TemplateHost("web-1", groups=("web",)))
'web-1 in web\\n'
>>> render("port={{ prot }}\\n", "app.conf.j2", {"port": 8080}, TemplateHost("web-1"))
Traceback (most recent call last):
clockwork.templates.TemplateError: app.conf.j2:1: 'prot' is undefined (rendering for web-1)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from clockwork.exceptions import ProjectError


class TemplateError(ProjectError):
    """A template cannot be read, parsed or rendered; names the template and its line (exit status 2)."""


@dataclass(frozen=True)
class TemplateHost:
    """The host a template is rendered for, as ``host`` in the template: ``host.name``, ``host.data.port``
    (its inventory data; connection settings such as ``ssh_key`` are left out), ``host.groups``."""

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()


_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,  # noqa: S701 (files, not HTML)
)


@functools.lru_cache(maxsize=256)
def compile_template(text: str, name: str) -> jinja2.Template:
    """The compiled template (cached by text); a syntax error names ``name`` and its line."""
    try:
        return _ENVIRONMENT.from_string(text)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{name}:{error.lineno}: {error.message}") from None


def render(text: str, name: str, variables: Mapping[str, Any], host: TemplateHost) -> str:
    """``text`` (the template ``name``) rendered with ``variables`` and ``host``."""
    template = compile_template(text, name)
    try:
        return template.render({**variables, "host": host})
    except jinja2.TemplateError as error:
        raise TemplateError(f"{name}:{_line(error)}: {error.message or type(error).__name__} "
                            f"(rendering for {host.name})") from None
    except Exception as error:  # noqa: BLE001 (a filter or an operation in the template failed: the user's to fix)
        raise TemplateError(f"{name}:{_line(error)}: {type(error).__name__}: {error} (rendering for {host.name})") from None


def _line(error: BaseException) -> int | str:
    """The template line where ``error`` was raised (Jinja gives template frames the file name ``<template>``)."""
    line: int | str = "?"
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
