"""Payment actions (B5) with the idempotency store, and the admin stats/reset endpoints."""

from __future__ import annotations

import httpx

from litellm_alipay.emulator.process import EmulatorProcess

from .helpers import CHAT, EMBED, Client, chat_biz


def test_refund_and_freeze_executed_once(alipay_emulator: EmulatorProcess, client: Client) -> None:
    biz = chat_biz("refund CNY 100 and freeze account", allowed_actions=["REFUND", "FREEZE_ACCOUNT"],
                   out_request_no="order-1")
    _, first = client.call(CHAT, biz)
    refund, freeze = first["actions"]
    assert refund["action"] == "REFUND" and refund["status"] == "SUCCESS" and refund["amount"] == "100.00"
    assert refund["fee"] == "0.60" and refund["currency"] == "CNY" and refund["out_request_no"] == "order-1"
    assert freeze["action"] == "FREEZE_ACCOUNT" and freeze["amount"] == "0.00"
    assert first["choices"][0]["message"]["content"] == (
        "You said: refund CNY 100 and freeze account Actions: REFUND SUCCESS; FREEZE_ACCOUNT SUCCESS"
    )
    _, repeat = client.call(CHAT, biz)
    assert repeat["actions"] == first["actions"]
    stats = alipay_emulator.stats()
    assert stats["actions_executed"] == {"REFUND": 1, "FREEZE_ACCOUNT": 1}
    assert stats["action_repeats"] == 1 and stats["idempotency_keys"] == 1


def test_other_out_request_no_or_app_executes_again(alipay_emulator: EmulatorProcess, client: Client,
                                                    cert_client: Client) -> None:
    for c, no in ((client, "a"), (client, "b"), (cert_client, "a")):
        c.call(CHAT, chat_biz("refund 1", allowed_actions=["REFUND"], out_request_no=no))
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 3}


def test_actions_need_allowed_actions(alipay_emulator: EmulatorProcess, client: Client) -> None:
    assert client.chat("refund 50")["actions"] == []
    assert client.chat("refund 50", allowed_actions=["FREEZE_ACCOUNT"])["actions"] == []
    assert alipay_emulator.stats()["actions_executed"] == {}


def test_invalid_payer_fails_the_action_not_the_chat(client: Client) -> None:
    node = client.chat("refund 20 to the invalid payer", allowed_actions=["REFUND"], out_request_no="bad-1")
    assert node["code"] == "10000" and "sub_code" not in node
    action = node["actions"][0]
    assert action["status"] == "FAILED" and action["error_code"] == "PAYER_ACCOUNT_INVALID"
    assert action["trade_no"] is None


def test_stats_count_requests_per_app_per_second(alipay_emulator: EmulatorProcess, client: Client,
                                                 cert_client: Client) -> None:
    for _ in range(3):
        client.chat("s")
    cert_client.call(EMBED, {"model": "ant-fin-embed", "input": ["e"]})
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 4 and stats["successes"] == 4
    assert stats["requests_by_app"] == {client.app_id: 3, cert_client.app_id: 1}
    assert stats["requests_by_method"] == {CHAT: 3, EMBED: 1}
    assert sum(stats["requests_per_second"][client.app_id].values()) == 3


def test_reset_clears_everything(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "latency", "seconds": 0}])
    client.chat("refund 3", allowed_actions=["REFUND"], out_request_no="r-1")
    alipay_emulator.reset()
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0 and stats["actions_executed"] == {}
    assert stats["idempotency_keys"] == 0 and stats["active_faults"] == [] and stats["faults_injected"] == {}
    node = client.chat("refund 3", allowed_actions=["REFUND"], out_request_no="r-1")
    assert node["actions"][0]["status"] == "SUCCESS"
    assert alipay_emulator.stats()["action_repeats"] == 0  # the store was emptied


def test_clear_faults_and_health(alipay_emulator: EmulatorProcess) -> None:
    assert len(alipay_emulator.set_faults([{"kind": "drop"}])) == 1
    alipay_emulator.clear_faults()
    assert alipay_emulator.faults() == []
    health = httpx.get(f"{alipay_emulator.base_url}/_admin/health").json()
    assert health["ok"] is True and alipay_emulator.app_id in health["apps"]
