"""Structured output end to end: ``json_schema`` honoured in-process, through the real proxy with the
OpenAI SDK's ``parse()``, and with LangChain's ``with_structured_output`` — never downgraded silently."""

from __future__ import annotations

import json

import litellm
import openai
import pytest
from langchain_openai import ChatOpenAI
from litellm.exceptions import MidStreamFallbackError
from pydantic import BaseModel

from .proxy_process import MASTER_KEY, openai_client


class Address(BaseModel):
    city: str
    zip_code: int


class Payee(BaseModel):
    name: str
    amount: float
    address: Address
    verified: bool


ASK = "Pay name=Ann amount=12.5 city=Hangzhou zip_code=310000"
EXPECTED = Payee(name="Ann", amount=12.5, address=Address(city="Hangzhou", zip_code=310000), verified=False)
FORMAT = {"type": "json_schema", "json_schema": {"name": "Payee", "strict": True,
                                                 "schema": Payee.model_json_schema()}}


def test_in_process_answer_conforms(deployment):
    reply = litellm.completion(model="alipay/ant-fin-chat", response_format=FORMAT, **deployment,
                               messages=[{"role": "user", "content": ASK}])
    assert Payee.model_validate_json(reply.choices[0].message.content) == EXPECTED


async def test_streamed_answer_conforms(deployment):
    stream = await litellm.acompletion(model="alipay/ant-fin-chat", response_format=FORMAT, stream=True,
                                       messages=[{"role": "user", "content": ASK}], **deployment)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert Payee.model_validate_json(text) == EXPECTED


def test_non_conforming_answer_is_a_typed_error(deployment):
    with pytest.raises(litellm.JSONSchemaValidationError) as info:
        litellm.completion(model="alipay/ant-fin-chat", response_format=FORMAT, **deployment,
                           messages=[{"role": "user", "content": "Pay name=Ann amount=lots"}])
    assert "at amount: 'lots' is not of type 'number'" in str(info.value)


def test_non_conforming_stream_raises_at_its_end(deployment):
    stream = litellm.completion(model="alipay/ant-fin-chat", response_format=FORMAT, stream=True, **deployment,
                                messages=[{"role": "user", "content": "Pay name=Ann amount=lots"}])
    with pytest.raises(MidStreamFallbackError) as info:  # how LiteLLM wraps any mid-stream error
        for _ in stream:
            pass
    assert isinstance(info.value.original_exception, litellm.JSONSchemaValidationError)
    assert "'Payee' not met at amount: 'lots' is not of type 'number'" in str(info.value)


def test_openai_sdk_parse_through_the_proxy(proxy, alipay_emulator):
    """``drop_params: true`` in the shipped config does not make the schema disappear."""
    reply = openai_client(proxy).chat.completions.parse(
        model="fin-chat", messages=[{"role": "user", "content": ASK}], response_format=Payee)
    assert reply.choices[0].message.parsed == EXPECTED
    assert alipay_emulator.stats()["successes"] == 1  # answered by Alipay (the emulator), not a fallback


def test_non_conforming_answer_through_the_proxy_is_not_passed_on(proxy, alipay_emulator):
    client = openai_client(proxy)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.parse(model="fin-chat-lite", response_format=Payee,
                                      messages=[{"role": "user", "content": "Pay name=Ann amount=lots"}])
    assert "'lots' is not of type 'number'" in str(info.value)


def test_langchain_with_structured_output(proxy, alipay_emulator):
    llm = ChatOpenAI(model="fin-chat", base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    assert llm.with_structured_output(Payee).invoke(ASK) == EXPECTED  # LangChain's default: json_schema


def test_json_object_unchanged(deployment):
    reply = litellm.completion(model="alipay/ant-fin-chat", response_format={"type": "json_object"}, **deployment,
                               messages=[{"role": "user", "content": "hi"}])
    assert json.loads(reply.choices[0].message.content) == {"answer": "You said: hi"}


# ----------------------------------------------- Ant Ling (ling-flash): the same guarantee, not plain text
def test_openai_sdk_parse_on_ling_flash_through_the_proxy(proxy, alipay_emulator):
    reply = openai_client(proxy).chat.completions.parse(
        model="ling-flash", messages=[{"role": "user", "content": ASK}], response_format=Payee)
    assert reply.choices[0].message.parsed == EXPECTED
    sent = alipay_emulator.ant_ling_received()[-1]
    assert sent["response_format"] == {"type": "json_object"}  # the schema went in the prompt
    assert any(m["role"] == "system" and "JSON Schema" in m["content"] for m in sent["messages"])


def test_langchain_with_structured_output_on_ling_flash(proxy, alipay_emulator):
    llm = ChatOpenAI(model="ling-flash", base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    assert llm.with_structured_output(Payee).invoke(ASK) == EXPECTED


def test_non_conforming_ling_answer_through_the_proxy_is_not_passed_on(proxy, alipay_emulator):
    with pytest.raises(openai.APIStatusError) as info:
        openai_client(proxy).chat.completions.parse(
            model="ling-flash", response_format=Payee,
            messages=[{"role": "user", "content": "Pay name=Ann amount=lots"}])
    assert "'lots' is not of type 'number'" in str(info.value)


def test_streamed_ling_answer_is_checked_at_its_end(proxy, alipay_emulator):
    client = openai_client(proxy)
    with client.chat.completions.stream(model="ling-flash", response_format=Payee,
                                        messages=[{"role": "user", "content": ASK}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == EXPECTED
    with pytest.raises(openai.APIError) as info:
        with client.chat.completions.stream(model="ling-flash", response_format=Payee,
                                            messages=[{"role": "user", "content": "Pay name=Ann amount=lots"}]) as bad:
            bad.get_final_completion()
    assert "'lots' is not of type 'number'" in str(info.value)
