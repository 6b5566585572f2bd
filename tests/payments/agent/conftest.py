"""Fixtures of the A2M tests: a merchant on the emulator's demo app, the emulator's buyer stand-in."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.payments.agent.a2m import A2MMerchant, A2MSettings
from litellm_alipay.settings import AlipaySettings

SELLER_ID = "2088000000000001"


def a2m_settings(tmp_path: Path, **over: object) -> A2MSettings:
    given = {"price": "0.01", "goods_name": "AI 对话", "service_id": "api_mock_service_id", "seller_id": SELLER_ID,
             "seller_name": "测试商户", "audit_log": str(tmp_path / "audit.jsonl"), "verify_timeout": 5,
             "confirm_timeout": 5, **over}
    return A2MSettings.from_mapping(given)


@pytest.fixture
def merchant(settings: AlipaySettings, tmp_path: Path) -> A2MMerchant:
    return A2MMerchant(settings, a2m_settings(tmp_path))


def pay(emu: EmulatorProcess, payment_needed: str | None) -> httpx.Response:
    """The emulator's buyer stand-in pays a bill (the raw answer: 200 with the proof, 400 with a code)."""
    return httpx.post(f"{emu.base_url}/_admin/a402/pay", json={"payment_needed": payment_needed}, timeout=10)


def proof_for(emu: EmulatorProcess, payment_needed: str | None) -> str:
    answer = pay(emu, payment_needed)
    assert answer.status_code == 200, answer.text
    return answer.json()["payment_proof"]
