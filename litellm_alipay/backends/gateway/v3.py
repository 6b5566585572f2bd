"""Protocol v3 (REST, A7): its request (a JSON body and an ``Authorization`` header signed over method,
path, body, timestamp and nonce) and its answer (verified from the ``alipay-signature`` headers). The v2
envelope is ``envelope.py``/``verify.py``; a deployment chooses with ``protocol: v3``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import ProtocolError, SignatureError, gateway_error, local_error
from ...settings import AlipaySettings
from ...transport.http import HttpRequest, HttpResponse
from ...wire import protocol
from ...wire.signing import v3_authorization, v3_verify
from .. import diagnosis


def build_v3(s: AlipaySettings, method: str, biz_content: Mapping[str, Any], timeout: float) -> HttpRequest:
    """The signed v3 request for ``method`` (one of ``protocol.V3_PATHS``)."""
    path = protocol.V3_PATHS[method]
    body = json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))
    auth = v3_authorization(
        s.app_id, "POST", path, body, s.app_private_key, app_cert_sn=s.app_cert_sn,
        app_auth_token=s.app_auth_token,
    )
    headers = {"Authorization": auth, "Content-Type": "application/json; charset=utf-8",
               "Accept": "application/json, text/event-stream"}
    if s.app_auth_token:
        headers["alipay-app-auth-token"] = s.app_auth_token
    return HttpRequest(
        url=s.v3_base + path, content=body.encode("utf-8"), headers=headers,
        read_timeout=timeout, connect_timeout=s.connect_timeout,
    )



def parse_v3(s: AlipaySettings, provider: str, response: HttpResponse, model: str) -> dict[str, Any]:
    """The verified v3 answer, or the LiteLLM exception for what went wrong."""
    body = response.content
    if s.verify_response:
        h = response.headers
        signature, ts, nonce = h.get("alipay-signature"), h.get("alipay-timestamp"), h.get("alipay-nonce")
        key = s.response_key(h.get("alipay-sn")) if s.cert_ring else s.response_key
        if not (signature and ts and nonce and v3_verify(ts, nonce, body, signature, key)):
            if response.status >= 500:
                raise gateway_error({"code": "20000", "sub_msg": f"HTTP {response.status}"},
                                    model=model, status=response.status, provider=provider)
            raise local_error(diagnosis.unverified(s, SignatureError("v3 response signature does not verify")),
                              model=model, provider=provider)
        diagnosis.verified(s)
    try:
        node = json.loads(body)
    except ValueError:
        raise local_error(ProtocolError("v3 response is not JSON"), model=model,
                          provider=provider) from None
    if response.status >= 400:
        raise gateway_error({"code": str(response.status), "sub_code": node.get("code"),
                             "sub_msg": node.get("message")},
                            model=model, status=response.status, provider=provider)
    if "code" in node and not protocol.is_success(node):
        raise gateway_error(node, model=model, status=response.status, provider=provider)
    return node

