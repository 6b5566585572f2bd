"""Shadow traffic: replay live requests to a shadow deployment and throw its answers away.

A success callback: after a call to one of the *source* model groups succeeded (its answer is already
the caller's), the same request is sent in the background to the *shadow* model group — e.g. a new
model or API version under read-only credentials — and whatever comes back is discarded. The caller
never waits for it and never sees it; a shadow failure is counted and logged, never raised.

What is replayed is whitelisted: the messages and the sampling/tool parameters. Payment-action
parameters (``allowed_actions``, ``out_request_no``), deployment settings and keys are never copied, so a
shadow call cannot execute a refund even if its credentials could; it is never streamed.

Proxy config: ``litellm_settings: {callbacks: [litellm_alipay.ops.shadow.shadow_traffic]}`` with
``ALIPAY_SHADOW_MODEL=fin-chat-shadow`` and ``ALIPAY_SHADOW_SOURCES=fin-chat`` (comma-separated); the
proxy's own Router sends the shadow call. In Python: ``ShadowTraffic("fin-chat-shadow", ["fin-chat"],
router=router)`` in ``litellm.callbacks``. Only async calls (the proxy, ``Router.acompletion``) are mirrored.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ..settings import SHADOW_MODEL_ENV, SHADOW_SOURCES_ENV

logger = logging.getLogger("litellm_alipay.shadow")
#: The request parameters a shadow call repeats; everything else stays with the live call.
REPLAYED_PARAMS = ("temperature", "top_p", "max_tokens", "stop", "tools", "tool_choice", "response_format", "user")
SHADOW_FLAG = "alipay_shadow"


def _names(value: Iterable[str] | str | None) -> frozenset[str]:
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(name.strip() for name in value or () if name and name.strip())


def replay_request(kwargs: Mapping[str, Any], shadow_model: str, sources: frozenset[str]) -> dict[str, Any] | None:
    """The shadow request for a logged live call, or None when the call is not one to mirror. Pure."""
    params = kwargs.get("litellm_params") or {}
    metadata = params.get("metadata") or {}
    group = metadata.get("model_group") or kwargs.get("model_group")
    if not shadow_model or group not in sources or group == shadow_model or metadata.get(SHADOW_FLAG):
        return None
    if kwargs.get("call_type") not in ("acompletion", "completion") or not kwargs.get("messages"):
        return None
    optional = kwargs.get("optional_params") or {}
    request: dict[str, Any] = {name: optional[name] for name in REPLAYED_PARAMS if optional.get(name) is not None}
    request.update(model=shadow_model, messages=list(kwargs["messages"]),
                   metadata={SHADOW_FLAG: True, "shadow_of": kwargs.get("litellm_call_id")})
    return request


class ShadowTraffic(CustomLogger):
    """Mirrors successful calls of ``sources`` to ``shadow_model``; counts what it sent and how it went."""

    def __init__(self, shadow_model: str | None = None, sources: Iterable[str] | str | None = None,
                 router: Any = None, max_in_flight: int = 64) -> None:
        super().__init__()
        self._shadow_model = shadow_model
        self._sources = _names(sources) if sources is not None else None
        self.router = router
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = self.succeeded = self.failed = self.dropped = 0

    @property
    def shadow_model(self) -> str:
        return self._shadow_model or os.environ.get(SHADOW_MODEL_ENV, "").strip()

    @property
    def sources(self) -> frozenset[str]:
        return self._sources if self._sources is not None else _names(os.environ.get(SHADOW_SOURCES_ENV))

    def _router(self) -> Any:
        if self.router is not None:
            return self.router
        from litellm.proxy import proxy_server  # the proxy's Router; only under the proxy

        return proxy_server.llm_router

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        request = replay_request(kwargs, self.shadow_model, self.sources)
        if request is None:
            return
        if len(self._tasks) >= self.max_in_flight:  # a slow shadow must not pile up work in the proxy
            self.dropped += 1
            return
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self._send(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, request: dict[str, Any]) -> None:
        try:
            await self._router().acompletion(**request)  # the answer is dropped here, unread
        except Exception as exc:  # noqa: BLE001 - a shadow failure must never reach the live path
            self.failed += 1
            logger.info("shadow call to %s failed: %s", request["model"], type(exc).__name__)
        else:
            self.succeeded += 1


shadow_traffic = ShadowTraffic()
