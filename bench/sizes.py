"""``python -m bench.sizes [--quick] [--loop uvloop|asyncio]``: realistic sizes, two of each, alipay/ vs openai/.

Why two sizes per row: a cost that grows linearly with the size shows as the same per-unit cost at both sizes
(µs per vector, per chunk, per KB); a fixed cost shrinks per unit as the size grows, a super-linear one grows.

* ``embed-size``: 32 inputs × 1,024 and × 1,536 dimensions — the alipay side verifies and parses a signed
  answer of several hundred kilobytes; reported as client CPU µs per vector.
* ``stream-size``: streams of 500 and 1,000 chunks (``max_tokens`` over a 1,000-word prompt); µs per chunk.
* ``prompt-size``: a 50 KB and a 100 KB prompt — signing and form-encoding a large ``biz_content`` on the
  alipay side; µs per call and per KB.

Same method as ``python -m bench``: the emulator in its own subprocess, client CPU = ``process_time`` of this
process, warm-up, then a fixed number of calls at c=1. The emulator is started with a context limit large
enough for the 100 KB prompt (``max_context_chars``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

IMPLS = ("alipay", "openai")
EMBED_INPUTS = 32
EMBED_DIMS = (1024, 1536)
STREAM_CHUNKS = (500, 1000)
PROMPT_KB = (50, 100)
#: what the size column counts, per section
SIZE_UNITS = {"embed-size": "dimension", "stream-size": "chunk", "prompt-size": "KB"}


@dataclass(frozen=True)
class Counts:
    embed: int
    stream: int
    prompt: int
    warmup: int

    @classmethod
    def full(cls) -> Counts:
        return cls(embed=150, stream=40, prompt=300, warmup=10)

    @classmethod
    def quick(cls) -> Counts:
        return cls(embed=3, stream=2, prompt=3, warmup=1)


@dataclass
class SizeRow:
    section: str
    impl: str
    size: int
    unit: str
    calls: int
    cpu_us: float       # per call
    p50_ms: float
    units: float        # vectors, chunks received or KB per call


def _prompt(kb: int) -> list[dict[str, str]]:
    """``kb`` KB of ASCII words (the emulator echoes it back: the answer grows with it too)."""
    words = (f"w{i % 1000:03d}" for i in range(kb * 1024 // 5 + 1))
    return [{"role": "user", "content": " ".join(words)[: kb * 1024]}]


class Sizes:
    def __init__(self, counts: Counts) -> None:
        import litellm

        from litellm_alipay import register

        self.counts = counts
        litellm.suppress_debug_info = True
        register()
        self.openai: dict[str, str] = {}
        self.rows: list[SizeRow] = []

    def use(self, emulator) -> None:
        """Point both sides at ``emulator`` (settings from the environment, as users configure them)."""
        os.environ.update(emulator.env())
        self.openai = {"api_base": f"{emulator.base_url}/v1", "api_key": "bench"}

    def _extra(self, impl: str) -> dict[str, str]:
        return self.openai if impl == "openai" else {}

    def embed(self, impl: str, dims: int) -> Callable[[], Awaitable[int]]:
        import litellm

        inputs = [f"transaction memo number {i} 支付宝" for i in range(EMBED_INPUTS)]

        async def call() -> int:
            # no `dimensions`: LiteLLM refuses it for a custom provider (README), so the emulator is started
            # with ``models.embed_dimensions`` = dims and both sides get its default size
            reply = await litellm.aembedding(model=f"{impl}/ant-fin-embed", input=inputs, **self._extra(impl))
            assert len(reply.data) == EMBED_INPUTS and len(reply.data[0]["embedding"]) == dims
            return 1
        return call

    def stream(self, impl: str, chunks: int) -> Callable[[], Awaitable[int]]:
        import litellm

        messages = [{"role": "user", "content": " ".join(f"w{i}" for i in range(max(STREAM_CHUNKS)))}]

        async def call() -> int:
            n = 0
            stream = await litellm.acompletion(model=f"{impl}/ant-fin-chat", messages=messages, stream=True,
                                               max_tokens=chunks, **self._extra(impl))
            async for _ in stream:
                n += 1
            assert n >= chunks, n
            return n
        return call

    def prompt(self, impl: str, kb: int) -> Callable[[], Awaitable[int]]:
        import litellm

        messages = _prompt(kb)

        async def call() -> int:
            reply = await litellm.acompletion(model=f"{impl}/ant-fin-chat", messages=messages, max_tokens=16,
                                              **self._extra(impl))
            assert reply.choices[0].message.content
            return 1
        return call

    async def run(self, progress: Callable[[str], None], plan: list[tuple]) -> None:
        from .harness import measure

        for section, unit, factory, sizes, calls in plan:
            for size in sizes:
                for impl in IMPLS:
                    progress(f"{section} {impl} {size}")
                    sample = await measure(factory(impl, size), calls, 1, self.counts.warmup)
                    units = EMBED_INPUTS if section == "embed-size" else (
                        sample.items / sample.calls if section == "stream-size" else size)
                    self.rows.append(SizeRow(section, impl, size, unit, calls, sample.cpu_us, sample.pct(0.5), units))


def render(rows: list[SizeRow], header: str) -> str:
    out = [header, "",
           f"{'section':<12} {'impl':<7} {'size':>5} {'calls':>6} {'cpu µs/call':>12} {'p50 ms':>8} "
           f"{'µs per unit':>12} {'÷openai':>8}",
           "-" * 78]
    by = {(r.section, r.impl, r.size): r for r in rows}
    for r in rows:
        base = by.get((r.section, "openai", r.size))
        ratio = f"{r.cpu_us / base.cpu_us:.2f}" if base and r.impl != "openai" else "-"
        out.append(f"{r.section:<12} {r.impl:<7} {r.size:>5} {r.calls:>6} {r.cpu_us:>12,.1f} {r.p50_ms:>8.2f} "
                   f"{r.cpu_us / r.units:>9,.1f}/{r.unit:<2} {ratio:>8}"[:120])
    out += ["", "growth (per-call CPU at the larger size ÷ at the smaller; linear in the size = the size ratio):"]
    for section in dict.fromkeys(r.section for r in rows):
        for impl in IMPLS:
            small, large = sorted((r for r in rows if r.section == section and r.impl == impl), key=lambda r: r.size)
            out.append(f"  {section:<12} {impl:<7} {large.cpu_us / small.cpu_us:.2f} "
                       f"(size ×{large.size / small.size:.2f}; marginal "
                       f"{(large.cpu_us - small.cpu_us) / (large.size - small.size):,.1f} µs per call per extra "
                       f"{SIZE_UNITS[section]})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sizes", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: every row, numbers meaningless")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from litellm_alipay.emulator.process import EmulatorProcess

    from .harness import machine, progress

    started = time.monotonic()
    counts = Counts.quick() if args.quick else Counts.full()
    sizes = Sizes(counts)
    run = __import__("uvloop").run if args.loop == "uvloop" else asyncio.run
    # one emulator per embedding size (its default dimensions), the last one also serves streams and prompts
    for dims in EMBED_DIMS:
        with EmulatorProcess({"max_context_chars": 400_000, "models": {"embed_dimensions": dims}}) as emulator:
            sizes.use(emulator)
            plan = [("embed-size", "vector", sizes.embed, (dims,), counts.embed)]
            if dims == EMBED_DIMS[-1]:
                plan += [("stream-size", "chunk", sizes.stream, STREAM_CHUNKS, counts.stream),
                         ("prompt-size", "KB", sizes.prompt, PROMPT_KB, counts.prompt)]
            run(sizes.run(progress, plan))
    print(render(sizes.rows, f"{machine()} | event loop {args.loop} | {'quick' if args.quick else 'full'} | "
                             f"wall {time.monotonic() - started:.0f} s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
