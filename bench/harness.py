"""The benchmark: what the Alipay provider costs on top of LiteLLM, measured in one run on loopback.

Why this shape:

* **Client CPU, not wall time, is the headline.** The emulator runs in its own subprocess (``EmulatorProcess``),
  so ``time.process_time()`` of *this* process is exactly what a LiteLLM host pays per call: LiteLLM, the
  provider, the transport, signing. Wall latency (p50/p95) is reported beside it but also contains the
  emulator's own work and scheduling on a shared machine.
* **Two baselines from the same run.** ``floor``: a ``CustomLLM`` returning a canned response built from
  the same answer the emulator gives, in this process — LiteLLM's own unavoidable cost per call.
  ``openai``: LiteLLM's ``openai/`` provider against the emulator's OpenAI-compatible endpoint, served by the
  same process from the same deterministic model — what a mainstream provider costs. Ratios are taken
  between rows of the same run, so the machine's speed cancels out.
* **Per-chunk streaming cost as a slope.** A stream costs a fixed part plus a part per chunk; running the
  same request with two ``max_tokens`` values and dividing the CPU difference by the chunk difference
  isolates the per-chunk part for each implementation.
* **Bounded loops only**: every scenario runs a fixed number of calls after a fixed warm-up.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CHAT_MODEL = "ant-fin-chat"
EMBED_MODEL = "ant-fin-embed"
FLOOR = "benchfloor"
#: The same floor under a provider whose models LiteLLM has no entry for (the floor before this issue's work).
FLOOR_UNMAPPED = "benchfloorunmapped"
#: The floor that first awaits as long as the emulator takes to answer: any remote provider waits, and on
#: this VM an idle wait alone costs CPU (the loop sleeps in epoll and wakes cold).
FLOOR_WAIT = "benchfloorwait"
#: 40 words: the long stream answers "You said: w1 … w40" word by word (max_tokens cuts it).
WORDS = " ".join(f"word{i}" for i in range(40))
CHAT_MESSAGES = [{"role": "user", "content": "What is my balance? 我的余额是多少？"}]
STREAM_MESSAGES = [{"role": "user", "content": WORDS}]
STREAM_LONG, STREAM_SHORT = 40, 4  # max_tokens of the two stream lengths
EMBED_INPUT = ["the quick brown fox", "支付宝 余额"]
IMPLS = ("floor", "alipay", "openai")
#: The chat section's extra rows: the two explanatory floors and the settings given per call (README example).
CHAT_IMPLS = ("floor", "floor-unmapped", "floor-wait", "alipay", "alipay-kw", "openai")
#: The Ant Ling rows: ``alipay/<id>`` (the Ant Ling backend) vs LiteLLM's ``openai/`` at the same emulated endpoint.
LING_MODEL = "Ling-2.6-flash"
LING_IMPLS = ("ant-ling", "openai")
LING_CONCURRENCY = (1, 10)


@dataclass(frozen=True)
class Counts:
    """How many calls each part runs. ``quick`` is for CI smoke tests: every row, tiny counts."""

    calls: dict[int, int]          # concurrency -> measured calls per chat/embedding row
    stream_calls: dict[int, int]   # concurrency -> measured calls per stream row
    warmup: int
    crypto_ops: int
    memory_calls: int
    limiter_calls: int
    concurrency: tuple[int, ...] = (1, 10, 50)

    @classmethod
    def full(cls) -> Counts:
        return cls(calls={1: 1000, 10: 2000, 50: 3000}, stream_calls={1: 300, 10: 600, 50: 1000},
                   warmup=200, crypto_ops=2000, memory_calls=20_000, limiter_calls=5000)

    @classmethod
    def quick(cls) -> Counts:
        return cls(calls={1: 20, 10: 40, 50: 100}, stream_calls={1: 10, 10: 20, 50: 50},
                   warmup=10, crypto_ops=50, memory_calls=300, limiter_calls=100)


@dataclass
class Row:
    """One line of the table. ``cpu_us`` is client CPU per call (per op for crypto/limiter rows)."""

    section: str
    name: str
    conc: int | None = None
    calls: int = 0
    cpu_us: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    note: str = ""
    chunks: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Sample:
    calls: int
    cpu_s: float
    latencies: list[float]
    items: int = 0  # stream chunks received, summed over calls

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.calls * 1e6

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")


def progress(text: str) -> None:
    """Progress goes to stderr so stdout carries only the table (the smoke test reads stdout)."""
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ drivers
async def _drive(call: Callable[[], Awaitable[int]], calls: int, concurrency: int,
                 latencies: list[float] | None) -> int:
    """Run ``calls`` calls with ``concurrency`` workers; returns the summed item counts."""
    remaining = calls
    items = 0

    async def worker() -> None:
        nonlocal remaining, items
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            got = await call()  # not `items += await call()`: that reads `items` before the await
            items += got
            if latencies is not None:
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, calls))))
    return items


async def measure(call: Callable[[], Awaitable[int]], calls: int, concurrency: int, warmup: int) -> Sample:
    """Warm up, collect garbage, then time a bounded run; CPU is this process's only."""
    await _drive(call, warmup, concurrency, None)
    gc.collect()
    latencies: list[float] = []
    cpu = time.process_time()
    items = await _drive(call, calls, concurrency, latencies)
    return Sample(calls, time.process_time() - cpu, latencies, items)


def rss_mb() -> float:
    """Current resident set size (not the peak that ``ru_maxrss`` reports)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ------------------------------------------------------------------------------------- key parses
class ParseCounter:
    """Counts every key/certificate parse (cryptography's ``load_*``) while active.

    Why patch cryptography rather than trust our caches: a parse anywhere — ours, a cache miss, a stray
    ``load_pem_*`` in a new code path — shows up here. The target is 0 per request.
    """

    _NAMES = (
        ("cryptography.hazmat.primitives.serialization", "load_pem_private_key"),
        ("cryptography.hazmat.primitives.serialization", "load_der_private_key"),
        ("cryptography.hazmat.primitives.serialization", "load_pem_public_key"),
        ("cryptography.hazmat.primitives.serialization", "load_der_public_key"),
        ("cryptography.x509", "load_pem_x509_certificate"),
        ("cryptography.x509", "load_pem_x509_certificates"),
        ("cryptography.x509", "load_der_x509_certificate"),
    )

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def active(self) -> Iterator[ParseCounter]:
        import importlib

        saved = []
        for module_name, attr in self._NAMES:
            module = importlib.import_module(module_name)
            original = getattr(module, attr)
            saved.append((module, attr, original))
            setattr(module, attr, self._wrap(original))
        try:
            yield self
        finally:
            for module, attr, original in saved:
                setattr(module, attr, original)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)
        return counted


# ------------------------------------------------------------------------------------------- bench
class Bench:
    """Owns the emulator, the floor provider and the call factories; produces the rows."""

    def __init__(self, counts: Counts, emulator: Any) -> None:
        self.counts = counts
        self.emu = emulator
        self.rows: list[Row] = []
        self.parses = ParseCounter()
        self.parsed_calls = 0

    # ----------------------------------------------------------------------------------- setup
    async def setup(self) -> None:
        import litellm

        from litellm_alipay import register

        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        os.environ.update(self.emu.env())
        self.openai_base = f"{self.emu.base_url}/v1"
        # The floor answers exactly what the emulator answers: capture it once through openai/.
        reply = await litellm.acompletion(model=f"openai/{CHAT_MODEL}", messages=CHAT_MESSAGES,
                                          api_base=self.openai_base, api_key="bench")
        pieces: dict[int, list[str]] = {}
        for tokens in (STREAM_LONG, STREAM_SHORT):
            stream = await litellm.acompletion(
                model=f"openai/{CHAT_MODEL}", messages=STREAM_MESSAGES, stream=True, max_tokens=tokens,
                api_base=self.openai_base, api_key="bench")
            pieces[tokens] = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
        emb = await litellm.aembedding(model=f"openai/{EMBED_MODEL}", input=EMBED_INPUT,
                                       api_base=self.openai_base, api_key="bench")
        from .floor import FloorLLM, WaitingFloorLLM

        canned = (reply.choices[0].message.content, pieces, [d["embedding"] for d in emb.data], reply.usage)
        self.floor = FloorLLM(*canned)
        register()
        self.wait_s = await self._answer_time()
        for provider, handler in ((FLOOR, self.floor), (FLOOR_UNMAPPED, FloorLLM(*canned)),
                                  (FLOOR_WAIT, WaitingFloorLLM(*canned, wait_s=self.wait_s))):
            litellm.custom_provider_map.append({"provider": provider, "custom_handler": handler})
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
        # LiteLLM looks up model info on every call and, for a model it has no entry for, walks its
        # fallbacks first (~0.25 ms). The provider registers its models; so does the floor, with the same
        # entries, or the floor would pay a cost the provider does not.
        from litellm_alipay.catalogue import model_cost_map

        entries = model_cost_map()
        for provider in (FLOOR, FLOOR_WAIT):
            litellm.register_model({f"{provider}/{model}": {**entries[f"alipay/{model}"], "litellm_provider": provider}
                                    for model in (CHAT_MODEL, EMBED_MODEL)})
        self.settings_kw = {"app_id": self.emu.app_id, "app_private_key": self.emu.app_private_key_path,
                            "alipay_public_key": self.emu.alipay_public_key_path,
                            "api_base": self.emu.env()["ALIPAY_GATEWAY_URL"]}

    async def _answer_time(self) -> float:
        """The emulator's median time to answer one signed chat request, seen from here (50 exchanges)."""
        from litellm_alipay.backends.gateway import Gateway
        from litellm_alipay.settings import settings_for
        from litellm_alipay.transport.http import AiohttpTransport
        from litellm_alipay.wire import protocol

        request, _ = Gateway(settings_for({})).build_request(protocol.METHOD_CHAT,
                                                             {"model": CHAT_MODEL, "messages": CHAT_MESSAGES})
        transport = AiohttpTransport(2)
        try:
            times = []
            for _ in range(50):
                started = time.perf_counter()
                await transport.send(request)
                times.append(time.perf_counter() - started)
        finally:
            await transport.aclose()
        return sorted(times)[len(times) // 2]

    def _model(self, impl: str, model: str) -> tuple[str, dict[str, Any]]:
        if impl == "openai":
            return f"openai/{model}", {"api_base": self.openai_base, "api_key": "bench"}
        if impl == "alipay-kw":  # settings given per call, as in the README's in-process example
            return f"alipay/{model}", dict(self.settings_kw)
        provider = {"floor": FLOOR, "floor-unmapped": FLOOR_UNMAPPED, "floor-wait": FLOOR_WAIT}.get(impl, "alipay")
        return f"{provider}/{model}", {}

    def chat_call(self, impl: str) -> Callable[[], Awaitable[int]]:
        import litellm

        model, extra = self._model(impl, CHAT_MODEL)

        async def call() -> int:
            reply = await litellm.acompletion(model=model, messages=CHAT_MESSAGES, **extra)
            assert reply.choices[0].message.content
            return 1
        return call

    def stream_call(self, impl: str, max_tokens: int) -> Callable[[], Awaitable[int]]:
        import litellm

        model, extra = self._model(impl, CHAT_MODEL)

        async def call() -> int:
            n = 0
            stream = await litellm.acompletion(model=model, messages=STREAM_MESSAGES, stream=True,
                                               max_tokens=max_tokens, **extra)
            async for _ in stream:
                n += 1
            return n
        return call

    def embed_call(self, impl: str) -> Callable[[], Awaitable[int]]:
        import litellm

        model, extra = self._model(impl, EMBED_MODEL)

        async def call() -> int:
            reply = await litellm.aembedding(model=model, input=EMBED_INPUT, **extra)
            assert len(reply.data) == len(EMBED_INPUT)
            return 1
        return call

    def ling_call(self, impl: str, stream: bool) -> Callable[[], Awaitable[int]]:
        """One Ant Ling chat (or stream, usage included) through ``alipay/`` or through ``openai/``."""
        import litellm

        model = f"{'alipay' if impl == 'ant-ling' else 'openai'}/{LING_MODEL}"
        extra: dict[str, Any] = {"api_base": self.emu.ant_ling_base, "api_key": self.emu.ant_ling_api_key}
        if stream:
            extra.update(stream=True, stream_options={"include_usage": True}, max_tokens=STREAM_LONG)

        async def call() -> int:
            if not stream:
                reply = await litellm.acompletion(model=model, messages=CHAT_MESSAGES, **extra)
                assert reply.choices[0].message.content
                return 1
            n = 0
            async for _ in await litellm.acompletion(model=model, messages=STREAM_MESSAGES, **extra):
                n += 1
            return n
        return call

    async def ling_section(self, step: Callable[[str], None]) -> None:
        """Client CPU of the Ant Ling backend against LiteLLM's own ``openai/`` provider, same endpoint."""
        for section, stream in (("ling-chat", False), ("ling-stream", True)):
            counts = self.counts.stream_calls if stream else self.counts.calls
            for conc in LING_CONCURRENCY:
                for impl in LING_IMPLS:
                    step(f"{section} {impl} c={conc}")
                    sample = await measure(self.ling_call(impl, stream), counts[conc], conc, self.counts.warmup)
                    self.rows.append(Row(section, impl, conc, sample.calls, sample.cpu_us, sample.pct(0.5),
                                         sample.pct(0.95), chunks=sample.items / sample.calls))

    async def _run(self, impl: str, call: Callable[[], Awaitable[int]], calls: int, conc: int) -> Sample:
        if not impl.startswith("alipay"):
            return await measure(call, calls, conc, self.counts.warmup)
        await _drive(call, self.counts.warmup, conc, None)  # warm (settings built, keys parsed) first
        with self.parses.active():
            sample = await measure(call, calls, conc, 0)
        self.parsed_calls += calls
        return sample

    # --------------------------------------------------------------------------------- sections
    async def calls_section(self, section: str, factory: Callable[[str], Callable[[], Awaitable[int]]],
                            counts: dict[int, int], step: Callable[[str], None],
                            impls: tuple[str, ...] = IMPLS) -> None:
        for conc in self.counts.concurrency:
            for impl in impls:
                step(f"{section} {impl} c={conc}")
                sample = await self._run(impl, factory(impl), counts[conc], conc)
                note = f"awaits {self.wait_s * 1000:.2f} ms first" if impl == "floor-wait" else ""
                self.rows.append(Row(section, impl, conc, sample.calls, sample.cpu_us, sample.pct(0.5),
                                     sample.pct(0.95), chunks=sample.items / sample.calls, note=note))

    async def stream_slope(self, step: Callable[[str], None]) -> None:
        """Short streams at c=10: with the long rows, the per-chunk CPU of each implementation."""
        conc = 10
        for impl in IMPLS:
            step(f"stream-short {impl} c={conc}")
            sample = await self._run(impl, self.stream_call(impl, STREAM_SHORT),
                                     self.counts.stream_calls[conc], conc)
            self.rows.append(Row("stream-short", impl, conc, sample.calls, sample.cpu_us, sample.pct(0.5),
                                 sample.pct(0.95), chunks=sample.items / sample.calls))

    async def crypto_section(self, step: Callable[[str], None]) -> None:
        """Our signing and verification per request beside the bare cryptography operations inside."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        from litellm_alipay.backends.gateway import Gateway
        from litellm_alipay.settings import settings_for
        from litellm_alipay.wire import protocol
        from litellm_alipay.wire.form import form_encode
        from litellm_alipay.wire.signing import build_sign_content, extract_signed_node, sign_params, verify_response

        step("signing and verification")
        settings = settings_for({})
        gateway = Gateway(settings)
        biz = {"model": CHAT_MODEL, "messages": CHAT_MESSAGES}
        request, params = gateway.build_request(protocol.METHOD_CHAT, biz)
        body = await _fetch(request)
        key, pub = settings.app_private_key, settings.alipay_public_key
        data = build_sign_content(params).encode()
        _, node, _ = extract_signed_node(body, protocol.METHOD_CHAT)
        signature = base64.b64decode(json.loads(body)["sign"])
        n = self.counts.crypto_ops

        def timed(name: str, fn: Callable[[], Any], note: str = "") -> None:
            fn()
            cpu = time.process_time()
            for _ in range(n):
                fn()
            self.rows.append(Row("crypto", name, None, n, (time.process_time() - cpu) / n * 1e6, note=note))

        with self.parses.active() as counter:
            before = counter.count
            timed("raw RSA2 sign (cryptography)", lambda: key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
            timed("sign_params (content + RSA2)", lambda: sign_params(params, key))
            timed("build_request (json+envelope+sign+encode)",
                  lambda: gateway.build_request(protocol.METHOD_CHAT, biz))
            timed("raw RSA2 verify (cryptography)",
                  lambda: pub.verify(signature, node, padding.PKCS1v15(), hashes.SHA256()))
            timed("verify_response (extract + verify + parse)",
                  lambda: verify_response(body, protocol.METHOD_CHAT, pub, "RSA2"))
            signed = protocol.sign_request(params, key)
            timed("form encoding: urllib urlencode (before)", lambda: (
                urlencode(signed, encoding="utf-8", quote_via=quote)))
            timed("form encoding: wire.form (now)", lambda: form_encode(signed))
            crypto_parses = counter.count - before
        self.rows.append(Row("crypto", "key parses per request (measured alipay calls)", None,
                             self.parsed_calls, note=f"{self.parses.count - crypto_parses}/{self.parsed_calls}"
                             f" = {(self.parses.count - crypto_parses) / max(1, self.parsed_calls):g}",
                             extra={"parses": float(self.parses.count - crypto_parses)}))

    async def transport_section(self, step: Callable[[str], None]) -> None:
        """The choice of the one HTTP stack, measured: one small POST per call to the emulator, c=10. Rows:
        ours (aiohttp, with the limits and checks), plain httpx, and httpx over LiteLLM's aiohttp transport
        (``LiteLLMAiohttpTransport``: httpx's API on aiohttp's wire, as LiteLLM's own clients)."""
        import aiohttp
        import httpx
        from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport

        from litellm_alipay.transport.http import AiohttpTransport, HttpRequest

        request = HttpRequest(url=f"{self.emu.base_url}/_admin/health", content=b"x=1",
                              headers={"Content-Type": "application/x-www-form-urlencoded"},
                              read_timeout=10, connect_timeout=10)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=30)
        ours = AiohttpTransport(30)
        plain = _HttpxRow(httpx.AsyncClient(limits=limits, follow_redirects=False))
        over_aiohttp = _HttpxRow(httpx.AsyncClient(
            transport=LiteLLMAiohttpTransport(client=lambda: aiohttp.ClientSession()), follow_redirects=False))
        try:
            for name, transport in (("aiohttp", ours), ("httpx", plain), ("httpx+aiohttp", over_aiohttp)):
                step(f"transport {name}")

                async def call(transport: Any = transport) -> int:
                    await transport.send(request)
                    return 1

                sample = await measure(call, self.counts.calls[10], 10, self.counts.warmup)
                self.rows.append(Row("transport", name, 10, sample.calls, sample.cpu_us, sample.pct(0.5),
                                     sample.pct(0.95)))
        finally:
            await ours.aclose()
            await plain.client.aclose()
            await over_aiohttp.client.aclose()

    async def memory_section(self, step: Callable[[str], None]) -> None:
        """RSS before and after ``memory_calls`` chat calls at c=50 (after warm-up, after gc)."""
        for impl in ("floor", "alipay"):
            step(f"memory {impl} x{self.counts.memory_calls}")
            call = self.chat_call(impl)
            await _drive(call, 1000 if self.counts.memory_calls >= 10_000 else 50, 50, None)
            gc.collect()
            before = rss_mb()
            cpu = time.process_time()
            await _drive(call, self.counts.memory_calls, 50, None)
            spent = time.process_time() - cpu
            gc.collect()
            after = rss_mb()
            self.rows.append(Row("memory", impl, 50, self.counts.memory_calls, spent / self.counts.memory_calls * 1e6,
                                 note=f"RSS {before:.1f} -> {after:.1f} MB = {after - before:+.2f} MB",
                                 extra={"growth_mb": after - before}))

    async def limiter_section(self, step: Callable[[str], None]) -> None:
        """One booking per call, as the provider will do per request; limits high enough never to wait."""
        from litellm_alipay.emulator.redis_server import RedisServer
        from litellm_alipay.resilience.limiter import MemoryLimiter, RedisLimiter

        n = self.counts.limiter_calls
        memory = MemoryLimiter(per_second=1_000_000, per_minute=None)
        with RedisServer() as url:
            redis = RedisLimiter(url, per_second=1_000_000, per_minute=None)
            try:
                for name, limiter in (("memory", memory), ("redis", redis)):
                    for conc in (1, 50):
                        step(f"limiter {name} c={conc}")

                        async def call(limiter: Any = limiter) -> int:
                            await limiter.abook("2021000000000001")
                            return 1
                        sample = await measure(call, n, conc, min(200, n))
                        self.rows.append(Row("limiter", name, conc, n, sample.cpu_us, sample.pct(0.5),
                                             sample.pct(0.95)))
            finally:
                await redis.aclose()


class _HttpxRow:
    """An httpx client presented like our transport for the transport rows: POST, read the whole body."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send(self, request: Any) -> bytes:
        response = await self.client.post(request.url, content=request.content, headers=dict(request.headers))
        return await response.aread()


async def _fetch(request: Any) -> bytes:
    """One real signed response body from the emulator, for the verification rows."""
    from litellm_alipay.transport.http import AiohttpTransport

    transport = AiohttpTransport(2)
    try:
        response = await transport.send(request)
        return response.content
    finally:
        await transport.aclose()


def machine() -> str:
    """What the numbers were measured on (they are only comparable within one run)."""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        cpu = platform.processor() or "?"
    try:
        from importlib.metadata import version
        litellm_version, alipay_version = version("litellm"), version("litellm-alipay")
    except Exception:  # noqa: BLE001 - informational only
        litellm_version = alipay_version = "?"
    return (f"{platform.platform()} | {cpu} x{os.cpu_count()} | Python {platform.python_version()} | "
            f"litellm {litellm_version} | litellm-alipay {alipay_version}")

