"""The gateway adapter: one call = envelope → sign → send → verify → result node.

It composes the pure rooms (protocol, signing) with the transport, and turns every failure into the
LiteLLM exception the Router needs (``errors.gateway_error`` / ``errors.local_error``). It knows nothing
of OpenAI shapes: the provider hands it a ``biz_content`` dict and gets verified Alipay nodes back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from . import diagnosis, protocol
from .errors import (
    AlipayError,
    ProtocolError,
    SignatureError,
    gateway_error,
    local_error,
    redact,
)
from .guards import Guards, deadline_after
from .pricing import Cost, PricingConfig, price_chat, price_embedding, shared_counter
from .resilience import TokenManager
from .settings import AlipaySettings
from .signing import (
    aes_decrypt,
    aes_encrypt,
    response_node_name,
    v3_authorization,
    v3_verify,
    verify_response,
)
from .streaming import StreamVerifier, is_event_stream
from .transport import HttpRequest, HttpResponse, async_transport, sync_transport
from .user_auth import UserAuth

logger = logging.getLogger("litellm_alipay")
logger.addHandler(logging.NullHandler())

_V2_HEADERS = {"Accept": "application/json, text/event-stream"}


class Gateway:
    """Calls to one configured gateway. Cheap to hold; built once per deployment settings."""

    def __init__(self, settings: AlipaySettings, provider: str = "alipay") -> None:
        self.settings = settings
        self.provider = provider
        self.guards = Guards(settings)
        self.pricing = PricingConfig.from_object(settings)
        self.counter = shared_counter(settings.redis_url)
        self._tokens: TokenManager | None = None
        self._content_type = {
            **_V2_HEADERS, "Content-Type": protocol.form_content_type(settings.charset)
        }

    # ------------------------------------------------------------------------------ request side
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
            return self._build_v3(method, biz_content or {}, timeout), dict(biz_content or {})
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

    def _build_v3(self, method: str, biz_content: Mapping[str, Any], timeout: float) -> HttpRequest:
        s = self.settings
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

    # ----------------------------------------------------------------------------- response side
    def parse_response(self, method: str, response: HttpResponse, model: str) -> dict[str, Any]:
        """The verified success node, or the LiteLLM exception for what went wrong."""
        if self.settings.protocol == "v3" and method in protocol.V3_PATHS:
            return self._parse_v3(response, model)
        if response.status >= 500:
            raise gateway_error({"code": "20000", "sub_msg": f"HTTP {response.status}"},
                                model=model, status=response.status, provider=self.provider)
        node = self._verified_node(method, response.content, model)
        if method == protocol.METHOD_OAUTH and "access_token" in node and not node.get("sub_code"):
            return node  # the real gateway's token node carries no code 10000
        if response.status == 429 or not protocol.is_success(node):
            raise gateway_error(node, model=model, status=response.status, provider=self.provider)
        return node

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

    def _parse_v3(self, response: HttpResponse, model: str) -> dict[str, Any]:
        s = self.settings
        body = response.content
        if s.verify_response:
            h = response.headers
            signature, ts, nonce = h.get("alipay-signature"), h.get("alipay-timestamp"), h.get("alipay-nonce")
            key = s.response_key(h.get("alipay-sn")) if s.cert_ring else s.response_key
            if not (signature and ts and nonce and v3_verify(ts, nonce, body, signature, key)):
                if response.status >= 500:
                    raise gateway_error({"code": "20000", "sub_msg": f"HTTP {response.status}"},
                                        model=model, status=response.status, provider=self.provider)
                raise local_error(diagnosis.unverified(s, SignatureError("v3 response signature does not verify")),
                                  model=model, provider=self.provider)
            diagnosis.verified(s)
        try:
            node = json.loads(body)
        except ValueError:
            raise local_error(ProtocolError("v3 response is not JSON"), model=model,
                              provider=self.provider) from None
        if response.status >= 400:
            raise gateway_error({"code": str(response.status), "sub_code": node.get("code"),
                                 "sub_msg": node.get("message")},
                                model=model, status=response.status, provider=self.provider)
        if "code" in node and not protocol.is_success(node):
            raise gateway_error(node, model=model, status=response.status, provider=self.provider)
        return node

    def log_failure(self, method: str, params: Mapping[str, Any], exc: BaseException,
                    response: HttpResponse | None = None) -> None:
        """Opaque failures (5xx, SYSTEM_ERROR, transport, unverifiable answers) are diagnosed from the
        request: log it, secrets masked. Clear business answers (4xx) need no log line."""
        status = getattr(exc, "status_code", 500)
        if (isinstance(status, int) and status >= 500 or isinstance(exc, AlipayError)) and \
                logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "alipay %s failed: %s | params=%s | response_headers=%s",
                method, exc, redact(dict(params)),
                redact(dict(response.headers)) if response is not None else None,
            )

    # ----------------------------------------------------------------------------- user tokens
    @property
    def tokens(self) -> TokenManager:
        """OAuth user tokens (A8), exchanged once, refreshed before expiry, one refresh in flight."""
        if self._tokens is None:
            self._tokens = TokenManager(self._exchange)
        return self._tokens

    async def _exchange(self, grant_type: str, value: str) -> dict[str, Any]:
        field = "code" if grant_type == "authorization_code" else "refresh_token"
        return await self.acall(protocol.METHOD_OAUTH, None, "oauth",
                                extra={"grant_type": grant_type, field: value})

    def call_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                     timeout: float | None = None) -> dict[str, Any]:
        """A call on a user's behalf: a given ``auth_token`` as is, else one from the token manager,
        refreshed and retried once after ``20001 aop.auth-token-time-out``."""
        if auth.auth_token:
            return self.call(method, biz, model, timeout=timeout, auth_token=auth.auth_token)
        return self.tokens.with_token_retry_sync(
            auth.key, lambda token: self.call(method, biz, model, timeout=timeout, auth_token=token),
            auth_code=auth.auth_code, refresh_token=auth.refresh_token)

    async def acall_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                            timeout: float | None = None) -> dict[str, Any]:
        if auth.auth_token:
            return await self.acall(method, biz, model, timeout=timeout, auth_token=auth.auth_token)

        async def call(token: str) -> dict[str, Any]:
            return await self.acall(method, biz, model, timeout=timeout, auth_token=token)

        return await self.tokens.with_token_retry(
            auth.key, call, auth_code=auth.auth_code, refresh_token=auth.refresh_token)

    async def astream_token(self, auth: UserAuth | None) -> str | None:
        """The token a stream is opened with (a stream is not retried once it has started)."""
        if auth is None or auth.auth_token:
            return auth.auth_token if auth else None
        return await self.tokens.get_token(auth.key, auth_code=auth.auth_code, refresh_token=auth.refresh_token)

    def stream_token(self, auth: UserAuth | None) -> str | None:
        if auth is None or auth.auth_token:
            return auth.auth_token if auth else None
        return self.tokens.get_token_sync(auth.key, auth_code=auth.auth_code, refresh_token=auth.refresh_token)

    # ------------------------------------------------------------------------------------ cost
    def chat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        """B6 cost of one chat call, at its place in the app's month (Redis-shared when configured)."""
        return price_chat(usage, actions, self.pricing, self.counter.book(self.settings.app_id))

    async def achat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        return price_chat(usage, actions, self.pricing, await self.counter.abook(self.settings.app_id))

    def embedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        return price_embedding(usages, self.pricing, self.counter.book(self.settings.app_id, len(usages)))

    async def aembedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        position = await self.counter.abook(self.settings.app_id, len(usages))
        return price_embedding(usages, self.pricing, position)

    # ----------------------------------------------------------------------------------- calls
    def _fail(self, method: str, params: Mapping[str, Any], exc: BaseException, model: str,
              response: HttpResponse | None = None) -> BaseException:
        """Log an opaque failure and give the LiteLLM exception to raise for it."""
        self.log_failure(method, params, exc, response)
        return local_error(exc, model=model, provider=self.provider) if isinstance(exc, AlipayError) else exc

    def call(self, method: str, biz: Mapping[str, Any] | None, model: str, *,
             timeout: float | None = None, auth_token: str | None = None,
             extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        tenant = self.guards.tenant((biz or {}).get("user_id"))
        try:
            self.guards.before(tenant, deadline_after(timeout or self.settings.read_timeout))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None
        failure: BaseException | None = None
        try:
            return self._call_once(method, biz, model, timeout, auth_token, extra)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self.guards.after(tenant, failure)

    def _call_once(self, method: str, biz: Mapping[str, Any] | None, model: str, timeout: float | None,
                   auth_token: str | None, extra: Mapping[str, str] | None) -> dict[str, Any]:
        request, params = self.build_request(method, biz, auth_token=auth_token, read_timeout=timeout,
                                             extra=extra)
        transport = sync_transport(self.settings.pool_size, self.settings.http2)
        response = None
        try:
            response = transport.send(request)
            return self.parse_response(method, response, model)
        except Exception as exc:
            raise self._fail(method, params, exc, model, response) from None

    async def acall(self, method: str, biz: Mapping[str, Any] | None, model: str, *,
                    timeout: float | None = None, auth_token: str | None = None,
                    extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        tenant = self.guards.tenant((biz or {}).get("user_id"))
        try:
            await self.guards.abefore(tenant, deadline_after(timeout or self.settings.read_timeout))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None
        failure: BaseException | None = None
        try:
            return await self._acall_once(method, biz, model, timeout, auth_token, extra)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(tenant, failure)

    async def _acall_once(self, method: str, biz: Mapping[str, Any] | None, model: str, timeout: float | None,
                          auth_token: str | None, extra: Mapping[str, str] | None) -> dict[str, Any]:
        request, params = self.build_request(method, biz, auth_token=auth_token, read_timeout=timeout,
                                             extra=extra)
        s = self.settings
        transport = async_transport(s.transport, s.pool_size, s.http2)
        response = None
        try:
            response = await transport.send(request)
            return self.parse_response(method, response, model)
        except Exception as exc:
            raise self._fail(method, params, exc, model, response) from None

    # ------------------------------------------------------------------------------- streaming
    def stream(self, biz: Mapping[str, Any], model: str, *, timeout: float | None = None,
               auth_token: str | None = None) -> Iterator[dict[str, Any]]:
        """B3 chunk dicts as they arrive; raises at the end unless the ``sign`` event verifies."""
        tenant = self.guards.tenant(biz.get("user_id"))
        try:
            self.guards.before(tenant, deadline_after(timeout or self.settings.read_timeout))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None
        failure: BaseException | None = None
        try:
            yield from self._stream_once(biz, model, timeout, auth_token)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self.guards.after(tenant, failure)

    def _stream_once(self, biz: Mapping[str, Any], model: str, timeout: float | None,
                     auth_token: str | None) -> Iterator[dict[str, Any]]:
        method = protocol.METHOD_CHAT
        request, params = self.build_request(method, biz, auth_token=auth_token, read_timeout=timeout)
        transport = sync_transport(self.settings.pool_size, self.settings.http2)
        try:
            response = transport.send(request, stream=True)
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        try:
            if not is_event_stream(response.headers):
                content = b"".join(response)
                self.parse_response(method, HttpResponse(response.status, response.headers, content), model)
                raise ProtocolError("a streaming request was answered without a stream")
            verifier = StreamVerifier(self, model)
            decoder = protocol.SSEDecoder(self.settings.charset)
            for raw in response:
                for event in decoder.feed(raw):
                    chunk = verifier.accept(event)
                    if chunk is not None:
                        yield chunk
            verifier.finish(decoder)
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        finally:
            response.close()

    async def astream(self, biz: Mapping[str, Any], model: str, *, timeout: float | None = None,
                      auth_token: str | None = None) -> AsyncIterator[dict[str, Any]]:
        tenant = self.guards.tenant(biz.get("user_id"))
        try:
            await self.guards.abefore(tenant, deadline_after(timeout or self.settings.read_timeout))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None
        failure: BaseException | None = None
        try:
            async for chunk in self._astream_once(biz, model, timeout, auth_token):
                yield chunk
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(tenant, failure)

    async def _astream_once(self, biz: Mapping[str, Any], model: str, timeout: float | None,
                            auth_token: str | None) -> AsyncIterator[dict[str, Any]]:
        method = protocol.METHOD_CHAT
        request, params = self.build_request(method, biz, auth_token=auth_token, read_timeout=timeout)
        s = self.settings
        transport = async_transport(s.transport, s.pool_size, s.http2)
        try:
            response = await transport.send(request, stream=True)
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        try:
            if not is_event_stream(response.headers):
                content = b"".join([part async for part in response])
                self.parse_response(method, HttpResponse(response.status, response.headers, content), model)
                raise ProtocolError("a streaming request was answered without a stream")
            verifier = StreamVerifier(self, model)
            decoder = protocol.SSEDecoder(s.charset)
            async for raw in response:
                for event in decoder.feed(raw):
                    chunk = verifier.accept(event)
                    if chunk is not None:
                        yield chunk
            verifier.finish(decoder)
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        finally:
            await response.aclose()


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
