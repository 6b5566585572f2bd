"""One call, read top to bottom: admit (rate limit, breaker) → build and sign → send over the shared transport
→ verify → the node; or a stream, its chunks verified as they arrive. Every failure becomes the LiteLLM
exception the Router needs; opaque ones are logged with the request's secrets masked. One deadline per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from ...errors import AlipayError, ProtocolError, ReadTimeoutError, _build, local_error, redact
from ...resilience.guards import Guards, remaining
from ...settings import AlipaySettings
from ...transport.http import HttpResponse, transport_for
from ...transport.sync_driver import SYNC
from ...transport.timing import clock, exchanged
from ...wire import protocol
from .stream import StreamReader, StreamVerifier, is_event_stream

logger = logging.getLogger("litellm_alipay")
logger.addHandler(logging.NullHandler())

timeout_at = asyncio.timeout_at  # Python 3.11+ (the versions CI runs)
#: A deadline shorter than this (or than ``read_timeout``) says nothing about the gateway's health.
STALL_FLOOR = 1.0
#: Request parameters that carry the conversation: logged only with ``log_payloads``.
_PAYLOAD_PARAMS = frozenset({"biz_content", "messages", "input"})


class Calls:
    """``call``/``acall`` and ``stream``/``astream`` (mixed into ``Gateway`` with ``Envelope`` and
    ``Verification``, which provide ``_request`` and ``parse_response``)."""

    settings: AlipaySettings
    provider: str
    guards: Guards

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



def _stream_late(deadline: float) -> ReadTimeoutError:
    return ReadTimeoutError(f"the stream did not finish within the call's deadline ({_budget_text(deadline)})")


def _budget_text(deadline: float) -> str:
    return "deadline passed" if time.monotonic() >= deadline else f"{deadline - time.monotonic():.2f} s left"


