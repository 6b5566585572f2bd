"""``response_format: json_schema`` on B1: the schema goes into the prompt, the answer is checked."""

from __future__ import annotations

import json

import litellm
import pytest

from litellm_alipay.emulator.model import schema_instance
from litellm_alipay.transforms import chat_biz_content, check_structured
from litellm_alipay.wire.schema_prompt import INSTRUCTION_HEAD, schema_in_messages

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
FORMAT = {"type": "json_schema", "json_schema": {"name": "Person", "schema": SCHEMA, "strict": True}}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "name=Ann age=41"}]


def test_schema_travels_in_a_system_message_after_the_callers_own():
    biz = chat_biz_content("m1", MESSAGES, {"response_format": FORMAT})
    assert biz["response_format"] == {"type": "json_object"}  # what B1 takes
    roles = [m["role"] for m in biz["messages"]]
    assert roles == ["system", "system", "user"]
    assert biz["messages"][1]["content"].startswith(INSTRUCTION_HEAD + " (name: Person):")
    assert schema_in_messages(biz["messages"]) == SCHEMA  # the schema itself, not a paraphrase


def test_json_object_adds_no_instruction():
    biz = chat_biz_content("m1", MESSAGES, {"response_format": {"type": "json_object"}})
    assert schema_in_messages(biz["messages"]) is None and len(biz["messages"]) == 2


def test_conforming_answer_passes_and_a_violation_is_a_typed_error_naming_the_place():
    biz = chat_biz_content("m1", MESSAGES, {"response_format": FORMAT})
    check_structured("m1", biz, json.dumps({"name": "Ann", "age": 41}))
    with pytest.raises(litellm.JSONSchemaValidationError) as info:
        check_structured("m1", biz, json.dumps({"name": "Ann", "age": "41"}))
    assert "'Person' not met at age: '41' is not of type 'integer'" in str(info.value)
    assert info.value.raw_response == '{"name": "Ann", "age": "41"}'
    with pytest.raises(litellm.JSONSchemaValidationError, match="not JSON"):
        check_structured("m1", biz, "Sure! Here is the JSON")


def test_tool_calls_and_plain_requests_are_not_checked():
    biz = chat_biz_content("m1", MESSAGES, {"response_format": FORMAT})
    check_structured("m1", biz, None)  # a tool call has no text to check
    check_structured("m1", chat_biz_content("m1", MESSAGES, {}), "not json at all")


@pytest.mark.parametrize(("response_format", "field"), [
    ({"type": "json_schema"}, "response_format.json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}},
     "response_format.json_schema.schema is not a valid JSON Schema"),
])
def test_malformed_schema_is_a_bad_request_naming_the_field(response_format, field):
    with pytest.raises(litellm.BadRequestError, match=field.replace(".", r"\.")):
        chat_biz_content("m1", MESSAGES, {"response_format": response_format})


def test_emulator_instance_follows_refs_enums_and_values():
    schema = {"$defs": {"Addr": {"type": "object", "properties": {"city": {"type": "string"}}}},
              "type": "object", "properties": {
                  "addr": {"$ref": "#/$defs/Addr"}, "tier": {"enum": ["gold", "silver"]},
                  "tags": {"type": "array", "items": {"type": "string"}},
                  "score": {"anyOf": [{"type": "number"}, {"type": "null"}]}, "ok": {"type": "boolean"}}}
    value = schema_instance(schema, {"city": "杭州", "score": "2.5"}, "You said: x")
    assert value == {"addr": {"city": "杭州"}, "tier": "gold", "tags": ["You said: x"], "score": 2.5, "ok": False}
