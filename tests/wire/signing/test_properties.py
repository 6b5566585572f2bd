"""Hypothesis properties of request signing and response verification."""

import json
import string

from alipay.aop.api.util.SignatureUtils import get_sign_content, verify_with_rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litellm_alipay.errors import SignatureError
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import (
    build_sign_content,
    generate_private_key,
    private_key_forms,
    rsa_sign,
    sign_params,
    verify_params,
    verify_response,
)

# Generated once at import: a function-scoped fixture would be shared across examples anyway, and
# hypothesis rightly complains about those.
KEY = generate_private_key()
FORMS = private_key_forms(KEY)
METHOD = protocol.METHOD_CHAT
NODE_TEXT = '{"code":"10000","msg":"Success","content":"你好 \\"}{\\" https:\\/\\/x","n":[1,{"a":"}"}]}'
VALID_BODY = protocol.node_body(METHOD, NODE_TEXT, rsa_sign(NODE_TEXT.encode(), KEY)).encode()
VALID_NODE = json.loads(NODE_TEXT)

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

param_keys = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12).filter(
    lambda k: k not in ("sign", "sign_type", "charset")
)
param_values = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
param_dicts = st.dictionaries(param_keys, param_values, max_size=8)


@SETTINGS
@given(params=param_dicts, sign_type=st.sampled_from(["RSA2", "RSA"]))
def test_sign_verify_round_trip(params, sign_type):
    params = {**params, "sign_type": sign_type, "charset": "utf-8"}
    sign = sign_params(params, KEY)
    assert verify_params({**params, "sign": sign}, FORMS["public"])

    kept = {k: v for k, v in params.items() if v.strip()}
    content = build_sign_content(params)
    assert content == get_sign_content(kept)
    assert verify_with_rsa(FORMS["public"], content.encode("utf-8"), sign) is True


@SETTINGS
@given(params=param_dicts.filter(lambda d: any(v.strip() for v in d.values())), data=st.data())
def test_changing_a_signed_value_breaks_the_signature(params, data):
    params = {**params, "sign_type": "RSA2", "charset": "utf-8"}
    sign = sign_params(params, KEY)
    key = data.draw(st.sampled_from(sorted(k for k, v in params.items() if v.strip())))
    changed = {**params, key: params[key] + "x", "sign": sign}
    assert not verify_params(changed, FORMS["public"])


def _check_outcome(body):
    try:
        node = verify_response(body, METHOD, FORMS["public"])
    except SignatureError:
        return
    assert isinstance(node, dict)
    if node.get("_unsigned"):
        assert not protocol.is_success(node)
    else:  # whatever was mutated, a verified node is exactly the one that was signed
        assert node == VALID_NODE


@SETTINGS
@given(body=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_signature_error(body):
    _check_outcome(body)


TOKENS = list('{}[]":,\\ \n0aéx_') + [
    f'"{protocol.response_node_name(METHOD)}":', '"error_response":', '"sign":', '"alipay_cert_sn":',
    '"code":"10000"', '"\\"', "\\/", NODE_TEXT,
]


@SETTINGS
@given(body=st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_json_like_text_raises_only_signature_error(body):
    _check_outcome(body)


mutation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, len(VALID_BODY)), st.integers(1, 20)),
    st.tuples(st.just("insert"), st.integers(0, len(VALID_BODY)), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("replace"), st.integers(0, len(VALID_BODY) - 1), st.integers(0, 255)),
    st.tuples(st.just("duplicate"), st.integers(0, len(VALID_BODY)), st.integers(1, 60)),
)


def _mutate(body: bytes, op) -> bytes:
    kind, at, arg = op
    if kind == "delete":
        return body[:at] + body[at + arg :]
    if kind == "insert":
        return body[:at] + arg + body[at:]
    if kind == "replace":
        return body[:at] + bytes([arg]) + body[at + 1 :]
    return body[:at] + body[at : at + arg] + body[at:]


@SETTINGS
@given(ops=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_valid_body_raises_only_signature_error(ops):
    assert verify_response(VALID_BODY, METHOD, FORMS["public"]) == VALID_NODE
    body = VALID_BODY
    for op in ops:
        body = _mutate(body, op)
    _check_outcome(body)
