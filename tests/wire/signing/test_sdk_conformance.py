"""Request signing against the official SDK (``alipay-sdk-python``) as the oracle (PROTOCOL A3)."""

import json

import pytest
from alipay.aop.api.util.SignatureUtils import (
    get_sign_content,
    sign_with_rsa,
    sign_with_rsa2,
    verify_with_rsa,
)

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.wire.signing import build_sign_content, sign_params, verify_params

BASE = {
    "app_id": "2021000000000001",
    "method": "alipay.cloud.ai.chat",
    "format": "json",
    "charset": "utf-8",
    "version": "1.0",
    "timestamp": "2024-05-13 17:49:20",
}

# (id, parameters that are sent, parameters with empty values that must be dropped before signing)
CASES = [
    ("plain", {"biz_content": '{"out_trade_no":"1"}'}, {}),
    ("simplified-chinese", {"biz_content": '{"content":"你好，支付宝"}'}, {}),
    ("traditional-chinese", {"biz_content": '{"content":"臺灣繁體中文，支付寶"}'}, {}),
    ("mixed-chinese-top-level", {"biz_content": "{}", "notify_url": "https://例子.测试/回调?q=繁體"}, {}),
    ("emoji", {"biz_content": '{"content":"😀👍🏽🇨🇳 family 👨‍👩‍👧"}'}, {}),
    ("ampersand-equals", {"biz_content": '{"q":"a=1&b=2&c"}', "return_url": "https://x/?a=1&b=2"}, {}),
    ("plus-percent-hash", {"biz_content": '{"q":"1+1=2 %20 %E4%BD%A0 #frag"}'}, {}),
    ("spaces", {"biz_content": '{ "q" : "  leading and trailing  " }'}, {}),
    ("newlines", {"biz_content": '{\n  "q": "line1\\nline2",\n  "r": "x"\n}'}, {}),
    ("raw-newline-and-tab-in-value", {"biz_content": "{\"q\":\"a\tb\"}", "auth_token": "tok\nen"}, {}),
    ("escaped-slash", {"biz_content": '{"url":"https:\\/\\/example.com\\/a\\/b"}'}, {}),
    ("backslashes", {"biz_content": '{"path":"C:\\\\dir\\\\file","q":"\\"quoted\\""}'}, {}),
    ("nested-json", {"biz_content": json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
         "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        ensure_ascii=False, separators=(",", ":"))}, {}),
    ("nested-json-spaced", {"biz_content": json.dumps(
        {"a": {"b": {"c": [1, 2.5, None, True, "中"]}}}, ensure_ascii=False)}, {}),
    ("dict-biz-content", {"biz_content": {"content": "你好", "n": 1, "ok": True}}, {}),
    ("list-value", {"biz_content": "{}", "extra": ["a", "中", 3]}, {}),
    ("int-value", {"biz_content": "{}", "count": 7}, {}),
    ("empty-strings-dropped", {"biz_content": "{}"}, {"app_auth_token": "", "auth_token": ""}),
    ("whitespace-dropped", {"biz_content": "{}"}, {"app_auth_token": "   ", "auth_token": "\t\n"}),
    ("ideographic-space-dropped", {"biz_content": "{}"}, {"notify_url": "\u3000"}),
    ("none-dropped", {"biz_content": "{}"}, {"app_auth_token": None, "auth_token": None}),
    ("app-auth-token", {"biz_content": "{}", "app_auth_token": "202405BBd2f8a9c0e1"}, {"auth_token": ""}),
    ("cert-mode", {
        "biz_content": "{}", "app_cert_sn": "866efef280dec9137a87d047ac446315",
        "alipay_root_cert_sn": "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6",
    }, {}),
    ("encrypted-biz-content", {"biz_content": "XYdJ4q91MbK/ZmHp5drwEg==", "encrypt_type": "AES"}, {}),
    ("oauth-top-level", {"grant_type": "authorization_code", "code": "4b203fe6c11548bcabd8da5bb087a83b"},
     {"biz_content": ""}),
    ("no-biz-content", {}, {}),
    ("key-order-uppercase-digits", {"biz_content": "{}", "Zeta": "1", "a1": "2", "a_": "3", "A": "4"}, {}),
    ("sign-param-ignored", {"biz_content": "{}"}, {"sign": "c2lnbmF0dXJl"}),
    ("long-value", {"biz_content": json.dumps({"content": "长文本" * 3000}, ensure_ascii=False)}, {}),
    ("gbk-charset", {"charset": "GBK", "biz_content": '{"content":"你好，支付寶 & = + % #"}'}, {}),
    ("unicode-misc", {"biz_content": '{"c":"é ñ ß ﬁ Ω ∑ \u200b \u00a0x"}'}, {}),
]

SDK_SIGNERS = {"RSA2": sign_with_rsa2, "RSA": sign_with_rsa}


def _case_params(sent: dict, empties: dict, sign_type: str) -> tuple[dict, dict]:
    """(everything handed to our signer, what the SDK may see: no empties, no sign)."""
    params = {**BASE, "sign_type": sign_type, **sent}
    ours = {**params, **empties}
    return ours, params


def test_enough_cases():
    assert len(CASES) >= 25
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("sign_type", ["RSA2", "RSA"])
@pytest.mark.parametrize(("sent", "empties"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_official_sdk(sent, empties, sign_type, app_key, app_forms):
    ours, sdk_params = _case_params(sent, empties, sign_type)
    charset = sdk_params["charset"]

    content = build_sign_content(ours)
    assert content == get_sign_content(sdk_params)

    expected = SDK_SIGNERS[sign_type](app_forms["private_pkcs1"], content, charset)
    for form in (app_forms["private_pkcs1"], app_forms["private_pkcs8"], app_forms["private_pem"],
                 app_forms["private_pkcs1"].encode(), app_key):
        assert sign_params(ours, form) == expected

    assert verify_with_rsa(app_forms["public"], content.encode(charset), expected) is True
    assert verify_params({**ours, "sign": expected}, app_forms["public"])
    assert verify_params({**ours, "sign": expected}, app_forms["public_pem"])


@pytest.mark.parametrize("sign_type", ["RSA2", "RSA"])
def test_signature_covers_every_value(sign_type, app_forms):
    params = {**BASE, "sign_type": sign_type, "biz_content": '{"content":"你好"}'}
    sign = sign_params(params, app_forms["private_pkcs1"])
    assert verify_params({**params, "sign": sign}, app_forms["public"])
    assert not verify_params({**params, "biz_content": '{"content":"你好 "}', "sign": sign},
                             app_forms["public"])
    assert not verify_params({**params, "extra": "x", "sign": sign}, app_forms["public"])
    other = "RSA" if sign_type == "RSA2" else "RSA2"
    assert not verify_params({**params, "sign_type": other, "sign": sign}, app_forms["public"])


def test_empty_values_do_not_change_signature(app_forms):
    params = {**BASE, "sign_type": "RSA2", "biz_content": "{}"}
    padded = {**params, "app_auth_token": "", "auth_token": " ", "notify_url": None}
    assert build_sign_content(padded) == build_sign_content(params)
    assert sign_params(padded, app_forms["private_pkcs1"]) == sign_params(params, app_forms["private_pkcs1"])


def test_documented_example():
    params = {
        "app_id": "2021000000000001", "biz_content": '{"out_trade_no":"1"}', "charset": "utf-8",
        "format": "json", "method": "alipay.trade.query", "sign_type": "RSA2",
        "timestamp": "2024-05-13 17:49:20", "version": "1.0", "sign": "ignored",
    }
    assert build_sign_content(params) == (
        'app_id=2021000000000001&biz_content={"out_trade_no":"1"}&charset=utf-8&format=json'
        "&method=alipay.trade.query&sign_type=RSA2&timestamp=2024-05-13 17:49:20&version=1.0"
    )


def test_unsupported_charset_and_unencodable_text(app_forms):
    # A request claiming a charset the host lacks, or carrying text it cannot encode, is simply not
    # valid: the verifier (the gateway's side) must say False rather than crash.
    bogus = {**BASE, "sign_type": "RSA2", "charset": "no-such-charset", "sign": "AAAA"}
    assert verify_params(bogus, app_forms["public"]) is False
    gbk = {**BASE, "sign_type": "RSA2", "charset": "GBK", "biz_content": "😀", "sign": "AAAA"}
    assert verify_params(gbk, app_forms["public"]) is False


def test_signing_with_bad_charset_is_a_configuration_error(app_forms):
    with pytest.raises(ConfigurationError, match="charset"):
        sign_params({**BASE, "sign_type": "RSA2", "charset": "no-such-charset"}, app_forms["private_pkcs1"])
    with pytest.raises(ConfigurationError, match="charset"):
        sign_params({**BASE, "sign_type": "RSA2", "charset": "GBK", "x": "😀"}, app_forms["private_pkcs1"])
