"""The request side of a gateway call: the v2 envelope, built and signed (A1-A6), or v3's (``v3.py``).

Pure CPU, no I/O: parameters → ``biz_content`` JSON (AES-encrypted when configured) → common parameters →
RSA2 signature → the form body and query string of one ``HttpRequest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import AlipayError, ConfigurationError, local_error
from ...settings import AlipaySettings
from ...transport.http import HttpRequest
from ...wire import protocol
from ...wire.signing import aes_encrypt
from .v3 import build_v3

V2_HEADERS = {"Accept": "application/json, text/event-stream"}


class Envelope:
    """Builds one call's signed request (mixed into ``Gateway``)."""

    settings: AlipaySettings
    provider: str
    _content_type: dict[str, str]

    def _request(self, method: str, biz: Mapping[str, Any] | None, model: str, *, auth_token: str | None,
                 read_timeout: float | None, extra: Mapping[str, str] | None = None
                 ) -> tuple[HttpRequest, dict[str, str]]:
        """``build_request`` with a bad combination reported as the LiteLLM error naming the setting."""
        try:
            return self.build_request(method, biz, auth_token=auth_token, read_timeout=read_timeout, extra=extra)
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None

    def build_request(
        self, method: str, biz_content: Mapping[str, Any] | None, *, auth_token: str | None = None,
        read_timeout: float | None = None, extra: Mapping[str, str] | None = None,
    ) -> tuple[HttpRequest, dict[str, str]]:
        """The signed HTTP request for one call, and its parameters (for redacted logging).

        ``extra`` are top-level parameters (OAuth's ``grant_type``/``code`` travel outside biz_content).
        """
        s = self.settings
        timeout = min(read_timeout, s.read_timeout) if read_timeout else s.read_timeout
        if s.protocol == "v3" and method in protocol.V3_PATHS:
            if auth_token:  # A7 defines no user-token header: refuse rather than drop it silently
                raise ConfigurationError("auth_token", "user tokens are not supported with protocol: v3; "
                                         "use protocol: v2 for calls on a user's behalf")
            return build_v3(s, method, biz_content or {}, timeout), dict(biz_content or {})
        biz_text = None
        if biz_content is not None:
            biz_text = json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))
            if s.encrypt_key:
                biz_text = aes_encrypt(biz_text, s.encrypt_key, s.charset)
        params = protocol.common_params(
            s.app_id, method, biz_text,
            charset=s.charset, sign_type=s.sign_type, app_auth_token=s.app_auth_token,
            auth_token=auth_token, app_cert_sn=s.app_cert_sn, alipay_root_cert_sn=s.alipay_root_cert_sn,
            encrypt_type="AES" if s.encrypt_key and biz_text is not None else None, **(extra or {}),
        )
        signed = protocol.sign_request(params, s.app_private_key)
        query, body = protocol.encode_request(signed, s.charset)
        request = HttpRequest(
            url=f"{s.gateway_url}?{query}", content=body, headers=self._content_type,
            read_timeout=timeout, connect_timeout=s.connect_timeout,
        )
        return request, params

