"""Every fault kind, scheduling (next N, request numbers, seeded probability) and the filters."""

from __future__ import annotations

import time

import httpx
import pytest

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.errors import SignatureError

from .helpers import CHAT, EMBED, Client, chat_biz
from .helpers_stream import read_stream, sign_ok, text_of


def test_system_error_is_signed_20000(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "system_error", "next": 1}])
    resp, node = client.call(CHAT, chat_biz("x"))
    assert resp.status_code == 200
    assert (node["code"], node["sub_code"]) == ("20000", "SYSTEM_ERROR")
    assert client.chat("x")["code"] == "10000"  # next: 1 is spent
    assert alipay_emulator.stats()["faults_injected"] == {"system_error": 1}


def test_http_5xx(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "http_5xx", "status": 502, "next": 1}])
    assert client.post(client.params(CHAT, chat_biz("x"))).status_code == 502


def test_injected_429_has_no_reset_header(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "rate_limit", "next": 1}])
    resp, node = client.call(CHAT, chat_biz("x"))
    assert resp.status_code == 429
    assert (node["code"], node["sub_code"]) == ("40004", "AI.RATE_LIMITED")
    assert not [h for h in resp.headers if "retry" in h.lower() or "reset" in h.lower()]


def test_latency_delays_then_answers(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "latency", "seconds": 0.3, "next": 1}])
    started = time.monotonic()
    node = client.chat("slow")
    assert time.monotonic() - started >= 0.3
    assert node["choices"][0]["message"]["content"] == "You said: slow"


def test_stall_past_client_timeout_is_abandoned_cleanly(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "stall", "seconds": 5, "next": 1}])
    biz = chat_biz("refund 5", allowed_actions=["REFUND"], out_request_no="stall-1")
    with pytest.raises(httpx.ReadTimeout):
        client.post(client.params(CHAT, biz), timeout=0.3)
    deadline = time.monotonic() + 4  # well before the stall would have ended by itself
    while alipay_emulator.stats()["abandoned"] == 0:
        assert time.monotonic() < deadline, "the stall did not notice the client leaving"
    assert alipay_emulator.stats()["actions_executed"] == {}


def test_truncated_body(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "truncate", "next": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(client.params(CHAT, chat_biz("x")))


def test_bad_signature_is_caught(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "bad_signature", "next": 1}])
    resp = client.post(client.params(CHAT, chat_biz("x")))
    assert resp.status_code == 200 and "sign" in resp.json()
    with pytest.raises(SignatureError):
        client.verify(CHAT, resp)


def test_drop_executes_nothing(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "drop", "next": 1}])
    biz = chat_biz("refund 7", allowed_actions=["REFUND"], out_request_no="drop-1")
    with pytest.raises(httpx.TransportError):
        client.post(client.params(CHAT, biz))
    assert alipay_emulator.stats()["actions_executed"] == {}
    node = client.chat("refund 7", allowed_actions=["REFUND"], out_request_no="drop-1")
    assert node["actions"][0]["status"] == "SUCCESS"
    assert alipay_emulator.stats()["action_repeats"] == 0


def test_drop_after_actions_then_retry_is_at_most_once(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "drop_after_actions", "next": 1}])
    biz = chat_biz("refund 12.5", allowed_actions=["REFUND"], out_request_no="dac-1")
    with pytest.raises(httpx.TransportError):
        client.post(client.params(CHAT, biz))
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 1}
    _, node = client.call(CHAT, biz)  # the retry reuses out_request_no
    assert node["actions"][0]["amount"] == "12.50"
    stats = alipay_emulator.stats()
    assert stats["actions_executed"] == {"REFUND": 1} and stats["action_repeats"] == 1


def test_cut_stream_has_no_sign_event(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "cut_stream", "next": 1}])
    events, _ = read_stream(client.post(client.params(CHAT, chat_biz("cut me", stream=True))))
    assert text_of(events) == "You said: cut me"
    assert all(e.event != "sign" for e in events)
    assert not sign_ok(events, client.alipay_public)


def test_stream_error_event_then_sign(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "stream_error", "next": 1}])
    events, _ = read_stream(client.post(client.params(CHAT, chat_biz("a b c d", stream=True))))
    assert [e.event for e in events] == ["message", "error", "sign"]
    assert '"sub_code":"SYSTEM_ERROR"' in events[1].data
    assert sign_ok(events, client.alipay_public)


def test_stream_bad_signature_and_truncate(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "bad_signature", "next": 1}, {"kind": "truncate", "next": 1}])
    events, _ = read_stream(client.post(client.params(CHAT, chat_biz("x y", stream=True))))
    assert events[-1].event == "sign" and not sign_ok(events, client.alipay_public)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(client.params(CHAT, chat_biz("x y", stream=True)))


def test_stream_faults_skip_plain_requests(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "cut_stream"}])
    assert client.chat("plain")["code"] == "10000"
    assert alipay_emulator.stats()["faults_injected"] == {}


def test_schedule_by_request_number(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "system_error", "requests": [2, 4]}])
    codes = [client.chat(f"n{i}")["code"] for i in range(5)]
    assert codes == ["10000", "20000", "10000", "20000", "10000"]


def test_next_n(alipay_emulator: EmulatorProcess, client: Client) -> None:
    alipay_emulator.set_faults([{"kind": "system_error", "next": 3}])
    codes = [client.chat(f"n{i}")["code"] for i in range(5)]
    assert codes == ["20000"] * 3 + ["10000"] * 2
    assert alipay_emulator.faults() == []


def test_probability_is_seeded_and_reproducible(alipay_emulator: EmulatorProcess, client: Client) -> None:
    def run() -> list[str]:
        alipay_emulator.set_faults([{"kind": "system_error", "probability": 0.5}])
        return [client.chat(f"p{i}")["code"] for i in range(16)]

    first, second = run(), run()
    assert first == second  # set_faults reseeds the RNG
    assert 0 < first.count("20000") < 16


def test_filters_by_method_and_app(alipay_emulator: EmulatorProcess, client: Client, cert_client: Client) -> None:
    alipay_emulator.set_faults([
        {"kind": "system_error", "methods": [EMBED]},
        {"kind": "http_5xx", "app_ids": [alipay_emulator.cert_app_id]},
    ])
    assert client.chat("ok")["code"] == "10000"
    _, node = client.call(EMBED, {"model": "ant-fin-embed", "input": ["x"]})
    assert node["code"] == "20000"
    assert cert_client.post(cert_client.params(CHAT, chat_biz("x"))).status_code == 503


def test_invalid_rule_names_the_field(alipay_emulator: EmulatorProcess) -> None:
    resp = httpx.post(f"{alipay_emulator.base_url}/_admin/faults", json={"rules": [{"kind": "meteor"}]})
    assert resp.status_code == 400 and "rules[0].kind" in resp.json()["error"]
    resp = httpx.post(f"{alipay_emulator.base_url}/_admin/faults",
                      json={"rules": [{"kind": "latency", "probability": 2}]})
    assert "rules[0].probability" in resp.json()["error"]


def test_faults_from_config_at_start() -> None:
    with EmulatorProcess({"faults": [{"kind": "system_error", "requests": [1]}], "seed": 7}) as emu:
        c = Client(emu)
        assert c.chat("first")["code"] == "20000"
        assert c.chat("second")["code"] == "10000"
        c.close()
