"""litellm.completion / acompletion / embedding against the real emulator over loopback."""

import json

import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError

ASK = [{"role": "user", "content": "What is my balance? 我的餘額是多少？"}]
ANSWER = "You said: What is my balance? 我的餘額是多少？"
TOOLS = [{"type": "function", "function": {
    "name": "refund_order", "description": "Refund a trade",
    "parameters": {"type": "object", "properties": {"trade_no": {"type": "string"},
                                                    "amount": {"type": "number"}}}}}]


def test_sync_chat_exact_text_usage_and_trace(deployment, alipay_emulator):
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    assert reply.choices[0].message.content == ANSWER
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    fields = reply.choices[0].message.provider_specific_fields
    assert fields["trace_id"]
    assert reply.id == "chatcmpl-" + fields["trace_id"]
    assert alipay_emulator.stats()["requests_by_app"][deployment["app_id"]] == 1


async def test_async_chat(deployment):
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    assert reply.choices[0].message.content == ANSWER


def test_sync_stream_concatenates_and_reports_usage(deployment):
    chunks = list(litellm.completion(model="alipay/ant-fin-chat", messages=ASK, stream=True,
                                     stream_options={"include_usage": True}, **deployment))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert len(chunks) > 2
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage and usage[-1].completion_tokens > 0


async def test_async_stream(deployment):
    stream = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **deployment)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == ANSWER


def test_tool_call(deployment):
    reply = litellm.completion(model="alipay/ant-fin-chat", tools=TOOLS, **deployment, messages=[
        {"role": "user", "content": "please refund_order trade_no=T1 amount=12.5"}])
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "refund_order"
    assert json.loads(call.function.arguments) == {"trade_no": "T1", "amount": 12.5}
    assert reply.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_assembles(deployment):
    chunks = list(litellm.completion(model="alipay/ant-fin-chat", tools=TOOLS, stream=True, **deployment,
                                     messages=[{"role": "user", "content": "refund_order trade_no=T9"}]))
    built = litellm.stream_chunk_builder(chunks)
    call = built.choices[0].message.tool_calls[0]
    assert call.function.name == "refund_order" and json.loads(call.function.arguments) == {"trade_no": "T9"}


def test_image_input_is_acknowledged(deployment):
    reply = litellm.completion(model="alipay/ant-fin-chat", **deployment, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/r.png"}}]}])
    assert reply.choices[0].message.content == "You said: What is this? [image 1: https://example.com/r.png]"


def test_embeddings_single_and_split_batches(deployment, alipay_emulator):
    one = litellm.embedding(model="alipay/ant-fin-embed", input="hello", **deployment)
    assert len(one.data) == 1
    many = litellm.embedding(model="alipay/ant-fin-embed", input=[f"t{i}" for i in range(70)] + ["hello"],
                             **deployment)
    assert [d["index"] for d in many.data] == list(range(71))
    assert many.data[70]["embedding"] == one.data[0]["embedding"]  # same text, same vector, order kept
    assert alipay_emulator.stats()["requests_by_app"][deployment["app_id"]] == 4  # 1 + 3 batches


async def test_async_embeddings(deployment):
    out = await litellm.aembedding(model="alipay/ant-fin-embed", input=["a", "b"], **deployment)
    assert len(out.data) == 2 and out.data[0]["embedding"] != out.data[1]["embedding"]


@pytest.mark.parametrize(
    ("messages", "model", "exc"),
    [
        ([{"role": "user", "content": "Forecast my income next year"}], "ant-fin-chat",
         litellm.ContentPolicyViolationError),
        (ASK, "no-such-model", litellm.NotFoundError),
        ([{"role": "user", "content": "x" * 40000}], "ant-fin-chat", litellm.ContextWindowExceededError),
    ],
)
def test_business_refusals_are_typed(deployment, messages, model, exc):
    with pytest.raises(exc) as info:
        litellm.completion(model=f"alipay/{model}", messages=messages, **deployment)
    assert info.value.sub_code.startswith("AI.")
    assert info.value.trace_id


def test_stall_past_read_timeout_is_a_litellm_timeout(deployment, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "stall", "seconds": 10, "next": 1}])
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, read_timeout=0.5, **deployment)


async def test_async_call_deadline_is_enforced(deployment, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "stall", "seconds": 10, "next": 1}])
    with pytest.raises(litellm.Timeout):
        await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, timeout=0.5, **deployment)


def test_bad_response_signature_is_an_error_never_content(deployment, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "bad_signature", "next": 1}])
    with pytest.raises(litellm.BadGatewayError):
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **deployment)


@pytest.mark.parametrize("kind", ["cut_stream", "bad_signature"])
def test_stream_without_valid_sign_event_raises(deployment, alipay_emulator, kind):
    alipay_emulator.set_faults([{"kind": kind, "next": 1}])
    # LiteLLM wraps errors raised mid-stream in MidStreamFallbackError so the Router can fall back.
    with pytest.raises(MidStreamFallbackError) as info:
        for _ in litellm.completion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **deployment):
            pass
    assert isinstance(info.value.original_exception, litellm.BadGatewayError)
    assert "sign" in str(info.value)


def test_wrong_key_is_an_authentication_error(deployment, alipay_emulator):
    from litellm_alipay.wire.signing import generate_private_key, private_key_forms

    wrong = {**deployment, "app_private_key": private_key_forms(generate_private_key())["private_pkcs8"]}
    with pytest.raises(litellm.AuthenticationError) as info:
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **wrong)
    assert info.value.sub_code == "isv.invalid-signature"


def test_missing_setting_names_the_setting(deployment, monkeypatch):
    monkeypatch.delenv("ALIPAY_APP_ID", raising=False)
    with pytest.raises(litellm.BadRequestError, match="app_id"):
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **{**deployment, "app_id": None})


def test_router_falls_back_on_system_error(deployment, alipay_emulator):
    router = litellm.Router(
        model_list=[
            {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat", **deployment}},
            {"model_name": "fin-chat-lite", "litellm_params": {"model": "alipay/ant-fin-chat-lite", **deployment}},
        ],
        fallbacks=[{"fin-chat": ["fin-chat-lite"]}], num_retries=0,
    )
    alipay_emulator.set_faults([{"kind": "system_error", "next": 1}])
    reply = router.completion(model="fin-chat", messages=ASK)
    assert reply.model == "ant-fin-chat-lite"
    assert reply.choices[0].message.content == ANSWER


async def test_router_falls_back_on_stall(deployment, alipay_emulator):
    router = litellm.Router(
        model_list=[
            {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat", "read_timeout": 0.5,
                                                          **deployment}},
            {"model_name": "fin-chat-lite", "litellm_params": {"model": "alipay/ant-fin-chat-lite", **deployment}},
        ],
        fallbacks=[{"fin-chat": ["fin-chat-lite"]}], num_retries=0,
    )
    alipay_emulator.set_faults([{"kind": "stall", "seconds": 10, "next": 1}])
    reply = await router.acompletion(model="fin-chat", messages=ASK)
    assert reply.model == "ant-fin-chat-lite"


async def test_router_content_policy_fallback(deployment, alipay_emulator):
    router = litellm.Router(
        model_list=[
            {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat", **deployment}},
            {"model_name": "general-chat", "litellm_params": {
                "model": "openai/general-chat", "api_base": alipay_emulator.base_url + "/v1", "api_key": "unused"}},
        ],
        content_policy_fallbacks=[{"fin-chat": ["general-chat"]}], num_retries=0,
    )
    reply = await router.acompletion(model="fin-chat", messages=[
        {"role": "user", "content": "Forecast my income next year"}])
    assert reply.choices[0].message.content == "You said: Forecast my income next year"


def test_v3_protocol_round_trip(deployment, alipay_emulator):
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, protocol="v3", **deployment)
    assert reply.choices[0].message.content == ANSWER
    emb = litellm.embedding(model="alipay/ant-fin-embed", input="hi", protocol="v3", **deployment)
    assert len(emb.data) == 1


def test_certificate_mode_round_trip(alipay_emulator):
    reply = litellm.completion(
        model="alipay/ant-fin-chat", messages=ASK, app_id=alipay_emulator.cert_app_id,
        app_private_key=alipay_emulator.app_private_key_path, app_cert=alipay_emulator.app_cert_path,
        alipay_public_cert=alipay_emulator.alipay_cert_path, alipay_root_cert=alipay_emulator.alipay_root_cert_path,
        api_base=alipay_emulator.gateway_url,
    )
    assert reply.choices[0].message.content == ANSWER


def test_certificate_mode_with_the_wrong_root_cert_is_an_authentication_error(alipay_emulator):
    with pytest.raises(litellm.AuthenticationError) as info:
        litellm.completion(
            model="alipay/ant-fin-chat", messages=ASK, app_id=alipay_emulator.cert_app_id,
            app_private_key=alipay_emulator.app_private_key_path, app_cert=alipay_emulator.app_cert_path,
            alipay_public_cert=alipay_emulator.alipay_cert_path,
            alipay_root_cert=alipay_emulator.app_cert_path,  # not the root bundle: wrong alipay_root_cert_sn
            api_base=alipay_emulator.gateway_url,
        )
    assert "root-cert-sn" in info.value.sub_code
