"""The provider records its upstream exchange time, so LiteLLM computes its own overhead for ``alipay/``
calls as it does for ``openai/`` (``transport/timing.py``): in process against the emulator, every call
path of both backends; the proxy's header is checked in ``tests/e2e/test_llm_api_timing.py``."""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from datetime import datetime

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from litellm_alipay.wire.protocol import EMBED_BATCH

ASK = [{"role": "user", "content": "hello there"}]


class Captured(CustomLogger):
    """What LiteLLM's success logging sees of each call: its ``model_call_details`` (the callback's kwargs),
    by call id. One instance for the module: LiteLLM keeps one logger per class."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, dict] = {}
        self.events: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def _event(self, call_id: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(call_id, threading.Event())

    def _keep(self, kwargs: dict) -> None:
        self.calls[kwargs["litellm_call_id"]] = kwargs
        self._event(kwargs["litellm_call_id"]).set()

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._keep(kwargs)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._keep(kwargs)

    def wait(self, call_id: str) -> dict:
        """The call's details once its success logging ran (a thread or a task): an event, not a sleep."""
        assert self._event(call_id).wait(60), "no success logging"
        return self.calls[call_id]

    async def await_(self, call_id: str) -> dict:
        assert await asyncio.to_thread(self._event(call_id).wait, 60), "no success logging"
        return self.calls[call_id]


CAPTURED = Captured()


@pytest.fixture
def captured():
    if CAPTURED not in litellm.callbacks:
        litellm.callbacks.append(CAPTURED)
    return CAPTURED


def _call_id() -> dict:
    return {"litellm_call_id": str(uuid.uuid4())}


@pytest.fixture(scope="module", autouse=True)
def _registered():
    from litellm_alipay import register

    register()


@pytest.fixture
def deployment(alipay_emulator):
    return {"app_id": alipay_emulator.app_id, "app_private_key": alipay_emulator.app_private_key_path,
            "alipay_public_key": alipay_emulator.alipay_public_key_path, "api_base": alipay_emulator.gateway_url}


@pytest.fixture
def ling(alipay_emulator):
    return {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key}


def _recorded(details: dict, total_ms: float) -> float:
    """The provider's ``llm_api_duration_ms``: positive and within the call's total time."""
    llm = details["llm_api_duration_ms"]
    assert isinstance(llm, float) and 0 < llm <= total_ms
    return llm


def _overhead(response) -> float:
    """LiteLLM's overhead on a response, as the proxy's header reads it: a finite number within the total."""
    hidden = response._hidden_params
    overhead, total = hidden["litellm_overhead_time_ms"], hidden["_response_ms"]
    assert isinstance(overhead, float) and math.isfinite(overhead) and 0 <= overhead < total
    return overhead


def _logged_overhead(details: dict) -> float:
    """The standard logging payload's overhead (what Prometheus and Datadog read)."""
    value = details["standard_logging_object"]["hidden_params"]["litellm_overhead_time_ms"]
    assert isinstance(value, float) and math.isfinite(value) and value >= 0
    return value


# ------------------------------------------------------------------------------ the Alipay gateway
async def test_async_chat(deployment, captured):
    ids = _call_id()
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **ids, **deployment)
    overhead = _overhead(reply)
    details = await captured.await_(ids["litellm_call_id"])
    llm = _recorded(details, reply._hidden_params["_response_ms"])
    assert overhead == pytest.approx(reply._hidden_params["_response_ms"] - llm, abs=1e-3)
    assert _logged_overhead(details) == overhead


def test_sync_chat(deployment, captured):
    ids = _call_id()
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **ids, **deployment)
    overhead = _overhead(reply)
    details = captured.wait(ids["litellm_call_id"])
    _recorded(details, reply._hidden_params["_response_ms"])
    assert _logged_overhead(details) == overhead


def test_a_call_on_a_users_behalf_counts_the_token_exchange_too(deployment, captured):
    from litellm_alipay.emulator.state import TokenStore

    code, ids = "timing-code-" + uuid.uuid4().hex, _call_id()
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, auth_code=code, metadata={"t": 1},
                               user=TokenStore.user_id_for(code), **ids, **deployment)
    _overhead(reply)
    details = captured.wait(ids["litellm_call_id"])
    _covers(details, 2, reply._hidden_params["_response_ms"])  # the token exchange, then the chat


def _covers(details: dict, exchanges: int, total_ms: float) -> None:
    """One LiteLLM timing window per upstream exchange (kept in the call's metadata, as the proxy reads
    them); ``llm_api_duration_ms`` is their union: at least the longest, at most their sum."""
    from litellm.litellm_core_utils.core_helpers import get_litellm_metadata_from_kwargs

    windows = get_litellm_metadata_from_kwargs(details)["llm_api_timing_windows"]
    assert len(windows) == exchanges
    lengths = [(end - start) * 1000 for start, end in windows]
    rounding = 0.002 * exchanges  # LiteLLM keeps the windows as datetimes: whole microseconds
    assert max(lengths) - rounding <= _recorded(details, total_ms) <= sum(lengths) + rounding


async def test_async_stream_records_until_the_headers(deployment):
    """LiteLLM takes a stream's overhead when the stream object is returned, before a custom provider's
    generator has run: what the provider records is the exchange itself, on the call's details."""
    stream = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **deployment)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "You said: hello there"
    _recorded_on_stream(stream)


def _recorded_on_stream(stream) -> None:
    """Read once the stream is consumed: within the time from LiteLLM's start of the call to now."""
    details = stream.logging_obj.model_call_details
    _recorded(details, (datetime.now() - details["start_time"]).total_seconds() * 1000)


def test_sync_stream(deployment):
    stream = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **deployment)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "You said: hello there"
    _recorded_on_stream(stream)


async def test_async_embedding_of_several_batches(deployment, captured):
    ids = _call_id()
    inputs = [f"text {i}" for i in range(40)]  # more than one batch: concurrent exchanges, counted once
    reply = await litellm.aembedding(model="alipay/ant-fin-embed", input=inputs, metadata={"t": 1}, **ids,
                                     **deployment)
    assert len(reply.data) == 40
    overhead = _overhead(reply)
    details = await captured.await_(ids["litellm_call_id"])
    _covers(details, math.ceil(40 / EMBED_BATCH), reply._hidden_params["_response_ms"])
    llm = details["llm_api_duration_ms"]
    assert overhead == pytest.approx(reply._hidden_params["_response_ms"] - llm, abs=1e-3)


def test_sync_embedding(deployment, captured):
    ids = _call_id()
    reply = litellm.embedding(model="alipay/ant-fin-embed", input="hello there", **ids, **deployment)
    _overhead(reply)
    _recorded(captured.wait(ids["litellm_call_id"]), reply._hidden_params["_response_ms"])


# ------------------------------------------------------------------------------------ Ant Ling
async def test_ant_ling_async_chat(ling, captured):
    ids = _call_id()
    reply = await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ASK, **ids, **ling)
    _overhead(reply)
    _recorded(await captured.await_(ids["litellm_call_id"]), reply._hidden_params["_response_ms"])


def test_ant_ling_sync_chat(ling, captured):
    ids = _call_id()
    reply = litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, **ids, **ling)
    _overhead(reply)
    _recorded(captured.wait(ids["litellm_call_id"]), reply._hidden_params["_response_ms"])


async def test_ant_ling_stream(ling):
    stream = await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ASK, stream=True, **ling)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "You said: hello there"
    _recorded_on_stream(stream)


async def test_the_action_loop_records_every_exchange(alipay_emulator, monkeypatch, tmp_path, captured):
    """The Ant Ling calls and the payment calls the loop makes on the Alipay gateway: each a window."""
    for name, value in alipay_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIPAY_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL", "50.00")
    trade = alipay_emulator.create_trade(f"T{uuid.uuid4().hex[:12]}", "88.00")
    ids, before = _call_id(), sum(alipay_emulator.stats()["requests_by_method"].values())
    reply = await litellm.acompletion(
        model="alipay/Ling-2.6-flash", allowed_actions=["REFUND"], **ids,
        messages=[{"role": "user", "content": f"refund out_trade_no={trade['out_trade_no']} refund_amount=8.00"}],
        api_base=alipay_emulator.ant_ling_base, api_key=alipay_emulator.ant_ling_api_key,
        metadata={"idempotency_key": f"ticket-{uuid.uuid4().hex}"})
    assert reply.choices[0].message.provider_specific_fields["actions"][0]["status"] == "SUCCESS"
    _overhead(reply)
    details = await captured.await_(ids["litellm_call_id"])
    upstream = alipay_emulator.stats()["requests_by_method"]  # Ant Ling's calls and the gateway's
    assert upstream["ant-ling.chat"] == 2 and upstream["alipay.trade.refund"] == 1
    _covers(details, sum(upstream.values()) - before, reply._hidden_params["_response_ms"])
