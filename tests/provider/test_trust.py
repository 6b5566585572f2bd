"""The trust boundary's rules, one at a time, in process (the proxy side: tests/e2e/test_trust_boundary.py)."""

from __future__ import annotations

import logging
import uuid

import litellm
import pytest
from backends.test_gateway_http import APP_KEY, URL, settings, signed_body, stub  # noqa: F401  (the stub transport fixture)

from litellm_alipay import settings as settings_module
from litellm_alipay import trust
from litellm_alipay.backends.gateway import Gateway
from litellm_alipay.backends.user_auth import UserAuth
from litellm_alipay.errors import ConfigurationError
from litellm_alipay.provider import AlipayLLM
from litellm_alipay.resilience.tokens import UserToken
from litellm_alipay.settings import CACHE_SIZE, build_settings, settings_for
from litellm_alipay.transport.http import HttpRequest
from litellm_alipay.wire import protocol


# ------------------------------------------------------------------------------- settings and caches
def test_every_setting_is_deployment_only_and_found_in_body_extra_body_and_metadata():
    assert trust.setting_in({"verify_response": False}) == ("verify_response", "body")
    assert trust.setting_in({"extra_body": {"redis_url": "x"}}) == ("redis_url", "extra_body")
    assert trust.setting_in({"metadata": {"requester_metadata": {"cny_per_usd": 1}}}) == ("cny_per_usd", "metadata")
    assert trust.setting_in({"messages": [], "user": "u", "auth_code": "c", "out_request_no": "r"}) is None
    with pytest.raises(ConfigurationError, match="allowed_actions"):
        trust.refuse_client_settings({"allowed_actions": ["REFUND"]})  # only through the proxy hook


def test_allowed_actions_are_a_ceiling():
    assert trust.effective_actions(["REFUND", "FREEZE_ACCOUNT"], None) == ["REFUND", "FREEZE_ACCOUNT"]
    assert trust.effective_actions(["REFUND"], ["refund", "FREEZE_ACCOUNT"]) == ["REFUND"]
    assert trust.effective_actions(["REFUND"], []) is None
    assert trust.effective_actions(None, ["REFUND"]) is None
    assert trust.effective_actions("REFUND, FREEZE_ACCOUNT", "FREEZE_ACCOUNT") == ["FREEZE_ACCOUNT"]


def test_idempotency_key_order_header_metadata_explicit_trace():
    client = trust.ClientRequest({}, {"Idempotency-Key": " h-1 "})
    assert trust.idempotency_seed(client, {"idempotency_key": "m"}, "o", "t") == ("h-1", "header")
    assert trust.idempotency_seed(None, {"idempotency_key": "m"}, "o", "t") == ("m", "metadata")
    assert trust.idempotency_seed(None, {}, "o", "t") == ("o", "out_request_no")
    assert trust.idempotency_seed(None, {}, None, "t") == ("t", "trace")
    assert len(trust.derive_out_request_no("2021000000000001", "x" * 500)) <= 64


def test_a_fallback_kwargs_lose_every_per_call_parameter():
    kwargs = {"model": "openai/x", "messages": [], "auth_code": "c", "allowed_actions": ["REFUND"],
              "extra_body": {"out_request_no": "r", "keep": 1}, trust.CREDENTIAL_REF: "ref"}
    stripped = trust.without_per_call_params(kwargs)
    assert set(stripped) == {"model", "messages", "extra_body"} and stripped["extra_body"] == {"keep": 1}
    plain = {"model": "openai/x", "messages": []}
    assert trust.without_per_call_params(plain) is plain


def test_the_credential_vault_hands_back_only_what_was_stashed():
    data = {"model": "m", "auth_code": "code-1", "extra_body": {"user_refresh_token": "rt"}}
    trust.stash_credentials(data)
    assert "auth_code" not in data and "user_refresh_token" not in data["extra_body"]
    request = {trust.CREDENTIAL_REF: data[trust.CREDENTIAL_REF]}
    trust.redeem_credentials(request)
    assert request == {"auth_code": "code-1", "user_refresh_token": "rt"}
    with pytest.raises(ConfigurationError, match=trust.CREDENTIAL_REF):
        trust.redeem_credentials({trust.CREDENTIAL_REF: "forged"})
    with pytest.raises(ConfigurationError, match="never by a client"):
        trust.refuse_client_settings_in_proxy_data({trust.CREDENTIAL_REF: "forged"})


def test_settings_and_gateway_caches_are_bounded():
    provider = AlipayLLM()
    base = {"app_id": "2021000000000001", "app_private_key": APP_KEY["private_pkcs1"], "verify_response": False,
            "api_base": URL}
    for i in range(CACHE_SIZE + 40):
        provider._gateway(settings_for({**base, "price_per_request_cny": str(i / 1000)}))
    assert len(settings_module._cache) <= CACHE_SIZE and len(provider._gateways) <= CACHE_SIZE


def test_a_redis_password_never_sits_in_a_deployment_redis_url():
    with pytest.raises(ConfigurationError, match="redis_password"):
        settings(redis_url="redis://:hunter2@127.0.0.1:6379/0")
    composed = settings(redis_url="redis://127.0.0.1:6379/0", redis_password="p@ss word")
    assert composed.redis_url == "redis://:p%40ss%20word@127.0.0.1:6379/0"
    from_env = build_settings({"app_id": "2021000000000001", "app_private_key": APP_KEY["private_pkcs1"],
                               "verify_response": False, "api_base": URL},
                              env={"ALIPAY_REDIS_URL": "redis://:envpw@127.0.0.1:6379/0"})
    assert from_env.redis_url.endswith("@127.0.0.1:6379/0")  # the environment is not shown by /model/info


# ------------------------------------------------------------------------------------ OAuth and reprs
OAUTH_OK = {"access_token": "tok-secret", "expires_in": 3600, "refresh_token": "rt-secret",
            "re_expires_in": 7200, "user_id": "2088000000000001"}


def test_an_unsigned_error_response_carrying_a_token_is_not_a_token(stub):  # noqa: F811
    stub.answer(200, signed_body(OAUTH_OK, protocol.METHOD_OAUTH, error=True, sign=False))
    with pytest.raises((litellm.BadRequestError, litellm.BadGatewayError)) as info:
        Gateway(settings()).call(protocol.METHOD_OAUTH, None, "oauth", extra={"grant_type": "authorization_code",
                                                                              "code": "c"})
    assert "unsigned" in str(info.value) and "tok-secret" not in str(info.value)


def test_a_signed_token_node_is_accepted(stub):  # noqa: F811
    stub.answer(200, signed_body(OAUTH_OK, protocol.METHOD_OAUTH))
    node = Gateway(settings()).call(protocol.METHOD_OAUTH, None, "oauth",
                                    extra={"grant_type": "authorization_code", "code": "c"})
    assert node["user_id"] == "2088000000000001"


def test_a_token_of_another_user_is_refused(stub):  # noqa: F811
    stub.answer(200, signed_body(OAUTH_OK, protocol.METHOD_OAUTH))
    gateway = Gateway(settings())
    auth = UserAuth.from_params({"auth_code": "c-1"}, "2088000000000999", gateway.settings.app_id)
    with pytest.raises(litellm.AuthenticationError, match="tenant-mismatch"):
        gateway.call_as_user(protocol.METHOD_CHAT, {"model": "m", "messages": []}, "m", auth)
    gateway.tokens.close()


def test_user_tokens_are_keyed_by_credential_and_app_not_by_user():
    a = UserAuth.from_params({"auth_code": "c-1"}, "alice", "2021000000000001")
    b = UserAuth.from_params({"auth_code": "made-up"}, "alice", "2021000000000001")
    c = UserAuth.from_params({"auth_code": "c-1"}, "alice", "2021000000000002")
    assert len({a.key, b.key, c.key}) == 3 and "alice" not in a.key


def test_reprs_hold_no_secret():
    auth = UserAuth.from_params({"auth_code": "code-secret", "auth_token": "tok-secret"}, "u", "1")
    token = UserToken("tok-secret", 0.0, 1.0, "rt-secret", None, "u")
    request = HttpRequest(URL + "?app_id=1", b"sign=sig-secret&auth_token=tok-secret", {}, 1.0, 1.0)
    text = repr(auth) + repr(token) + repr(request)
    assert "secret" not in text and "gateway.do" in text


# ------------------------------------------------------------------------------- the secret hunt
class _Capture(litellm.integrations.custom_logger.CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[str] = []

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(repr(kwargs))

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(repr(kwargs))

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(repr(kwargs))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(repr(kwargs))


@pytest.fixture
def capture():
    found = _Capture()
    litellm.callbacks.append(found)
    yield found
    litellm.callbacks.remove(found)


def _deployment(emulator) -> dict:
    return {"app_id": emulator.app_id, "app_private_key": emulator.app_private_key_path,
            "alipay_public_key": emulator.alipay_public_key_path, "api_base": emulator.gateway_url}


async def test_no_secret_in_any_log_record_or_callback_payload(alipay_emulator, capture, caplog):
    from litellm_alipay import register
    from litellm_alipay.emulator.state import TokenStore

    register()
    code = "hunt-code-" + uuid.uuid4().hex
    user = TokenStore.user_id_for(code)
    # The key as text, not a path: a path in a log would prove nothing about the key.
    deployment = {**_deployment(alipay_emulator),
                  "app_private_key": open(alipay_emulator.app_private_key_path).read()}
    ask = [{"role": "user", "content": "refund 3.00 for trade T9"}]
    with caplog.at_level(logging.DEBUG):  # every logger, every level: httpx, litellm, aiohttp, root
        litellm.completion(model="alipay/ant-fin-chat", messages=ask, user=user, auth_code=code,
                           allowed_actions=["REFUND"], **deployment)
        await litellm.acompletion(model="alipay/ant-fin-chat", messages=ask, user=user, auth_code=code,
                                  **deployment)
        for _chunk in litellm.completion(model="alipay/ant-fin-chat", messages=ask, user=user, auth_code=code,
                                        stream=True, **deployment):
            pass
        alipay_emulator.set_faults([{"kind": "system_error", "next": 1}])  # the opaque-failure log line
        with pytest.raises(litellm.ServiceUnavailableError):
            litellm.completion(model="alipay/ant-fin-chat", messages=ask, user=user, auth_code=code, **deployment)
    key_line = open(alipay_emulator.app_private_key_path).read().split("\n")[1]
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "alipay.cloud.ai.chat failed" in logs  # the opaque-failure line is among the records hunted
    assert sum(r.name.startswith("LiteLLM") and r.levelno == logging.DEBUG for r in caplog.records) > 10
    assert len(capture.payloads) >= 2  # (sync success callbacks run on a thread pool: at least these)
    haystack = logs + "\n".join(capture.payloads)
    for secret in (code, key_line, "sign=", "auth_token="):
        assert secret not in haystack, secret[:12]


async def test_an_in_process_router_fallback_to_another_provider_gets_no_per_call_parameter(alipay_emulator):
    from litellm_alipay import register

    register()
    router = litellm.Router(model_list=[
        {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat", **_deployment(alipay_emulator)}},
        {"model_name": "general-chat", "litellm_params": {
            "model": "openai/general-chat", "api_base": alipay_emulator.base_url + "/v1", "api_key": "unused"}},
    ], content_policy_fallbacks=[{"fin-chat": ["general-chat"]}], num_retries=0)
    from litellm_alipay.emulator.state import TokenStore

    code = "fallback-code-" + uuid.uuid4().hex
    reply = await router.acompletion(model="fin-chat", messages=[{"role": "user", "content": "income forecast"}],
                                     allowed_actions=["REFUND"], out_request_no="R-9", auth_code=code,
                                     user=TokenStore.user_id_for(code))
    assert reply.model.endswith("general-chat")
    assert not set(alipay_emulator.stats()["openai_body_keys"]) & trust.PER_CALL_PARAMS
