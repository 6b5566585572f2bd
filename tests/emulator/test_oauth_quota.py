"""OAuth grants and auth_token checks (A8), and per-app quotas answered 429 without reset headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire.signing import generate_private_key, private_key_forms

from .helpers import CHAT, OAUTH, Client, chat_biz

PER_SECOND_APP, PER_MINUTE_APP = "2021000000000101", "2021000000000102"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorProcess, object]]:
    key = generate_private_key()
    pub = tmp_path_factory.mktemp("keys") / "app_public.txt"
    pub.write_text(private_key_forms(key)["public"])  # the console's bare base64
    config = {
        "oauth": {"expires_in": 0},
        "apps": [
            {"app_id": PER_SECOND_APP, "app_public_key": str(pub), "quota": {"per_second": 3}},
            {"app_id": PER_MINUTE_APP, "app_public_key": str(pub), "tier": "standard",
             "quota": {"per_minute": 4}},
        ],
    }
    with EmulatorProcess(config) as emu:
        yield emu, key


def test_authorization_code_then_refresh(client: Client) -> None:
    _, node = client.call(OAUTH, grant_type="authorization_code", code="code-abc")
    assert node["code"] == "10000" and node["user_id"].startswith("2088") and len(node["user_id"]) == 16
    assert node["expires_in"] == 1296000 and node["re_expires_in"] == 2592000
    assert client.call(CHAT, chat_biz("t"), auth_token=node["access_token"])[1]["code"] == "10000"
    _, again = client.call(OAUTH, grant_type="refresh_token", refresh_token=node["refresh_token"])
    assert again["user_id"] == node["user_id"] and again["access_token"] != node["access_token"]
    _, reused = client.call(OAUTH, grant_type="refresh_token", refresh_token=node["refresh_token"])
    assert reused["sub_code"] == "isv.refresh-token-invalid"


def test_oauth_rejections(client: Client) -> None:
    client.call(OAUTH, grant_type="authorization_code", code="once")
    assert client.call(OAUTH, grant_type="authorization_code", code="once")[1]["sub_code"] == "isv.code-invalid"
    assert client.call(OAUTH, grant_type="authorization_code")[1]["sub_code"] == "isv.missing-code"
    assert client.call(OAUTH, grant_type="password")[1]["sub_code"] == "isv.grant-type-invalid"
    assert client.call(OAUTH)[1]["sub_code"] == "isv.missing-grant-type"


def test_unknown_auth_token(client: Client) -> None:
    _, node = client.call(CHAT, chat_biz("x"), auth_token="authusrBnotatoken")
    assert (node["code"], node["sub_code"]) == ("20001", "aop.invalid-auth-token")


def test_expired_auth_token(configured) -> None:
    emu, key = configured
    c = Client(emu, key=key, app_id=PER_MINUTE_APP)
    emu.reset()
    _, token = c.call(OAUTH, grant_type="authorization_code", code="short-lived")
    assert token["expires_in"] == 0
    _, node = c.call(CHAT, chat_biz("late"), auth_token=token["access_token"])
    assert (node["code"], node["sub_code"]) == ("20001", "aop.auth-token-time-out")
    c.close()


def test_per_second_quota(configured) -> None:
    emu, key = configured
    emu.reset()
    c = Client(emu, key=key, app_id=PER_SECOND_APP)
    statuses = []
    for i in range(8):
        resp = c.post(c.params(CHAT, chat_biz(f"q{i}")))
        statuses.append(resp.status_code)
        node = c.verify(CHAT, resp)  # throttled answers are signed method nodes
        if resp.status_code == 429:
            assert (node["code"], node["sub_code"]) == ("40004", "AI.RATE_LIMITED")
            assert not [h for h in resp.headers if "retry" in h or "reset" in h or "ratelimit" in h]
    assert statuses[:3] == [200, 200, 200]
    assert statuses.count(429) >= 1
    assert emu.stats()["rejections"]["AI.RATE_LIMITED"] == statuses.count(429)
    c.close()


def test_per_minute_quota_with_tier(configured) -> None:
    emu, key = configured
    emu.reset()
    c = Client(emu, key=key, app_id=PER_MINUTE_APP)
    statuses = [c.post(c.params(CHAT, chat_biz(f"m{i}"))).status_code for i in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    c.close()


def test_bare_base64_public_key_in_config_works(configured) -> None:
    emu, key = configured
    assert Path(emu.keys_dir).is_dir()
    c = Client(emu, key=key, app_id=PER_SECOND_APP)
    emu.reset()
    assert c.chat("bare")["choices"][0]["message"]["content"] == "You said: bare"
    c.close()
