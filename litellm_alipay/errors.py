"""The one error tree of litellm-alipay.

Everything this package raises on its own account derives from ``AlipayError``. Errors that LiteLLM's
Router must act on (fallbacks, cooldowns, retries) are raised as LiteLLM's own exception classes by
``to_litellm_error`` so the Router needs no knowledge of Alipay; they carry ``code``, ``sub_code`` and
``trace_id`` as attributes. No message built here ever contains a key, a ``sign`` or a token.

    AlipayError
    ├── ConfigurationError      a setting is missing or malformed (names the setting)
    │   └── KeyFormatError      a key or certificate cannot be read (names the key, never echoes it)
    ├── SignatureError          a response or request signature does not verify
    ├── ProtocolError           a body that is not the protocol (no node, bad JSON, stream without sign)
    │   └── DeploymentSettingError  a proxy client sent what only the deployment may set
    ├── DataResidencyError      a request that must not leave its region
    ├── ActionInDoubtError      actions may have executed at another app: not re-sent (reconcile)
    ├── LedgerUnavailableError  the durable money ledger cannot be reached: money calls fail closed
    ├── PolicyError             the payment policy refuses an action (names the setting: a cap, …)
    ├── RequestInProgressError  another attempt of the same logical request holds it now (retry later)
    ├── PaymentRequiredError    A2M (HTTP 402): no valid Payment-Proof for a paid resource (a fresh bill or not)
    ├── TenantMismatchError     a user credential that belongs to another user than the request names
    ├── QuotaExceededError      the client-side limiter cannot fit the request in its time budget
    ├── CircuitOpenError        the tenant's circuit breaker is open
    └── TransportError          the HTTP exchange failed (``sent`` says if it may have reached Alipay)
        ├── ConnectTimeoutError
        ├── ReadTimeoutError
        ├── ConnectionDroppedError
        ├── LocalOverloadError  this process is out of connections or sockets (never sent; not the gateway)
        ├── RedirectRefusedError  the answer was a 3xx: never followed, nothing re-sent
        └── ResponseLimitError  the answer broke a response limit (``setting`` names it)
"""

from __future__ import annotations

import httpx

#: LiteLLM's name for this provider (``model="alipay/…"``): the one copy, every room imports it.
PROVIDER = "alipay"


class AlipayError(Exception):
    """Base of every error this package defines itself."""


class ConfigurationError(AlipayError, ValueError):
    """A setting is missing or malformed; ``setting`` names it (``kind`` says what it is: a setting, a
    header, a field of the request)."""

    kind = "setting"

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class PolicyError(AlipayError):
    """The deployment's payment policy (enabled actions, caps, confirmation) refuses this action before
    anything is sent; ``setting`` names what would allow it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{problem} (setting: {setting})")


class RequestInProgressError(AlipayError):
    """Another attempt of the same logical request holds it right now (Stripe's 409): nothing was sent;
    retry with the same key once that attempt has answered."""

    def __init__(self) -> None:
        super().__init__("another attempt of this request (the same idempotency key) is in progress; nothing was "
                         "sent. Retry with the same key in a few seconds: it is answered from that attempt's outcome")


class LedgerUnavailableError(AlipayError):
    """The durable money ledger cannot be reached: money-moving calls fail closed (nothing sent)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"the money ledger is unavailable ({problem}); no payment action was sent. Retry "
                         "with the same idempotency key once the ledger (ALIPAY_LEDGER_URL) is back")


class DeploymentSettingError(ConfigurationError):
    """A proxy client tried to set what only the deployment may set."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(
            name,
            f"is a deployment setting and cannot be sent by a client (found in the request's {where}); "
            "the proxy operator sets it in the deployment's litellm_params or the ALIPAY_* environment",
        )


class ActionInDoubtError(AlipayError):
    """An action-bearing request that may already have executed at another app; never re-sent."""

    def __init__(self, app_id: str, out_request_no: str) -> None:
        self.app_id = app_id
        self.out_request_no = out_request_no
        super().__init__(
            f"this request's payment actions may already have executed at app {app_id} "
            f"(out_request_no={out_request_no}); it is not sent to another app. Query that app for "
            "out_request_no to reconcile, then retry with a new idempotency key if nothing executed"
        )


class MissingIdempotencyKeyError(ConfigurationError):
    """A money-moving payment tool was called through a framework adapter without the application's
    idempotency key for the logical request. Raised before anything is sent: without the key a retried
    run could not find the first outcome, so the call must not run at all."""

    def __init__(self, tool: str, where: str, *, malformed: bool = False) -> None:
        problem = "is not a valid key" if malformed else "was not set"
        super().__init__(
            "idempotency_key",
            f"is required for the money-moving tool {tool!r} and {problem}: give {where} an idempotency_key of "
            "8-255 printable ASCII characters that is the same for every retry of one logical request (e.g. the "
            "ticket or order-operation id; never random, never from the model)",
        )
        self.tool = tool


class TenantMismatchError(AlipayError):
    """A user credential whose owner is not the user the request acts for."""


class KeyFormatError(ConfigurationError):
    """A key or certificate could not be parsed. The message names the key, never its text."""


class SignatureError(AlipayError):
    """A signature failed to verify, or the signed part of a body could not be found."""


class ProtocolError(AlipayError):
    """The peer sent something that is not the Alipay protocol."""


class PaymentRequiredError(AlipayError):
    """A2M: the request carries no proof that pays for it (HTTP 402). ``payment_needed`` is a fresh
    bill when a new payment is what the agent needs, None when it should retry with the same proof;
    ``code`` is the contract's reason (``INVALID_PAYMENT_PROOF``, ``ALREADY_FULFILLED``, …)."""

    status_code = 402

    def __init__(self, code: str, message: str, *, payment_needed: str | None = None,
                 trade_no: str | None = None, **extra: object) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.payment_needed = payment_needed
        self.trade_no = trade_no
        self.extra = dict(extra)

    def body(self) -> dict[str, object]:
        """The 402's JSON body (informational: agents read the header)."""
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.trade_no:
            out["trade_no"] = self.trade_no
        out.update(self.extra)
        if self.payment_needed is None:
            out["retry_with_same_proof"] = True
        return out


class DataResidencyError(AlipayError):
    """A request marked as from a guarded region without consent was refused before sending."""


class TransportError(AlipayError):
    """The HTTP exchange itself failed; ``sent`` says whether the request may have reached the gateway."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        self.sent = sent
        super().__init__(message)


class ConnectTimeoutError(TransportError):
    """No connection within ``connect_timeout``; nothing was sent."""


class ReadTimeoutError(TransportError):
    """The gateway stalled past the read timeout (or the call's deadline)."""


class ConnectionDroppedError(TransportError):
    """The connection closed before a whole response arrived (dropped or truncated)."""


class LocalOverloadError(TransportError):
    """This process could not get a connection (no free pool slot in time, out of file descriptors).

    Nothing was sent and the gateway did nothing wrong: a circuit breaker must not count it, and it is
    never reported as a gateway timeout. Mapped to ``litellm.RateLimitError`` (``alipay_code``
    ``local-overload``), like the client-side quota, so a Router moves the call elsewhere.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class RedirectRefusedError(TransportError):
    """The gateway answered with a redirect. Never followed: following would send the signed body, the user's
    token and the prompt (or Ant Ling's bearer key) to another host. ``location_host`` names where it pointed."""

    def __init__(self, status: int, location_host: str) -> None:
        self.status = status
        self.location_host = location_host
        where = f"to host {location_host!r}" if location_host else "without a Location"
        super().__init__(f"the gateway answered HTTP {status}, a redirect {where}; redirects are never followed "
                         "(the request would be re-sent elsewhere): set api_base to the final URL")


class ResponseLimitError(TransportError):
    """The answer was bigger than a response limit allows; ``setting`` names the limit (``transport/limits.py``)."""

    def __init__(self, setting: str, limit: int, what: str) -> None:
        self.setting = setting
        self.limit = limit
        super().__init__(f"{what} exceeds {setting} ({limit}); the rest was not read. Raise the deployment's "
                         f"{setting} if such answers are expected")


class QuotaExceededError(AlipayError):
    """The client-side rate limiter cannot fit this request within its remaining time budget.

    Raised before anything is sent, and without booking a slot, so the caller may fail over at once
    instead of waiting out a quota the request cannot meet anyway. ``retry_after`` is the wait (seconds)
    the request would have needed; the gateway maps this error to ``litellm.RateLimitError`` so the
    Router cools the deployment down or falls back.
    """

    def __init__(self, key: str, retry_after: float, max_wait: float) -> None:
        self.key = key
        self.retry_after = retry_after
        self.max_wait = max_wait
        super().__init__(
            f"client-side quota for {key!r} exhausted: next slot in {retry_after:.3f}s, "
            f"budget {max_wait:.3f}s"
        )


class CircuitOpenError(AlipayError):
    """The circuit breaker for this tenant is open (or its single half-open trial is busy).

    Raised before sending so a failing gateway is not hammered and callers fail fast; ``retry_after``
    is a hint in seconds. The gateway maps this error to ``litellm.ServiceUnavailableError``.
    """

    def __init__(self, key: str, retry_after: float) -> None:
        self.key = key
        self.retry_after = retry_after
        super().__init__(f"circuit open for {key!r}; retry in {retry_after:.3f}s")


# --------------------------------------------------------------------------- mapping to LiteLLM
_REDACT_KEYS = frozenset({
    "sign", "app_private_key", "private_key", "api_key", "auth_token", "app_auth_token",
    "access_token", "refresh_token", "encrypt_key", "authorization", "alipay-signature",
    "code", "auth_code", "user_refresh_token", "redis_url", "redis_password", "set-cookie", "cookie",
})


def redact(params: dict) -> dict:
    """A copy of a parameter or header dict safe to log: signatures, keys and tokens masked."""
    return {k: ("***" if str(k).lower() in _REDACT_KEYS else v) for k, v in params.items()}


def _exception_table() -> dict[str, type]:
    import litellm

    return {
        "AI.COMPLIANCE_REJECTED": litellm.ContentPolicyViolationError,
        "AI.CONTEXT_LENGTH_EXCEEDED": litellm.ContextWindowExceededError,
        "AI.MODEL_NOT_FOUND": litellm.NotFoundError,
        "AI.RATE_LIMITED": litellm.RateLimitError,
        "AI.INVALID_REQUEST": litellm.BadRequestError,
    }


#: Refusals of who is calling, or of the proof that it is them: the deployment's keys or certificates.
_AUTH_SUB_CODES = frozenset({
    "isv.invalid-signature", "isv.missing-signature", "isv.invalid-app-id", "isv.missing-app-id",
    "isv.invalid-timestamp", "isv.invalid-app-cert-sn", "isv.invalid-alipay-root-cert-sn",
})


#: What to do about refusals whose cause is the deployment's own configuration.
_HINTS = {
    "isv.invalid-signature": (
        " — hint: the gateway could not verify the request's signature with the app public key registered"
        " for this app_id; app_private_key is probably not the private half of it. Compare them with"
        " `litellm-alipay check --app-public-key <the key uploaded in the Alipay console>`."),
    "isv.invalid-app-id": " — hint: app_id is not an app of this gateway (sandbox and production ids differ).",
}


def error_class(code: str | None, sub_code: str | None, status: int = 200) -> type:
    """The LiteLLM exception class that makes the Router act right on this Alipay outcome."""
    import litellm

    sub = sub_code or ""
    by_sub = _exception_table().get(sub)
    if by_sub is not None:
        return by_sub
    if status == 429:
        return litellm.RateLimitError
    if status >= 500 or code == "20000" or "SYSTEM_ERROR" in sub or "unknow-error" in sub:
        return litellm.ServiceUnavailableError
    if code == "20001":
        return litellm.AuthenticationError
    if code == "40006":
        return litellm.PermissionDeniedError
    if sub in _AUTH_SUB_CODES or status == 401:
        return litellm.AuthenticationError
    if status == 403:
        return litellm.PermissionDeniedError
    if status == 404:
        return litellm.NotFoundError
    return litellm.BadRequestError


def gateway_error(
    node: dict, *, model: str, status: int = 200, provider: str = PROVIDER
) -> Exception:
    """The LiteLLM exception for a failed gateway node, carrying code, sub_code and trace_id."""
    code = str(node.get("code") or "")
    sub_code = str(node.get("sub_code") or "") or None
    trace_id = node.get("trace_id")
    detail = node.get("sub_msg") or node.get("msg") or node.get("message") or "gateway error"
    unsigned = " (unsigned response)" if node.get("_unsigned") else ""
    label = " ".join(part for part in (code or str(status), sub_code) if part)
    message = f"Alipay {label}: {detail}{unsigned}"
    if trace_id:
        message += f" (trace_id={trace_id})"
    message += _HINTS.get(sub_code or "", "")
    cls = error_class(code, sub_code, status)
    if node.get("_unsigned") and status < 500 and status != 429:
        # Unauthenticated: anyone on the path could have written it, so it must not choose a Router path
        # (content-policy or context-window fallback, no-retry 400) that only Alipay's signed word may.
        import litellm

        cls = litellm.BadGatewayError
    return _build(cls, message, model, provider, code, sub_code, trace_id)


def _build(cls: type, message: str, model: str, provider: str, code: str | None,
           sub_code: str | None, trace_id: str | None) -> Exception:
    import litellm

    kwargs: dict = {"message": message, "llm_provider": provider, "model": model}
    if cls is litellm.PermissionDeniedError:  # the one class whose response is required
        kwargs["response"] = httpx.Response(403, request=httpx.Request("POST", "https://alipay.invalid"))
    exc = cls(**kwargs)
    exc.alipay_code = code  # type: ignore[attr-defined]
    exc.sub_code = sub_code  # type: ignore[attr-defined]
    exc.trace_id = trace_id  # type: ignore[attr-defined]
    return exc


def local_error(exc: AlipayError, *, model: str, provider: str = PROVIDER) -> Exception:
    """Map one of our own errors (transport, signature, guards) to the LiteLLM class the Router needs."""
    import litellm

    if isinstance(exc, LocalOverloadError):
        cls, code = litellm.RateLimitError, "local-overload"
    elif isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        cls, code = litellm.Timeout, "timeout"
    elif isinstance(exc, TransportError):
        cls, code = litellm.APIConnectionError, "connection"
    elif isinstance(exc, SignatureError | ProtocolError):
        cls, code = litellm.BadGatewayError, "unverified-response"
    elif isinstance(exc, ConfigurationError):
        cls, code = litellm.BadRequestError, "configuration"
    elif isinstance(exc, QuotaExceededError):
        cls, code = litellm.RateLimitError, "client-quota"
    elif isinstance(exc, CircuitOpenError):
        cls, code = litellm.ServiceUnavailableError, "circuit-open"
    elif isinstance(exc, DataResidencyError):
        cls, code = litellm.ContentPolicyViolationError, "data-residency"
    elif isinstance(exc, ActionInDoubtError):
        cls, code = litellm.BadRequestError, "action-in-doubt"  # a 400 from a provider: no retry, no fallback
    elif isinstance(exc, TenantMismatchError):
        cls, code = litellm.AuthenticationError, "tenant-mismatch"
    elif isinstance(exc, LedgerUnavailableError):
        cls, code = litellm.ServiceUnavailableError, "ledger-unavailable"
    elif isinstance(exc, RequestInProgressError):
        cls, code = litellm.BadRequestError, "request-in-progress"  # no Router retry storm, no cooldown
    elif isinstance(exc, PolicyError):
        cls, code = litellm.BadRequestError, "payment-policy"  # the operator's caps: no retry, no fallback
    else:
        cls, code = getattr(exc, "litellm_class", litellm.ServiceUnavailableError), type(exc).__name__
    if isinstance(exc, ConfigurationError):
        # "<setting>: …" would lose the setting to LiteLLM's secret masking (it reads "private_key: x" as a
        # secret and prints "app_REDACTED"): name it without a colon or equals sign after it.
        return _build(cls, f"Alipay configuration: {exc.kind} {exc.setting!r} {exc.problem}", model, provider,
                      code, None, None)
    built = _build(cls, f"Alipay {code}: {exc}", model, provider, code, None, None)
    if isinstance(exc, ActionInDoubtError):
        built.out_request_no = exc.out_request_no  # type: ignore[attr-defined]
        built.app_id = exc.app_id  # type: ignore[attr-defined]
    return built
