"""The trust boundary of a shared proxy: what a client may ask for, what only the operator may set.

A LiteLLM proxy merges a deployment's ``litellm_params`` with the client's JSON body into one kwargs
dict (request values win), so a provider cannot tell the operator's values from a client's by looking
at ``optional_params``. The proxy, however, records the client's own body and headers in
``litellm_params["proxy_server_request"]``; that record is what this module reads. Outside a proxy
(``litellm.completion`` in-process, a Router in the caller's own program) the caller *is* the operator.

Rules, in one place:

* every deployment setting (``settings.SETTING_NAMES``) is the operator's: a client body that carries
  one — at the top level, in ``extra_body`` or in ``metadata`` — is refused before anything is built;
* ``allowed_actions`` is a ceiling the deployment sets; a client may only narrow it (``metadata`` key
  ``alipay_allowed_actions``, which the proxy hook fills from a body ``allowed_actions``);
* the idempotency key of an action-bearing request comes from the client's ``Idempotency-Key`` header,
  ``metadata.idempotency_key``, an explicit ``out_request_no``, else the Router's trace id — through a
  proxy one of the first three is required (a proxy request has no identity across client retries); it is
  always combined with the caller's scope (proxy key, tenant) before it becomes a request number, so an
  explicit ``out_request_no`` is a key like the others, never sent as it is;
* per-call secrets (user credentials) are scrubbed from what LiteLLM hands its callbacks.

Pure apart from reading the dicts it is given; the in-doubt ledger is in ``action_ledger.py``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, DeploymentSettingError
from .settings import SECRET_SETTINGS, SETTING_NAMES

#: Where the proxy hook leaves a request's user credentials: an opaque reference into ``vault``.
CREDENTIAL_REF = "alipay_credential_ref"
#: This provider's per-call parameters: meaningful only to an ``alipay/`` deployment.
PER_CALL_PARAMS = frozenset({
    "allowed_actions", "out_request_no", "auth_token", "auth_code", "user_refresh_token", CREDENTIAL_REF,
})
#: Per-call parameters that are credentials: never logged, never in a callback payload.
SECRET_PARAMS = frozenset({"auth_token", "auth_code", "user_refresh_token"})
#: Where a client's narrowing of ``allowed_actions`` travels (metadata is never sent to a model).
CLIENT_ACTIONS_KEY = "alipay_allowed_actions"
IDEMPOTENCY_HEADER = "idempotency-key"
IDEMPOTENCY_METADATA_KEY = "idempotency_key"
#: Key metadata an operator sets on a proxy key to bind it to one Alipay user (the authenticated tenant).
KEY_USER_METADATA = "alipay_user_id"


class IdempotencyKeyRequired(ConfigurationError):
    """An action-bearing proxy request without a key that survives the client's own retries."""

    kind = "header"

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key",
            "a request that may execute payment actions through the proxy needs an idempotency key that "
            "stays the same when your client retries: send the header 'Idempotency-Key: <unique id per "
            "logical request>' (or metadata.idempotency_key, or out_request_no)",
        )


@dataclass(frozen=True)
class ClientRequest:
    """What a proxy client itself sent: its JSON body and its (credential-free) headers."""

    body: Mapping[str, Any]
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name:
                return str(value)
        return None


def client_request(litellm_params: Mapping[str, Any] | None) -> ClientRequest | None:
    """The client's own request when the call came through a LiteLLM proxy, else None."""
    record = (litellm_params or {}).get("proxy_server_request")
    if not isinstance(record, Mapping):
        return None
    body = record.get("body")
    headers = record.get("headers")
    return ClientRequest(body if isinstance(body, Mapping) else {},
                         headers if isinstance(headers, Mapping) else {})


def client_metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The metadata the client wrote itself (the proxy adds its own keys beside it)."""
    for name in ("metadata", "litellm_metadata"):
        meta = body.get(name)
        if isinstance(meta, Mapping):
            requester = meta.get("requester_metadata")
            return requester if isinstance(requester, Mapping) else meta
    return {}


def setting_in(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(setting name, where)`` of the first deployment setting a client body carries, else None."""
    places: list[tuple[str, Any]] = [("body", body), ("extra_body", body.get("extra_body"))]
    for name in ("metadata", "litellm_metadata"):
        meta = body.get(name)
        if isinstance(meta, Mapping):  # the proxy keeps the client's own metadata as requester_metadata
            requester = meta.get("requester_metadata")
            places.append((name, requester if isinstance(requester, Mapping) else meta))
    for where, place in places:
        if isinstance(place, Mapping):
            for key in place:
                if key in SETTING_NAMES and not (where.endswith("metadata") and key in _LITELLM_METADATA):
                    return str(key), where
    # The Router merges a client's dict-form fallback targets into the call's kwargs, over the deployment's
    # values: nothing of ours may travel there, per-call parameters included (they would bypass the hook).
    for name in FALLBACK_KEYS:
        for target in _fallback_targets(body.get(name)) + _fallback_targets((body.get("extra_body") or {}).get(name)
                                                                            if isinstance(body.get("extra_body"),
                                                                                          Mapping) else None):
            for key in target:
                if key in SETTING_NAMES or key in PER_CALL_PARAMS:
                    return str(key), name
    return None


#: Keys LiteLLM's proxy and Router write into a request's metadata themselves (the chosen deployment's
#: ``api_base``): not a client's, and never read as settings from there.
_LITELLM_METADATA = frozenset({"api_base"})
#: Client-supplied fallback lists whose dict entries the Router merges into a call.
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


def _fallback_targets(value: Any) -> list[Mapping[str, Any]]:
    """Every mapping inside a client's fallback list (``[{"model": …, …}]`` or ``[{"group": [{…}]}]``)."""
    found: list[Mapping[str, Any]] = []
    stack, seen = [value], 0
    while stack and seen < 1000:  # bounded: a hostile body cannot make this walk long
        seen += 1
        item = stack.pop()
        if isinstance(item, Mapping):
            found.append(item)
            stack.extend(v for v in item.values() if isinstance(v, list | Mapping))
        elif isinstance(item, list):
            stack.extend(item)
    return found


def refuse_client_settings(body: Mapping[str, Any]) -> None:
    """Raise ``DeploymentSettingError`` when a client body carries a deployment setting."""
    found = setting_in(body)
    if found is not None:
        raise DeploymentSettingError(*found)
    if "allowed_actions" in body or "allowed_actions" in (body.get("extra_body") or {}):
        # Reaching the provider with it at the top level means the proxy hook did not move it to the
        # narrowing key: the merged value would be the client's, not the deployment's ceiling.
        raise ConfigurationError(
            "allowed_actions",
            "a client may only narrow the deployment's allowed_actions, and only through a proxy that runs "
            "the litellm_alipay.trust_boundary callback (add it to litellm_settings.callbacks)",
        )


def refuse_client_settings_in_proxy_data(data: Mapping[str, Any]) -> None:
    """The proxy hook's check, on the request data before routing (the client's body plus LiteLLM's keys)."""
    found = setting_in(data)
    if found is not None:
        raise DeploymentSettingError(*found)
    if CREDENTIAL_REF in data:
        raise ConfigurationError(CREDENTIAL_REF, "is set by the proxy itself, never by a client")


class CredentialVault:
    """Per-request user credentials, held in this process and referred to by an unguessable token.

    Why: between the proxy hook and the provider, a request's kwargs are handed to LiteLLM's callbacks
    whenever the Router fails before any deployment ran (cooldowns, no healthy deployment); what travels
    there is only the reference. Entries expire; a proxy worker runs hook and provider in one process.
    """

    def __init__(self, ttl: float = 600.0, size: int = 200_000) -> None:
        self._ttl, self._size = ttl, size
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, values: dict[str, Any]) -> str:
        ref = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            while self._items and next(iter(self._items.values()))[0] < now:  # oldest first: expired go
                self._items.popitem(last=False)
            self._items[ref] = (now + self._ttl, values)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return ref

    def get(self, ref: Any) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(str(ref))
        if found is None or found[0] < time.monotonic():
            return None
        return dict(found[1])


vault = CredentialVault()


def stash_credentials(data: dict[str, Any]) -> None:
    """Proxy hook: the request's user credentials go into the vault; the kwargs keep a reference."""
    found = {name: data.pop(name) for name in SECRET_PARAMS & data.keys()}
    extra = data.get("extra_body")
    if isinstance(extra, dict):
        found.update({name: extra.pop(name) for name in SECRET_PARAMS & extra.keys()})
    if found:
        data[CREDENTIAL_REF] = vault.put(found)


def redeem_credentials(request: dict[str, Any]) -> None:
    """Provider: put a vaulted request's credentials back among its parameters."""
    ref = request.pop(CREDENTIAL_REF, None)
    if ref is None:
        return
    values = vault.get(ref)
    if values is None:
        raise ConfigurationError(CREDENTIAL_REF, "unknown or expired credential reference; send the user "
                                 "credential (auth_code, auth_token or user_refresh_token) again")
    request.update(values)


def move_client_actions(data: dict[str, Any]) -> None:
    """Before routing: a client's ``allowed_actions`` becomes a narrowing request in ``metadata``, so the
    Router's merge leaves the deployment's own value (the ceiling) in place; user credentials leave the
    recorded client body, which LiteLLM hands its callbacks."""
    narrowing = data.pop("allowed_actions", None)
    extra = data.get("extra_body")
    if isinstance(extra, dict) and "allowed_actions" in extra:
        narrowing = extra.pop("allowed_actions")
    if narrowing is not None:
        metadata = data.get("metadata")
        if not isinstance(metadata, dict):
            metadata = data["metadata"] = {}
        metadata[CLIENT_ACTIONS_KEY] = narrowing
    record = data.get("proxy_server_request")
    if isinstance(record, dict):
        _drop(record.get("body"), SECRET_PARAMS | {"allowed_actions"})


def without_per_call_params(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without this provider's per-call parameters (the same dict when it has none)."""
    extra = kwargs.get("extra_body")
    in_extra = isinstance(extra, dict) and bool(PER_CALL_PARAMS & extra.keys())
    if not (PER_CALL_PARAMS & kwargs.keys()) and not in_extra:
        return kwargs
    stripped = {k: v for k, v in kwargs.items() if k not in PER_CALL_PARAMS}
    if in_extra:
        stripped["extra_body"] = {k: v for k, v in extra.items() if k not in PER_CALL_PARAMS}
    return stripped


def effective_actions(deployment: Any, narrowing: Any) -> list[str] | None:
    """The deployment's ``allowed_actions`` narrowed by the client's; never wider than the deployment's."""
    ceiling = _action_list(deployment)
    if not ceiling:
        return None
    if narrowing is None:
        return ceiling
    wanted = {a.upper() for a in _action_list(narrowing)}
    narrowed = [a for a in ceiling if a.upper() in wanted]
    return narrowed or None


def _action_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(part) for part in value]
    raise ConfigurationError("allowed_actions", f"must be a list of action names, got {type(value).__name__}")


def idempotency_seed(client: ClientRequest | None, metadata: Mapping[str, Any] | None,
                     explicit: str | None, trace_id: str | None) -> tuple[str | None, str]:
    """``(seed, source)`` of a logical request's idempotency key, in the documented order."""
    if client is not None:
        header = client.header(IDEMPOTENCY_HEADER)
        if header and header.strip():
            return header.strip(), "header"
    meta_key = (metadata or {}).get(IDEMPOTENCY_METADATA_KEY)
    if meta_key is not None and str(meta_key).strip():
        return str(meta_key).strip(), "metadata"
    if explicit:
        return explicit, "out_request_no"
    return trace_id, "trace"


def caller_scope(litellm_params: Mapping[str, Any] | None, tenant: Any) -> str:
    """Who owns an idempotency key: the proxy key (its hash) and the tenant. Two clients that choose the
    same key never share an action; in-process callers (the operator) are scoped by tenant only."""
    metadata = (litellm_params or {}).get("metadata") or {}
    key_hash = metadata.get("user_api_key_hash") if isinstance(metadata, Mapping) else None
    return f"{key_hash or '-'}|{tenant or '-'}"


def fingerprint(biz: Mapping[str, Any]) -> str:
    """What makes two requests "the same request" for an idempotency key: messages and actions."""
    import json

    doc = {"messages": biz.get("messages"), "allowed_actions": sorted(map(str, biz.get("allowed_actions") or ()))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ActionKey:
    """A logical action-bearing request's idempotency key, scoped to its caller."""

    scoped: str  # caller scope + seed: what the gateway's out_request_no and the ledger claim derive from
    source: str  # header | metadata | out_request_no | trace
    explicit: str | None

    def out_request_no(self, app_id: str) -> str:
        """Always derived from the caller-scoped key — a client's explicit ``out_request_no`` too is only a
        key: two tenants choosing the same number never share (or pre-empt) an action."""
        return derive_out_request_no(app_id, self.claim_key)

    @property
    def claim_key(self) -> str:
        return f"{self.source}:{self.scoped}"


def action_key(client: ClientRequest | None, litellm_params: Mapping[str, Any] | None, explicit: str | None,
               trace_id: str | None, tenant: Any) -> ActionKey:
    """The key by the documented order; through a proxy one the client's retries keep is required."""
    metadata = (litellm_params or {}).get("metadata") or {}
    seed, source = idempotency_seed(client, metadata, explicit, trace_id)
    if client is not None and source == "trace":
        raise IdempotencyKeyRequired()
    if not seed:
        raise ConfigurationError("out_request_no", "a request with allowed_actions needs an idempotency key: pass "
                                 "out_request_no or metadata.idempotency_key (or call through a Router)")
    return ActionKey(f"{caller_scope(litellm_params, tenant)}|{seed}", source, explicit)


def derive_out_request_no(app_id: str, seed: str) -> str:
    """The gateway's idempotency key for one logical request of one app (≤ 64 characters)."""
    return "LT" + hashlib.sha256(f"{app_id}:{seed}".encode()).hexdigest()[:40]


def scrub_for_callbacks(logging_obj: Any) -> None:
    """Remove credentials from what LiteLLM hands its success/failure callbacks.

    LiteLLM keeps its own copy of ``optional_params`` (and of the client's body) in the logging object;
    Langfuse and friends serialise them. Deployment secrets (keys, tokens, Redis URL) and the per-call
    user credentials are removed there; the call itself already has its values.
    """
    details = getattr(logging_obj, "model_call_details", None)
    if not isinstance(details, dict):
        return
    hidden = SECRET_SETTINGS | SECRET_PARAMS
    for name in ("optional_params", "additional_args"):
        _drop(details.get(name), hidden)
    params = details.get("litellm_params")
    if isinstance(params, dict):
        record = params.get("proxy_server_request")
        if isinstance(record, dict):
            _drop(record.get("body"), hidden)
    for name in hidden:
        details.pop(name, None)


def _drop(mapping: Any, names: frozenset[str]) -> None:
    if isinstance(mapping, dict):
        for name in names & mapping.keys():
            del mapping[name]
        extra = mapping.get("extra_body")
        if isinstance(extra, dict):
            for name in names & extra.keys():
                del extra[name]


def authenticated_tenant(litellm_params: Mapping[str, Any] | None) -> str | None:
    """The Alipay user an operator bound the caller's proxy key to (key metadata ``alipay_user_id``)."""
    metadata = (litellm_params or {}).get("metadata") or {}
    key_meta = metadata.get("user_api_key_metadata") if isinstance(metadata, Mapping) else None
    if isinstance(key_meta, Mapping) and key_meta.get(KEY_USER_METADATA):
        return str(key_meta[KEY_USER_METADATA])
    return None


_SECRET_NAMES = "|".join(sorted(SECRET_PARAMS | SECRET_SETTINGS))
_SECRET_VALUE = re.compile(r"""(['"]?(?:""" + _SECRET_NAMES + r""")['"]?\s*[:=]\s*)(['"])(?:(?!\2).)*\2""")


class SecretFilter(logging.Filter):
    """Masks this provider's credentials in LiteLLM's own log lines.

    LiteLLM's DEBUG logging prints a call's keyword arguments ("Params passed to completion()"); an
    in-process caller's ``auth_code`` or ``app_private_key`` would be among them. Through the proxy the
    hook has already replaced credentials with a reference; this covers everything else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging system's to report
            return True
        masked = _SECRET_VALUE.sub(r"\1\2***\2", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


secret_filter = SecretFilter()
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")


def install_secret_filter() -> None:
    """Put ``secret_filter`` on LiteLLM's loggers (idempotent)."""
    for name in LITELLM_LOGGERS:
        log = logging.getLogger(name)
        if secret_filter not in log.filters:
            log.addFilter(secret_filter)
