"""``python -m bench.plot --proxy proxy.json --table inprocess.txt --out bench/``: the pictures of bench/README.md.

Why a separate step reading saved output: the benchmarks stay free of matplotlib (it is in the ``bench`` extra
only, never a runtime or test dependency, and the smoke test never draws), and a picture can be redrawn from a
saved run without measuring again.

* ``proxy-latency.png``: p50 and p99 latency against concurrency, one line per proxy deployment.
* ``inprocess-cpu.png``: client CPU per call for the in-process rows (chat, stream, embeddings at each
  concurrency), floor / alipay / openai side by side, read from the table ``python -m bench`` prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

IN_PROCESS_SECTIONS = ("chat", "stream", "embed")
IMPLS = ("floor", "alipay", "openai")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # a clear fix, not a traceback
        raise SystemExit("bench.plot needs matplotlib: pip install -e '.[bench]'") from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def proxy_png(rows: Iterable[Mapping[str, Any]], out: Path) -> None:
    """Latency (p50 solid, p99 dashed) against concurrency for each deployment of ``bench.proxy``."""
    plt = _pyplot()
    rows = list(rows)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["conc"])
        conc = [r["conc"] for r in mine]
        line, = ax.plot(conc, [r["p50_ms"] for r in mine], marker="o", label=f"{label} p50")
        ax.plot(conc, [r["p99_ms"] for r in mine], marker="x", linestyle="--", color=line.get_color(),
                label=f"{label} p99")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["conc"] for r in rows}), labels=[str(c) for c in sorted({r["conc"] for r in rows})])
    ax.set_xlabel("concurrency (closed-loop clients)")
    ax.set_ylabel("latency at the client, ms")
    ax.set_title("litellm proxy (1 worker): alipay/ gateway, alipay/ Ant Ling, openai/")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def parse_table(text: str) -> list[dict[str, Any]]:
    """The in-process rows (section, impl, conc, cpu µs/call) from ``python -m bench``'s table."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] in IN_PROCESS_SECTIONS and parts[1] in IMPLS and parts[2].isdigit():
            rows.append({"section": parts[0], "impl": parts[1], "conc": int(parts[2]),
                         "cpu_us": float(parts[4].replace(",", ""))})
    return rows


def inprocess_png(rows: Iterable[Mapping[str, Any]], out: Path) -> None:
    """Grouped bars: client CPU per call, one group per (section, concurrency), floor / alipay / openai."""
    plt = _pyplot()
    rows = list(rows)
    groups = list(dict.fromkeys((r["section"], r["conc"]) for r in rows))
    fig, axes = plt.subplots(1, len(IN_PROCESS_SECTIONS), figsize=(11, 4), dpi=110)
    for ax, section in zip(axes, IN_PROCESS_SECTIONS, strict=True):
        mine = [g for g in groups if g[0] == section]
        width = 0.8 / len(IMPLS)
        for i, impl in enumerate(IMPLS):
            values = [next((r["cpu_us"] for r in rows if (r["section"], r["conc"]) == g and r["impl"] == impl), 0)
                      for g in mine]
            ax.bar([x + i * width for x in range(len(mine))], [v / 1000 for v in values], width, label=impl)
        ax.set_xticks([x + width for x in range(len(mine))], labels=[f"c={g[1]}" for g in mine])
        ax.set_title(section)
        ax.set_ylabel("client CPU per call, ms")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("in-process litellm.acompletion / aembedding: client CPU per call")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper right", fontsize=8, ncols=len(IMPLS))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", type=Path, help="JSON written by `python -m bench.proxy --json`")
    parser.add_argument("--table", type=Path, help="stdout of `python -m bench` saved to a file")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="directory for the PNGs")
    args = parser.parse_args(argv)
    if args.proxy:
        proxy_png(json.loads(args.proxy.read_text())["rows"], args.out / "proxy-latency.png")
    if args.table:
        rows = parse_table(args.table.read_text())
        if not rows:
            raise SystemExit(f"--table {args.table}: no chat/stream/embed rows found (is it `python -m bench` stdout?)")
        inprocess_png(rows, args.out / "inprocess-cpu.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
