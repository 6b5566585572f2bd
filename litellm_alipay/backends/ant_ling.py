"""The Ant Ling backend: Ant Group's Ling/Ring models through ``alipay/`` (PROTOCOL Part C).

One call = guards (quota, breaker, "Slow Down" pacing) → JSON body (``transforms.ant_ling``) → bearer
POST over the shared pooled transport → ``ModelResponse`` or LiteLLM stream chunks, priced per token.
It plugs into what the gateway backend uses: the same ``Guards`` (per-key quota and breaker, Redis-shared
when configured), the same transports, the same error tree and the same cost reporting
(``_hidden_params["response_cost"]`` in USD with CNY beside it). No signing: Ant Ling takes an API key.

The request/response shapes are pure functions; the behaviour is written once, async, and the sync path
drives it on a background loop (``transport/sync_driver.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import litellm
from litellm.types.utils import ModelResponse

from ..billing.carry import StreamTally, with_cost
from ..billing.pricing import Cost
from ..catalogue import ModelSpec, ant_ling_spec
from ..errors import PROVIDER, AlipayError, ProtocolError, ReadTimeoutError, local_error
from ..resilience.adaptive import get_pacer
from ..resilience.guards import Guards, deadline_after
from ..transforms import ant_ling as shapes
from ..transforms.params import dropped_report
from ..transforms.structured import check_structured
from ..transport.http import HttpRequest, HttpResponse, transport_for
from ..transport.sync_driver import SYNC
from ..transport.timing import clock, exchanged
from ..wire import protocol
from .ant_ling_settings import AntLingSettings

logger = logging.getLogger("litellm_alipay")
_M = 1_000_000


class AntLingBackend:
    """Calls to one Ant Ling endpoint with one key. Built once per deployment settings."""

    def __init__(self, settings: AntLingSettings) -> None:
        self.settings = settings
        self.guards = Guards(settings)  # type: ignore[arg-type]  # reads the same attribute names
        self.pacer = get_pacer(settings.slow_down_hold, settings.slow_down_ramp, settings.slow_down_factor,
                               settings.redis_url)
        self._headers = {"Authorization": f"Bearer {settings.api_key}", "Content-Type": "application/json",
                         "Accept": "application/json, text/event-stream"}
        self._chat_url = settings.api_base + "/chat/completions"

    # ---------------------------------------------------------------------------------- request
    def request(self, body: Mapping[str, Any] | None, timeout: float | None, *, url: str | None = None
                ) -> HttpRequest:
        s = self.settings
        read = min(timeout, s.read_timeout) if timeout else s.read_timeout
        if body is None:
            return HttpRequest(url=url or s.api_base + "/models", content=b"", headers=self._headers,
                               read_timeout=read, connect_timeout=s.connect_timeout, method="GET")
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return HttpRequest(url=self._chat_url, content=content, headers=self._headers, read_timeout=read,
                           connect_timeout=s.connect_timeout)

    def _json(self, response: HttpResponse, model: str) -> dict[str, Any]:
        """The JSON object of a 2xx answer."""
        try:
            body = json.loads(response.content)
        except ValueError:
            raise local_error(ProtocolError("Ant Ling answered with a body that is not JSON"), model=model,
                              provider=PROVIDER) from None
        if not isinstance(body, dict):
            raise local_error(ProtocolError("Ant Ling answered with JSON that is not an object"), model=model,
                              provider=PROVIDER)
        return body

    async def _arefused(self, status: int, content: bytes, model: str) -> Exception:
        """The LiteLLM exception for an error status; a "Slow Down" also tightens the key's pace."""
        exc = shapes.error_for_status(status, content, model)
        if getattr(exc, "slow_down", False):
            self._paced(await self.pacer.aslow_down(self.settings.app_id))
        return exc

    def _paced(self, rate: float) -> None:
        logger.warning("Ant Ling asked to slow down (503): pacing %s at %.2f requests/s", self.settings.app_id, rate)

    # ----------------------------------------------------------------------------------- guards
    async def _abefore(self, key: str, timeout: float | None, model: str) -> bool:
        """Admit the call (True: the breaker's half-open trial), then the quota and the Slow Down pace."""
        deadline = deadline_after(timeout or self.settings.read_timeout)
        trial = False
        try:
            trial = await self.guards.abefore(key, deadline)
            await self.pacer.aacquire(self.settings.app_id, max_wait=timeout)
        except AlipayError as exc:
            if trial:
                await self.guards.breaker.arelease_trial(key)
            raise local_error(exc, model=model, provider=PROVIDER) from None
        return trial

    # ------------------------------------------------------------------------------------ calls
    async def acall(self, body: Mapping[str, Any], model: str, tenant: str, timeout: float | None
                    ) -> dict[str, Any]:
        trial = await self._abefore(tenant, timeout, model)
        deadline = time.monotonic() + (timeout or self.settings.read_timeout)
        failure: BaseException | None = None
        try:
            s = self.settings
            try:
                async with asyncio.timeout_at(deadline):  # the call's one deadline, counted by the breaker
                    transport = transport_for(s)
                    started = clock()
                    response = await transport.send(self.request(body, timeout))
                    exchanged(started)
            except TimeoutError:
                raise local_error(ReadTimeoutError("no answer within the call's deadline"), model=model,
                                  provider=PROVIDER) from None
            except AlipayError as exc:
                raise local_error(exc, model=model, provider=PROVIDER) from None
            if response.status >= 400:
                raise await self._arefused(response.status, response.content, model)  # type: ignore[union-attr]
            return self._json(response, model)  # type: ignore[arg-type]
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(tenant, failure, trial)

    async def astream(self, body: Mapping[str, Any], model: str, tenant: str, timeout: float | None
                      ) -> AsyncIterator[dict[str, Any]]:
        trial = await self._abefore(tenant, timeout, model)
        failure: BaseException | None = None
        s = self.settings
        try:
            transport = transport_for(s)
            started = clock()
            response = await transport.send(self.request(body, timeout), stream=True)
            exchanged(started)
            try:
                if response.status >= 400:  # type: ignore[union-attr]
                    content = b"".join([part async for part in response])  # type: ignore[union-attr]
                    raise await self._arefused(response.status, content, model)  # type: ignore[union-attr]
                decoder = protocol.SSEDecoder(max_event=s.limits.max_sse_event)
                deadline = time.monotonic() + (timeout or s.read_timeout)
                parts = response.__aiter__()  # type: ignore[union-attr]
                while True:
                    try:  # one deadline for the whole stream: trickled bytes cannot extend it
                        async with asyncio.timeout_at(deadline):
                            raw = await parts.__anext__()
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise ReadTimeoutError("the stream did not finish within the call's deadline") from None
                    for event in decoder.feed(raw):
                        chunk = shapes.stream_event(event.data, model)
                        if chunk is None:
                            return
                        yield chunk
                raise ProtocolError("the stream ended without [DONE]")
            finally:
                await response.aclose()  # type: ignore[union-attr]
        except AlipayError as exc:
            failure = local_error(exc, model=model, provider=PROVIDER)  # what the breaker weighs: the mapped class
            raise failure from None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await self.guards.aafter(tenant, failure, trial)

    async def amodels(self, timeout: float = 10.0) -> list[str]:
        """The model ids the key can see (``GET /models``): the live check ``litellm-alipay check`` runs."""
        s = self.settings
        try:
            transport = transport_for(s)
            response = await transport.send(self.request(None, timeout))
        except AlipayError as exc:
            raise local_error(exc, model="models", provider=PROVIDER) from None
        if response.status >= 400:  # type: ignore[union-attr]
            raise await self._arefused(response.status, response.content, "models")  # type: ignore[union-attr]
        body = self._json(response, "models")  # type: ignore[arg-type]
        return sorted(str(m.get("id")) for m in body.get("data") or [] if isinstance(m, Mapping))

    def models(self, timeout: float = 10.0) -> list[str]:
        return SYNC.run(self.amodels(timeout))

    # ------------------------------------------------------------------------------------- cost
    def cost(self, spec: ModelSpec, usage: Any) -> Cost:
        """Per-token price of one call, as LiteLLM's own formula computes it from the registered
        prices (cached prompt tokens at the cache-read price), so ``completion_cost`` agrees."""
        prompt, completion, cached = shapes.token_counts(usage)
        override = self.settings.price_usd
        usd_rates = [o if o is not None else c for o, c in zip(override, spec.usd_per_million, strict=True)]
        if any(o is not None for o in override):
            cny_rates = [r * self.settings.cny_per_usd for r in usd_rates]
            source = "deployment"
        else:
            cny_rates, source = list(spec.cny_per_million), "catalogue"

        def priced(rates: list[float]) -> float:
            return ((prompt - cached) * rates[0] / _M + cached * rates[2] / _M) + completion * rates[1] / _M

        breakdown = {"scheme": "token", "backend": "ant-ling", "model": spec.id, "prompt_tokens": prompt,
                     "cached_tokens": cached, "completion_tokens": completion,
                     "usd_per_million": usd_rates, "cny_per_million": cny_rates, "prices": source}
        return Cost(usd=priced(usd_rates), cny=priced(cny_rates), breakdown=breakdown)


# ------------------------------------------------------------------------------------- the face
class AntLing:
    """The LiteLLM-facing half: what ``AlipayLLM`` delegates to for an Ant Ling deployment."""

    def __init__(self) -> None:
        self._backends: dict[int, AntLingBackend] = {}

    def backend(self, settings: AntLingSettings) -> AntLingBackend:
        found = self._backends.get(id(settings))
        if found is None:
            found = self._backends.setdefault(id(settings), AntLingBackend(settings))
        return found

    @staticmethod
    def _tenant(backend: AntLingBackend, request: Mapping[str, Any], model: str = "") -> str:
        """The breaker key: this deployment (endpoint, key digest, model) and the tenant."""
        return backend.guards.key(model, request.get("user_id") or request.get("user"))

    def _body(self, model: str, messages: list, request: dict[str, Any], drop_params: bool, stream: bool
              ) -> tuple[ModelSpec, dict[str, Any]]:
        spec = ant_ling_spec(model)
        request.pop("stream", None)
        return spec, shapes.chat_request(model, spec, messages, request, drop_params=drop_params, stream=stream)

    def completion(self, backend: AntLingBackend, request: dict[str, Any], *, model: str, messages: list,
                   model_response: ModelResponse, drop_params: bool, timeout: float | None) -> ModelResponse:
        return SYNC.run(self.acompletion(backend, request, model=model, messages=messages,
                                         model_response=model_response, drop_params=drop_params, timeout=timeout))

    async def acompletion(self, backend: AntLingBackend, request: dict[str, Any], *, model: str, messages: list,
                          model_response: ModelResponse, drop_params: bool, timeout: float | None
                          ) -> ModelResponse:
        spec, body = self._body(model, messages, request, drop_params, stream=False)
        answer = await backend.acall(body, model, self._tenant(backend, request, model), timeout)
        response = shapes.model_response(answer, model_response)
        check_structured(model, body, response.choices[0].message.content if response.choices else None)
        return _priced(response, backend.cost(spec, answer.get("usage") or {}))

    def streaming(self, backend: AntLingBackend, request: dict[str, Any], *, model: str, messages: list,
                  drop_params: bool, timeout: float | None) -> Iterator[Any]:
        yield from SYNC.iterate(self.astreaming(backend, request, model=model, messages=messages,
                                                drop_params=drop_params, timeout=timeout))

    async def astreaming(self, backend: AntLingBackend, request: dict[str, Any], *, model: str, messages: list,
                         drop_params: bool, timeout: float | None) -> AsyncIterator[Any]:
        spec, body = self._body(model, messages, request, drop_params, stream=True)
        transformer, tally = shapes.AntLingStream(model), StreamTally()
        async for chunk in backend.astream(body, model, self._tenant(backend, request, model), timeout):
            for out in tally.release(transformer.all_chunks(chunk), chunk):  # type: ignore[arg-type]
                yield out
        check_structured(model, body, "".join(transformer.text) if transformer.text else None)
        for out in tally.finish(backend.cost(spec, transformer.usage or {})):
            yield out

    @staticmethod
    def no_embeddings(model: str) -> Exception:
        return litellm.BadRequestError(
            message=(f"alipay/{model} is an Ant Ling chat model: Ant Ling offers no embeddings. Use an "
                     "embedding model such as alipay/ant-fin-embed (the Alipay gateway)."),
            model=model, llm_provider=PROVIDER)


def _priced(response: ModelResponse, cost: Cost) -> ModelResponse:
    return dropped_report(with_cost(response, cost))


ANT_LING = AntLing()
