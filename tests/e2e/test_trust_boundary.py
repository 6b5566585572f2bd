"""The shared proxy's trust boundary, attacked as a client would: the real ``litellm`` proxy, the real
emulator, the official OpenAI SDK. Each test tries one thing a hostile or careless client could do."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import openai
import pytest
import yaml

from litellm_alipay.emulator.state import TokenStore
from litellm_alipay.trust import PER_CALL_PARAMS

from .proxy_process import MASTER_KEY, ProxyProcess, proxy_env

REDIS_PASSWORD = "redis-pw-" + uuid.uuid4().hex
KEY_APP = {
    "app_id": "os.environ/ALIPAY_APP_ID", "app_private_key": "os.environ/ALIPAY_APP_PRIVATE_KEY",
    "alipay_public_key": "os.environ/ALIPAY_PUBLIC_KEY", "api_base": "os.environ/ALIPAY_GATEWAY_URL",
}
CERT_APP = {
    "app_id": "os.environ/ALIPAY_CERT_APP_ID", "app_private_key": "os.environ/ALIPAY_CERT_APP_PRIVATE_KEY",
    "app_cert": "os.environ/ALIPAY_CERT_APP_CERT", "alipay_public_cert": "os.environ/ALIPAY_CERT_PUBLIC_CERT",
    "alipay_root_cert": "os.environ/ALIPAY_CERT_ROOT_CERT", "api_base": "os.environ/ALIPAY_GATEWAY_URL",
}
CAPTURE = '''
import json
from litellm.integrations.custom_logger import CustomLogger

class Capture(CustomLogger):
    """Every callback payload, as a logging integration (Langfuse, S3, ...) would receive it."""
    def _write(self, kind, kwargs):
        with open(PATH, "a") as f:
            f.write(json.dumps({"kind": kind, "kwargs": kwargs}, default=repr) + "\\n")
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write("success", kwargs)
    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write("failure", kwargs)

capture = Capture()
'''


def _config(tmp: Path) -> Path:
    deployments = [
        ("fin-chat", {"model": "alipay/ant-fin-chat", **KEY_APP, "allowed_actions": ["REFUND"]}),
        ("fin-chat-plain", {"model": "alipay/ant-fin-chat", **KEY_APP}),
        ("fin-chat-xapp", {"model": "alipay/ant-fin-chat", **KEY_APP, "allowed_actions": ["REFUND"]}),
        ("fin-chat-other-app", {"model": "alipay/ant-fin-chat", **CERT_APP, "allowed_actions": ["REFUND"]}),
        ("fin-chat-redis", {"model": "alipay/ant-fin-chat", **KEY_APP, "redis_url": "redis://127.0.0.1:1/0",
                            "redis_password": "os.environ/TEST_REDIS_PASSWORD"}),
        ("general-chat", {"model": "openai/general-chat", "api_base": "os.environ/REGIONAL_API_BASE",
                          "api_key": "os.environ/REGIONAL_API_KEY"}),
    ]
    config = {
        "model_list": [{"model_name": name, "litellm_params": params} for name, params in deployments],
        "litellm_settings": {
            "drop_params": True,
            "custom_provider_map": [{"provider": "alipay", "custom_handler": "litellm_alipay.alipay_llm"}],
            "callbacks": ["litellm_alipay.trust_hooks.trust_boundary", "capture.capture"],
        },
        "router_settings": {
            "num_retries": 0,
            "disable_cooldowns": True,  # each test's failures must not cool deployments for the next
            "fallbacks": [{"fin-chat-xapp": ["fin-chat-other-app"]}],
            "content_policy_fallbacks": [{"fin-chat": ["general-chat"]}],
        },
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }
    path = tmp / "trust.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp / "capture.py").write_text(f"PATH = {str(tmp / 'callbacks.jsonl')!r}\n" + CAPTURE)
    return path


@pytest.fixture(scope="module")
def proxy(alipay_emulator_process, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust")
    env = proxy_env(alipay_emulator_process, TEST_REDIS_PASSWORD=REDIS_PASSWORD)
    env.update({k: v for k, v in alipay_emulator_process.env().items() if k.startswith("ALIPAY_CERT_")})
    proc = ProxyProcess(_config(tmp), env)
    proc.callbacks = tmp / "callbacks.jsonl"
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai.OpenAI(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def _key() -> dict[str, str]:
    return {"Idempotency-Key": "idem-" + uuid.uuid4().hex}


REFUND = [{"role": "user", "content": "refund 12.50 for trade T1"}]
OVERRIDES = {
    "price_per_request_cny": 0, "verify_response": False, "rate_limit_per_second": 100000,
    "redis_url": "redis://attacker.invalid:6379/0", "app_private_key": "/etc/passwd",
    "alipay_public_key": "/etc/hostname", "app_cert": "/etc/passwd", "residency_regions": "",
    "app_auth_token": "another-merchants-token", "pricing_scheme": "token", "cny_per_usd": 1,
}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
@pytest.mark.parametrize("place", ["body", "metadata"])
def test_a_client_cannot_set_a_deployment_setting(client, alipay_emulator, name, place):
    extra = {name: OVERRIDES[name]} if place == "body" else {"metadata": {name: OVERRIDES[name]}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fin-chat-plain", messages=REFUND, extra_body=extra)
    assert name in str(info.value) and "deployment setting" in str(info.value)
    assert alipay_emulator.stats()["requests_total"] == 0  # refused before anything was sent


def test_a_client_api_base_never_reaches_a_gateway(client, alipay_emulator):
    """LiteLLM's own key check refuses a client ``api_base`` before routing (1.108: as a 500, because it
    then looks for the optional ``prisma`` package); the provider would refuse it too."""
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fin-chat-plain", messages=REFUND,
                                       extra_body={"api_base": "http://127.0.0.1:9/gateway.do"})
    assert alipay_emulator.stats()["requests_total"] == 0


def test_the_provider_refuses_settings_even_without_the_hook(alipay_emulator):
    """A proxy request that reaches the provider with a setting from its body fails closed."""
    import litellm

    from litellm_alipay import register

    register()
    env = alipay_emulator.env()
    with pytest.raises(litellm.BadRequestError) as info:
        litellm.completion(
            model="alipay/ant-fin-chat", messages=REFUND, verify_response=False,
            app_id=env["ALIPAY_APP_ID"], app_private_key=env["ALIPAY_APP_PRIVATE_KEY"],
            alipay_public_key=env["ALIPAY_PUBLIC_KEY"], api_base=env["ALIPAY_GATEWAY_URL"],
            proxy_server_request={"body": {"verify_response": False}, "headers": {}},
        )
    assert "verify_response" in str(info.value) and "deployment setting" in str(info.value)
    assert alipay_emulator.stats()["requests_total"] == 0


def test_a_client_may_narrow_allowed_actions_but_never_widen_them(client, alipay_emulator):
    both = [{"role": "user", "content": "freeze account 10 and refund 5.00"}]
    reply = client.chat.completions.create(model="fin-chat", messages=both, extra_headers=_key(),
                                           extra_body={"allowed_actions": ["REFUND", "FREEZE_ACCOUNT"]})
    actions = reply.choices[0].message.model_extra["provider_specific_fields"]["actions"]
    assert [a["action"] for a in actions] == ["REFUND"]  # FREEZE_ACCOUNT is beyond the deployment's ceiling
    client.chat.completions.create(model="fin-chat", messages=both, extra_headers=_key(),
                                   extra_body={"allowed_actions": []})  # narrowed to nothing
    client.chat.completions.create(model="fin-chat-plain", messages=both, extra_headers=_key(),
                                   extra_body={"allowed_actions": ["REFUND"]})  # no ceiling = no actions
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 1}


def test_an_action_request_without_an_idempotency_key_is_refused(client, alipay_emulator):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fin-chat", messages=REFUND)
    assert "Idempotency-Key" in str(info.value)
    assert alipay_emulator.stats()["requests_total"] == 0


def test_sdk_retries_after_a_lost_answer_refund_once(proxy, alipay_emulator):
    """The OpenAI SDK retries a failed request as a new proxy request: the header keeps it one request."""
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=2, timeout=60)
    alipay_emulator.set_faults([{"kind": "drop_after_actions", "next": 1}])
    reply = sdk.chat.completions.create(model="fin-chat", messages=REFUND, extra_headers=_key())
    actions = reply.choices[0].message.model_extra["provider_specific_fields"]["actions"]
    assert [(a["action"], a["status"]) for a in actions] == [("REFUND", "SUCCESS")]
    stats = alipay_emulator.stats()
    assert stats["faults_injected"].get("drop_after_actions") == 1
    assert stats["actions_executed"] == {"REFUND": 1} and stats["action_repeats"] == 1


def test_metadata_idempotency_key_counts_as_well(client, alipay_emulator):
    key = {"idempotency_key": "order-" + uuid.uuid4().hex}
    for _ in range(2):
        client.chat.completions.create(model="fin-chat", messages=REFUND, extra_body={"metadata": key})
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 1}


def test_a_fallback_to_another_app_after_a_lost_answer_is_refused(client, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "drop_after_actions", "next": 1}])
    with pytest.raises(openai.APIStatusError) as info:  # the primary's error, with the fallback's refusal
        client.chat.completions.create(model="fin-chat-xapp", messages=REFUND, extra_headers=_key())
    assert "out_request_no=" in str(info.value) and "may already have executed" in str(info.value)
    stats = alipay_emulator.stats()
    assert stats["actions_executed"] == {"REFUND": 1}
    assert stats["requests_by_app"].get(alipay_emulator.cert_app_id, 0) == 0  # never sent to the other app


def test_a_fallback_to_another_provider_receives_no_per_call_parameter(client, alipay_emulator):
    code = "code-" + uuid.uuid4().hex
    reply = client.chat.completions.create(
        model="fin-chat", messages=[{"role": "user", "content": "predict my income forecast"}],
        user=TokenStore.user_id_for(code), extra_headers=_key(),
        extra_body={"auth_code": code, "allowed_actions": ["REFUND"], "out_request_no": "R-1"},
    )
    assert reply.model == "general-chat"  # the content-policy fallback answered
    received = set(alipay_emulator.stats()["openai_body_keys"])
    assert "messages" in received and not received & PER_CALL_PARAMS


def test_a_user_token_belongs_to_its_credential_not_to_a_user_name(client, alipay_emulator):
    alice_code = "alice-" + uuid.uuid4().hex
    alice = TokenStore.user_id_for(alice_code)
    ask = [{"role": "user", "content": "hello"}]
    client.chat.completions.create(model="fin-chat-plain", messages=ask, user=alice,
                                   extra_body={"auth_code": alice_code})
    with pytest.raises(openai.APIStatusError):  # alice's name with a made-up code: a new, failing exchange
        client.chat.completions.create(model="fin-chat-plain", messages=ask, user=alice,
                                       extra_body={"auth_code": "made-up"})
    with pytest.raises(openai.AuthenticationError) as info:  # alice's code for bob: the owner differs
        client.chat.completions.create(model="fin-chat-plain", messages=ask, user="2088000000000002",
                                       extra_body={"auth_code": alice_code})
    assert "tenant-mismatch" in str(info.value)
    stats = alipay_emulator.stats()
    assert stats["requests_by_method"]["alipay.system.oauth.token"] == 2
    assert stats["requests_by_method"]["alipay.cloud.ai.chat"] == 1


def test_no_secret_reaches_callbacks_logs_or_model_info(proxy, client, alipay_emulator):
    code = "secret-code-" + uuid.uuid4().hex
    user = TokenStore.user_id_for(code)
    client.chat.completions.create(model="fin-chat", messages=REFUND, user=user, extra_headers=_key(),
                                   extra_body={"auth_code": code})
    alipay_emulator.set_faults([{"kind": "system_error", "next": 1}])  # an opaque failure is logged
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fin-chat-plain", messages=REFUND, user=user,
                                       extra_body={"auth_code": code})
    with pytest.raises(openai.APIStatusError):  # the Router fails before any deployment runs
        client.chat.completions.create(model="no-such-model", messages=REFUND, extra_body={"auth_code": code})
    info = proxy_get(proxy, "/model/info")
    key_text = Path(alipay_emulator.app_private_key_path).read_text().split("\n")[1]
    payloads = proxy.callbacks.read_text() if proxy.callbacks.exists() else ""
    assert payloads.count('"kind": "success"') >= 1  # the hunt had something to look at
    for where, text in [("callbacks", payloads), ("proxy output", "".join(proxy.output)), ("/model/info", info)]:
        for secret in (code, key_text, REDIS_PASSWORD, "sign="):
            assert secret not in text, f"{secret[:12]}… found in {where}"


def proxy_get(proxy: ProxyProcess, path: str) -> str:
    import httpx

    response = httpx.get(proxy.base_url + path, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)
    response.raise_for_status()
    return json.dumps(response.json())



@pytest.mark.parametrize("target", [{"allowed_actions": ["REFUND"]}, {"verify_response": False},
                                    {"price_per_request_cny": 0}])
def test_a_client_fallback_target_carries_no_setting_and_no_action(client, alipay_emulator, target):
    """The Router merges a client's dict-form fallback into the call, over the deployment's values."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fin-chat-plain", messages=REFUND, extra_headers=_key(),
                                       extra_body={"fallbacks": [{"model": "fin-chat-plain", **target}]})
    assert next(iter(target)) in str(info.value)
    assert alipay_emulator.stats()["requests_total"] == 0


def test_one_idempotency_key_never_joins_two_callers_or_two_requests(client, alipay_emulator):
    key = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
    a = client.chat.completions.create(model="fin-chat", messages=REFUND, user="buyer-a", extra_headers=key)
    b = client.chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": "refund 99.00 T2"}],
                                       user="buyer-b", extra_headers=key)
    actions = [r.choices[0].message.model_extra["provider_specific_fields"]["actions"][0] for r in (a, b)]
    assert [x["amount"] for x in actions] == ["12.50", "99.00"] and actions[0]["trade_no"] != actions[1]["trade_no"]
    with pytest.raises(openai.BadRequestError, match="different request"):  # same caller, same key, new request
        client.chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": "refund 1.00"}],
                                       user="buyer-a", extra_headers=key)
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 2}


async def test_a_refusal_before_sending_releases_the_claim_for_another_app(alipay_emulator):
    """Circuit open at app A: nothing left, so the fallback to app B is safe and executes once."""
    import litellm

    from litellm_alipay import register
    from litellm_alipay.resilience.guards import Guards
    from litellm_alipay.settings import settings_for

    register()
    env = alipay_emulator.env()
    app_a = {"app_id": env["ALIPAY_APP_ID"], "app_private_key": env["ALIPAY_APP_PRIVATE_KEY"],
             "alipay_public_key": env["ALIPAY_PUBLIC_KEY"], "api_base": env["ALIPAY_GATEWAY_URL"],
             "allowed_actions": ["REFUND"], "breaker_threshold": 1}
    app_b = {"app_id": env["ALIPAY_CERT_APP_ID"], "app_private_key": env["ALIPAY_CERT_APP_PRIVATE_KEY"],
             "app_cert": env["ALIPAY_CERT_APP_CERT"], "alipay_public_cert": env["ALIPAY_CERT_PUBLIC_CERT"],
             "alipay_root_cert": env["ALIPAY_CERT_ROOT_CERT"], "api_base": env["ALIPAY_GATEWAY_URL"],
             "allowed_actions": ["REFUND"]}
    guards = Guards(settings_for({k: v for k, v in app_a.items() if k != "allowed_actions"}))
    guards.breaker.record_failure(guards.key("ant-fin-chat", None))  # app A's breaker is open
    router = litellm.Router(model_list=[
        {"model_name": "a", "litellm_params": {"model": "alipay/ant-fin-chat", **app_a}},
        {"model_name": "b", "litellm_params": {"model": "alipay/ant-fin-chat", **app_b}},
    ], fallbacks=[{"a": ["b"]}], num_retries=0)
    reply = await router.acompletion(model="a", messages=REFUND)
    assert reply.choices[0].message.provider_specific_fields["actions"][0]["status"] == "SUCCESS"
    stats = alipay_emulator.stats()
    assert stats["actions_executed"] == {"REFUND": 1}
    assert stats["requests_by_app"] == {env["ALIPAY_CERT_APP_ID"]: 1}
