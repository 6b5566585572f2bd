"""The ``litellm-alipay`` command: keygen, emulator, demo, check, audit, notify, mcp."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: Set for every command unless the user set it: LiteLLM otherwise tries to download its cost map at
#: import (three retries and two WARNING lines offline, seconds online). The provider prices its own
#: models from ``catalogue.py``; LiteLLM's bundled map serves every other model.
LOCAL_COST_MAP_ENV = "LITELLM_LOCAL_MODEL_COST_MAP"

#: Every command: the module that defines it, the function there that registers its subparser, and its
#: line in ``litellm-alipay --help``. A command's module is imported only when that command is named:
#: some import LiteLLM (seconds), and ``--help`` or ``keygen`` must not wait for that.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "keygen": (__name__, "add_keygen_parser", "write a fresh RSA-2048 app key pair"),
    "demo": ("litellm_alipay.demo", "add_parser", "run the demo against the embedded emulator"),
    "check": ("litellm_alipay.ops.health", "add_parser",
              "validate a deployment's settings, keys and certificates, and make a signed test call"),
    "emulator": ("litellm_alipay.emulator.server", "add_parser", "run the local Alipay AI gateway emulator"),
    "audit": ("litellm_alipay.payments.cli", "add_parsers",
              "print a day's payment actions and totals from the audit trail"),
    "notify": ("litellm_alipay.payments.cli", "add_parsers",
               "receive Alipay's payment notifications (verified, audited)"),
    "mcp": ("litellm_alipay.payments.mcp_server", "add_parser",
            "serve the payment actions as an MCP server (stdio, or --http)"),
}


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


def add_keygen_parser(sub: argparse._SubParsersAction) -> None:
    keygen = sub.add_parser("keygen", help=COMMANDS["keygen"][2])
    keygen.add_argument("--out", default="keys", help="directory to write to (default: ./keys)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    keygen.set_defaults(func=_keygen)


def _named_command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is not an option), if it is one of ours."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s full subparser (its module imported) and a one-line entry for each
    other command, so ``--help`` lists everything without importing anything."""
    parser = argparse.ArgumentParser(prog="litellm-alipay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    if command is not None:
        module, function, _ = COMMANDS[command]
        getattr(importlib.import_module(module), function)(sub)
    for name, (_, _, line) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault(LOCAL_COST_MAP_ENV, "True")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_named_command(argv)).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
