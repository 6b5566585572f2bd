"""Smoke test of the benchmark harness: ``python -m bench --quick`` prints the whole table.

Why no timing assertions: quick-mode counts are far too small for stable numbers, and CI machines vary;
the numbers are judged by a human from a full run (bench/README.md). This only guards that the harness
still runs end to end — emulator subprocess, floor provider, openai/ baseline, crypto, memory, Redis
limiter — and prints every row and every target line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    [f"{section} {impl} {conc}" for section in ("chat", "stream", "embed")
     for impl in ("floor", "alipay", "openai") for conc in (1, 10, 50)]
    + [f"chat {impl} {conc}" for impl in ("floor-unmapped", "floor-wait", "alipay-kw")
       for conc in (1, 10, 50)]
    + [f"stream-short {impl} 10" for impl in ("floor", "alipay", "openai")]
    + [f"{section} {impl} {conc}" for section in ("ling-chat", "ling-stream") for impl in ("ant-ling", "openai")
       for conc in (1, 10)]
    + ["memory floor 50", "memory alipay 50", "transport aiohttp 10", "transport httpx 10",
       "transport httpx+aiohttp 10"]
    + [f"limiter {kind} {conc}" for kind in ("memory", "redis") for conc in (1, 50)]
)
CRYPTO = (
    "raw RSA2 sign (cryptography)", "sign_params (content + RSA2)", "build_request (json+envelope+sign+encode)",
    "raw RSA2 verify (cryptography)", "verify_response (extract + verify + parse)",
    "key parses per request (measured alipay calls)", "form encoding: urllib urlencode (before)",
    "form encoding: wire.form (now)",
)


def test_quick_bench_prints_every_row() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    # "<section> <row> <conc>" from the table's first three columns
    keys = {" ".join(line.split()[:3]) for line in lines}
    missing = [row for row in ROWS if row not in keys]
    assert not missing, f"rows missing from the table: {missing}\n{done.stdout}"
    for name in CRYPTO:
        assert any(line.startswith("crypto") and name in line for line in lines), name
    assert "per-chunk streaming CPU" in done.stdout
    targets = [line for line in lines if line.strip().startswith(("PASS", "MISS", "n/a"))]
    # chat ÷floor/÷openai for alipay and alipay-kw at 3 concurrencies, Ant Ling ÷openai for chat and stream at 2,
    # chunk, memory, parses; and the "info" line per concurrency (what waiting alone costs)
    assert len(targets) == 3 * 2 * 2 + 4 + 3, done.stdout
    assert sum(line.strip().startswith("info") for line in lines) == 3, done.stdout
    assert "[ 1/" in done.stderr  # progress is shown while it runs


def test_quick_payments_bench_prints_the_rows_and_the_ratio() -> None:
    """``python -m bench.payments --quick``: toolkit query vs the official SDK's ``execute``, one run."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.payments", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {" ".join(line.split()[1:3]) for line in done.stdout.splitlines() if line.startswith("payments")}
    assert rows == {"sdk execute", "toolkit arun", "toolkit run"}, done.stdout
    ratios = [line for line in done.stdout.splitlines() if line.startswith("ratio") and "÷ sdk execute: cpu" in line]
    assert len(ratios) == 2, done.stdout
    assert "Unclosed" not in done.stderr


def test_quick_proxy_bench_prints_every_deployment_and_target() -> None:
    """``python -m bench.proxy --quick``: the real litellm proxy, three deployments, c = 1 / 16 / 64, targets."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.proxy", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {tuple(line.split()[1:3]) for line in done.stdout.splitlines() if line.startswith("proxy ")}
    assert rows == {(label, str(conc)) for label in ("alipay-gateway", "alipay-ling", "openai")
                    for conc in (1, 16, 64)}, done.stdout
    # rps and p99 against openai/ for each of the two alipay/ deployments at each concurrency
    targets = [line for line in done.stdout.splitlines() if line.strip().startswith(("MET", "MISS"))]
    assert len(targets) == 2 * 2 * 3, done.stdout
    # LiteLLM's overhead header reached the client for every deployment: the alipay/ provider records its
    # upstream exchange time, so LiteLLM computes it as for openai/
    overheads = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("proxy ")]
    assert "n/a" not in overheads and all(float(value) >= 0 for value in overheads), done.stdout


def _quick(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_quick_sizes_bench_prints_two_sizes_per_row() -> None:
    """``python -m bench.sizes --quick``: embeddings 32 × 1,024/1,536, 500/1,000-chunk streams, 50/100 KB prompts."""
    done = _quick("bench.sizes", "--quick")
    rows = {tuple(line.split()[:3]) for line in done.stdout.splitlines()
            if line.startswith(("embed-size", "stream-size", "prompt-size"))}  # not the indented growth lines
    assert rows == {(section, impl, size) for section, sizes in (
        ("embed-size", ("1024", "1536")), ("stream-size", ("500", "1000")), ("prompt-size", ("50", "100")))
        for impl in ("alipay", "openai") for size in sizes}, done.stdout
    growth = [line for line in done.stdout.splitlines() if "µs per call per extra" in line]
    assert len(growth) == 3 * 2, done.stdout


def test_quick_breakdown_buckets_the_alipay_path() -> None:
    """``python -m bench.breakdown 20``: cProfile buckets for the floor and alipay; signing shows only on alipay."""
    done = _quick("bench.breakdown", "20")
    sign = next(line for line in done.stdout.splitlines() if line.startswith("RSA sign (OpenSSL)"))
    floor_us, alipay_us = (float(v.replace(",", "")) for v in sign.split()[-3:-1])
    assert floor_us == 0 and alipay_us > 0, done.stdout
    assert any(line.startswith("total (process CPU") for line in done.stdout.splitlines()), done.stdout
