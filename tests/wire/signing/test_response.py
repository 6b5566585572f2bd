"""Response verification (PROTOCOL A4, A6, A9): the raw node text is what is signed and returned."""

import base64
import datetime
import json

import pytest
from alipay.aop.api.util.SignatureUtils import sign_with_rsa, sign_with_rsa2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from litellm_alipay.errors import SignatureError
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import (
    CertKeyRing,
    aes_decrypt,
    aes_encrypt,
    cert_sn,
    extract_signed_node,
    rsa_sign,
    verify_response,
)

METHOD = protocol.METHOD_CHAT
NODE = protocol.response_node_name(METHOD)
AES_KEY = base64.b64encode(bytes(range(16))).decode()


def gw_sign(node_text: str, pkcs1: str, sign_type: str = "RSA2") -> str:
    """Sign as the gateway does, with the official SDK: over the node's raw text."""
    signer = sign_with_rsa2 if sign_type == "RSA2" else sign_with_rsa
    return signer(pkcs1, node_text, "utf-8")


def signed_body(node_text: str, forms, sign_type="RSA2", *, error=False, cert_sn=None) -> str:
    return protocol.node_body(
        METHOD, node_text, gw_sign(node_text, forms["private_pkcs1"], sign_type), error=error,
        cert_sn=cert_sn,
    )


SUCCESS_NODES = [
    '{"code":"10000","msg":"Success","trace_id":"t1"}',
    '{"code":"10000","msg":"Success","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"你好，支付寶 😀"},"finish_reason":"stop"}]}',
    '{\n  "code" : "10000",\n  "msg" : "Success" ,\n  "n": 1.50 }',  # re-dumping would change it
    '{"code":"10000","msg":"Success","content":"\\u4f60\\u597d"}',
    '{"code":"10000","msg":"Success","nested":{"a":{"b":[{},{"c":"}"}]}}}',
]


@pytest.mark.parametrize("node_text", SUCCESS_NODES)
@pytest.mark.parametrize("sign_type", ["RSA2", "RSA"])
def test_gateway_signed_body_is_accepted(node_text, sign_type, alipay_forms):
    body = signed_body(node_text, alipay_forms, sign_type)
    for form in (alipay_forms["public"], alipay_forms["public_pem"]):
        node = verify_response(body, METHOD, form, sign_type)
        assert node == json.loads(node_text)
        assert protocol.is_success(node)
    assert verify_response(body.encode(), METHOD, alipay_forms["public"], sign_type) == json.loads(node_text)


def test_tampered_node_is_rejected(alipay_forms):
    node_text = '{"code":"10000","msg":"Success","content":"pay 1.00"}'
    body = signed_body(node_text, alipay_forms)
    tampered = body.replace("pay 1.00", "pay 9.00")
    assert tampered != body
    with pytest.raises(SignatureError):
        verify_response(tampered, METHOD, alipay_forms["public"])


def test_signature_from_another_key_is_rejected(alipay_forms, app_forms):
    body = signed_body('{"code":"10000","msg":"Success"}', app_forms)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


def test_reordered_keys_are_rejected(alipay_forms):
    signed_text = '{"code":"10000","msg":"Success"}'
    sign = gw_sign(signed_text, alipay_forms["private_pkcs1"])
    body = protocol.node_body(METHOD, '{"msg":"Success","code":"10000"}', sign)
    assert json.loads(body)[NODE] == json.loads(signed_text)  # same JSON, different text
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


def test_duplicated_node_after_the_real_one_is_rejected(alipay_forms):
    real = '{"code":"40004","msg":"Business Failed","sub_code":"AI.MODEL_NOT_FOUND"}'
    body = signed_body(real, alipay_forms)
    forged = body[:-1] + f',"{NODE}":{{"code":"10000","msg":"Success"}}}}'
    assert json.loads(forged)[NODE]["code"] == "10000"  # what a naive json.loads would report
    assert verify_response(body, METHOD, alipay_forms["public"])["code"] == "40004"
    with pytest.raises(SignatureError, match="more than once"):
        verify_response(forged, METHOD, alipay_forms["public"])


def test_node_of_another_method_is_not_taken(alipay_forms):
    node_text = '{"code":"10000","msg":"Success"}'
    sign = gw_sign(node_text, alipay_forms["private_pkcs1"])
    body = protocol.node_body("alipay.trade.query", node_text, sign)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


def test_sha1_signature_is_rejected_when_rsa2_is_configured(alipay_forms):
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms, "RSA")
    assert verify_response(body, METHOD, alipay_forms["public"], "RSA")["code"] == "10000"
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], "RSA2")


def test_sha256_signature_is_rejected_when_rsa_is_configured(alipay_forms):
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms, "RSA2")
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], "RSA")


def test_hmac_cannot_verify_a_response(alipay_forms):
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], "HMAC-SHA256")


def test_escaped_slash_is_accepted_through_the_retry(alipay_forms):
    wire = '{"code":"10000","msg":"Success","url":"https:\\/\\/example.com\\/a"}'
    sign = gw_sign(wire.replace("\\/", "/"), alipay_forms["private_pkcs1"])
    body = protocol.node_body(METHOD, wire, sign)
    assert verify_response(body, METHOD, alipay_forms["public"])["url"] == "https://example.com/a"
    # the signature over the escaped text itself is accepted too
    body = signed_body(wire, alipay_forms)
    assert verify_response(body, METHOD, alipay_forms["public"])["url"] == "https://example.com/a"


def test_escaped_slash_retry_does_not_rescue_a_bad_signature(alipay_forms):
    wire = '{"code":"10000","msg":"Success","url":"https:\\/\\/example.com\\/a"}'
    sign = gw_sign(wire.replace("\\/", "/").replace("example", "evil"), alipay_forms["private_pkcs1"])
    with pytest.raises(SignatureError):
        verify_response(protocol.node_body(METHOD, wire, sign), METHOD, alipay_forms["public"])


@pytest.mark.parametrize("node_text", [
    '{"code":"10000","msg":"a\\"}{","x":"}"}',
    '{"code":"10000","msg":"\\\\","y":"{{{"}',  # a string ending in an escaped backslash
    '{"code":"10000","msg":"\\\\\\"}","z":{"w":"\\"{"}}',
    '{"code":"10000","msg":"\\"}\\"}\\"}"}',
])
def test_braces_and_escaped_quotes_inside_strings(node_text, alipay_forms):
    body = signed_body(node_text, alipay_forms)
    _, raw, _ = extract_signed_node(body, METHOD)
    assert raw == node_text.encode()
    assert verify_response(body, METHOD, alipay_forms["public"]) == json.loads(node_text)


def test_utf8_bom_is_tolerated(alipay_forms):
    node_text = '{"code":"10000","msg":"成功"}'
    body = signed_body(node_text, alipay_forms)
    assert verify_response(b"\xef\xbb\xbf" + body.encode(), METHOD, alipay_forms["public"])["msg"] == "成功"
    assert verify_response("\ufeff" + body, METHOD, alipay_forms["public"])["msg"] == "成功"


def test_signed_error_response(alipay_forms):
    node_text = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}'
    body = signed_body(node_text, alipay_forms, error=True)
    assert '"error_response"' in body
    node = verify_response(body, METHOD, alipay_forms["public"])
    assert node == json.loads(node_text)
    assert "_unsigned" not in node
    assert not protocol.is_success(node)


def test_badly_signed_error_response_is_rejected(alipay_forms, app_forms):
    body = signed_body('{"code":"40002","msg":"Invalid Arguments"}', app_forms, error=True)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


def test_unsigned_error_response_is_flagged(alipay_forms):
    node_text = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}'
    body = protocol.node_body(METHOD, node_text, None, error=True)
    node = verify_response(body, METHOD, alipay_forms["public"])
    assert node["_unsigned"] is True
    assert node["sub_code"] == "isv.invalid-signature"
    assert not protocol.is_success(node)


@pytest.mark.parametrize("sign", [None, ""])
def test_unsigned_error_response_claiming_success_is_not_success(sign, alipay_forms):
    body = protocol.node_body(METHOD, '{"code":"10000","msg":"Success"}', sign, error=True)
    node = verify_response(body, METHOD, alipay_forms["public"])
    assert node["_unsigned"] is True
    assert not protocol.is_success(node)


@pytest.mark.parametrize("sign", [None, "", 12345])
def test_unsigned_success_node_is_rejected(sign, alipay_forms):
    node_text = '{"code":"10000","msg":"Success"}'
    body = protocol.node_body(METHOD, node_text, None)
    if sign is not None:
        body = body[:-1] + f',"sign":{json.dumps(sign)}}}'
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


@pytest.mark.parametrize("body", [
    "", "{}", "[]", "null", '{"sign":"AAAA"}', '{"other_response":{"code":"10000"},"sign":"AAAA"}',
    f'{{"{NODE}":"unterminated', f'{{"{NODE}":{{"code":"10000"', f'{{"{NODE}":[1,2],"sign":"AAAA"}}',
    f'{{"{NODE}" 1}}', f'{{"{NODE}":{{"code":"10000"}},"sign":"AAAA"}}',
    f'{{"{NODE}":{{"code":"10000"}},"sign":"!!not base64!!"}}',
    f'{{"{NODE}":{{"code":"10000"}},"sign":"签名"}}',
    b'\xff\xfe\x00{',
])
def test_malformed_bodies_raise_signature_error(body, alipay_forms):
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


def test_deeply_nested_body_raises_signature_error(alipay_forms):
    node_text = '{"code":"10000","msg":"Success"}'
    sign = gw_sign(node_text, alipay_forms["private_pkcs1"])
    deep = "[" * 100_000 + "]" * 100_000
    body = f'{{"{NODE}":{node_text},"x":{deep},"sign":"{sign}"}}'
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])
    nested_node = '{"code":"10000","x":' + deep + "}"
    body = signed_body(nested_node, alipay_forms)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"])


# ------------------------------------------------------------------------------- certificate mode
def _self_signed(key, common_name: str, serial: int) -> str:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ant Financial"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(serial)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def certs(alipay_key, app_key):
    return {
        "alipay": _self_signed(alipay_key, "Alipay Public Key Test", 0x2019_0001),
        "other": _self_signed(app_key, "Another Alipay Key", 0x2020_0002),
    }


def test_cert_key_ring_picks_the_key_by_cert_sn(certs, alipay_forms, app_forms):
    ring = CertKeyRing([certs["other"], certs["alipay"]])
    sn_alipay, sn_other = cert_sn(certs["alipay"]), cert_sn(certs["other"])
    assert sn_alipay != sn_other
    assert sn_alipay in ring and sn_other in ring

    node_text = '{"code":"10000","msg":"Success"}'
    body = signed_body(node_text, alipay_forms, cert_sn=sn_alipay)
    assert '"alipay_cert_sn"' in body
    assert verify_response(body, METHOD, ring) == json.loads(node_text)

    body = signed_body(node_text, app_forms, cert_sn=sn_other)
    assert verify_response(body, METHOD, ring) == json.loads(node_text)

    # signed by one key but naming the other's certificate
    body = signed_body(node_text, alipay_forms, cert_sn=sn_other)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, ring)


def test_cert_key_ring_without_sn_uses_the_first_cert(certs, alipay_forms):
    ring = CertKeyRing([certs["alipay"], certs["other"]])
    assert ring.default_sn == cert_sn(certs["alipay"])
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms)
    assert verify_response(body, METHOD, ring)["code"] == "10000"


def test_unknown_cert_sn_is_rejected(certs, alipay_forms):
    ring = CertKeyRing([certs["alipay"]])
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms, cert_sn="0" * 32)
    with pytest.raises(SignatureError, match="not configured"):
        verify_response(body, METHOD, ring)


@pytest.mark.parametrize("bad_sn", [["x"], {"a": 1}, 123, True])
def test_non_string_cert_sn_is_rejected(bad_sn, certs, alipay_forms):
    ring = CertKeyRing([certs["alipay"]])
    node_text = '{"code":"10000","msg":"Success"}'
    sign = gw_sign(node_text, alipay_forms["private_pkcs1"])
    body = f'{{"{NODE}":{node_text},"alipay_cert_sn":{json.dumps(bad_sn)},"sign":"{sign}"}}'
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, ring)


def test_empty_key_ring_rejects(alipay_forms):
    body = signed_body('{"code":"10000","msg":"Success"}', alipay_forms)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, CertKeyRing([]))


# ------------------------------------------------------------------------------------ AES nodes
def test_aes_encrypted_node(alipay_forms):
    plain = '{"code":"10000","msg":"Success","content":"加密的内容 😀"}'
    node_text = json.dumps(aes_encrypt(plain, AES_KEY))  # a JSON string, quotes included
    assert node_text.startswith('"') and node_text.endswith('"')
    body = signed_body(node_text, alipay_forms)
    node = verify_response(body, METHOD, alipay_forms["public"], decrypt=lambda c: aes_decrypt(c, AES_KEY))
    assert node == json.loads(plain)

    with pytest.raises(SignatureError, match="encrypted"):
        verify_response(body, METHOD, alipay_forms["public"])
    wrong = base64.b64encode(bytes(range(1, 17))).decode()
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], decrypt=lambda c: aes_decrypt(c, wrong))


def test_aes_signature_must_cover_the_quotes(alipay_forms):
    ciphertext = aes_encrypt('{"code":"10000"}', AES_KEY)
    sign = gw_sign(ciphertext, alipay_forms["private_pkcs1"])  # without the quotes
    body = protocol.node_body(METHOD, json.dumps(ciphertext), sign)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], decrypt=lambda c: aes_decrypt(c, AES_KEY))


def test_aes_decrypting_to_a_non_object_is_rejected(alipay_forms):
    node_text = json.dumps(aes_encrypt("[1, 2]", AES_KEY))
    body = signed_body(node_text, alipay_forms)
    with pytest.raises(SignatureError):
        verify_response(body, METHOD, alipay_forms["public"], decrypt=lambda c: aes_decrypt(c, AES_KEY))


def test_our_rsa_sign_agrees_with_the_sdk_on_nodes(alipay_forms):
    node_text = '{"code":"10000","msg":"成功"}'
    assert rsa_sign(node_text.encode(), alipay_forms["private_pkcs8"]) == gw_sign(
        node_text, alipay_forms["private_pkcs1"]
    )
