"""Fixtures of the payment tests: the official SDK as oracle, toolkit settings for the emulator, trades."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import pytest
import pytest_asyncio
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from emulator.test_interop_sdk import _client, sdk_env  # noqa: F401  (re-exported fixture)
from pg_server import postgres_url  # noqa: F401  (re-exported fixture)
from redis_server import redis_url  # noqa: F401  (re-exported fixture)

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.settings import AlipaySettings, build_settings

_numbers = itertools.count(1)


@pytest_asyncio.fixture(scope="package", loop_scope="session", autouse=True)
async def _close_pooled_connections():
    """The session loop's pooled gateway connections are closed when these tests are done."""
    from litellm_alipay.transport.http import aclose_loop_transports

    yield
    await aclose_loop_transports()


@pytest.fixture
def sdk(alipay_emulator: EmulatorProcess, sdk_env: None) -> DefaultAlipayClient:  # noqa: F811
    """Alipay's official Python client for the emulator's demo app."""
    return _client(alipay_emulator)


def emulator_settings(emu: EmulatorProcess, **extra: object) -> AlipaySettings:
    return build_settings({
        "app_id": emu.app_id, "app_private_key": emu.app_private_key_path,
        "alipay_public_key": emu.alipay_public_key_path, "api_base": emu.gateway_url, **extra,
    }, env={})


@pytest.fixture
def settings(alipay_emulator: EmulatorProcess) -> AlipaySettings:
    return emulator_settings(alipay_emulator)


@pytest.fixture
def trade(alipay_emulator: EmulatorProcess) -> Callable[..., dict]:
    """``trade("88.00", trade_status=...)``: a fresh trade with a unique out_trade_no."""

    def make(total_amount: str = "100.00", **fields: object) -> dict:
        return alipay_emulator.create_trade(f"T{uuid.uuid4().hex[:10]}{next(_numbers)}", total_amount, **fields)

    return make
