"""The real LiteLLM proxy as an A2M merchant, the OpenAI SDK as the agent, the emulator as Alipay.

Two proxy instances share one ledger on a real PostgreSQL; a proof is served once across both. The bill
of a 402 is checked with the official SDK's own RSA verify function and the app public key.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from alipay.aop.api.util.SignatureUtils import verify_with_rsa
from pg_server import postgres_url  # noqa: F401  (re-exported fixture)

from litellm_alipay.payments.agent import headers
from litellm_alipay.payments.agent.buyer import A402Auth, EmulatorWallet
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import load_private_key, private_key_forms

from .proxy_process import MASTER_KEY, ProxyProcess, openai_client, proxy_env

CONFIG = """
model_list:
  - model_name: fin-chat
    litellm_params: &alipay
      model: alipay/ant-fin-chat
      app_id: os.environ/ALIPAY_APP_ID
      app_private_key: os.environ/ALIPAY_APP_PRIVATE_KEY
      alipay_public_key: os.environ/ALIPAY_PUBLIC_KEY
      api_base: os.environ/ALIPAY_GATEWAY_URL
  - model_name: fin-chat-free
    litellm_params: *alipay
litellm_settings:
  drop_params: true
  custom_provider_map:
    - {provider: alipay, custom_handler: litellm_alipay.alipay_llm}
  callbacks:
    - litellm_alipay.trust_hooks.trust_boundary
    - litellm_alipay.payments.agent.a2m_proxy.a2m_merchant
router_settings:
  num_retries: 0
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  alipay_a2m:
    model_groups: {fin-chat: "0.01"}
    goods_name: AI 对话
    service_id: api_mock_service_id
    seller_id: "2088000000000001"
    seller_name: 测试商户
    audit_log: os.environ/A2M_AUDIT_LOG
"""
ASK = [{"role": "user", "content": "What is my balance?"}]


@pytest.fixture(scope="module")
def proxies(alipay_emulator_process, postgres_url, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("a2m-proxy")
    config = folder / "a2m.yaml"
    config.write_text(CONFIG)
    env = proxy_env(alipay_emulator_process, ALIPAY_LEDGER_URL=postgres_url,
                    A2M_AUDIT_LOG=str(folder / "audit.jsonl"))
    started: list[ProxyProcess] = []
    try:
        for _ in range(2):
            started.append(ProxyProcess(config, env))
            started[-1].audit_log = folder / "audit.jsonl"
        yield started
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def proxy(proxies):
    return proxies[0]


def _paid_call(proxy, proof: str | None, model: str = "fin-chat"):
    extra = {headers.PAYMENT_PROOF: proof} if proof else None
    return openai_client(proxy).chat.completions.with_raw_response.create(model=model, messages=ASK,
                                                                          extra_headers=extra)


def _refused(proxy, proof: str | None) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as refused:
        _paid_call(proxy, proof)
    assert refused.value.status_code == 402
    return refused.value


def _reason(refused: openai.APIStatusError) -> str:
    """The contract's reason of a 402 (the error's ``provider_specific_fields``)."""
    return refused.body["provider_specific_fields"]["code"]


def _pay(emulator, needed: str) -> str:
    answer = httpx.post(f"{emulator.base_url}/_admin/a402/pay", json={"payment_needed": needed}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["payment_proof"]


def _a2m(emulator) -> list[dict]:
    return emulator.stats()["a2m_trades"]


def _chats(emulator) -> int:
    return emulator.stats()["requests_by_method"].get(protocol.METHOD_CHAT, 0)


def test_no_proof_is_a_402_whose_bill_verifies_with_the_app_public_key(proxy, alipay_emulator):
    refused = _refused(proxy, None)
    needed = refused.response.headers["payment-needed"]
    bill = headers.decode(needed, headers.PAYMENT_NEEDED)
    assert bill["protocol"]["amount"] == "0.01" and bill["protocol"]["currency"] == "CNY"
    assert bill["protocol"]["resource_id"] == "/model/fin-chat"
    app_public = private_key_forms(load_private_key(alipay_emulator.app_private_key))["public"]
    content = headers.sign_content(headers.signed_fields(bill)).encode("utf-8")
    assert verify_with_rsa(app_public, content, bill["protocol"]["seller_signature"])
    assert _chats(alipay_emulator) == 0  # nothing served
    free = _paid_call(proxy, None, model="fin-chat-free")  # an unpriced group needs no payment
    assert free.http_response.status_code == 200 and "payment-validation" not in free.headers


def test_a_paid_call_is_served_once_with_payment_validation(proxy, alipay_emulator):
    proof = _pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"])
    served = _paid_call(proxy, proof)
    assert served.http_response.status_code == 200
    assert served.parse().choices[0].message.content
    validation = headers.decode(served.headers["payment-validation"], headers.PAYMENT_VALIDATION)
    assert validation["validated"] is True and validation["resource_id"] == "/model/fin-chat"
    assert [(t["trade_no"], t["confirmed"]) for t in _a2m(alipay_emulator)] == [(validation["trade_no"], 1)]
    again = _refused(proxy, proof)  # the same proof again: no second service, a fresh bill
    assert again.response.headers.get("payment-needed")
    assert _reason(again) == "ALREADY_FULFILLED"
    assert _chats(alipay_emulator) == 1
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1


def test_a_stream_is_confirmed_after_its_last_chunk(proxy, alipay_emulator):
    proof = _pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"])
    client = openai_client(proxy)
    with client.chat.completions.with_streaming_response.create(
            model="fin-chat", messages=ASK, stream=True, extra_headers={headers.PAYMENT_PROOF: proof}) as response:
        assert response.http_response.status_code == 200
        assert headers.decode(response.headers["payment-validation"], headers.PAYMENT_VALIDATION)["validated"]
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1
    assert _reason(_refused(proxy, proof)) == "ALREADY_FULFILLED"


def test_the_anthropic_messages_route_is_priced_and_served_once_too(proxy, alipay_emulator):
    import anthropic

    proof = _pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"])
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    raw = client.messages.with_raw_response.create(model="fin-chat", max_tokens=64, messages=ASK,
                                                   extra_headers={headers.PAYMENT_PROOF: proof})
    assert raw.http_response.status_code == 200 and raw.parse().content[0].text
    assert headers.decode(raw.headers["payment-validation"], headers.PAYMENT_VALIDATION)["validated"] is True
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1
    with pytest.raises(anthropic.APIStatusError) as again:
        client.messages.create(model="fin-chat", max_tokens=64, messages=ASK,
                               extra_headers={headers.PAYMENT_PROOF: proof})
    assert again.value.status_code == 402 and again.value.response.headers.get("payment-needed")
    assert _chats(alipay_emulator) == 1


def test_a_forged_proof_is_a_402_with_a_fresh_bill(proxy, alipay_emulator):
    proof = headers.parse_proof(_pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"]))
    forged = headers.Proof(proof.trade_no, "00" * 32, proof.client_session).header()
    refused = _refused(proxy, forged)
    assert refused.response.headers.get("payment-needed") and _reason(refused) == "INVALID_PAYMENT_PROOF"
    assert _reason(_refused(proxy, "not-a-proof")) == "INVALID_PAYMENT_PROOF_FORMAT"
    assert _chats(alipay_emulator) == 0


def test_a_failed_model_call_confirms_nothing_and_the_retry_is_served_once(proxy, alipay_emulator):
    proof = _pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"])
    alipay_emulator.set_faults([{"kind": "system_error", "methods": [protocol.METHOD_CHAT], "next": 1}])
    with pytest.raises(openai.APIStatusError) as failed:
        _paid_call(proxy, proof)
    assert failed.value.status_code >= 500
    assert _a2m(alipay_emulator)[0]["confirmed"] == 0
    retried = _paid_call(proxy, proof)  # the same proof
    assert retried.http_response.status_code == 200 and "payment-validation" in retried.headers
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1
    assert _reason(_refused(proxy, proof)) == "ALREADY_FULFILLED"


def test_two_proxy_instances_sharing_the_ledger_serve_a_proof_once(proxies, alipay_emulator):
    proof = _pay(alipay_emulator, _refused(proxies[0], None).response.headers["payment-needed"])

    def attempt(i: int) -> int:
        try:
            return _paid_call(proxies[i % 2], proof).http_response.status_code
        except openai.APIStatusError as exc:
            return exc.status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [200, 402, 402, 402, 402, 402]
    assert _chats(alipay_emulator) == 1
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1


def test_an_agent_with_the_buyer_auth_flow_pays_and_is_served(proxy, alipay_emulator):
    auth = A402Auth(EmulatorWallet(alipay_emulator.base_url), max_total="0.01")

    async def ask() -> str:
        async with httpx.AsyncClient(auth=auth, timeout=60) as http:
            client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, http_client=http)
            first = await client.chat.completions.create(model="fin-chat", messages=ASK)
            with pytest.raises(Exception, match="max_total"):  # the session's cap: no second payment
                await client.chat.completions.create(model="fin-chat", messages=ASK)
            return first.choices[0].message.content

    assert asyncio.run(ask())
    assert str(auth.spent) == "0.01"
    assert _a2m(alipay_emulator)[0]["confirmed"] == 1


def test_the_audit_trail_has_a_line_per_refusal_and_no_proof(proxy, alipay_emulator):
    proof = _pay(alipay_emulator, _refused(proxy, None).response.headers["payment-needed"])
    assert _paid_call(proxy, proof).http_response.status_code == 200
    _refused(proxy, proof)
    lines = [json.loads(line) for line in proxy.audit_log.read_text().splitlines()]
    trade_no = headers.parse_proof(proof).trade_no
    mine = [(line["event"], line.get("result")) for line in lines if line.get("trade_no") == trade_no]
    assert ("a2m_admitted", None) in mine and ("a2m_confirmed", None) in mine
    assert ("a2m_refused", "ALREADY_FULFILLED") in mine
    text = proxy.audit_log.read_text()
    assert headers.parse_proof(proof).payment_proof not in text and proof not in text
    assert not any(headers.parse_proof(proof).payment_proof in line for line in proxy.output)
