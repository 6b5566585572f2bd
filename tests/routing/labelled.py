"""The labelled set (``labelled.jsonl``): one request a line, ``side`` alipay | regional, shared by the tests
and ``bench/routing.py``.

``split`` tells how honest each part's figure is: ``dev`` (327 requests) was written first and the cue
lists were tuned on it; ``holdout`` (81) was written before looking at the classifier's answers and first
scored 61.0 % (Alipay side) / 97.5 % (regional), then tuned on; ``fresh`` (40) first scored 60.0 % /
95.0 %, then got one pass of domain vocabulary. docs/routing.md reports all three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("labelled.jsonl")
SIDES = ("alipay", "regional")


def load() -> list[dict[str, Any]]:
    with PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def accuracy(rows: list[dict[str, Any]], routed: list[str]) -> dict[str, float]:
    """Per-side share of rows whose routed side is their label."""
    result = {}
    for side in SIDES:
        picked = [got for row, got in zip(rows, routed, strict=True) if row["side"] == side]
        result[side] = sum(got == side for got in picked) / len(picked)
    return result
