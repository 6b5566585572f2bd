"""``python -m bench.profile [chat|stream|embed|floor] [calls] [concurrency]``: pyinstrument over the alipay path.

Why a separate entry point: the table says *how much* the provider costs above the floor; this says
*where*. It runs the same calls as the benchmark (same emulator subprocess, same warm-up) under
pyinstrument and prints the call tree, plus the time under ``litellm_alipay`` frames.
"""

from __future__ import annotations

import asyncio
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


async def _main(kind: str, calls: int, conc: int) -> None:
    from pyinstrument import Profiler

    from litellm_alipay.emulator.process import EmulatorProcess

    from .harness import STREAM_LONG, Bench, Counts, _drive

    with EmulatorProcess() as emulator:
        bench = Bench(Counts.quick(), emulator)
        await bench.setup()
        impl = "floor" if kind == "floor" else "alipay"
        call = {"chat": lambda: bench.chat_call(impl), "floor": lambda: bench.chat_call(impl),
                "stream": lambda: bench.stream_call(impl, STREAM_LONG),
                "embed": lambda: bench.embed_call(impl)}[kind]()
        await _drive(call, 200, conc, None)
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        await _drive(call, calls, conc, None)
        profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "chat"
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    asyncio.run(_main(kind, calls, conc))


if __name__ == "__main__":
    main()
