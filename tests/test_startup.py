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
