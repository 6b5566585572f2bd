"""``litellm-alipay check --backend ant-ling`` against the emulated Ant Ling endpoint."""

from litellm_alipay.cli import main


def test_check_lists_the_models_the_key_can_see(alipay_emulator, monkeypatch, capsys):
    monkeypatch.setenv("ANT_LING_API_KEY", alipay_emulator.ant_ling_api_key)
    code = main(["check", "--backend", "ant-ling", "--api-base", alipay_emulator.ant_ling_base,
                 "--model", "Ring-2.6-1T"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Ring-2.6-1T" in out and "Ling-3.0-flash-VL" in out
    assert alipay_emulator.ant_ling_api_key not in out


def test_check_fails_on_a_refused_key_without_printing_it(alipay_emulator, monkeypatch, capsys):
    secret = "sk-not-a-valid-key-0000000000"
    monkeypatch.setenv("ANT_LING_API_KEY", secret)
    code = main(["check", "--backend", "ant-ling", "--api-base", alipay_emulator.ant_ling_base])
    out = capsys.readouterr().out
    assert code == 1 and "AuthenticationError" in out and secret not in out


def test_check_without_a_key_names_the_setting(monkeypatch, capsys):
    monkeypatch.delenv("ANT_LING_API_KEY", raising=False)
    assert main(["check", "--backend", "ant-ling", "--no-call"]) == 1
    assert "ANT_LING_API_KEY" in capsys.readouterr().out
