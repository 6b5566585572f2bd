"""v3 header signatures (A7), AES content encryption (A9) and HMAC-SHA256."""

import base64
import hashlib
import hmac

import pytest
from alipay.aop.api.util.SignatureUtils import verify_with_rsa
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from litellm_alipay.errors import ConfigurationError, SignatureError
from litellm_alipay.wire.signing import (
    AUTH_SCHEME,
    aes_decrypt,
    aes_encrypt,
    hmac_sign,
    hmac_verify,
    parse_v3_authorization,
    rsa_verify,
    sign_params,
    v3_authorization,
    v3_response_signature,
    v3_verify,
    verify_params,
)

BODY = '{"model":"m","messages":[{"role":"user","content":"你好 & = + % #"}]}'
URI = "/v3/alipay/cloud/ai/chat?lang=zh-CN&x=%E4%BD%A0"


@pytest.mark.parametrize("app_auth_token", [None, "202405BBd2f8a9c0e1"])
@pytest.mark.parametrize("app_cert_sn", [None, "866efef280dec9137a87d047ac446315"])
@pytest.mark.parametrize("http_method", ["POST", "get"])
def test_v3_authorization_round_trip(app_auth_token, app_cert_sn, http_method, app_forms):
    header = v3_authorization(
        "2021000000000001", http_method, URI, BODY, app_forms["private_pkcs1"], app_cert_sn=app_cert_sn,
        app_auth_token=app_auth_token, nonce="n0nce-123", timestamp_ms=1715593760000,
    )
    assert header.startswith(AUTH_SCHEME + " ")
    fields = parse_v3_authorization(header)
    assert fields["app_id"] == "2021000000000001"
    assert fields["nonce"] == "n0nce-123"
    assert fields["timestamp"] == "1715593760000"
    assert fields.get("app_cert_sn") == app_cert_sn
    cert = f",app_cert_sn={app_cert_sn}" if app_cert_sn else ""
    auth = f"app_id=2021000000000001{cert},nonce=n0nce-123,timestamp=1715593760000"
    assert fields["auth"] == auth

    # the A7 content, written out independently of the library
    content = f"{auth}\n{http_method.upper()}\n{URI}\n{BODY}\n"
    if app_auth_token:
        content += app_auth_token + "\n"
    data = content.encode("utf-8")
    assert rsa_verify(data, fields["sign"], app_forms["public"], "RSA2")
    assert verify_with_rsa(app_forms["public"], data, fields["sign"]) is True
    assert not rsa_verify(data + b"x", fields["sign"], app_forms["public"], "RSA2")
    if app_auth_token:  # the token is covered by the signature
        assert not rsa_verify(data[: -len(app_auth_token) - 1], fields["sign"], app_forms["public"])


def test_v3_authorization_fresh_nonce_and_timestamp(app_forms):
    a = parse_v3_authorization(v3_authorization("1", "POST", "/v3/x", "", app_forms["private_pkcs8"]))
    b = parse_v3_authorization(v3_authorization("1", "POST", "/v3/x", "", app_forms["private_pkcs8"]))
    assert a["nonce"] != b["nonce"]
    assert a["timestamp"].isdigit() and len(a["timestamp"]) == 13


@pytest.mark.parametrize(
    "header", ["", "Bearer abc", "ALIPAY-SHA256withRSA app_id=1,nonce=2", "ALIPAY-SHA256withRSA"]
)
def test_parse_v3_authorization_rejects_other_headers(header):
    with pytest.raises(ValueError):
        parse_v3_authorization(header)


def test_v3_response_signature(alipay_forms):
    body = '{"model":"m","choices":[{"message":{"content":"你好"}}]}'
    sign = v3_response_signature("1715593760123", "abc", body, alipay_forms["private_pem"])
    assert v3_verify("1715593760123", "abc", body, sign, alipay_forms["public"])
    assert v3_verify("1715593760123", "abc", body.encode(), sign, alipay_forms["public_pem"])
    expected = f"1715593760123\nabc\n{body}\n".encode()
    assert verify_with_rsa(alipay_forms["public"], expected, sign) is True
    assert not v3_verify("1715593760123", "abc", body.replace("你好", "你坏"), sign, alipay_forms["public"])
    assert not v3_verify("1715593760124", "abc", body, sign, alipay_forms["public"])
    assert not v3_verify("1715593760123", "abd", body, sign, alipay_forms["public"])
    assert not v3_verify("1715593760123", "abc", body, "bm90IGEgc2lnbmF0dXJl", alipay_forms["public"])


# ------------------------------------------------------------------------------------------- AES
AES_KEY = base64.b64encode(bytes(range(16))).decode()
OTHER_KEY = base64.b64encode(bytes(range(100, 116))).decode()


def _oracle_encrypt(text: str, key: str) -> str:
    cipher = AES.new(base64.b64decode(key), AES.MODE_CBC, iv=bytes(16))
    return base64.b64encode(cipher.encrypt(pad(text.encode("utf-8"), 16))).decode()


@pytest.mark.parametrize("text", [
    "", "a", "x" * 16, '{"model":"m","messages":[{"role":"user","content":"你好，支付寶 😀"}]}',
    "中文" * 100, "\n\t\\/\"",
])
def test_aes_round_trip(text):
    ciphertext = aes_encrypt(text, AES_KEY)
    assert ciphertext == _oracle_encrypt(text, AES_KEY)  # AES-128-CBC, zero IV, PKCS#7
    assert aes_decrypt(ciphertext, AES_KEY) == text
    assert aes_decrypt(_oracle_encrypt(text, AES_KEY), AES_KEY) == text


def test_aes_known_answer():
    assert aes_encrypt("hello", AES_KEY) == "XYdJ4q91MbK/ZmHp5drwEg=="


def test_aes_wrong_key_raises_signature_error():
    ciphertext = aes_encrypt('{"content":"你好，世界"}', AES_KEY)
    with pytest.raises(SignatureError):
        aes_decrypt(ciphertext, OTHER_KEY)


@pytest.mark.parametrize("ciphertext", ["not base64!", "", "AAAA", base64.b64encode(b"x" * 17).decode()])
def test_aes_garbage_ciphertext_raises_signature_error(ciphertext):
    with pytest.raises(SignatureError):
        aes_decrypt(ciphertext, AES_KEY)


@pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"short").decode()])
def test_aes_bad_key_is_a_configuration_error(key):
    with pytest.raises(ConfigurationError, match="encrypt_key"):
        aes_encrypt("x", key)


# ------------------------------------------------------------------------------------------ HMAC
def test_hmac_sha256():
    data = "app_id=1&biz_content={\"q\":\"你好\"}".encode()
    expected = base64.b64encode(hmac.new(b"s3cret", data, hashlib.sha256).digest()).decode()
    assert hmac_sign(data, "s3cret") == expected
    assert hmac_sign(data, b"s3cret") == expected
    assert hmac_verify(data, expected, "s3cret")
    assert not hmac_verify(data, expected, "other")
    assert not hmac_verify(data + b"x", expected, "s3cret")


def test_hmac_sign_params():
    params = {"app_id": "1", "sign_type": "HMAC-SHA256", "charset": "utf-8", "biz_content": "{}", "x": ""}
    sign = sign_params(params, "s3cret")
    data = b"app_id=1&biz_content={}&charset=utf-8&sign_type=HMAC-SHA256"
    assert sign == base64.b64encode(hmac.new(b"s3cret", data, hashlib.sha256).digest()).decode()
    assert verify_params({**params, "sign": sign}, "s3cret")
    assert not verify_params({**params, "sign": sign}, "other")
    assert not verify_params({**params, "biz_content": "{ }", "sign": sign}, "s3cret")
