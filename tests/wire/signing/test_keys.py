"""Key loading: every console form, clear errors that never echo a key, parse once."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from litellm_alipay.errors import ConfigurationError, KeyFormatError
from litellm_alipay.wire.signing import (
    _keys,
    check_key_pair,
    load_private_key,
    load_public_key,
    rsa_sign,
    rsa_verify,
)


def _wrapped(bare: str, width: int = 64) -> str:
    return "\n".join(bare[i : i + width] for i in range(0, len(bare), width)) + "\n"


def _private_forms(key, forms) -> dict:
    traditional_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return {
        "pkcs1": forms["private_pkcs1"],
        "pkcs8": forms["private_pkcs8"],
        "pkcs8-pem": forms["private_pem"],
        "pkcs1-pem": traditional_pem,
        "pkcs1-wrapped": _wrapped(forms["private_pkcs1"]),
        "pkcs8-crlf-padded": "  " + _wrapped(forms["private_pkcs8"], 76).replace("\n", "\r\n"),
        "pkcs1-bytes": forms["private_pkcs1"].encode(),
        "pem-bytes": forms["private_pem"].encode(),
    }


def test_every_private_form_loads_the_same_key(app_key, app_forms):
    for name, text in _private_forms(app_key, app_forms).items():
        key = load_private_key(text)
        assert key.private_numbers() == app_key.private_numbers(), name
        assert check_key_pair(key, app_key.public_key())
    assert load_private_key(app_key) is app_key


def test_every_public_form_loads_the_same_key(app_key, app_forms):
    pkcs1_pub_pem = app_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ).decode()
    for text in (app_forms["public"], app_forms["public_pem"], _wrapped(app_forms["public"]),
                 app_forms["public"].encode(), pkcs1_pub_pem):
        key = load_public_key(text)
        assert key.public_numbers() == app_key.public_key().public_numbers()
    public = app_key.public_key()
    assert load_public_key(public) is public


def test_keys_interoperate(app_forms):
    data = "签名".encode()
    sign = rsa_sign(data, app_forms["private_pkcs8"])
    assert rsa_verify(data, sign, app_forms["public_pem"])
    assert not check_key_pair(load_private_key(app_forms["private_pkcs1"]), load_public_key(
        "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIK"
        "jbJTWit+CqvjWYzvQwECAwEAAQ=="
    ))


def _assert_no_key_text(exc: BaseException, key_text: str) -> None:
    rendered = f"{exc!s} {exc!r} {exc.args!r}"
    compact = "".join(key_text.split())
    chunks = [compact[i : i + 12] for i in range(0, max(1, len(compact) - 11), 4)] if compact else []
    for chunk in chunks:
        assert chunk not in rendered, "error message echoes key material"
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None


GARBAGE = [
    "",
    "not a key at all",
    "AAAA",
    "c2VjcmV0LWtleS10ZXh0LXRoYXQtaXMtbm90LURFUg==",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vc\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "中文密钥",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_private_key(text):
    with pytest.raises(KeyFormatError) as info:
        load_private_key(text)
    assert "app_private_key" in str(info.value)
    assert info.value.setting == "app_private_key"
    assert isinstance(info.value, ConfigurationError)
    _assert_no_key_text(info.value, text)


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_public_key(text):
    with pytest.raises(KeyFormatError) as info:
        load_public_key(text)
    assert "alipay_public_key" in str(info.value)
    _assert_no_key_text(info.value, text)


def test_truncated_real_key_is_not_echoed(app_forms):
    truncated = app_forms["private_pkcs1"][:-40]
    with pytest.raises(KeyFormatError) as info:
        load_private_key(truncated)
    _assert_no_key_text(info.value, truncated)
    with pytest.raises(KeyFormatError) as info:
        load_private_key(app_forms["private_pem"].replace("MII", "MIJ", 1))
    _assert_no_key_text(info.value, app_forms["private_pem"])


def test_custom_key_name_is_used(app_forms):
    with pytest.raises(KeyFormatError, match="^my_key: "):
        load_private_key("garbage", what="my_key")


@pytest.mark.parametrize("form", ["public", "public_pem"])
def test_public_key_as_private_key_errors_clearly(form, app_forms):
    with pytest.raises(KeyFormatError) as info:
        load_private_key(app_forms[form])
    message = str(info.value)
    assert message.startswith("app_private_key: ")
    assert "public key" in message
    _assert_no_key_text(info.value, app_forms[form])


@pytest.mark.parametrize("form", ["private_pkcs1", "private_pkcs8", "private_pem"])
def test_private_key_as_public_key_errors_clearly(form, app_forms):
    with pytest.raises(KeyFormatError) as info:
        load_public_key(app_forms[form])
    message = str(info.value)
    assert message.startswith("alipay_public_key: ")
    assert "private key" in message
    _assert_no_key_text(info.value, app_forms[form])


def test_non_rsa_keys_are_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pub = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(KeyFormatError, match="RSA"):
        load_private_key(pem)
    with pytest.raises(KeyFormatError, match="RSA"):
        load_public_key(pub)


def test_private_key_is_parsed_once(app_forms):
    text = app_forms["private_pkcs8"]
    first = load_private_key(text)
    before = _keys._load_private.cache_info()
    second = load_private_key(text)
    third = load_private_key(text.encode())
    after = _keys._load_private.cache_info()
    assert second is first and third is first
    assert after.misses == before.misses
    assert after.hits == before.hits + 2


def test_public_key_is_parsed_once(app_forms):
    first = load_public_key(app_forms["public"])
    before = _keys._load_public.cache_info()
    assert load_public_key(app_forms["public"]) is first
    assert _keys._load_public.cache_info().misses == before.misses
