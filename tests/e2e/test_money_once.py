"""Money moves once, whatever the model does (issue 21): every alipay/ door answers a retry from the durable
ledger's record. In-process through ``litellm.acompletion`` (the Ant Ling action loop) and through the real
``litellm`` proxy with the OpenAI SDK (the gateway's own actions), against the real emulator."""

from __future__ import annotations

import json
import signal
import time
import uuid

import litellm
import openai
import pytest
import yaml

from litellm_alipay.ledger import LEDGER_ENV, close_ledgers

from .proxy_process import MASTER_KEY, ProxyProcess, proxy_env

MODEL = "alipay/Ling-2.6-flash"
KEY_APP = {
    "app_id": "os.environ/ALIPAY_APP_ID", "app_private_key": "os.environ/ALIPAY_APP_PRIVATE_KEY",
    "alipay_public_key": "os.environ/ALIPAY_PUBLIC_KEY", "api_base": "os.environ/ALIPAY_GATEWAY_URL",
}


@pytest.fixture
def trade(alipay_emulator):
    return lambda total: alipay_emulator.create_trade(f"T{uuid.uuid4().hex[:12]}", total)


@pytest.fixture
def ling(alipay_emulator, monkeypatch, tmp_path):
    for name, value in alipay_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIPAY_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key,
            "allowed_actions": ["REFUND"]}


def _key() -> dict:
    return {"metadata": {"idempotency_key": f"ticket-{uuid.uuid4().hex}"}}


def _ask(*clauses: tuple[str, str]) -> list[dict]:
    text = "; ".join(f"refund out_trade_no={t} refund_amount={a}" for t, a in clauses)
    return [{"role": "user", "content": text}]


def _refunds(emu) -> int:
    return emu.stats()["trades"]["refunds_executed"]


def _actions(reply) -> list[dict]:
    return reply.choices[0].message.provider_specific_fields["actions"]


async def test_a_model_that_changes_its_mind_on_the_retry_moves_money_once(ling, alipay_emulator, trade):
    """The finding: a retry re-asked the model, which proposed 12.00 after 12.50 — two refunds under one key."""
    t, key = trade("88.00"), _key()
    first = await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "12.50")), **ling, **key)
    asked = len(alipay_emulator.ant_ling_received())
    alipay_emulator.set_faults([{"kind": "change_mind", "methods": ["ant-ling.chat"]}])  # 12.00 from now on
    again = await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "12.50")), **ling, **key)
    [one], [two] = _actions(first), _actions(again)
    assert one["amount"] == two["amount"] == "12.50" and one["out_request_no"] == two["out_request_no"]
    assert two["replayed"] is True and "replayed" not in one
    assert again.choices[0].message.content == first.choices[0].message.content
    assert len(alipay_emulator.ant_ling_received()) == asked  # the model was not asked again
    assert _refunds(alipay_emulator) == 1
    assert again._hidden_params["response_cost"] == 0  # nothing sent, nothing billed
    changed = await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "12.50")), **ling, **_key())
    assert _actions(changed)[0]["amount"] == "12.00"  # the fault is live: a new key does ask the model
    assert _refunds(alipay_emulator) == 2


async def test_a_key_reused_for_another_request_is_refused(ling, alipay_emulator, trade):
    t, key = trade("88.00"), _key()
    await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "5.00")), **ling, **key)
    with pytest.raises(litellm.BadRequestError, match="idempotency key 'Idempotency-Key'.*different request"):
        await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "9.00")), **ling, **key)
    assert _refunds(alipay_emulator) == 1


async def test_a_loop_that_splits_an_amount_past_the_per_request_cap_is_stopped(ling, alipay_emulator, trade,
                                                                                 monkeypatch, tmp_path):
    monkeypatch.setenv("ALIPAY_PAYMENTS_REFUND_CAP_PER_REQUEST", "10.00")
    a, b = trade("50.00"), trade("50.00")
    reply = await litellm.acompletion(model=MODEL, messages=_ask((a["out_trade_no"], "6.00"),
                                                                 (b["out_trade_no"], "6.00")), **ling, **_key())
    done, stopped = _actions(reply)
    assert (done["status"], done["out_trade_no"]) == ("SUCCESS", a["out_trade_no"])
    assert stopped["status"] == "FAILED" and "refund_cap_per_request" in stopped["error_code"]
    assert _refunds(alipay_emulator) == 1
    trail = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in trail] == ["attempt", "outcome", "refused"]


async def test_an_unfinished_earlier_attempt_is_answered_from_its_reconciled_actions(ling, alipay_emulator, trade):
    """The first attempt's refund executed, its answer never came (the call timed out): the retry reconciles
    with Alipay and answers from the ledger — no second refund, no model asked."""
    t, key = trade("88.00"), _key()
    alipay_emulator.set_faults([{"kind": "stall_after_actions", "seconds": 30, "methods": ["alipay.trade.refund"]}])
    with pytest.raises(litellm.Timeout):
        await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "7.00")), **ling, **key, timeout=3)
    alipay_emulator.clear_faults()
    assert _refunds(alipay_emulator) == 1
    asked = len(alipay_emulator.ant_ling_received())
    again = await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "7.00")), **ling, **key)
    [action] = _actions(again)
    assert action["status"] == "SUCCESS" and action["replayed"] is True and action["amount"] == "7.00"
    assert "Nothing was executed again" in again.choices[0].message.content
    assert len(alipay_emulator.ant_ling_received()) == asked and _refunds(alipay_emulator) == 1
    third = await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "7.00")), **ling, **key)
    assert _actions(third)[0]["replayed"] is True and _refunds(alipay_emulator) == 1


async def test_a_ledger_that_cannot_be_reached_refuses_money_calls_and_serves_chat(ling, alipay_emulator, trade,
                                                                                   monkeypatch):
    monkeypatch.setenv(LEDGER_ENV, "postgresql://alipay@127.0.0.1:1/ledger")  # nothing listens there
    close_ledgers()
    t = trade("88.00")
    with pytest.raises(litellm.ServiceUnavailableError, match="ledger"):
        await litellm.acompletion(model=MODEL, messages=_ask((t["out_trade_no"], "7.00")), **ling, **_key())
    assert _refunds(alipay_emulator) == 0 and alipay_emulator.ant_ling_received() == []
    plain = {k: v for k, v in ling.items() if k != "allowed_actions"}
    reply = await litellm.acompletion(model=MODEL, messages=[{"role": "user", "content": "hello"}], **plain)
    assert reply.choices[0].message.content


# ------------------------------------------------------------------------------- through the proxy
def _config(tmp, **ling_extra: object):
    deployments = [
        ("fin-actions", {"model": "alipay/ant-fin-chat", **KEY_APP, "allowed_actions": ["REFUND"],
                         "max_action_amount": "50.00", "max_total_amount": "80.00"}),
        ("ling-refunds", {"model": "alipay/Ling-2.6-flash", "api_key": "os.environ/ANT_LING_API_KEY",
                          "api_base": "os.environ/ANT_LING_API_BASE", "allowed_actions": ["REFUND"], **ling_extra}),
    ]
    config = {
        "model_list": [{"model_name": name, "litellm_params": params} for name, params in deployments],
        "litellm_settings": {
            "drop_params": True,
            "custom_provider_map": [{"provider": "alipay", "custom_handler": "litellm_alipay.alipay_llm"}],
            "callbacks": ["litellm_alipay.trust_hooks.trust_boundary"],
        },
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }
    path = tmp / "money.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(emulator, ledger_url: str, audit) -> dict[str, str]:
    return {**proxy_env(emulator), **emulator.env(), LEDGER_ENV: ledger_url, "ALIPAY_AUDIT_LOG": str(audit)}


@pytest.fixture(scope="module")
def money_proxy(alipay_emulator_process, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("money")
    proc = ProxyProcess(_config(tmp), _env(alipay_emulator_process, f"sqlite:///{tmp}/ledger.db",
                                          tmp / "audit.jsonl"))
    proc.audit = tmp / "audit.jsonl"
    yield proc
    proc.stop()


@pytest.fixture
def client(money_proxy, alipay_emulator):
    return openai.OpenAI(base_url=money_proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def _retry_while_in_progress(call, attempts: int = 120):
    """A client's retry of a request another attempt still holds (Stripe's 409): refused with
    ``request-in-progress`` until that attempt answers or its lease runs out; bounded."""
    for _ in range(attempts):
        try:
            return call()
        except openai.BadRequestError as exc:
            if "request-in-progress" not in str(exc):
                raise
            time.sleep(0.5)  # the client's back-off between retries, as any Stripe-style client does
    raise AssertionError("the request stayed in progress")


def _gateway_actions(reply) -> list[dict]:
    return reply.choices[0].message.model_extra["provider_specific_fields"]["actions"]


def test_two_tenants_with_the_same_explicit_number_never_share_an_action(client, alipay_emulator):
    """The finding: buyer-b, sending buyer-a's out_request_no, was told buyer-a's refund was its own."""
    a = client.chat.completions.create(model="fin-actions", messages=[{"role": "user", "content": "refund 12.50 T1"}],
                                       user="buyer-a", extra_body={"out_request_no": "R-1"})
    b = client.chat.completions.create(model="fin-actions", messages=[{"role": "user", "content": "refund 30.00 T2"}],
                                       user="buyer-b", extra_body={"out_request_no": "R-1"})
    [one], [two] = _gateway_actions(a), _gateway_actions(b)
    assert (one["amount"], two["amount"]) == ("12.50", "30.00") and one["status"] == two["status"] == "SUCCESS"
    numbers = {one["out_request_no"], two["out_request_no"]}
    assert len(numbers) == 2 and "R-1" not in numbers
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 2}


def test_gateway_actions_above_the_deployments_limit_are_refused(client, alipay_emulator, money_proxy):
    reply = client.chat.completions.create(model="fin-actions", messages=[{"role": "user", "content": "refund 60.00"}],
                                           extra_headers={"Idempotency-Key": "limit-" + uuid.uuid4().hex})
    [action] = _gateway_actions(reply)
    assert (action["status"], action["error_code"]) == ("FAILED", "AI.ACTION_LIMIT_EXCEEDED")
    stats = alipay_emulator.stats()
    assert stats["actions_executed"] == {} and stats["actions_refused_by_limit"] == 1
    trail = [json.loads(line) for line in money_proxy.audit.read_text().splitlines()]
    mine = [r for r in trail if r.get("door") == "gateway" and r.get("out_request_no") == action["out_request_no"]]
    assert [r["event"] for r in mine] == ["attempt", "outcome"]  # the attempt is written before the send
    assert mine[0]["max_total_amount"] == "80.00" and mine[1]["result"] == "failed"


def test_a_replayed_gateway_action_is_not_billed_again(client, alipay_emulator):
    key = {"Idempotency-Key": "fee-" + uuid.uuid4().hex}
    ask = [{"role": "user", "content": "refund 12.50 T1"}]
    first = client.chat.completions.with_raw_response.create(model="fin-actions", messages=ask, extra_headers=key)
    sent = alipay_emulator.stats()["requests_total"]
    again = client.chat.completions.with_raw_response.create(model="fin-actions", messages=ask, extra_headers=key)
    [one], [two] = _gateway_actions(first.parse()), _gateway_actions(again.parse())
    assert "replayed" not in one and two["replayed"] is True and two["out_request_no"] == one["out_request_no"]
    assert float(first.headers["x-litellm-response-cost"]) > 0
    assert float(again.headers.get("x-litellm-response-cost") or 0) == 0  # LiteLLM leaves a zero cost out
    assert alipay_emulator.stats()["requests_total"] == sent  # answered from the ledger: nothing sent
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 1}


def test_a_proxy_killed_between_send_and_answer_executes_nothing_new(alipay_emulator, alipay_emulator_process,
                                                                     tmp_path):
    """SIGKILL while the refund's answer is outstanding; a restarted proxy on the same ledger gets the retry."""
    import threading

    env = _env(alipay_emulator_process, f"sqlite:///{tmp_path}/ledger.db", tmp_path / "audit.jsonl")
    config = _config(tmp_path, read_timeout=5)  # the dead attempt holds the request for its deadline + 10 s
    first = ProxyProcess(config, env)
    t = alipay_emulator.create_trade(f"T{uuid.uuid4().hex[:12]}", "88.00")
    key = {"Idempotency-Key": "kill-" + uuid.uuid4().hex}
    ask = _ask((t["out_trade_no"], "9.00"))
    alipay_emulator.set_faults([{"kind": "stall_after_actions", "seconds": 60, "methods": ["alipay.trade.refund"]}])
    errors: list[BaseException] = []

    def doomed() -> None:
        sdk = openai.OpenAI(base_url=first.base_url, api_key=MASTER_KEY, max_retries=0, timeout=90)
        try:
            sdk.chat.completions.create(model="ling-refunds", messages=ask, extra_headers=key)
        except openai.APIError as exc:
            errors.append(exc)

    caller = threading.Thread(target=doomed)
    caller.start()
    try:
        deadline = time.monotonic() + 60
        while _refunds(alipay_emulator) == 0:  # the refund has executed; its answer is held by the fault
            assert time.monotonic() < deadline, "the refund never reached the emulator"
            time.sleep(0.05)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        caller.join(timeout=30)
        first.stop()
    assert errors and _refunds(alipay_emulator) == 1
    alipay_emulator.clear_faults()
    restarted = ProxyProcess(config, env)
    try:
        sdk = openai.OpenAI(base_url=restarted.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
        reply = _retry_while_in_progress(lambda: sdk.chat.completions.create(model="ling-refunds", messages=ask,
                                                                                 extra_headers=key))
    finally:
        restarted.stop()
    [action] = reply.choices[0].message.model_extra["provider_specific_fields"]["actions"]
    assert action["status"] == "SUCCESS" and action["replayed"] is True and action["amount"] == "9.00"
    assert _refunds(alipay_emulator) == 1
