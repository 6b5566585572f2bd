"""How a JSON Schema travels to a model that takes no schema parameter: one system message.

B1 knows ``response_format: {"type": "json_object"}`` only, so a ``json_schema`` request carries its
schema in the prompt. The wording lives here, stdlib only, because both sides read it: the provider
writes it (``transforms/structured.py``) and the emulator's deterministic model reads it back
(``emulator/model.py``) as a real model reads its prompt — without importing LiteLLM.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: The first line of the system message that carries a schema.
INSTRUCTION_HEAD = "Answer with exactly one JSON object and nothing else. It must conform to this JSON Schema"


def instruction(name: str, schema: Mapping[str, Any]) -> dict[str, str]:
    """The system message that carries ``schema`` to the model."""
    text = json.dumps(schema, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return {"role": "system", "content": f"{INSTRUCTION_HEAD} (name: {name}):\n{text}"}


def read_instruction(messages: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """``(name, schema)`` of the ``instruction`` message among ``messages``, if any."""
    for message in messages:
        content = message.get("content")
        if message.get("role") == "system" and isinstance(content, str) and content.startswith(INSTRUCTION_HEAD):
            head, _, body = content.partition("\n")
            name = head[len(INSTRUCTION_HEAD):].removeprefix(" (name: ").removesuffix("):")
            try:
                schema = json.loads(body)
            except ValueError:
                return None
            return (name, schema) if isinstance(schema, dict) else None
    return None


def schema_in_messages(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The schema an ``instruction`` message carries, if any."""
    found = read_instruction(messages)
    return found[1] if found else None
