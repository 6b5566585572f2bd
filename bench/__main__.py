"""``python -m bench [--quick] [--loop uvloop|asyncio]`` (or ``bash bench/run.sh``): run every scenario and
print the table.

Progress goes to stderr, the table and the target checks to stdout. The exit status is 0 even when a
target is missed: the table is the product, and CI must not gate on timings (``--quick`` numbers are
meaningless anyway — too few calls).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: every row, numbers meaningless")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop",
        help="event loop for every row (default uvloop: what the LiteLLM proxy runs on, via uvicorn)",
    )
    args = parser.parse_args(argv)
    # SIGTERM → SystemExit, so the EmulatorProcess and RedisServer context managers stop their children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(_main(args.quick, args.loop))
    return asyncio.run(_main(args.quick, args.loop))


async def _main(quick: bool, loop: str = "asyncio") -> int:
    from litellm_alipay.emulator.process import EmulatorProcess

    from .harness import CHAT_IMPLS, STREAM_LONG, Bench, Counts, machine, progress
    from .report import render

    counts = Counts.quick() if quick else Counts.full()
    started = time.monotonic()
    total = 3 * (len(CHAT_IMPLS) + 3 + 3) + 3 + 1 + 3 + 2 + 4 + 8  # calls, short streams, crypto, transport, ...
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        progress(f"[{done:>2}/{total}] {time.monotonic() - started:6.1f}s  {label}")

    progress("starting the emulator subprocess (loopback) …")
    with EmulatorProcess() as emulator:
        bench = Bench(counts, emulator)
        await bench.setup()
        await bench.calls_section("chat", bench.chat_call, counts.calls, step, CHAT_IMPLS)
        await bench.calls_section("stream", lambda impl: bench.stream_call(impl, STREAM_LONG),
                                  counts.stream_calls, step)
        await bench.stream_slope(step)
        await bench.calls_section("embed", bench.embed_call, counts.calls, step)
        await bench.crypto_section(step)
        await bench.transport_section(step)
        await bench.ling_section(step)
        await bench.memory_section(step)
    await bench.limiter_section(step)
    print(render(bench.rows, f"{machine()} | event loop {loop}", quick, time.monotonic() - started))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
