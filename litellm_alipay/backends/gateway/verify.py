"""The response side of a v2 call: the answer's node, its RSA2 signature verified, or the LiteLLM exception
that says what was wrong (a 5xx, a non-Alipay answer, a forged or unsigned node, a business error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import AlipayError, ProtocolError, SignatureError, _build, gateway_error, local_error
from ...settings import AlipaySettings
from ...transport.http import HttpResponse
from ...wire import protocol
from ...wire.signing import aes_decrypt, response_node_name, verify_response
from .. import diagnosis
from .stream import check_actions
from .v3 import parse_v3

_OAUTH_NODE = f'"{response_node_name(protocol.METHOD_OAUTH)}"'.encode()


class Verification:
    """Turns an answer into a verified node (mixed into ``Gateway``)."""

    settings: AlipaySettings
    provider: str

    def parse_response(self, method: str, response: HttpResponse, model: str,
                       biz: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The verified success node, or the LiteLLM exception for what went wrong."""
        if self.settings.protocol == "v3" and method in protocol.V3_PATHS:
            return parse_v3(self.settings, self.provider, response, model)
        if response.status >= 500:
            raise gateway_error({"code": "20000", "sub_msg": f"HTTP {response.status} from {self._where()}"},
                                model=model, status=response.status, provider=self.provider)
        if not response.content.lstrip().startswith(b"{"):
            raise self._not_alipay(response, model)
        node = self._verified_node(method, response.content, model)
        if (method == protocol.METHOD_OAUTH and "access_token" in node and not node.get("sub_code")
                and not node.get("_unsigned") and _OAUTH_NODE in response.content):
            return node  # the real gateway's token node carries no code 10000; only its signed node counts
        if response.status == 429 or not protocol.is_success(node):
            raise gateway_error(node, model=model, status=response.status, provider=self.provider)
        if biz is not None:
            try:
                check_actions(node, biz.get("out_request_no"))
            except AlipayError as exc:
                raise local_error(exc, model=model, provider=self.provider) from None
        return node

    def _where(self) -> str:
        return self.settings.gateway_url.partition("?")[0]

    def _not_alipay(self, response: HttpResponse, model: str) -> Exception:
        """A wrong ``api_base``, an HTML error page or a proxy's answer: say so, not "signature failed"."""
        import litellm

        kind = (response.headers.get("content-type") or "no content type").split(";")[0]
        message = (f"Alipay not-alipay: {self._where()} answered HTTP {response.status} ({kind}), not an Alipay "
                   "gateway response: check api_base (…/gateway.do) and any HTTP proxy in between")
        cls = {404: litellm.NotFoundError, 401: litellm.AuthenticationError,
               403: litellm.PermissionDeniedError}.get(response.status, litellm.APIConnectionError)
        if 400 <= response.status < 500 and cls is litellm.APIConnectionError:
            cls = litellm.BadRequestError
        return _build(cls, message, model, self.provider, "not-alipay", None, None)

    def _verified_node(self, method: str, body: bytes, model: str) -> dict[str, Any]:
        s = self.settings
        decrypt = (lambda text: aes_decrypt(text, s.encrypt_key, s.charset)) if s.encrypt_key else None
        try:
            if s.verify_response:
                node = verify_response(body, method, s.response_key, s.sign_type, decrypt=decrypt,
                                       charset=s.charset)
                diagnosis.verified(s)
                return node
            return _unverified_node(body, method, decrypt)
        except SignatureError as exc:
            raise local_error(diagnosis.unverified(s, exc), model=model, provider=self.provider) from None
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None



def _unverified_node(body: bytes, method: str, decrypt) -> dict[str, Any]:
    """With ``verify_response: false`` (testing only) the node is taken as sent."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("response body is not JSON") from None
    node = doc.get(response_node_name(method), doc.get("error_response"))
    if isinstance(node, str) and decrypt is not None:
        node = json.loads(decrypt(node))
    if not isinstance(node, dict):
        raise ProtocolError("response holds neither the method's node nor error_response")
    return node
