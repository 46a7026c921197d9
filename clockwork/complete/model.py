"""Completion by a model behind an OpenAI-compatible chat API (LM Studio, Ollama, vLLM, OpenRouter, OpenAI).

Plain HTTP with the standard library: no SDK to import. The answer is asked for as
JSON following a schema, checked with ``jsonschema``, and retried once when invalid.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import jsonschema

from clockwork.exceptions import CompletionError

SYSTEM_PROMPT = (
    "You complete deployment resources for Clockwork, a declarative deploy tool. "
    "You get a resource's type, name, description and given fields, and the JSON schema of the fields "
    "to fill. Answer with one JSON object holding exactly those fields, nothing else. Prefer pinned, "
    "widely used versions (for images, an explicit tag, never 'latest')."
)


class ModelClient:
    """A chat-completions client for one server and model.

    .. code:: python

        client = ModelClient("http://127.0.0.1:1234/v1", "qwen2.5-7b-instruct", api_key=None, timeout=60)
        client.complete(request={...}, schema={...}, label="DockerServiceResource 'web'", check=validate)  # {'image': 'nginx:1.27-alpine'}
    """

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def complete(
        self, request: dict[str, Any], schema: dict[str, Any], label: str, check: Callable[[dict[str, Any]], object]
    ) -> dict[str, Any]:
        """Ask for the fields of ``schema``; ``check`` validates an answer further (raising ``ValueError``).

        An invalid answer is sent back once with the problem; a second one is a ``CompletionError``.
        """
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps({"resource": request, "schema": schema}, sort_keys=True)},
        ]
        for attempt in (1, 2):
            content = self._chat(messages, schema, label)
            try:
                answer = _parse(content)
                jsonschema.validate(answer, schema)
                check(answer)
                return answer
            except (ValueError, jsonschema.ValidationError) as error:
                problem = error.message if isinstance(error, jsonschema.ValidationError) else str(error)
                if attempt == 2:
                    raise CompletionError(f"completion of {label}: the model's answer was invalid twice: {problem}") from None
                messages += [
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": f"That answer is invalid ({problem}). Answer again with JSON that follows the schema."},
                ]
        raise AssertionError("unreachable")

    def _chat(self, messages: list[dict[str, str]], schema: dict[str, Any], label: str) -> str:
        body = json.dumps({
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "completion", "strict": True, "schema": schema}},
        }).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read(300).decode(errors="replace").strip()
            raise CompletionError(f"completion of {label}: the model server answered HTTP {error.code}: {detail or error.reason}") from None
        except TimeoutError:
            raise CompletionError(f"completion of {label}: the model server did not answer within {self.timeout:g}s ({self.url})") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, (TimeoutError, socket.timeout)):
                raise CompletionError(f"completion of {label}: the model server did not answer within {self.timeout:g}s ({self.url})") from None
            raise CompletionError(f"completion of {label}: cannot reach the model server at {self.url}: {error.reason}") from None
        except ValueError:
            raise CompletionError(f"completion of {label}: the model server's reply is not JSON") from None
        try:
            return document["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise CompletionError(f"completion of {label}: the model server's reply has no choices[0].message.content") from None


def _parse(content: str) -> Any:
    """The JSON object in a reply, allowing a Markdown code fence around it."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the answer is not a JSON object")
    return value
