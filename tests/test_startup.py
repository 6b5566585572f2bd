"""The proxy start-up check, unit level: which deployments it reports and what it says."""

from __future__ import annotations

from litellm_alipay.startup import deployment_problems


def test_reports_only_broken_alipay_deployments(alipay_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ALIPAY_KEY", alipay_emulator.app_private_key_path)
    monkeypatch.delenv("TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.delenv("ALIPAY_APP_ID", raising=False)  # the fallback an unset app_id would otherwise take
    good = {"app_id": alipay_emulator.app_id, "app_private_key": "os.environ/TEST_ALIPAY_KEY",
            "alipay_public_key": alipay_emulator.alipay_public_key_path, "api_base": alipay_emulator.gateway_url}
    model_list = [
        {"model_name": "ok", "litellm_params": {"model": "alipay/ant-fin-chat", **good}},
        {"model_name": "no-file", "litellm_params": {"model": "alipay/ant-fin-chat", **good,
                                                     "app_private_key": str(tmp_path / "gone.pem")}},
        {"model_name": "unset", "litellm_params": {"model": "alipay/ant-fin-chat", **good,
                                                   "app_id": "os.environ/TEST_UNSET_VARIABLE"}},
        {"model_name": "other", "litellm_params": {"model": "openai/gpt-x", "api_key": "os.environ/NOPE"}},
    ]
    problems = dict(deployment_problems(model_list))
    assert list(problems) == ["no-file (alipay/ant-fin-chat, model_list[1])",
                              "unset (alipay/ant-fin-chat, model_list[2])"]
    assert problems["no-file (alipay/ant-fin-chat, model_list[1])"].startswith(
        f"setting 'app_private_key' file not found: {tmp_path / 'gone.pem'}")
    unset = problems["unset (alipay/ant-fin-chat, model_list[2])"]
    assert "setting 'app_id' is required" in unset and "app_id reads TEST_UNSET_VARIABLE, which is not set" in unset
    assert "BEGIN" not in "".join(problems.values())


def test_each_backend_is_checked_by_its_own_rules(alipay_emulator, monkeypatch):
    """Ant Ling deployments have no /gateway.do and no app keys: a working one is not reported (the
    gateway's rules reported every one), and a broken one is, with the Ant Ling setting at fault."""
    monkeypatch.setenv("TEST_LING_KEY", alipay_emulator.ant_ling_api_key)
    monkeypatch.setenv("TEST_LING_BASE", alipay_emulator.ant_ling_base)
    for name in ("ANT_LING_API_KEY", "ANT_LING_API_BASE", "TEST_UNSET_LING_KEY"):
        monkeypatch.delenv(name, raising=False)
    model_list = [
        {"model_name": "ling-flash", "litellm_params": {
            "model": "alipay/Ling-2.6-flash", "api_key": "os.environ/TEST_LING_KEY",
            "api_base": "os.environ/TEST_LING_BASE"}},
        {"model_name": "ring", "litellm_params": {  # api_base unset: Ant Ling's default endpoint
            "model": "alipay/Ring-2.6-1T", "api_key": "os.environ/TEST_LING_KEY",
            "allowed_openai_params": ["reasoning_effort"]}},
        {"model_name": "ling-on-gateway-url", "litellm_params": {
            "model": "alipay/Ling-2.6-flash", "api_key": "os.environ/TEST_LING_KEY",
            "api_base": alipay_emulator.gateway_url}},
        {"model_name": "ling-no-key", "litellm_params": {
            "model": "alipay/Ling-3.0-flash", "api_key": "os.environ/TEST_UNSET_LING_KEY",
            "api_base": "os.environ/TEST_LING_BASE"}},
        {"model_name": "ling-bad-backend", "litellm_params": {
            "model": "alipay/Ling-2.6-flash", "backend": "ling", "api_key": "os.environ/TEST_LING_KEY"}},
    ]
    problems = dict(deployment_problems(model_list))
    assert sorted(problems) == ["ling-bad-backend (alipay/Ling-2.6-flash, model_list[4])",
                                "ling-no-key (alipay/Ling-3.0-flash, model_list[3])",
                                "ling-on-gateway-url (alipay/Ling-2.6-flash, model_list[2])"]
    assert problems["ling-on-gateway-url (alipay/Ling-2.6-flash, model_list[2])"].startswith(
        "setting 'api_base' is an Alipay gateway URL")
    no_key = problems["ling-no-key (alipay/Ling-3.0-flash, model_list[3])"]
    assert no_key.startswith("setting 'api_key' is required for Ant Ling models")
    assert "api_key reads TEST_UNSET_LING_KEY, which is not set" in no_key
    assert problems["ling-bad-backend (alipay/Ling-2.6-flash, model_list[4])"].startswith("setting 'backend'")
    assert alipay_emulator.ant_ling_api_key not in "".join(problems.values())
