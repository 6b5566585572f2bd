"""Structured output (``response_format: json_schema``) on a backend that knows only ``json_object``.

B1 takes ``{"type": "json_object"}`` and no schema. Dropping the schema silently would break every
client that validates the answer (the OpenAI SDK's ``parse()``, LangChain's ``with_structured_output``),
so the schema is honoured the other way: it is sent to the model in a system message
(``schema_prompt.instruction``) together with ``json_object``, and the answer is validated against it
(``check_answer``): a non-conforming answer raises LiteLLM's ``JSONSchemaValidationError``
(never a silent downgrade).

Pure: no I/O. The emulator's deterministic model reads the same instruction back
(``schema_prompt.schema_in_messages``), as a real model reads its prompt.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from ..wire.schema_prompt import instruction, read_instruction
from ._errors import PROVIDER, bad_request


@dataclass(frozen=True)
class ResponseSchema:
    """The schema a caller asked the answer to conform to, checked once as a valid JSON Schema."""

    name: str
    schema: dict[str, Any]
    strict: bool


def response_schema(model: str, response_format: Any) -> ResponseSchema | None:
    """The requested schema of a ``json_schema`` response format, else None; a malformed one is a
    ``BadRequestError`` naming the field."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        raise bad_request(model, "response_format.json_schema must be an object with a 'schema'")
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise bad_request(model, "response_format.json_schema.schema must be a JSON Schema object")
    schema = dict(schema)
    problem = _schema_problem(json.dumps(schema, sort_keys=True, ensure_ascii=False))
    if problem:
        raise bad_request(model, f"response_format.json_schema.schema is not a valid JSON Schema: {problem}")
    return ResponseSchema(name=str(spec.get("name") or "response"), schema=schema,
                          strict=bool(spec.get("strict")))


@functools.lru_cache(maxsize=256)
def _schema_problem(text: str) -> str | None:
    """Checking a schema against its meta-schema costs milliseconds; a client sends the same few again."""
    schema = json.loads(text)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc.message
    return None


def with_instruction(messages: list[dict], requested: ResponseSchema) -> list[dict]:
    """``messages`` with the schema's system message after the leading system messages."""
    position = 0
    while position < len(messages) and messages[position].get("role") == "system":
        position += 1
    return [*messages[:position], instruction(requested.name, requested.schema), *messages[position:]]


def violation(requested: ResponseSchema, text: str | None) -> str | None:
    """Why ``text`` does not conform, or None when it does."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return "the answer is not JSON"
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(requested.schema)(requested.schema).iter_errors(value)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def check_answer(model: str, requested: ResponseSchema, text: str | None) -> None:
    """Raise ``litellm.JSONSchemaValidationError`` when the answer does not conform to the schema."""
    import litellm

    problem = violation(requested, text)
    if problem is None:
        return
    exc = litellm.JSONSchemaValidationError(
        model=model, llm_provider=PROVIDER, raw_response=text or "",
        schema=json.dumps(requested.schema, ensure_ascii=False),
    )
    exc.message = f"{exc.message}\nresponse_format.json_schema {requested.name!r} not met {problem}"
    exc.args = (exc.message,)
    raise exc


def expected(biz: Mapping[str, Any]) -> ResponseSchema | None:
    """The schema a built ``biz_content`` asks for (read back from its instruction message)."""
    found = read_instruction(biz.get("messages") or ())
    return None if found is None else ResponseSchema(name=found[0], schema=found[1], strict=True)


def check_structured(model: str, biz: Mapping[str, Any], text: str | None) -> None:
    """Validate an answer's text when ``biz`` asked for a schema; a tool call (no text) is not an answer."""
    requested = expected(biz)
    if requested is not None and text is not None:
        check_answer(model, requested, text)
