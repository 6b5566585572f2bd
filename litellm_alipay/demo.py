"""``litellm-alipay demo``: the main job. Signs a request with a fresh key pair and verifies it."""

from __future__ import annotations

import argparse
import tempfile
import time

from . import protocol
from .keygen import write_key_pair
from .signing import build_sign_content, load_private_key, load_public_key, verify_params


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_key_pair(tmp)
        key = load_private_key(paths["private_pkcs1"].read_text())
        public = load_public_key(paths["public"].read_text())
    params = protocol.common_params(
        "2021000000000001", protocol.METHOD_CHAT,
        {"model": "ant-finance-chat", "messages": [{"role": "user", "content": "你好, Alipay & co"}]},
    )
    started = time.perf_counter()
    signed = protocol.sign_request(params, key)
    elapsed = (time.perf_counter() - started) * 1000
    print("string to sign:", build_sign_content(signed))
    print(f"signed with RSA2 in {elapsed:.2f} ms; signature verifies: {verify_params(signed, public)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the demo")
    demo.set_defaults(func=run)
