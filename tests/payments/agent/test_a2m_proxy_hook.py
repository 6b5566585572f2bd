"""The proxy hook's own rules, without a proxy: which groups are priced, exempt keys, a client's
metadata reference dropped, the 402 as LiteLLM gets it (a ProxyException with the bill), and settings
that name themselves when malformed."""

from __future__ import annotations

import pytest
from litellm.proxy._types import ProxyException, UserAPIKeyAuth

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.payments.agent import headers
from litellm_alipay.payments.agent.a2m import A2MSettings
from litellm_alipay.payments.agent.a2m_proxy import REF_KEY, A2MProxyHook

from .conftest import SELLER_ID, proof_for


@pytest.fixture
def hook(alipay_emulator, monkeypatch) -> A2MProxyHook:
    for name, value in alipay_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("A2M_SERVICE", "api_mock_service_id")
    return A2MProxyHook({"model_groups": {"fin-chat": "0.02"}, "goods_name": "AI 对话",
                         "service_id": "os.environ/A2M_SERVICE", "seller_id": SELLER_ID,
                         "exempt_keys": ["batch-jobs"]})


def _data(model: str, proof: str | None = None, **metadata: str) -> dict:
    request_headers = {"content-type": "application/json"}
    if proof:
        request_headers["payment-proof"] = proof
    return {"model": model, "messages": [], "metadata": dict(metadata),
            "proxy_server_request": {"headers": request_headers}}


async def test_a_priced_group_without_proof_is_a_402_with_the_bill(hook):
    with pytest.raises(ProxyException) as refused:
        await hook.async_pre_call_hook(UserAPIKeyAuth(key_alias="agent-7"), None, _data("fin-chat"), "completion")
    assert refused.value.code == "402" and refused.value.provider_specific_fields["code"] == "PAYMENT_REQUIRED"
    bill = headers.decode(refused.value.headers["Payment-Needed"], headers.PAYMENT_NEEDED)
    assert bill["protocol"]["amount"] == "0.02" and bill["method"]["service_id"] == "api_mock_service_id"


async def test_unpriced_groups_and_exempt_keys_pass_and_a_clients_reference_is_dropped(hook):
    data = _data("fin-chat-lite", **{REF_KEY: "guessed"})
    assert REF_KEY not in (await hook.async_pre_call_hook(UserAPIKeyAuth(), None, data, "completion"))["metadata"]
    exempt = await hook.async_pre_call_hook(UserAPIKeyAuth(key_alias="batch-jobs"), None, _data("fin-chat"),
                                            "completion")
    assert REF_KEY not in exempt["metadata"]


async def test_a_paid_call_is_admitted_the_proof_blanked_and_validated_on_success(hook, alipay_emulator):
    with pytest.raises(ProxyException) as refused:
        await hook.async_pre_call_hook(UserAPIKeyAuth(), None, _data("fin-chat"), "completion")
    proof = proof_for(alipay_emulator, refused.value.headers["Payment-Needed"])
    data = await hook.async_pre_call_hook(UserAPIKeyAuth(), None, _data("fin-chat", proof), "completion")
    assert data["proxy_server_request"]["headers"]["payment-proof"] == "***"
    added = await hook.async_post_call_response_headers_hook(data, UserAPIKeyAuth(), object())
    assert headers.decode(added["Payment-Validation"], headers.PAYMENT_VALIDATION)["validated"] is True
    await hook.async_post_call_success_hook(data, UserAPIKeyAuth(), object())
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1


@pytest.mark.parametrize(("given", "setting"), [({"price": "0.001"}, "alipay_a2m.price"),
                                                 ({"seller_id": "12345"}, "alipay_a2m.seller_id"),
                                                 ({"service_id": " "}, "alipay_a2m.service_id")])
def test_a_malformed_setting_names_itself(given, setting):
    base = {"price": "0.01", "goods_name": "x", "service_id": "s", "seller_id": SELLER_ID}
    with pytest.raises(ConfigurationError, match=setting.replace(".", r"\.")):
        A2MSettings.from_mapping({**base, **given})


async def test_a_malformed_config_fails_closed_naming_the_setting():
    hook = A2MProxyHook({"model_groups": ["fin-chat"], "price": "free"})
    with pytest.raises(ProxyException) as refused:
        await hook.async_pre_call_hook(UserAPIKeyAuth(), None, _data("fin-chat"), "completion")
    assert refused.value.code == "503" and "alipay_a2m.price" in refused.value.message
