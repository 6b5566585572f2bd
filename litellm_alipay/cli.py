"""The ``litellm-alipay`` command: keygen, emulator, demo, check, audit, notify, mcp."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _keygen(args: argparse.Namespace) -> int:
    from .keygen import write_key_pair

    try:
        paths = write_key_pair(args.out, force=args.force)
    except FileExistsError as exc:
        print(f"keygen: {exc}", file=sys.stderr)
        return 1
    print(f"wrote the app key pair to {args.out}/ (private key files are mode 600)")
    print("upload this public key in the Alipay console (开发设置 → 接口加签方式 → 公钥):")
    print(paths["public"].read_text().strip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litellm-alipay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="write a fresh RSA-2048 app key pair")
    keygen.add_argument("--out", default="keys", help="directory to write to (default: ./keys)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    keygen.set_defaults(func=_keygen)

    from .demo import add_parser as add_demo

    add_demo(sub)

    from .ops.health import add_parser as add_check

    add_check(sub)
    from .emulator.server import add_parser as add_emulator
    add_emulator(sub)
    from .payments.cli import add_parsers as add_payments

    add_payments(sub)
    from .payments.mcp_server import add_parser as add_mcp

    add_mcp(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
