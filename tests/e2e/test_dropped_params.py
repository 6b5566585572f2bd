"""With the shipped ``drop_params: true``, what a client asked for and does not get is named in the answer's
``x-litellm-alipay-dropped-params`` header — through the real proxy, with the OpenAI SDK — instead of
vanishing (``n=2``, ``logprobs``, embedding ``dimensions`` and ``encoding_format=base64``)."""

from __future__ import annotations

import pytest

from litellm_alipay.transforms import DROPPED_HEADER

from .proxy_process import openai_client

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("model", ["fin-chat", "ling-flash"])  # the gateway and Ant Ling
def test_unhonoured_chat_parameters_are_named(proxy, alipay_emulator, model):
    raw = openai_client(proxy).chat.completions.with_raw_response.create(
        model=model, messages=HELLO, n=2, logprobs=True, top_logprobs=2)
    reply = raw.parse()
    assert len(reply.choices) == 1 and reply.choices[0].logprobs is None  # what was not honoured …
    assert raw.headers[DROPPED_HEADER].split(",") == ["n", "logprobs", "top_logprobs"]  # … is named


@pytest.mark.parametrize("model", ["fin-chat", "ling-flash"])
def test_a_request_that_asks_nothing_unhonoured_has_no_header(proxy, alipay_emulator, model):
    raw = openai_client(proxy).chat.completions.with_raw_response.create(model=model, messages=HELLO, n=1)
    assert raw.parse().choices[0].message.content == "You said: hello"
    assert DROPPED_HEADER not in raw.headers


def test_unhonoured_embedding_parameters_are_named(proxy, alipay_emulator):
    embeddings = openai_client(proxy).embeddings
    raw = embeddings.with_raw_response.create(model="fin-embed", input="hello", dimensions=8,
                                              encoding_format="base64")
    assert len(raw.parse().data[0].embedding) != 8  # the model's own size: dimensions was not honoured
    assert raw.headers[DROPPED_HEADER].split(",") == ["dimensions", "encoding_format"]
    plain = embeddings.with_raw_response.create(model="fin-embed", input="hello", encoding_format="float")
    assert DROPPED_HEADER not in plain.headers
