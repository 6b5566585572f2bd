"""The README's main command: the demo runs end to end against the embedded emulator."""

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess:
    """One run of ``litellm-alipay demo`` for every check of its output."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "litellm_alipay.cli", "demo"], capture_output=True, text=True,
                          env=env, timeout=180)


def test_demo_runs_every_step(demo):
    done = demo
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "'You said: What is my balance? 我的余额是多少？'" in out
    assert "refund_order({\"trade_no\":\"T2024001\",\"amount\":12.5})" in out
    assert "REFUND 88.00 CNY → SUCCESS" in out
    assert "70 × 256 dims" in out
    assert "answered by                ant-fin-chat-lite" in out
    assert "general-chat: 'You said: Forecast my income for next year'" in out
    assert "topic                      '我想申请退款，订单号 2024112233' → fin-chat\n" in out
    assert "trivial                    'thanks!' → general-chat (saved US$0.00423 against Alipay)" in out
    assert "residency                  'I want a refund for order 2024112233' from EU → general-chat (saved" in out
    assert "'Reasoning (xhigh): Is 1001 prime?'" in out
    assert "refund_order({\"trade_no\":\"T2024002\",\"amount\":3.0})" in out
    assert "order-1001: TRADE_SUCCESS, 128.00 CNY" in out
    assert "REFUND 12.00 CNY → PENDING_CONFIRMATION" in out
    assert "succeeded: refund_fee=12.00 fund_change=Y" in out
    assert "SUCCESS replayed=True (nothing sent again)" in out
    assert "refunds executed: 1" in out
    assert "outcome alipay.trade.refund 12.00 → succeeded (rf" in out
    assert "402 Payment-Needed: ¥0.01 for /v1/chat/completions (AI 对话), seller signature verifies" in out
    assert "paid, then answered        200 'You said: What is my balance?'" in out
    assert "402 ALREADY_FULFILLED (served once)" in out
    assert "verified 1, fulfilment confirmed 1; the agent spent ¥0.01" in out
    assert "-----BEGIN" not in out + done.stderr  # no key material printed


def test_demo_shopping_agent_buys_twice_and_a_third_purchase_is_refused_before_sending(demo):
    assert demo.returncode == 0, demo.stderr[-2000:]
    out = demo.stdout
    assert "¥50 / 3 payments / 7 days → PENDING_CONFIRMATION" in out
    assert "purchase 1                 ¥20.00 → SUCCESS" in out
    assert "purchase 2                 ¥25.00 → SUCCESS" in out
    assert "purchase 3                 ¥10.00 → FAILED (mandate.remaining_amount: refused by us, nothing sent)" in out
    assert "agent payments executed: 2 (¥45.00), pay requests received: 2" in out
