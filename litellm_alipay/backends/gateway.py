"""The gateway adapter: one call = envelope → sign → send → verify → result node.

It composes the pure rooms (protocol, signing) with the transport, and turns every failure into the
LiteLLM exception the Router needs (``errors.gateway_error`` / ``errors.local_error``). It knows nothing
of OpenAI shapes: the provider hands it a ``biz_content`` dict and gets verified Alipay nodes back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from ..billing.pricing import Cost, PricingConfig, price_chat, price_embedding, shared_counter
from ..errors import (
    AlipayError,
    ConfigurationError,
    ProtocolError,
    ReadTimeoutError,
    SignatureError,
    TenantMismatchError,
    _build,
    gateway_error,
    local_error,
    redact,
)
from ..resilience import TokenManager
from ..resilience.guards import Guards, remaining
from ..resilience.tokens import EXCHANGE_DEADLINE
from ..settings import AlipaySettings
from ..transport.http import HttpRequest, HttpResponse, transport_for
from ..transport.sync_driver import SYNC
from ..transport.timing import clock, exchanged
from ..wire import protocol
from ..wire.signing import (
    aes_decrypt,
    aes_encrypt,
    response_node_name,
    v3_authorization,
    v3_verify,
    verify_response,
)
from . import diagnosis
from .gateway_stream import StreamReader, StreamVerifier, check_actions, is_event_stream
from .user_auth import UserAuth

logger = logging.getLogger("litellm_alipay")
logger.addHandler(logging.NullHandler())

_V2_HEADERS = {"Accept": "application/json, text/event-stream"}
timeout_at = asyncio.timeout_at  # Python 3.11+ (the versions CI runs)
#: A deadline shorter than this (or than ``read_timeout``) says nothing about the gateway's health.
STALL_FLOOR = 1.0
_OAUTH_NODE = f'"{response_node_name(protocol.METHOD_OAUTH)}"'.encode()
#: Request parameters that carry the conversation: logged only with ``log_payloads``.
_PAYLOAD_PARAMS = frozenset({"biz_content", "messages", "input"})


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
    def parse_response(self, method: str, response: HttpResponse, model: str,
                       biz: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The verified success node, or the LiteLLM exception for what went wrong."""
        if self.settings.protocol == "v3" and method in protocol.V3_PATHS:
            return self._parse_v3(response, model)
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
            shown = dict(params)
            if not self.settings.log_payloads:  # the prompt is the user's, not the operator's log's
                for name in _PAYLOAD_PARAMS & shown.keys():
                    shown[name] = f"<{len(str(shown[name]))} chars; log_payloads: true shows it>"
            logger.warning(
                "alipay %s failed: %s | params=%s | response_headers=%s",
                method, exc, redact(shown),
                redact(dict(response.headers)) if response is not None else None,
            )

    # ----------------------------------------------------------------------------- user tokens
    @property
    def tokens(self) -> TokenManager:
        """OAuth user tokens (A8) of this app, shared by every deployment of it in the process (and,
        with ``redis_url``, single-flight across processes): exchanged once, refreshed before expiry."""
        if self._tokens is None:
            self._tokens = _token_manager(self)
        return self._tokens

    async def _exchange(self, grant_type: str, value: str) -> dict[str, Any]:
        field = "code" if grant_type == "authorization_code" else "refresh_token"
        return await self.acall(protocol.METHOD_OAUTH, None, "oauth", deadline=EXCHANGE_DEADLINE.get(),
                                extra={"grant_type": grant_type, field: value})

    def check_owner(self, auth: UserAuth, token: str, model: str) -> str:
        """The token, once its owner (the exchange's ``user_id``) is the user the request acts for."""
        cached = self.tokens.cached(auth.key)
        owner = cached.user_id if cached is not None else None
        if auth.tenant and owner != auth.tenant:  # fail closed: an answer naming no user proves nothing
            raise local_error(TenantMismatchError(
                f"the user credential belongs to another user than the request's user {auth.tenant!r}"),
                model=model, provider=self.provider)
        return token

    def call_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                     timeout: float | None = None, deadline: float | None = None) -> dict[str, Any]:
        """``acall_as_user`` driven from sync (``transport/sync_driver.py``)."""
        return SYNC.run(self.acall_as_user(method, biz, model, auth, timeout=timeout, deadline=deadline))

    async def acall_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                            timeout: float | None = None, deadline: float | None = None) -> dict[str, Any]:
        """A call on a user's behalf: a given ``auth_token`` as is, else one from the token manager,
        refreshed and retried once after ``20001 aop.auth-token-time-out``; one deadline for it all."""
        deadline = self._deadline(deadline, timeout)
        if auth.auth_token:
            return await self.acall(method, biz, model, deadline=deadline, auth_token=auth.auth_token)

        async def call(token: str) -> dict[str, Any]:
            return await self.acall(method, biz, model, deadline=deadline,
                                    auth_token=self.check_owner(auth, token, model))

        EXCHANGE_DEADLINE.set(deadline)
        try:
            async with timeout_at(deadline):
                return await self.tokens.with_token_retry(
                    auth.key, call, auth_code=auth.auth_code, refresh_token=auth.refresh_token)
        except TimeoutError:
            raise self._late(model, deadline) from None

    async def astream_token(self, auth: UserAuth | None, model: str = "", deadline: float | None = None
                            ) -> str | None:
        """The token a stream is opened with (a stream is not retried once it has started)."""
        if auth is None or auth.auth_token:
            return auth.auth_token if auth else None
        deadline = self._deadline(deadline, None)
        EXCHANGE_DEADLINE.set(deadline)
        try:
            async with timeout_at(deadline):
                token = await self.tokens.get_token(auth.key, auth_code=auth.auth_code,
                                                    refresh_token=auth.refresh_token)
        except TimeoutError:
            raise self._late(model, deadline) from None
        return self.check_owner(auth, token, model)

    def stream_token(self, auth: UserAuth | None, model: str = "", deadline: float | None = None) -> str | None:
        return SYNC.run(self.astream_token(auth, model, deadline))

    # ------------------------------------------------------------------------------------ cost
    def chat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        return SYNC.run(self.achat_cost(usage, actions))

    async def achat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        """B6 cost of one chat call, at its place in the app's month (Redis-shared when configured).

        Bookkeeping never fails a call: if the count cannot be had, the call is priced at the month's
        first tier and a WARNING says so."""
        try:
            return price_chat(usage, actions, self.pricing, await self.counter.abook(self.settings.app_id))
        except Exception as exc:  # noqa: BLE001
            return _unpriced(exc, lambda: price_chat(usage, actions, self.pricing, 1))

    def embedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        return SYNC.run(self.aembedding_cost(usages))

    async def aembedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        try:
            position = await self.counter.abook(self.settings.app_id, len(usages))
            return price_embedding(usages, self.pricing, position)
        except Exception as exc:  # noqa: BLE001
            return _unpriced(exc, lambda: price_embedding(usages, self.pricing, 1))

    # ----------------------------------------------------------------------------------- calls
    def _fail(self, method: str, params: Mapping[str, Any], exc: BaseException, model: str,
              response: HttpResponse | None = None) -> BaseException:
        """Log an opaque failure and give the LiteLLM exception to raise for it."""
        self.log_failure(method, params, exc, response)
        return local_error(exc, model=model, provider=self.provider) if isinstance(exc, AlipayError) else exc

    def deadline_for(self, seconds: float | None, stream: bool = False) -> float:
        """The deadline of a call: its LiteLLM ``timeout`` when given, else the deployment's budget —
        ``read_timeout`` for an answer, ``stream_timeout`` for a whole stream."""
        budget = seconds or (self.settings.stream_timeout if stream else self.settings.read_timeout)
        return time.monotonic() + budget

    def _deadline(self, deadline: float | None, timeout: float | None) -> float:
        """The call's one deadline: given, else ``timeout``, else the deployment's ``read_timeout``."""
        return deadline if deadline is not None else time.monotonic() + (timeout or self.settings.read_timeout)

    async def _aadmit(self, model: str, biz: Mapping[str, Any] | None, deadline: float) -> tuple[str, bool]:
        key = self.guards.key(model, (biz or {}).get("user_id"))
        try:
            return key, await self.guards.abefore(key, deadline)
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=self.provider) from None

    def _late(self, model: str, deadline: float, *, sent: bool = True, budget: float | None = None) -> Exception:
        """``litellm.Timeout`` for a call cut by its deadline. ``alipay_code`` says what it proves: nothing
        sent (``deadline-before-send``: the action claim is released, the breaker not told), a budget too
        short to say anything about the gateway (``deadline-short``: a client's tiny ``timeout`` must not
        open the breaker for everyone), else a stall (``timeout``: counted)."""
        import litellm

        message = f"Alipay timeout: no answer within the call's deadline ({_budget_text(deadline)})"
        if not sent:
            code = "deadline-before-send"
        elif budget is not None and budget < min(STALL_FLOOR, self.settings.read_timeout):
            code = "deadline-short"
        else:
            code = "timeout"
        return _build(litellm.Timeout, message, model, self.provider, code, None, None)

    def call(self, method: str, biz: Mapping[str, Any] | None, model: str, *,
             timeout: float | None = None, deadline: float | None = None, auth_token: str | None = None,
             extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``acall`` driven from sync: one implementation of guards, deadline, transport and verification
        (``transport/sync_driver.py`` runs it on the process's background loop; measured cheaper per call than the
        former httpx twin)."""
        return SYNC.run(self.acall(method, biz, model, timeout=timeout, deadline=deadline, auth_token=auth_token,
                                   extra=extra))

    async def acall(self, method: str, biz: Mapping[str, Any] | None, model: str, *,
                    timeout: float | None = None, deadline: float | None = None, auth_token: str | None = None,
                    extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        deadline = self._deadline(deadline, timeout)
        budget = deadline - time.monotonic()
        key, trial = await self._aadmit(model, biz, deadline)
        failure: BaseException | None = None
        sending: list[bool] = []  # filled the moment the request goes to the transport
        try:
            try:
                async with timeout_at(deadline):
                    return await self._acall_once(method, biz, model, deadline, auth_token, extra, sending)
            except TimeoutError:
                raise self._late(model, deadline, sent=bool(sending), budget=budget) from None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(key, failure, trial)

    async def _acall_once(self, method: str, biz: Mapping[str, Any] | None, model: str, deadline: float,
                          auth_token: str | None, extra: Mapping[str, str] | None,
                          sending: list[bool] | None = None) -> dict[str, Any]:
        request, params = self._request(method, biz, model, auth_token=auth_token,
                                        read_timeout=remaining(deadline), extra=extra)
        s = self.settings
        transport = transport_for(s)
        response = None
        try:
            if sending is not None:
                sending.append(True)
            started = clock()
            response = await transport.send(request)
            exchanged(started)
            return self.parse_response(method, response, model, biz)
        except Exception as exc:
            raise self._fail(method, params, exc, model, response) from None

    # ------------------------------------------------------------------------------- streaming
    def stream(self, biz: Mapping[str, Any], model: str, *, timeout: float | None = None,
               deadline: float | None = None, auth_token: str | None = None) -> Iterator[dict[str, Any]]:
        """``astream`` pulled chunk by chunk from sync (``transport/sync_driver.py``)."""
        return SYNC.iterate(self.astream(biz, model, timeout=timeout, deadline=deadline, auth_token=auth_token))

    async def astream(self, biz: Mapping[str, Any], model: str, *, timeout: float | None = None,
                      deadline: float | None = None, auth_token: str | None = None
                      ) -> AsyncIterator[dict[str, Any]]:
        """B3 chunk dicts as they arrive; raises at the end unless the ``sign`` event verifies, and at the
        deadline however the gateway trickles."""
        deadline = self._deadline(deadline, timeout)
        key, trial = await self._aadmit(model, biz, deadline)
        failure: BaseException | None = None
        try:
            async for chunk in self._astream_once(biz, model, deadline, auth_token):
                yield chunk
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(key, failure, trial)

    async def _astream_once(self, biz: Mapping[str, Any], model: str, deadline: float,
                            auth_token: str | None) -> AsyncIterator[dict[str, Any]]:
        method = protocol.METHOD_CHAT
        request, params = self._request(method, biz, model, auth_token=auth_token, read_timeout=remaining(deadline))
        s = self.settings
        transport = transport_for(s)
        try:
            async with timeout_at(deadline):
                started = clock()
                response = await transport.send(request, stream=True)
                exchanged(started)
        except TimeoutError:
            raise self._late(model, deadline) from None
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        try:
            if not is_event_stream(response.headers):
                self._not_a_stream(response.status, response.headers, b"".join([p async for p in response]), model)
            reader = self._reader(model, biz)
            parts = response.__aiter__()
            while True:
                try:  # one deadline for the whole stream: a gateway trickling comments cannot extend it
                    async with timeout_at(deadline):
                        raw = await parts.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise _stream_late(deadline) from None
                for chunk in reader.feed(raw):
                    yield chunk
            reader.finish()
        except Exception as exc:
            raise self._fail(method, params, exc, model) from None
        finally:
            await response.aclose()

    def _reader(self, model: str, biz: Mapping[str, Any]) -> StreamReader:
        verifier = StreamVerifier(self.settings, self.provider, model)
        verifier.out_request_no = biz.get("out_request_no")
        return StreamReader(verifier, protocol.SSEDecoder(self.settings.charset, self.settings.limits.max_sse_event))

    def _not_a_stream(self, status: int, headers: Mapping[str, str], content: bytes, model: str) -> None:
        """A streaming request answered with one body: its error if it is one, else a protocol error."""
        self.parse_response(protocol.METHOD_CHAT, HttpResponse(status, headers, content), model)
        raise ProtocolError("a streaming request was answered without a stream")


_token_managers: dict[tuple, TokenManager] = {}
_token_lock = threading.Lock()


def _token_manager(gateway: Gateway) -> TokenManager:
    """One token manager per (gateway, app, Redis): a credential is exchanged once however many
    deployments (models, transports) of the app share the process."""
    s = gateway.settings
    key = (s.gateway_url, s.app_id, s.redis_url, s.app_auth_token)  # an ISV's merchants never share tokens
    with _token_lock:
        found = _token_managers.get(key)
        if found is None:
            from ..resilience.token_store import RedisTokenStore

            store = RedisTokenStore(s.redis_url) if s.redis_url else None
            found = _token_managers[key] = TokenManager(gateway._exchange, store=store)
        return found


def _unpriced(exc: BaseException, fallback: Any) -> Cost:
    logger.warning("alipay cost: the month's request count is unavailable (%s); priced at the first tier",
                   type(exc).__name__)
    return fallback()


def _stream_late(deadline: float) -> ReadTimeoutError:
    return ReadTimeoutError(f"the stream did not finish within the call's deadline ({_budget_text(deadline)})")


def _budget_text(deadline: float) -> str:
    return "deadline passed" if time.monotonic() >= deadline else f"{deadline - time.monotonic():.2f} s left"


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
