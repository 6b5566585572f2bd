"""The README's main command: the demo runs end to end against the embedded emulator."""

import os
import subprocess
import sys


def test_demo_runs_every_step():
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-m", "litellm_alipay.cli", "demo"], capture_output=True, text=True,
                          env=env, timeout=180)
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
    assert "-----BEGIN" not in out + done.stderr  # no key material printed
