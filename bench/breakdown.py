"""``python -m bench.breakdown [calls] [concurrency] [--loop uvloop|asyncio]``: where the CPU above the floor goes.

Why cProfile and buckets rather than a call tree: the question is "where does each ~0.1 ms above LiteLLM's floor
go" — signing, urlencode, transport, verification, transforms, cost, LiteLLM's own handling. cProfile's
*exclusive* time per function, summed into those buckets by the function's file (or, for C functions, by its
name), answers it per call, for the alipay path and the floor from the same process and the same run; the
difference per bucket is the provider's share. cProfile slows Python code more than C code, so the absolute
figures are inflated (the table's total line says by how much against the unprofiled ``python -m bench``);
the split between buckets is what this is for.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

#: (bucket, test on "file:function") in order: the first that matches wins.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RSA sign (OpenSSL)", ("RSAPrivateKey' objects>",)),
    ("RSA verify (OpenSSL)", ("RSAPublicKey' objects>",)),
    ("signing/verify glue (wire/signing)", ("litellm_alipay/wire/signing",)),
    ("urlencode", ("urllib/parse.py", "wire/encoding", "wire/form")),
    ("envelope + other wire", ("litellm_alipay/wire/",)),
    ("transport (aiohttp + ours)", ("aiohttp/", "litellm_alipay/transport/", "multidict", "yarl/", "http/cookies",
                                      "httptools")),
    ("transforms", ("litellm_alipay/transforms/",)),
    ("cost / billing", ("litellm_alipay/billing/",)),
    ("resilience / guards", ("litellm_alipay/resilience/",)),
    ("provider + backends + settings", ("litellm_alipay/",)),
    ("json (stdlib)", ("json/", "_json", "'loads'", "'dumps'")),
    ("event loop + sockets", ("asyncio/", "uvloop", "selectors.py", "socket.py", "'_asyncio", "<method 'send",
                              "<method 'recv", "ssl.py")),
    ("LiteLLM", ("litellm/",)),
    ("pydantic", ("pydantic",)),
)
OTHER = "other (stdlib, builtins)"


def bucket_of(filename: str, function: str) -> str:
    key = f"{filename}:{function}"
    for name, needles in BUCKETS:
        if any(needle in key for needle in needles):
            return name
    return OTHER


def buckets(stats: pstats.Stats, calls: int) -> dict[str, float]:
    """Exclusive (tottime) µs per call summed by bucket."""
    out: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        name = bucket_of(filename, function)
        out[name] = out.get(name, 0.0) + tottime / calls * 1e6
    return out


async def _profile(bench, impl: str, calls: int, conc: int) -> tuple[dict[str, float], float]:
    from .harness import _drive

    call = bench.chat_call(impl)
    await _drive(call, min(200, calls), conc, None)  # warm: settings built, keys parsed, pools open
    profiler = cProfile.Profile()
    cpu = time.process_time()
    profiler.enable()
    await _drive(call, calls, conc, None)
    profiler.disable()
    cpu = (time.process_time() - cpu) / calls * 1e6
    return buckets(pstats.Stats(profiler), calls), cpu


async def _main(calls: int, conc: int) -> str:
    from litellm_alipay.emulator.process import EmulatorProcess

    from .harness import Bench, Counts

    with EmulatorProcess() as emulator:
        bench = Bench(Counts.quick(), emulator)
        await bench.setup()
        floor, floor_cpu = await _profile(bench, "floor", calls, conc)
        alipay, alipay_cpu = await _profile(bench, "alipay", calls, conc)
    names = [name for name, _ in BUCKETS] + [OTHER]
    title = "bucket (exclusive CPU, µs per chat call, under cProfile)"
    rows = [f"{title:<44} {'floor':>9} {'alipay':>9} {'alipay−floor':>13}",
            "-" * 78]
    for name in sorted(names, key=lambda n: -(alipay.get(n, 0) - floor.get(n, 0))):
        a, f = alipay.get(name, 0.0), floor.get(name, 0.0)
        if a or f:
            rows.append(f"{name:<44} {f:>9,.1f} {a:>9,.1f} {a - f:>+13,.1f}")
    rows.append(f"{'total (process CPU under the profiler)':<44} {floor_cpu:>9,.1f} {alipay_cpu:>9,.1f} "
                f"{alipay_cpu - floor_cpu:>+13,.1f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("calls", type=int, nargs="?", default=2000)
    parser.add_argument("concurrency", type=int, nargs="?", default=1)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        text = uvloop.run(_main(args.calls, args.concurrency))
    else:
        text = asyncio.run(_main(args.calls, args.concurrency))
    print(f"chat, {args.calls} calls at c={args.concurrency}, event loop {args.loop}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
