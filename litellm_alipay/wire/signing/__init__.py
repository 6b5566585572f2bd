"""The Alipay signer: pure functions over ``cryptography``, no I/O.

One definition of the wire format, used by the client to sign and verify and by the emulator to verify
and sign the other way.
"""

from ._aes import aes_decrypt, aes_encrypt
from ._certs import CertKeyRing, cert_sn, root_cert_sn
from ._keys import (
    KeyText,
    PrivateKey,
    PublicKey,
    check_key_pair,
    generate_private_key,
    load_certificate,
    load_certificates,
    load_private_key,
    load_public_key,
    private_key_forms,
)
from ._params import (
    BEIJING,
    SIGN_TYPES,
    beijing_timestamp,
    build_sign_content,
    hmac_sign,
    hmac_verify,
    param_text,
    parse_beijing_timestamp,
    rsa_sign,
    rsa_verify,
    sign_params,
    verify_params,
)
from ._response import extract_signed_node, response_node_name, verify_node, verify_response
from ._v3 import (
    AUTH_SCHEME,
    parse_v3_authorization,
    v3_auth_string,
    v3_authorization,
    v3_response_signature,
    v3_sign,
    v3_sign_content,
    v3_verify,
)

__all__ = [
    "AUTH_SCHEME", "BEIJING", "SIGN_TYPES", "CertKeyRing", "KeyText", "PrivateKey", "PublicKey",
    "aes_decrypt", "aes_encrypt", "beijing_timestamp", "build_sign_content", "cert_sn",
    "check_key_pair", "extract_signed_node", "generate_private_key", "hmac_sign", "hmac_verify",
    "load_certificate", "load_certificates", "load_private_key", "load_public_key", "param_text",
    "parse_beijing_timestamp", "parse_v3_authorization", "private_key_forms", "response_node_name",
    "root_cert_sn", "rsa_sign", "rsa_verify", "sign_params", "v3_auth_string", "v3_authorization",
    "v3_response_signature", "v3_sign", "v3_sign_content", "v3_verify", "verify_node",
    "verify_params", "verify_response",
]
