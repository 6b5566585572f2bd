"""Failure semantics, one rule at a time (the end-to-end runs: tests/e2e/test_failure_semantics.py)."""

from __future__ import annotations

import json
import time

import litellm
import pytest
from backends.test_gateway_http import ALIPAY_KEY, OK, URL, settings, signed_body, stub  # noqa: F401  (the stub transport fixture)

from litellm_alipay.backends.gateway import Gateway
from litellm_alipay.backends.gateway.stream import StreamVerifier
from litellm_alipay.errors import ConfigurationError, ProtocolError
from litellm_alipay.resilience.breaker import CLOSED, HALF_OPEN, OPEN, MemoryBreaker
from litellm_alipay.resilience.guards import Guards
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import rsa_sign

ASK = {"model": "m", "messages": []}


@pytest.mark.parametrize(("status", "cls"), [(404, litellm.NotFoundError), (200, litellm.APIConnectionError),
                                             (400, litellm.BadRequestError)])
def test_a_non_alipay_answer_names_the_status_and_api_base(stub, status, cls):  # noqa: F811
    stub.answer(status, b"<html><body>Not Found</body></html>", headers={"content-type": "text/html"})
    with pytest.raises(cls) as info:
        Gateway(settings()).call(protocol.METHOD_CHAT, ASK, "m")
    text = str(info.value)
    assert f"HTTP {status}" in text and URL in text and "api_base" in text and "signature" not in text
    assert info.value.alipay_code == "not-alipay"


def test_actions_for_another_request_number_fail_verification(stub):  # noqa: F811
    node = {**OK, "actions": [{"action": "REFUND", "status": "SUCCESS", "out_request_no": "someone-else"}]}
    stub.answer(200, signed_body(node))
    with pytest.raises(litellm.BadGatewayError, match="out_request_no"):
        Gateway(settings()).call(protocol.METHOD_CHAT, {**ASK, "out_request_no": "mine"}, "m")
    mine = {**OK, "actions": [{"action": "REFUND", "status": "SUCCESS", "out_request_no": "mine"}]}
    stub.answer(200, signed_body(mine))
    assert Gateway(settings()).call(protocol.METHOD_CHAT, {**ASK, "out_request_no": "mine"}, "m")["actions"]


def _signed_stream(datas: list[str]) -> protocol.SSEEvent:
    sign = rsa_sign(protocol.stream_sign_content(datas), ALIPAY_KEY)
    return protocol.SSEEvent("sign", json.dumps({"sign": sign, "sign_type": "RSA2"}))


def test_bytes_after_the_sign_event_fail_the_stream():
    gateway, datas = Gateway(settings()), ['{"choices":[]}']
    verifier, decoder = StreamVerifier(gateway.settings, gateway.provider, "m"), protocol.SSEDecoder()
    verifier.accept(protocol.SSEEvent("message", datas[0]))
    verifier.accept(_signed_stream(datas))
    list(decoder.feed(b"data: {\"smuggled\": true}"))  # an unfinished event after the sign
    with pytest.raises(ProtocolError, match="after the stream's sign"):
        verifier.finish(decoder)


def test_an_error_event_chooses_the_path_only_once_signed():
    gateway = Gateway(settings())
    error = json.dumps({"code": "40004", "sub_code": "AI.COMPLIANCE_REJECTED", "sub_msg": "no"})
    unsigned = StreamVerifier(gateway.settings, gateway.provider, "m")
    assert unsigned.accept(protocol.SSEEvent("error", error)) is None
    with pytest.raises(ProtocolError, match="never signed"):  # a 502, not a content-policy fallback
        unsigned.finish(protocol.SSEDecoder())
    signed = StreamVerifier(gateway.settings, gateway.provider, "m")
    signed.accept(protocol.SSEEvent("error", error))
    with pytest.raises(litellm.ContentPolicyViolationError):
        signed.accept(_signed_stream([error]))


def test_v3_refuses_what_it_cannot_carry():
    with pytest.raises(ConfigurationError, match="encrypt_key"):
        settings(protocol="v3", api_base="https://gateway.test", encrypt_key="AAAAAAAAAAAAAAAAAAAAAA==")
    gateway = Gateway(settings(protocol="v3", api_base="https://gateway.test"))
    with pytest.raises(litellm.BadRequestError, match="auth_token"):
        gateway.call(protocol.METHOD_CHAT, ASK, "m", auth_token="user-token")


def test_a_trial_refused_by_the_quota_is_released_at_once():
    s = settings(rate_limit_per_second=1, breaker_threshold=1, breaker_cooldown=0.001)
    guards = Guards(s)
    key = guards.key("m", None)
    guards.breaker.record_failure(key)  # open
    while guards.breaker.state(key) == OPEN:  # the 1 ms cooldown passing (bounded by pytest-timeout)
        pass
    guards.limiter.acquire(s.app_id)  # the second's one slot is taken
    with pytest.raises(Exception, match="quota"):
        guards.before(key, time.monotonic())  # the trial is admitted, then refused by the quota
    assert guards.breaker.before_call(key) is True  # released: the next call is the trial, no 120 s lease


def test_only_the_trial_decides_a_half_open_breaker():
    now = [0.0]
    breaker = MemoryBreaker(threshold=1, cooldown=10, clock=lambda: now[0])
    breaker.record_failure("k")
    now[0] = 11.0
    assert breaker.before_call("k") is True
    breaker.record_success("k", trial=False)  # a call admitted before: says nothing about now
    breaker.record_failure("k", trial=False)
    assert breaker.state("k") == HALF_OPEN
    breaker.record_success("k", trial=True)
    assert breaker.state("k") == CLOSED


def test_a_cancelled_call_is_neither_success_nor_failure():
    import asyncio

    guards = Guards(settings(breaker_threshold=1))
    key = guards.key("m", None)
    guards.after(key, asyncio.CancelledError())
    assert guards.breaker.state(key) == CLOSED
    guards.after(key, litellm.Timeout(message="stall", model="m", llm_provider="alipay"))
    assert guards.breaker.state(key) == OPEN
